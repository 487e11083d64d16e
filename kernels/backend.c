/* backend.c — backend instances by name, and the process's default ones. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "kernels/backend.h"

#ifndef HERD_HAVE_CUDA
/* Built without nvcc: there is no CUDA backend. */
herd_backend *herd_backend_cuda_create(const herd_backend_options *opt)
{
    (void)opt;
    fprintf(stderr, "herd: backend cuda: not built (no nvcc)\n");
    return NULL;
}

int herd_backend_cuda_devices(char (*busid)[16], int max)
{
    (void)busid;
    (void)max;
    return 0;
}
#endif

herd_backend *herd_backend_create(const char *name, const herd_backend_options *opt)
{
    static const herd_backend_options defaults;
    if (!opt) opt = &defaults;
    if (!name || !strcmp(name, "cpu")) return herd_backend_cpu_create(opt);
    if (!strcmp(name, "cuda")) return herd_backend_cuda_create(opt);
    fprintf(stderr, "herd: unknown backend '%s' (cpu, cuda)\n", name);
    return NULL;
}

void herd_backend_free(herd_backend *be)
{
    if (be) be->destroy(be);
}

/* The default instances: made once, on the first call from any thread. */
static herd_backend *default_cpu;
static pthread_once_t default_cpu_once = PTHREAD_ONCE_INIT;
static void default_cpu_make(void) { default_cpu = herd_backend_cpu_create(NULL); }

const herd_backend *herd_backend_cpu(void)
{
    pthread_once(&default_cpu_once, default_cpu_make);
    return default_cpu;
}

#ifdef HERD_HAVE_CUDA
/* Without a device this is NULL and says nothing (callers print their own
 * "no CUDA device"). */
static herd_backend *default_cuda;
static pthread_once_t default_cuda_once = PTHREAD_ONCE_INIT;
int herd_cuda_device_present(void); /* kernels/cuda/backend_cuda.cu */
static void default_cuda_make(void)
{
    if (herd_cuda_device_present()) default_cuda = herd_backend_cuda_create(NULL);
}

const herd_backend *herd_backend_cuda(void)
{
    pthread_once(&default_cuda_once, default_cuda_make);
    return default_cuda;
}
#else
const herd_backend *herd_backend_cuda(void) { return NULL; }
#endif

const herd_backend *herd_backend_get(const char *name)
{
    if (!name || !strcmp(name, "cpu")) return herd_backend_cpu();
    if (!strcmp(name, "cuda")) return herd_backend_cuda();
    return NULL;
}

/* backend.c — look a backend up by name. */
#include <string.h>
#include "kernels/backend.h"

#ifndef HERD_HAVE_CUDA
/* Built without nvcc: there is no CUDA backend. */
const herd_backend *herd_backend_cuda(void) { return NULL; }
#endif

const herd_backend *herd_backend_get(const char *name)
{
    if (!name || !strcmp(name, "cpu")) return herd_backend_cpu();
    if (!strcmp(name, "cuda")) return herd_backend_cuda();
    return NULL;
}

/* fuzz.h — shared by the libFuzzer targets of tests/fuzz (see README there).
 *
 * Each target defines LLVMFuzzerTestOneInput and calls fuzz_init() from its
 * LLVMFuzzerInitialize. fuzz_init keeps the parsers' error messages (one per
 * bad input, millions of them) off the terminal: unless FUZZ_VERBOSE is set it
 * adds -close_fd_mask=2 to libFuzzer's flags, so libFuzzer moves its own output
 * and the sanitizers' reports to a copy of stderr and points fd 2 at /dev/null.
 * Parsers that take a path read the input from a memfd through fuzz_path(). */
#ifndef HERD_FUZZ_H
#define HERD_FUZZ_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_init(int *argc, char ***argv)
{
    if (getenv("FUZZ_VERBOSE")) return;
    for (int i = 1; i < *argc; i++)
        if (!strncmp((*argv)[i], "-close_fd_mask=", 15)) return;
    /* a new argv: libFuzzer parses the flags after this call */
    char **v = malloc(sizeof *v * (size_t)(*argc + 2));
    if (!v) return;
    memcpy(v, *argv, sizeof *v * (size_t)*argc);
    v[*argc] = "-close_fd_mask=2";
    v[*argc + 1] = NULL;
    *argv = v;
    (*argc)++;
}

/* The input as a file: a memfd rewritten for each input; returns its
 * /proc/self/fd path (the same string every time), or NULL. */
static const char *fuzz_path(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz-input", MFD_CLOEXEC);
        if (fd < 0) return NULL;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0)) return NULL;
    size_t done = 0;
    while (done < size) {
        ssize_t k = pwrite(fd, data + done, size - done, (off_t)done);
        if (k <= 0) return NULL;
        done += (size_t)k;
    }
    return path;
}

/* The input as a NUL-terminated string (malloc'ed; free it). */
static char *fuzz_string(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif

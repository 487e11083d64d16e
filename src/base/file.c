/* file.c — see file.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/base/file.h"

unsigned char *herd_file_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "herd: %s: file: cannot open: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *s = malloc(cap + 1);
    while (s) {
        n += fread(s + n, 1, cap - n, f);
        if (n < cap) break;
        unsigned char *p = realloc(s, 2 * cap + 1);
        if (!p) free(s);
        s = p;
        cap *= 2;
    }
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (!s || err) {
        fprintf(stderr, "herd: %s: file: cannot read: %s\n", path, s ? strerror(err) : "out of memory");
        free(s);
        return NULL;
    }
    s[n] = 0;
    *len = n;
    return s;
}

/* safetensors.c — see safetensors.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "checkpoint/safe_file.h"
#include "checkpoint/safetensors.h"

static int64_t numel(const herd_st_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

/* Append to a growing string. */
typedef struct { char *s; size_t n, cap; } sbuf;
static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (b->s && b->n + (size_t)k < b->cap) { b->n += (size_t)k; return; }
        b->cap = (b->cap + (size_t)k + 1) * 2;
        b->s = realloc(b->s, b->cap);
    }
}

int herd_safetensors_write(const char *path, const herd_st_tensor *t, int n,
                           const char *const *metadata, int n_meta)
{
    sbuf h = {0};
    sb_printf(&h, "{");
    if (n_meta > 0) {
        sb_printf(&h, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++)
            sb_printf(&h, "%s\"%s\":\"%s\"", i ? "," : "", metadata[2 * i], metadata[2 * i + 1]);
        sb_printf(&h, "}");
    }
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        int64_t bytes = numel(&t[i]) * 4;
        sb_printf(&h, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", (i || n_meta > 0) ? "," : "",
                  t[i].name, t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++) sb_printf(&h, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        sb_printf(&h, "],\"data_offsets\":[%lld,%lld]}", (long long)off, (long long)(off + bytes));
        off += bytes;
    }
    sb_printf(&h, "}");
    while (h.n % 8) sb_printf(&h, " "); /* the data starts 8-byte aligned */

    herd_safe_file sf;
    if (herd_safe_file_begin(&sf, path)) {
        free(h.s);
        return -1;
    }
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
    int ok = herd_write_all(sf.fd, len, 8) == 0 && herd_write_all(sf.fd, h.s, h.n) == 0;
    for (int i = 0; ok && i < n; i++)
        ok = herd_write_all(sf.fd, t[i].data, (size_t)numel(&t[i]) * 4) == 0;
    free(h.s);
    if (!ok) {
        fprintf(stderr, "herd: %s: write failed: %s\n", sf.tmp_path, strerror(errno));
        herd_safe_file_abort(&sf);
        return -1;
    }
    return herd_safe_file_commit(&sf);
}

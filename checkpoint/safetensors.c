/* safetensors.c — see safetensors.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "checkpoint/internal.h"
#include "checkpoint/safe_file.h"
#include "checkpoint/sbuf.h"
#include "checkpoint/safetensors.h"

static int64_t numel(const herd_st_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

/* bytes per element: BF16 and F16 are 2, F32 and I32 4 */
static int64_t elem_bytes(const herd_st_tensor *t)
{
    return !strcmp(t->dtype, "BF16") || !strcmp(t->dtype, "F16") ? 2 : 4;
}


int herd_safetensors_write(const char *path, const herd_st_tensor *t, int n,
                           const char *const *metadata, int n_meta)
{
    herd_sbuf h = {0};
    herd_sbuf_printf(&h, "{");
    if (n_meta > 0) {
        herd_sbuf_printf(&h, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++)
            herd_sbuf_printf(&h, "%s\"%s\":\"%s\"", i ? "," : "", metadata[2 * i], metadata[2 * i + 1]);
        herd_sbuf_printf(&h, "}");
    }
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        int64_t bytes = numel(&t[i]) * elem_bytes(&t[i]);
        herd_sbuf_printf(&h, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", (i || n_meta > 0) ? "," : "",
                  t[i].name, t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++) herd_sbuf_printf(&h, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        herd_sbuf_printf(&h, "],\"data_offsets\":[%lld,%lld]}", (long long)off, (long long)(off + bytes));
        off += bytes;
    }
    herd_sbuf_printf(&h, "}");
    while (h.n % 8) herd_sbuf_printf(&h, " "); /* the data starts 8-byte aligned */

    herd_safe_file sf;
    if (herd_safe_file_begin(&sf, path)) {
        free(h.s);
        return -1;
    }
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
    int ok = herd_write_all(sf.fd, len, 8) == 0 && herd_write_all(sf.fd, h.s, h.n) == 0;
    for (int i = 0; ok && i < n; i++)
        ok = herd_write_all(sf.fd, t[i].data, (size_t)(numel(&t[i]) * elem_bytes(&t[i]))) == 0;
    free(h.s);
    if (!ok) {
        fprintf(stderr, "herd: %s: write failed: %s\n", sf.tmp_path, strerror(errno));
        herd_safe_file_abort(&sf);
        return -1;
    }
    return herd_safe_file_commit(&sf);
}

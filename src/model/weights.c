/* weights.c — see weights.h. The header is parsed and checked by
 * src/base/safetensors_read.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "checkpoint/safetensors.h"
#include "src/base/safetensors.h"
#include "src/model/weights.h"

/* The 8-byte length and the header of f (malloc'ed, *len bytes), or NULL
 * with a message. */
static unsigned char *read_header(FILE *f, const char *path, size_t *len)
{
    unsigned char len8[8];
    if (fread(len8, 1, 8, f) != 8) {
        fprintf(stderr, "herd: %s: header length: file shorter than 8 bytes\n", path);
        return NULL;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
    unsigned char *buf = hlen <= (100u << 20) ? malloc(8 + hlen) : NULL;
    if (!buf || fread(buf + 8, 1, hlen, f) != hlen) {
        fprintf(stderr, "herd: %s: header: truncated or too large (%llu bytes)\n", path,
                (unsigned long long)hlen);
        free(buf);
        return NULL;
    }
    memcpy(buf, len8, 8);
    *len = 8 + hlen;
    return buf;
}

/* This rank's piece of tensor t (rows [r0, r0 + rows) x columns [c0, c0 +
 * cols) of the whole tensor, see herd_tensor) from entry e, row by row. */
static int read_piece(FILE *f, const herd_st_header *h, const herd_st_entry *e, const herd_tensor *t,
                      float *out)
{
    int two = t->ndim == 2;
    int64_t gcols = two ? t->global_shape[1] : t->global_shape[0];
    int64_t rows = two ? t->shape[0] : 1, cols = two ? t->shape[1] : t->shape[0];
    int64_t r0 = two ? t->global_offset[0] : 0, c0 = two ? t->global_offset[1] : t->global_offset[0];
    for (int64_t i = 0; i < rows; i++) {
        long at = (long)(8 + h->header_len + e->begin + ((uint64_t)(r0 + i) * gcols + c0) * 4);
        if (fseek(f, at, SEEK_SET) || fread(out + i * cols, sizeof(float), (size_t)cols, f) != (size_t)cols)
            return -1;
    }
    return 0;
}

int herd_weights_load(herd_model *m, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        fprintf(stderr, "herd: %s: cannot open the weights file\n", path);
        return -1;
    }
    size_t hlen = 0;
    unsigned char *hdr = read_header(f, path, &hlen);
    long size = fseek(f, 0, SEEK_END) ? -1 : ftell(f);
    herd_st_header h;
    if (!hdr || size < 0 || herd_st_header_parse(&h, path, hdr, hlen, (uint64_t)size)) {
        free(hdr);
        fclose(f);
        return -1;
    }
    free(hdr);
    float *host = malloc(sizeof(float) * (size_t)m->n_params);
    int rc = host ? 0 : -1;
    for (int i = 0; i < m->n_tensors && rc == 0; i++) {
        /* the file holds whole tensors; a tensor-parallel rank reads its slice */
        const herd_tensor *t = &m->tensors[i];
        const herd_st_entry *e = herd_st_header_find(&h, t->name);
        int64_t g0 = t->global_shape[0], g1 = t->ndim == 2 ? t->global_shape[1] : 0;
        rc = -1;
        if (!e) fprintf(stderr, "herd: %s: %s: missing\n", path, t->name);
        else if (strcmp(e->dtype, "F32"))
            fprintf(stderr, "herd: %s: %s: dtype: expected F32\n", path, t->name);
        else if (e->ndim != t->ndim || e->shape[0] != g0 || (t->ndim == 2 && e->shape[1] != g1))
            fprintf(stderr, "herd: %s: %s: shape: expected [%lld%s%lld] for this model\n", path,
                    t->name, (long long)g0, t->ndim == 2 ? ", " : "", (long long)g1);
        else if (read_piece(f, &h, e, t, host + t->offset))
            fprintf(stderr, "herd: %s: %s: read failed\n", path, t->name);
        else rc = 0;
    }
    if (rc == 0) m->be->copy_h2d(m->be, m->params, host, sizeof(float) * (size_t)m->n_params);
    free(host);
    herd_st_header_free(&h);
    fclose(f);
    return rc;
}

int herd_weights_save(const herd_model *m, const char *path)
{
    if (m->tp_size != 1) {
        fprintf(stderr, "herd: %s: weights files are written from one rank (tp 1)\n", path);
        return -1;
    }
    float *host = malloc(sizeof(float) * (size_t)m->n_params);
    herd_st_tensor *st = calloc(m->n_tensors, sizeof *st);
    m->be->copy_d2h(m->be, host, m->params, sizeof(float) * (size_t)m->n_params);
    for (int i = 0; i < m->n_tensors; i++) {
        const herd_tensor *t = &m->tensors[i];
        st[i] = (herd_st_tensor){t->name, "F32", t->ndim, {t->shape[0], t->shape[1]},
                                 host + t->offset};
    }
    int rc = herd_safetensors_write(path, st, m->n_tensors, NULL, 0);
    free(st);
    free(host);
    return rc;
}

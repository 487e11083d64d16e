/* weights.c — see weights.h. The header is parsed with src/json.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/json.h"
#include "checkpoint/safetensors.h"
#include "src/weights.h"

int herd_weights_load(herd_model *m, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        fprintf(stderr, "herd: %s: cannot open the weights file\n", path);
        return -1;
    }
    unsigned char len8[8];
    uint64_t hlen = 0;
    int rc = -1;
    char *hdr = NULL, err[160];
    herd_json j = {0};
    if (fread(len8, 1, 8, f) != 8) {
        fprintf(stderr, "herd: %s: header length: file shorter than 8 bytes\n", path);
        goto out;
    }
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
    if (hlen > (1u << 30) || !(hdr = malloc(hlen)) || fread(hdr, 1, hlen, f) != hlen) {
        fprintf(stderr, "herd: %s: header: truncated or too large (%llu bytes)\n", path,
                (unsigned long long)hlen);
        goto out;
    }
    if (herd_json_parse(&j, hdr, hlen, err, sizeof err)) {
        fprintf(stderr, "herd: %s: header: not JSON: %s\n", path, err);
        goto out;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    float *host = malloc(sizeof(float) * (size_t)m->n_params);
    rc = 0;
    for (int i = 0; i < m->n_tensors && rc == 0; i++) {
        const herd_tensor *t = &m->tensors[i];
        const herd_json *e = herd_json_get(&j, t->name);
        const herd_json *dt = herd_json_get(e, "dtype"), *sh = herd_json_get(e, "shape"),
                        *off = herd_json_get(e, "data_offsets");
        rc = -1;
        if (!e) fprintf(stderr, "herd: %s: %s: missing\n", path, t->name);
        else if (!dt || dt->type != HERD_JSON_STR || strcmp(dt->str, "F32"))
            fprintf(stderr, "herd: %s: %s: dtype: expected F32\n", path, t->name);
        else if (!sh || sh->type != HERD_JSON_ARR || (int)sh->len != t->ndim ||
                 sh->items[0].num != (double)t->shape[0] ||
                 (t->ndim == 2 && sh->items[1].num != (double)t->shape[1]))
            fprintf(stderr, "herd: %s: %s: shape: expected [%lld%s%lld] for this model\n", path,
                    t->name, (long long)t->shape[0], t->ndim == 2 ? ", " : "",
                    t->ndim == 2 ? (long long)t->shape[1] : 0LL);
        else if (!off || off->type != HERD_JSON_ARR || off->len != 2 ||
                 off->items[1].num - off->items[0].num != 4.0 * (double)t->numel ||
                 8 + (double)hlen + off->items[1].num > (double)size)
            fprintf(stderr, "herd: %s: %s: data_offsets: wrong size or past the end of the file\n",
                    path, t->name);
        else if (fseek(f, (long)(8 + hlen + (uint64_t)off->items[0].num), SEEK_SET) ||
                 fread(host + t->offset, sizeof(float), (size_t)t->numel, f) != (size_t)t->numel)
            fprintf(stderr, "herd: %s: %s: read failed\n", path, t->name);
        else rc = 0;
    }
    if (rc == 0) m->be->copy_h2d(m->params, host, sizeof(float) * (size_t)m->n_params);
    free(host);
out:
    herd_json_free(&j);
    free(hdr);
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
    m->be->copy_d2h(host, m->params, sizeof(float) * (size_t)m->n_params);
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

/* safetensors_read.c — the header of a safetensors file (see safetensors.h),
 * checked against the format before any tensor is read: a file is input
 * from elsewhere, and every number in it decides an offset or a size. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/base/json.h"
#include "src/base/safetensors.h"

/* The format's own bound on the header (safetensors refuses larger ones). */
#define ST_HEADER_MAX ((uint64_t)100 << 20)
/* Exactly representable in a JSON number (a double): offsets and sizes. */
#define ST_INT_MAX ((double)(1ULL << 53))

static const struct { const char *name; int bytes; } dtypes[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
    {"I8", 1}, {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1}, {"BOOL", 1},
    {"F8_E4M3", 1}, {"F8_E5M2", 1}};

static int st_err(const char *origin, const char *name, const char *why)
{
    if (name) fprintf(stderr, "herd: %s: %s: %s\n", origin, name, why);
    else fprintf(stderr, "herd: %s: header: %s\n", origin, why);
    return -1;
}

/* A JSON number that is a whole number in [0, 2^53]. */
static int whole(const herd_json *j, uint64_t *out)
{
    if (!j || j->type != HERD_JSON_NUM || !(j->num >= 0) || j->num > ST_INT_MAX ||
        j->num != floor(j->num))
        return -1;
    *out = (uint64_t)j->num;
    return 0;
}

static int dtype_bytes(const herd_json *j)
{
    if (!j || j->type != HERD_JSON_STR) return 0;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(j->str, dtypes[i].name)) return dtypes[i].bytes;
    return 0;
}

static int entry_from_json(herd_st_entry *e, const char *origin, const char *name, const herd_json *j,
                           uint64_t data_len)
{
    if (j->type != HERD_JSON_OBJ) return st_err(origin, name, "not an object");
    const herd_json *dt = herd_json_get(j, "dtype"), *sh = herd_json_get(j, "shape"),
                    *off = herd_json_get(j, "data_offsets");
    int bytes = dtype_bytes(dt);
    if (!bytes) return st_err(origin, name, "dtype: missing or not a safetensors dtype");
    snprintf(e->dtype, sizeof e->dtype, "%s", dt->str);
    if (!sh || sh->type != HERD_JSON_ARR || sh->len > HERD_ST_MAX_DIMS)
        return st_err(origin, name, "shape: missing, not an array, or more than 8 dimensions");
    e->ndim = (int)sh->len;
    uint64_t numel = 1;
    for (int d = 0; d < e->ndim; d++) {
        uint64_t v;
        if (whole(&sh->items[d], &v)) return st_err(origin, name, "shape: not a list of whole numbers");
        e->shape[d] = (int64_t)v;
        /* numel * bytes stays below 2^53 * 8: no overflow on the way */
        numel = v == 0 || numel == 0 ? 0 : (numel > (uint64_t)ST_INT_MAX / v ? UINT64_MAX : numel * v);
        if (numel == UINT64_MAX) return st_err(origin, name, "shape: more elements than a file holds");
    }
    if (!off || off->type != HERD_JSON_ARR || off->len != 2 || whole(&off->items[0], &e->begin) ||
        whole(&off->items[1], &e->end))
        return st_err(origin, name, "data_offsets: expected [begin, end], two whole numbers");
    if (e->begin > e->end || e->end > data_len)
        return st_err(origin, name, "data_offsets: past the end of the file");
    if (e->end - e->begin != numel * (uint64_t)bytes)
        return st_err(origin, name, "data_offsets: the size does not match dtype and shape");
    e->name = strdup(name);
    return e->name ? 0 : st_err(origin, name, "out of memory");
}

int herd_st_header_parse(herd_st_header *h, const char *origin, const unsigned char *buf, size_t len,
                         uint64_t file_size)
{
    memset(h, 0, sizeof *h);
    if (len < 8 || file_size < 8) return st_err(origin, NULL, "file shorter than the 8-byte header length");
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | buf[i];
    if (hlen > ST_HEADER_MAX || hlen > file_size - 8) {
        char why[128];
        snprintf(why, sizeof why, "length %llu: larger than the file or than the format's 100 MB",
                 (unsigned long long)hlen);
        return st_err(origin, NULL, why);
    }
    if (len - 8 < hlen) return st_err(origin, NULL, "truncated");
    h->header_len = hlen;
    h->data_len = file_size - 8 - hlen;
    herd_json j;
    char err[160], why[200];
    if (herd_json_parse(&j, (const char *)buf + 8, (size_t)hlen, err, sizeof err)) {
        snprintf(why, sizeof why, "not JSON: %s", err);
        return st_err(origin, NULL, why);
    }
    int rc = j.type == HERD_JSON_OBJ ? 0 : st_err(origin, NULL, "not a JSON object");
    if (rc == 0) h->t = calloc(j.len ? j.len : 1, sizeof *h->t);
    if (rc == 0 && !h->t) rc = st_err(origin, NULL, "out of memory");
    for (size_t k = 0; rc == 0 && k < j.len; k++) {
        if (!strcmp(j.keys[k], "__metadata__")) continue;
        for (int i = 0; rc == 0 && i < h->n; i++)
            if (!strcmp(h->t[i].name, j.keys[k])) rc = st_err(origin, j.keys[k], "given twice");
        if (rc == 0) rc = entry_from_json(&h->t[h->n], origin, j.keys[k], &j.items[k], h->data_len);
        if (rc == 0) h->n++;
    }
    herd_json_free(&j);
    if (rc) herd_st_header_free(h);
    return rc;
}

void herd_st_header_free(herd_st_header *h)
{
    for (int i = 0; h->t && i < h->n; i++) free(h->t[i].name);
    free(h->t);
    memset(h, 0, sizeof *h);
}

const herd_st_entry *herd_st_header_find(const herd_st_header *h, const char *name)
{
    for (int i = 0; i < h->n; i++)
        if (!strcmp(h->t[i].name, name)) return &h->t[i];
    return NULL;
}

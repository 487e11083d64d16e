/* hf_load.c — the tensors of a Hugging Face Llama checkpoint into this rank's
 * slices of a herd_model (see hf.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "checkpoint/hf_names.h"
#include "src/base/file.h"
#include "src/base/json.h"
#include "src/base/safetensors.h"
#include "src/model/hf.h"

/* One safetensors file, its header parsed. */
typedef struct {
    char path[4300];
    FILE *f;
    herd_st_header h;
} st_file;

static int st_open(st_file *s, const char *path)
{
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s", path);
    s->f = fopen(path, "rb");
    if (!s->f) {
        perror(path);
        fprintf(stderr, "herd: %s: cannot open the safetensors file\n", path);
        return -1;
    }
    unsigned char len8[8];
    uint64_t hlen = 0;
    if (fread(len8, 1, 8, s->f) == 8)
        for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
    unsigned char *buf = hlen && hlen <= (100u << 20) ? malloc(8 + hlen) : NULL;
    long size = -1;
    if (buf && fread(buf + 8, 1, hlen, s->f) == hlen && !fseek(s->f, 0, SEEK_END)) size = ftell(s->f);
    if (buf) memcpy(buf, len8, 8);
    int rc = size < 0 ? -1 : herd_st_header_parse(&s->h, path, buf, 8 + hlen, (uint64_t)size);
    if (size < 0) fprintf(stderr, "herd: %s: header: truncated or too large\n", path);
    free(buf);
    if (rc) {
        fclose(s->f);
        s->f = NULL;
    }
    return rc;
}

static void st_close(st_file *s)
{
    if (s->f) {
        fclose(s->f);
        herd_st_header_free(&s->h);
    }
    s->f = NULL;
}

static float widen(const unsigned char *p, const char *dtype)
{
    uint32_t u = 0;
    float f;
    if (!strcmp(dtype, "BF16")) {
        u = (uint32_t)(p[0] | p[1] << 8) << 16;
    } else if (!strcmp(dtype, "F16")) {
        uint32_t h = p[0] | p[1] << 8, s = (h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023;
        if (e == 31) u = s | 0x7f800000u | m << 13;
        else if (e) u = s | (e + 112) << 23 | m << 13;
        else if (!m) u = s;
        else { /* subnormal: normalise */
            e = 113;
            while (!(m & 1024)) m <<= 1, e--;
            u = s | e << 23 | (m & 1023) << 13;
        }
    } else {
        memcpy(&u, p, 4);
    }
    memcpy(&f, &u, 4);
    return f;
}

static int dtype_size(const char *dtype)
{
    return !strcmp(dtype, "F32") ? 4 : !strcmp(dtype, "BF16") || !strcmp(dtype, "F16") ? 2 : 0;
}

/* Rows [r0, r0+rows) x cols [c0, c0+cols) of tensor e into out, row by row. */
static int read_piece(st_file *s, const herd_st_entry *e, const herd_tensor *t, float *out)
{
    int es = dtype_size(e->dtype);
    int64_t gcols = t->ndim == 2 ? t->global_shape[1] : 1;
    int64_t rows = t->ndim == 2 ? t->shape[0] : 1, cols = t->ndim == 2 ? t->shape[1] : t->shape[0];
    int64_t r0 = t->global_offset[0], c0 = t->ndim == 2 ? t->global_offset[1] : 0;
    if (t->ndim == 1) gcols = t->global_shape[0], c0 = t->global_offset[0], r0 = 0;
    unsigned char *buf = malloc((size_t)cols * es);
    int rc = buf ? 0 : -1;
    for (int64_t i = 0; i < rows && !rc; i++) {
        uint64_t at = 8 + s->h.header_len + e->begin + ((uint64_t)(r0 + i) * gcols + c0) * es;
        if (fseeko(s->f, (off_t)at, SEEK_SET) || fread(buf, es, cols, s->f) != (size_t)cols) rc = -1;
        for (int64_t j = 0; j < cols && !rc; j++) out[i * cols + j] = widen(buf + j * es, e->dtype);
    }
    if (rc) fprintf(stderr, "herd: %s: %s: read failed\n", s->path, e->name);
    free(buf);
    return rc;
}

static int check_entry(const st_file *s, const herd_st_entry *e, const herd_tensor *t)
{
    int64_t g0 = t->global_shape[0], g1 = t->ndim == 2 ? t->global_shape[1] : 0;
    if (!dtype_size(e->dtype)) {
        fprintf(stderr, "herd: %s: %s: dtype %s: expected F32, BF16 or F16\n", s->path, e->name, e->dtype);
        return -1;
    }
    if (e->ndim != t->ndim || e->shape[0] != g0 || (t->ndim == 2 && e->shape[1] != g1)) {
        fprintf(stderr, "herd: %s: %s: shape: expected [%lld%s%lld] (config.json)\n", s->path, e->name,
                (long long)g0, t->ndim == 2 ? ", " : "", t->ndim == 2 ? (long long)g1 : 0LL);
        return -1;
    }
    return 0;
}

/* The open files of one load: the shards named by the index (or the one
 * model.safetensors), opened on first use. */
typedef struct {
    const char *dir;
    herd_json index;      /* weight_map's object, or type NULL without an index */
    const herd_json *map;
    st_file *files;
    int n, cap;
} hf_set;

static int set_open(hf_set *s, const char *dir)
{
    memset(s, 0, sizeof *s);
    s->dir = dir;
    char path[4300];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    FILE *probe = fopen(path, "rb");
    if (!probe) return 0;
    fclose(probe);
    size_t len = 0;
    unsigned char *text = herd_file_slurp(path, &len);
    char err[160];
    if (!text) return -1;
    int rc = herd_json_parse(&s->index, (const char *)text, len, err, sizeof err);
    free(text);
    if (rc) {
        fprintf(stderr, "herd: %s: not JSON: %s\n", path, err);
        return -1;
    }
    s->map = herd_json_get(&s->index, "weight_map");
    if (!s->map || s->map->type != HERD_JSON_OBJ) {
        fprintf(stderr, "herd: %s: weight_map: missing or not an object\n", path);
        return -1;
    }
    return 0;
}

static void set_close(hf_set *s)
{
    for (int i = 0; i < s->n; i++) st_close(&s->files[i]);
    free(s->files);
    if (s->map) herd_json_free(&s->index);
}

/* The file holding tensor name, opened; NULL with a message. */
static st_file *set_file(hf_set *s, const char *name)
{
    const char *file = "model.safetensors";
    if (s->map) {
        const herd_json *v = herd_json_get(s->map, name);
        if (!v || v->type != HERD_JSON_STR) {
            fprintf(stderr, "herd: %s/model.safetensors.index.json: weight_map: %s: missing\n", s->dir,
                    name);
            return NULL;
        }
        file = v->str;
        if (strchr(file, '/') || file[0] == '.') { /* the shards lie in DIR itself */
            fprintf(stderr, "herd: %s/model.safetensors.index.json: weight_map: %s: \"%s\" is not "
                    "a file name in the directory\n", s->dir, name, file);
            return NULL;
        }
    }
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", s->dir, file);
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->files[i].path, path)) return &s->files[i];
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 8;
        s->files = realloc(s->files, sizeof *s->files * s->cap);
    }
    if (st_open(&s->files[s->n], path)) return NULL;
    return &s->files[s->n++];
}

int herd_hf_load(herd_model *m, const char *dir, int tied)
{
    hf_set s;
    if (set_open(&s, dir)) {
        set_close(&s);
        return -1;
    }
    float *host = calloc((size_t)m->n_params, sizeof(float));
    int rc = host ? 0 : -1;
    for (int i = 0; i < m->n_tensors && !rc; i++) {
        const herd_tensor *t = &m->tensors[i];
        char hf[96];
        rc = -1;
        if (herd_hf_name(t->name, hf, sizeof hf)) {
            fprintf(stderr, "herd: %s: no Hugging Face name for %s\n", dir, t->name);
            break;
        }
        const char *src = tied ? herd_hf_tied_source(hf) : hf;
        st_file *f = set_file(&s, src);
        const herd_st_entry *e = f ? herd_st_header_find(&f->h, src) : NULL;
        if (f && !e) fprintf(stderr, "herd: %s: %s: missing%s\n", f->path, src,
                             strcmp(src, hf) ? " (tie_word_embeddings)" : "");
        if (e && !check_entry(f, e, t)) rc = read_piece(f, e, t, host + t->offset);
    }
    if (!rc) m->be->copy_h2d(m->be, m->params, host, sizeof(float) * (size_t)m->n_params);
    free(host);
    set_close(&s);
    return rc;
}

int herd_hf_load_checked(herd_model *m, const char *dir, const herd_config_model *run)
{
    herd_config_model hf = *run;
    int tied = 0;
    if (herd_hf_config_read(dir, &hf, &tied) || herd_hf_config_check(dir, run, &hf)) return -1;
    return herd_hf_load(m, dir, tied);
}

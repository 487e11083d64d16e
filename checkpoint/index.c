/* index.c — the slice index: which rectangles of which tensors a shard holds.
 *
 * Format 2 keeps each rank's index inside its own shard, as the dataset
 * /index (uint8 text, one line per slice: KIND NDIM G0 G1 O0 O1 S0 S1 NAME),
 * covered by the shard's XXH64 that the MANIFEST keeps; nothing about slices
 * travels to rank 0 at a save. Format 1 kept every rank's index in the
 * MANIFEST as "slice R ..." lines (same fields after R); both are parsed here
 * by one function, so a hostile index is refused the same way in either. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <hdf5.h>
#include "checkpoint/internal.h"
#include "checkpoint/sbuf.h"

#define TENSOR_MAX_ELEMS ((int64_t)1 << 40)
#define INDEX_MAX_BYTES  (1L << 30)

void ckpt_index_text(const ckpt_entry *ents, int n, herd_sbuf *b)
{
    for (int i = 0; i < n; i++) {
        const ckpt_entry *e = &ents[i];
        herd_sbuf_printf(b, "%s %d %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64
                         " %s\n", e->kind, e->ndim, e->global_shape[0], e->ndim > 1 ? e->global_shape[1] : 1,
                         e->offset[0], e->ndim > 1 ? e->offset[1] : 0, e->shape[0],
                         e->ndim > 1 ? e->shape[1] : 1, e->name);
    }
}

int ckpt_slice_parse(char **tok, int rank, ckpt_entry *e, const char **field)
{
    int64_t v[8];
    memset(e, 0, sizeof *e);
    *field = "kind";
    if (!ckpt_plain_name(tok[0], sizeof e->kind)) return -1;
    *field = "ndim";
    if (ckpt_parse_i64(tok[1], 1, 2, &v[0])) return -1;
    *field = "global_shape/offset/shape";
    for (int i = 1; i < 7; i++)
        if (ckpt_parse_i64(tok[i + 1], 0, INT64_MAX, &v[i])) return -1;
    *field = "name";
    if (!ckpt_plain_name(tok[8], sizeof e->name)) return -1;
    e->rank = rank;
    e->ndim = (int32_t)v[0];
    snprintf(e->kind, sizeof e->kind, "%s", tok[0]);
    snprintf(e->name, sizeof e->name, "%s", tok[8]);
    e->global_shape[0] = v[1]; e->global_shape[1] = v[2];
    e->offset[0] = v[3];       e->offset[1] = v[4];
    e->shape[0] = v[5];        e->shape[1] = v[6];
    *field = "global_shape";
    if (e->global_shape[0] < 1 || e->global_shape[1] < 1 ||
        e->global_shape[0] > TENSOR_MAX_ELEMS / e->global_shape[1])
        return -1;
    *field = "offset/shape";
    for (int d = 0; d < 2; d++)
        if (e->shape[d] < 1 || e->shape[d] > e->global_shape[d] - e->offset[d]) return -1;
    *field = "ndim";   /* a 1-D slice has a unit second dimension */
    if (e->ndim == 1 && (e->global_shape[1] != 1 || e->offset[1] != 0 || e->shape[1] != 1)) return -1;
    return 0;
}

int ckpt_entries_push(ckpt_manifest *m, const ckpt_entry *e)
{
    if (m->n_ents == m->cap_ents) {
        if (m->cap_ents > INT32_MAX / 4) return -1;
        int cap = m->cap_ents ? 2 * m->cap_ents : 64;
        ckpt_entry *ne = realloc(m->ents, (size_t)cap * sizeof *m->ents);
        if (!ne) return -1;
        m->ents = ne;
        m->cap_ents = cap;
    }
    m->ents[m->n_ents++] = *e;
    return 0;
}

/* Parse the text of one shard's /index (NUL-terminated, modified) as rank's. */
static int index_parse(const char *path, char *text, int rank, ckpt_manifest *m)
{
    int lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        char copy[512], *tok[10];
        snprintf(copy, sizeof copy, "%s", line);
        int nt = 0;
        for (char *s2 = NULL, *t = strtok_r(line, " ", &s2); t && nt < 10; t = strtok_r(NULL, " ", &s2))
            tok[nt++] = t;
        ckpt_entry e;
        const char *field = "fields";
        if (nt != 9 || ckpt_slice_parse(tok, rank, &e, &field)) {
            fprintf(stderr, "checkpoint: %s: /index (%s): line %d: bad or contradictory '%.200s'\n", path,
                    field, lineno, copy);
            return -1;
        }
        if (ckpt_entries_push(m, &e)) {
            fprintf(stderr, "checkpoint: %s: /index: out of memory at line %d\n", path, lineno);
            return -1;
        }
    }
    return 0;
}

int ckpt_index_read_h5(hid_t f, const char *path, int rank, ckpt_manifest *m)
{
    if (H5Lexists(f, "index", H5P_DEFAULT) <= 0) {
        fprintf(stderr, "checkpoint: %s: dataset /index missing (every %s shard has one)\n", path,
                HERD_CKPT_FORMAT);
        return -1;
    }
    hid_t ds = H5Dopen2(f, "index", H5P_DEFAULT);
    hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    char *text = NULL;
    int rc = -1;
    if (n < 0 || nd != 1 || n > INDEX_MAX_BYTES) {
        fprintf(stderr, "checkpoint: %s: /index is not 1-D text of at most %ld bytes\n", path, INDEX_MAX_BYTES);
    } else if (!(text = malloc((size_t)n + 1))) {
        fprintf(stderr, "checkpoint: %s: /index: out of memory\n", path);
    } else if (n > 0 && H5Dread(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, text) < 0) {
        fprintf(stderr, "checkpoint: %s: cannot read /index\n", path);
    } else if (text[n] = '\0', memchr(text, '\0', (size_t)n)) {
        fprintf(stderr, "checkpoint: %s: /index holds a NUL byte\n", path);
    } else {
        rc = index_parse(path, text, rank, m);
    }
    free(text);
    if (sp >= 0) H5Sclose(sp);
    if (ds >= 0) H5Dclose(ds);
    return rc;
}

int ckpt_index_write_h5(hid_t f, const ckpt_entry *ents, int n)
{
    herd_sbuf b = {0};
    ckpt_index_text(ents, n, &b);
    hsize_t d = b.n;
    hid_t sp = H5Screate_simple(1, &d, NULL);
    hid_t ds = H5Dcreate2(f, "index", H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = ds < 0 || (b.n && H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, b.s) < 0) ? -1 : 0;
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp);
    free(b.s);
    return rc;
}

static int ent_name_cmp(const void *a, const void *b)
{
    const ckpt_entry *x = *(const ckpt_entry *const *)a, *y = *(const ckpt_entry *const *)b;
    int c = strcmp(x->kind, y->kind);
    return c ? c : strcmp(x->name, y->name);
}

int ckpt_index_agree(const char *path, const ckpt_manifest *m)
{
    if (m->n_ents < 2) return 0;
    const ckpt_entry **p = malloc((size_t)m->n_ents * sizeof *p);
    if (!p) return -1;
    for (int i = 0; i < m->n_ents; i++) p[i] = &m->ents[i];
    qsort(p, (size_t)m->n_ents, sizeof *p, ent_name_cmp);
    int rc = 0;
    for (int i = 1; i < m->n_ents && !rc; i++) {
        const ckpt_entry *a = p[i - 1], *b = p[i];
        if (ent_name_cmp(&p[i - 1], &p[i])) continue;
        if (a->ndim != b->ndim || a->global_shape[0] != b->global_shape[0] ||
            a->global_shape[1] != b->global_shape[1]) {
            fprintf(stderr, "checkpoint: %s: tensor %s/%s: field 'global_shape' differs between the "
                    "slices of ranks %d and %d\n", path, a->kind, a->name, a->rank, b->rank);
            rc = -1;
        }
    }
    free(p);
    return rc;
}

/* Open shard r of step_dir read-only: a regular file, never through a link. */
hid_t ckpt_shard_open(const char *step_dir, const ckpt_manifest *m, int r, char *p, size_t n)
{
    snprintf(p, n, "%s/%s", step_dir, m->shards[r].file);
    struct stat st;
    if (lstat(p, &st) || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "checkpoint: %s: missing, or not a regular file (a link is never followed)\n", p);
        return -1;
    }
    ckpt_h5_quiet();
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) fprintf(stderr, "checkpoint: %s: cannot open as HDF5 (bad header?)\n", p);
    return f;
}

int ckpt_index_load(const char *step_dir, ckpt_manifest *m)
{
    if (m->version == 1 || m->index_loaded) return 0;   /* format 1: the MANIFEST had it */
    for (int r = 0; r < m->world; r++) {
        char p[8300];
        hid_t f = ckpt_shard_open(step_dir, m, r, p, sizeof p);
        int rc = f < 0 ? -1 : ckpt_index_read_h5(f, p, r, m);
        if (f >= 0) H5Fclose(f);
        if (rc) return -1;
    }
    char where[4200];
    snprintf(where, sizeof where, "%s (the shards' /index)", step_dir);
    if (ckpt_index_agree(where, m)) return -1;
    m->index_loaded = 1;
    return 0;
}

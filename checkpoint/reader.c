/* reader.c — find the newest good checkpoint, verify one, and read any
 * rectangular region of any tensor from whichever shards hold it (resharding:
 * the reading run's layout need not be the writing run's). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <hdf5.h>
#include "checkpoint/internal.h"
#include "checkpoint/safe_file.h"

struct herd_ckpt {
    char dir[4096];
    ckpt_manifest m;   /* m.ents sorted by (kind, name) */
    hid_t *files;      /* [world], opened on first use */
    /* distinct tensors j: their slices are m.ents[tstart[j] .. tstart[j + 1]) */
    int *tstart, n_tensors;
    /* format 2: whose /index is in m.ents; prefer: the shard tried alone first */
    unsigned char *loaded;
    int prefer;
};

static int ent_key_cmp(const ckpt_entry *x, const ckpt_entry *y)
{
    int c = strcmp(x->kind, y->kind);
    return c ? c : strcmp(x->name, y->name);
}

static int ent_qsort_cmp(const void *a, const void *b) { return ent_key_cmp(a, b); }

/* Sort the slices by tensor and find where each tensor's run starts; every
 * slice of one tensor agrees on ndim and global shape. */
static int index_tensors(herd_ckpt *c)
{
    ckpt_manifest *m = &c->m;
    if (m->n_ents > 1) qsort(m->ents, (size_t)m->n_ents, sizeof *m->ents, ent_qsort_cmp);
    free(c->tstart);
    c->tstart = malloc((size_t)(m->n_ents + 1) * sizeof *c->tstart);
    if (!c->tstart) return -1;
    c->n_tensors = 0;
    for (int i = 0; i < m->n_ents; i++) {
        const ckpt_entry *a = &m->ents[i > 0 ? i - 1 : 0], *b = &m->ents[i];
        if (i == 0 || ent_key_cmp(a, b)) {
            c->tstart[c->n_tensors++] = i;
            continue;
        }
        if (a->ndim != b->ndim || a->global_shape[0] != b->global_shape[0] ||
            a->global_shape[1] != b->global_shape[1]) {
            fprintf(stderr, "checkpoint: %s: tensor %s/%s: field 'global_shape' differs between the "
                    "slices of ranks %d and %d\n", c->dir, a->kind, a->name, a->rank, b->rank);
            return -1;
        }
    }
    c->tstart[c->n_tensors] = m->n_ents;
    return 0;
}

static hid_t shard_file(herd_ckpt *c, int r);

/* Format 2: the /index of shard r (kept open: its data is read next). */
static int load_one(herd_ckpt *c, int r)
{
    if (c->m.index_loaded || c->loaded[r]) return 0;
    hid_t f = shard_file(c, r);
    char p[8300];
    snprintf(p, sizeof p, "%s/%s", c->dir, c->m.shards[r].file);
    if (f < 0 || ckpt_index_read_h5(f, p, r, &c->m)) return -1;
    c->loaded[r] = 1;
    return index_tensors(c);
}

/* Every shard's /index; files not already open are closed again, so that a
 * reader of many shards does not hold one descriptor per shard. */
static int load_all(herd_ckpt *c)
{
    if (c->m.index_loaded) return 0;
    for (int r = 0; r < c->m.world; r++) {
        if (c->loaded[r]) continue;
        char p[8300];
        hid_t f = c->files[r] >= 0 ? c->files[r] : ckpt_shard_open(c->dir, &c->m, r, p, sizeof p);
        snprintf(p, sizeof p, "%s/%s", c->dir, c->m.shards[r].file);
        int rc = f < 0 ? -1 : ckpt_index_read_h5(f, p, r, &c->m);
        if (f >= 0 && f != c->files[r]) H5Fclose(f);
        if (rc) return -1;
        c->loaded[r] = 1;
    }
    c->m.index_loaded = 1;
    return index_tensors(c);
}

static int open_lazy(herd_ckpt **out, const char *step_dir)
{
    herd_ckpt *c = calloc(1, sizeof *c);
    if (!c) return -1;
    snprintf(c->dir, sizeof c->dir, "%s", step_dir);
    c->prefer = -1;
    if (ckpt_manifest_read(step_dir, &c->m)) {
        free(c);
        return -1;
    }
    c->files = malloc((size_t)c->m.world * sizeof *c->files);
    c->loaded = calloc((size_t)c->m.world, 1);
    for (int r = 0; c->files && r < c->m.world; r++) c->files[r] = -1;
    if (!c->files || !c->loaded || index_tensors(c)) {
        herd_ckpt_close(c);
        return -1;
    }
    *out = c;
    return 0;
}

int herd_ckpt_open(herd_ckpt **out, const char *step_dir)
{
    *out = NULL;
    if (open_lazy(out, step_dir)) return -1;
    if (load_all(*out)) {
        herd_ckpt_close(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

int herd_ckpt_open_rank(herd_ckpt **out, const char *step_dir, int rank)
{
    *out = NULL;
    if (open_lazy(out, step_dir)) return -1;
    if (rank >= 0 && rank < (*out)->m.world) (*out)->prefer = rank;
    else if (load_all(*out)) {
        herd_ckpt_close(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

void herd_ckpt_close(herd_ckpt *c)
{
    if (!c) return;
    for (int r = 0; r < c->m.world; r++)
        if (c->files && c->files[r] >= 0) H5Fclose(c->files[r]);
    free(c->files);
    free(c->loaded);
    free(c->tstart);
    ckpt_manifest_free(&c->m);
    free(c);
}

int64_t herd_ckpt_step(const herd_ckpt *c) { return c->m.step; }
int herd_ckpt_world(const herd_ckpt *c) { return c->m.world; }
int herd_ckpt_n_tensors(herd_ckpt *c) { return load_all(c) ? 0 : c->n_tensors; }

int herd_ckpt_tensor(herd_ckpt *c, int i, const char **kind, const char **name, int *ndim,
                     int64_t global_shape[2])
{
    if (load_all(c) || i < 0 || i >= c->n_tensors) return -1;
    const ckpt_entry *e = &c->m.ents[c->tstart[i]];
    if (kind) *kind = e->kind;
    if (name) *name = e->name;
    if (ndim) *ndim = e->ndim;
    if (global_shape) { global_shape[0] = e->global_shape[0]; global_shape[1] = e->global_shape[1]; }
    return 0;
}

static hid_t shard_file(herd_ckpt *c, int r)
{
    if (r < 0 || r >= c->m.world) {   /* ckpt_manifest_read checked every rank; kept as a guard */
        fprintf(stderr, "checkpoint: %s: no shard of rank %d (world %d)\n", c->dir, r, c->m.world);
        return -1;
    }
    if (c->files[r] >= 0) return c->files[r];
    char p[8300];
    c->files[r] = ckpt_shard_open(c->dir, &c->m, r, p, sizeof p);
    return c->files[r];
}

/* The tensor kind/name: its index j, or -1 (binary search of the sorted runs). */
static int tensor_find(const herd_ckpt *c, const char *kind, const char *name)
{
    ckpt_entry key;
    snprintf(key.kind, sizeof key.kind, "%s", kind);
    snprintf(key.name, sizeof key.name, "%s", name);
    int lo = 0, hi = c->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int d = ent_key_cmp(&c->m.ents[c->tstart[mid]], &key);
        if (!d) return mid;
        if (d < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* The region from the slices indexed so far. partial: the index may be
 * incomplete, so an unknown tensor or an element no slice holds returns 1
 * (load the rest and retry) instead of failing. */
static int read_region(herd_ckpt *c, const char *kind, const char *name, int ndim, const int64_t o[2],
                       const int64_t s[2], float *out, int partial)
{
    int j = tensor_find(c, kind, name);
    if (j < 0 && partial) return 1;
    if (j < 0) {
        fprintf(stderr, "checkpoint: %s: no tensor %s/%s\n", c->dir, kind, name);
        return -1;
    }
    const ckpt_entry *t = &c->m.ents[c->tstart[j]];
    if (t->ndim != ndim) {
        fprintf(stderr, "checkpoint: %s: tensor %s/%s: field 'ndim' is %d in the checkpoint, %d asked\n",
                c->dir, kind, name, t->ndim, ndim);
        return -1;
    }
    for (int d = 0; d < 2; d++)
        if (s[d] < 1 || o[d] < 0 || o[d] + s[d] > t->global_shape[d]) {
            fprintf(stderr, "checkpoint: %s: tensor %s/%s: region dim %d [%" PRId64 ", %" PRId64
                    ") outside global_shape %" PRId64 "\n", c->dir, kind, name, d, o[d], o[d] + s[d],
                    t->global_shape[d]);
            return -1;
        }
    size_t total = (size_t)(s[0] * s[1]);
    unsigned char *covered = calloc(total, 1);  /* overlapping slices (replicas) are allowed */
    int rc = 0;
    ckpt_h5_quiet();
    for (int i = c->tstart[j]; i < c->tstart[j + 1] && !rc; i++) {
        const ckpt_entry *e = &c->m.ents[i];
        int64_t lo[2], hi[2];
        int empty = 0;
        for (int d = 0; d < 2; d++) {
            lo[d] = o[d] > e->offset[d] ? o[d] : e->offset[d];
            hi[d] = o[d] + s[d] < e->offset[d] + e->shape[d] ? o[d] + s[d] : e->offset[d] + e->shape[d];
            if (hi[d] <= lo[d]) empty = 1;
        }
        if (empty) continue;
        hid_t f = shard_file(c, e->rank);
        if (f < 0) { rc = -1; break; }
        char path[256];
        ckpt_slice_path(e, path, sizeof path);
        hid_t ds = H5Dopen2(f, path, H5P_DEFAULT);
        if (ds < 0) {
            fprintf(stderr, "checkpoint: %s/%s: no dataset %s\n", c->dir, c->m.shards[e->rank].file, path);
            rc = -1;
            break;
        }
        hid_t fsp = H5Dget_space(ds);
        hsize_t fdims[2];
        int fnd = H5Sget_simple_extent_dims(fsp, fdims, NULL);
        if (fnd != e->ndim || (hsize_t)e->shape[0] != fdims[0] || (e->ndim > 1 && (hsize_t)e->shape[1] != fdims[1])) {
            fprintf(stderr, "checkpoint: %s/%s: dataset %s: field 'shape' disagrees with the manifest\n",
                    c->dir, c->m.shards[e->rank].file, path);
            rc = -1;
        } else {
            hsize_t fo[2] = {(hsize_t)(lo[0] - e->offset[0]), (hsize_t)(lo[1] - e->offset[1])};
            hsize_t cnt[2] = {(hsize_t)(hi[0] - lo[0]), (hsize_t)(hi[1] - lo[1])};
            hsize_t mdims[2] = {(hsize_t)s[0], (hsize_t)s[1]};
            hsize_t mo[2] = {(hsize_t)(lo[0] - o[0]), (hsize_t)(lo[1] - o[1])};
            hid_t msp = H5Screate_simple(ndim, mdims, NULL);
            H5Sselect_hyperslab(fsp, H5S_SELECT_SET, fo, NULL, cnt, NULL);
            H5Sselect_hyperslab(msp, H5S_SELECT_SET, mo, NULL, cnt, NULL);
            if (H5Dread(ds, H5T_NATIVE_FLOAT, msp, fsp, H5P_DEFAULT, out) < 0) {
                fprintf(stderr, "checkpoint: %s/%s: reading %s failed\n", c->dir, c->m.shards[e->rank].file, path);
                rc = -1;
            }
            H5Sclose(msp);
            for (int64_t r = lo[0]; r < hi[0]; r++)
                memset(covered + (size_t)((r - o[0]) * s[1] + (lo[1] - o[1])), 1, (size_t)(hi[1] - lo[1]));
        }
        H5Sclose(fsp);
        H5Dclose(ds);
    }
    for (size_t k = 0; k < total && !rc; k++) {
        if (covered[k]) continue;
        rc = partial ? 1 : -1;
        if (!partial)
            fprintf(stderr, "checkpoint: %s: tensor %s/%s: element [%" PRId64 ", %" PRId64
                    "] of the region is in no shard\n", c->dir, kind, name,
                    o[0] + (int64_t)(k / (size_t)s[1]), o[1] + (int64_t)(k % (size_t)s[1]));
    }
    free(covered);
    return rc;
}

int herd_ckpt_read(herd_ckpt *c, const char *kind, const char *name, int ndim,
                   const int64_t offset[2], const int64_t shape[2], float *out)
{
    int64_t o[2] = {offset[0], ndim > 1 ? offset[1] : 0};
    int64_t s[2] = {shape[0], ndim > 1 ? shape[1] : 1};
    /* the preferred shard alone first: a run resumed on the layout that
     * wrote the checkpoint finds all it needs in its own shard, and never
     * reads the other ranks' indexes */
    if (!c->m.index_loaded && c->prefer >= 0) {
        if (load_one(c, c->prefer)) return -1;
        int rc = read_region(c, kind, name, ndim, o, s, out, 1);
        if (rc <= 0) return rc;
    }
    if (load_all(c)) return -1;
    return read_region(c, kind, name, ndim, o, s, out, 0);
}

int herd_ckpt_meta(herd_ckpt *c, int rank, void **meta, size_t *len)
{
    *meta = NULL;
    *len = 0;
    if (rank < 0 || rank >= c->m.world) {
        fprintf(stderr, "checkpoint: %s: no rank %d (world %d)\n", c->dir, rank, c->m.world);
        return -1;
    }
    hid_t f = shard_file(c, rank);
    if (f < 0) return -1;
    if (H5Lexists(f, "meta", H5P_DEFAULT) <= 0) return 0;  /* saved with no metadata */
    hid_t ds = H5Dopen2(f, "meta", H5P_DEFAULT);
    hid_t sp = H5Dget_space(ds);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    *meta = malloc((size_t)(n > 0 ? n : 1));
    int rc = H5Dread(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, *meta) < 0 ? -1 : 0;
    H5Dclose(ds);
    if (rc) {
        fprintf(stderr, "checkpoint: %s/%s: cannot read /meta\n", c->dir, c->m.shards[rank].file);
        free(*meta);
        *meta = NULL;
        return -1;
    }
    *len = (size_t)n;
    return 0;
}

static int attr_i64_read(hid_t f, const char *name, int64_t *v)
{
    if (H5Aexists(f, name) <= 0) return -1;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t sp = H5Aget_space(a);
    int ok = H5Sget_simple_extent_npoints(sp) == 1 && H5Aread(a, H5T_NATIVE_INT64, v) >= 0;
    H5Sclose(sp);
    H5Aclose(a);
    return ok ? 0 : -1;
}

/* The shard says it is rank r of the MANIFEST's world and step. */
static int shard_header_check(hid_t f, const char *p, const ckpt_manifest *m, int r)
{
    static const char *field[3] = {"step", "rank", "world"};
    int64_t want[3] = {m->step, r, m->world};
    for (int i = 0; i < 3; i++) {
        int64_t v;
        if (attr_i64_read(f, field[i], &v)) {
            fprintf(stderr, "checkpoint: %s: attribute '%s' missing or not one integer\n", p, field[i]);
            return -1;
        }
        if (v != want[i]) {
            fprintf(stderr, "checkpoint: %s: attribute '%s' is %" PRId64 ", the MANIFEST says %" PRId64 "\n",
                    p, field[i], v, want[i]);
            return -1;
        }
    }
    return 0;
}

/* The shard holds what its index says it holds: every slice a dataset of
 * the slice's shape. Format 2: the shard's own /index; format 1: the
 * MANIFEST's slice lines of rank r. */
static int shard_slices_check(hid_t f, const char *p, const ckpt_manifest *m, int r)
{
    ckpt_manifest own = {.world = m->world};
    const ckpt_manifest *ix = m;
    if (m->version != 1) {
        if (ckpt_index_read_h5(f, p, r, &own)) return -1;
        ix = &own;
    }
    int rc = 0;
    for (int i = 0; i < ix->n_ents && !rc; i++) {
        const ckpt_entry *e = &ix->ents[i];
        if (e->rank != r) continue;
        char path[256];
        ckpt_slice_path(e, path, sizeof path);
        hid_t ds = H5Lexists(f, e->kind, H5P_DEFAULT) > 0 ? H5Dopen2(f, path, H5P_DEFAULT) : -1;
        hsize_t d[2] = {0, 0};
        int nd = -1;
        if (ds >= 0) {
            hid_t sp = H5Dget_space(ds);
            nd = H5Sget_simple_extent_dims(sp, d, NULL);
            H5Sclose(sp);
            H5Dclose(ds);
        }
        if (nd != e->ndim || d[0] != (hsize_t)e->shape[0] || (nd == 2 && d[1] != (hsize_t)e->shape[1])) {
            fprintf(stderr, "checkpoint: %s: dataset %s missing or of the wrong shape (the index lists it)\n",
                    p, path);
            rc = -1;
        }
    }
    ckpt_manifest_free(&own);
    return rc;
}

/* Verify the shards first, first + stride, ... (a job splits the work) */
static int verify_part(const char *step_dir, int first, int stride)
{
    ckpt_manifest m;
    if (ckpt_manifest_read(step_dir, &m)) return -1;
    int rc = 0;
    ckpt_h5_quiet();
    for (int r = first; r < m.world && !rc; r += stride) {
        char p[8300];
        snprintf(p, sizeof p, "%s/%s", step_dir, m.shards[r].file);
        uint64_t h;
        int64_t size;
        if (herd_xxh64_file(p, &h, &size)) { rc = -1; break; }
        if (size != m.shards[r].size) {
            fprintf(stderr, "checkpoint: %s: field 'size' is %" PRId64 " bytes, the manifest says %" PRId64 "\n",
                    p, size, m.shards[r].size);
            rc = -1;
        } else if (h != m.shards[r].xxh64) {
            fprintf(stderr, "checkpoint: %s: checksum xxh64 %016" PRIx64 " does not match the manifest's %016"
                    PRIx64 " (corrupt shard)\n", p, h, m.shards[r].xxh64);
            rc = -1;
        } else {
            hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
            if (f < 0) {
                fprintf(stderr, "checkpoint: %s: not a readable HDF5 file (bad header)\n", p);
                rc = -1;
            } else if (shard_header_check(f, p, &m, r)) {
                rc = -1;
                H5Fclose(f);
            } else {
                rc = shard_slices_check(f, p, &m, r);
                H5Fclose(f);
            }
        }
    }
    ckpt_manifest_free(&m);
    return rc;
}

int herd_ckpt_verify(const char *step_dir) { return verify_part(step_dir, 0, 1); }

int herd_ckpt_global_view(const char *step_dir)
{
    if (herd_ckpt_verify(step_dir)) return -1;
    ckpt_manifest m;
    if (ckpt_manifest_read(step_dir, &m)) return -1;
    int rc = ckpt_index_load(step_dir, &m) || ckpt_global_view_write(step_dir, &m) ? -1 : 0;
    ckpt_manifest_free(&m);
    return rc;
}

static int step_cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

int ckpt_step_name_parse(const char *name, int64_t *step)
{
    char *end, canon[32];
    if (strncmp(name, "step_", 5) || name[5] < '0' || name[5] > '9') return -1;
    errno = 0;
    long long v = strtoll(name + 5, &end, 10);
    if (errno || *end || v < 0) return -1;
    ckpt_step_name(v, canon, sizeof canon);
    if (strcmp(canon, name)) return -1;   /* step_4, step_004: not the name of any step */
    *step = v;
    return 0;
}

/* Only real directories named exactly step_NNNNNNNN count: a link, a file,
 * or another spelling of a step (step_4) is never read, written or deleted. */
int ckpt_list_steps(const char *dir, int64_t **steps, int *n)
{
    *steps = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "checkpoint: %s: cannot open directory: %s\n", dir, strerror(errno));
        return -1;
    }
    int cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        int64_t s;
        struct stat st;
        if (ckpt_step_name_parse(de->d_name, &s)) continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISDIR(st.st_mode)) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            int64_t *ns = realloc(*steps, (size_t)cap * sizeof **steps);
            if (!ns) { closedir(d); free(*steps); *steps = NULL; *n = 0; return -1; }
            *steps = ns;
        }
        (*steps)[(*n)++] = s;
    }
    closedir(d);
    if (*n) qsort(*steps, (size_t)*n, sizeof **steps, step_cmp_desc);
    return 0;
}

int herd_ckpt_quarantine(const char *step_dir, char *out, size_t n)
{
    char dir[4096], base[256];
    herd_safe_split(step_dir, dir, sizeof dir, base, sizeof base);
    int dfd = herd_safe_dir_open(dir);
    if (dfd < 0) return -1;
    struct stat st;
    if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "checkpoint: %s: not a directory; not moved\n", step_dir);
        close(dfd);
        return -1;
    }
    char name[400];
    int rc = -1;
    for (int k = 0; k < 100 && rc; k++) {
        int len = snprintf(name, sizeof name, "%s.corrupt-%lld-%d", base, (long long)time(NULL), (int)getpid());
        if (k) snprintf(name + len, sizeof name - (size_t)len, "-%d", k);
        /* never over an existing name: renameat would replace an empty directory */
        rc = renameat2(dfd, base, dfd, name, RENAME_NOREPLACE);
        if (rc && errno != EEXIST) break;
    }
    if (rc) fprintf(stderr, "checkpoint: %s: cannot move aside: %s\n", step_dir, strerror(errno));
    else {
        fsync(dfd);
        fprintf(stderr, "checkpoint: %s: failed verification; moved aside to %s/%s (kept, not deleted; "
                "the step will be written again)\n", step_dir, dir, name);
        if (out) snprintf(out, n, "%s/%s", dir, name);
    }
    close(dfd);
    return rc ? -1 : 0;
}

/* The newest step of dir that verifies. In a job, every rank checks its
 * share of each candidate's shards (rank r: shards r, r + world, ...), so no
 * rank reads the whole checkpoint, and an allreduce gives the verdict; rank 0
 * lists the candidates and says which have a MANIFEST (one view of the file
 * system for everybody). quarantine: once a good one is found, move aside
 * every newer one that had a MANIFEST and failed (rank 0), so that training
 * writes those steps again; when none verifies, nothing is moved. */
static int find_latest(MPI_Comm comm, const char *dir, int quarantine, char *out_path, size_t n)
{
    int rank = 0, world = 1;
    if (comm != MPI_COMM_NULL) {
        MPI_Comm_rank(comm, &rank);
        MPI_Comm_size(comm, &world);
    }
    int64_t *steps = NULL, *bad = NULL;
    int ns = 0, nbad = 0;
    if (rank == 0 && ckpt_list_steps(dir, &steps, &ns)) ns = -1;
    if (comm != MPI_COMM_NULL) MPI_Bcast(&ns, 1, MPI_INT, 0, comm);
    if (ns < 0) return -1;
    if (rank) steps = malloc((size_t)(ns ? ns : 1) * sizeof *steps);
    if (comm != MPI_COMM_NULL) MPI_Bcast(steps, ns, MPI_INT64_T, 0, comm);
    bad = malloc((size_t)(ns ? ns : 1) * sizeof *bad);
    int found = -1;
    for (int i = 0; i < ns && found < 0; i++) {
        char name[32], p[4200];
        ckpt_step_name(steps[i], name, sizeof name);
        snprintf(p, sizeof p, "%s/%s", dir, name);
        int has = rank == 0 ? ckpt_dir_has_manifest(p) : 0;
        if (comm != MPI_COMM_NULL) MPI_Bcast(&has, 1, MPI_INT, 0, comm);
        if (!has) {
            if (rank == 0) fprintf(stderr, "checkpoint: %s: no MANIFEST (incomplete), skipped\n", p);
            continue;
        }
        int ok = verify_part(p, rank, world) == 0;
        if (comm != MPI_COMM_NULL) MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, comm);
        if (ok) {
            found = i;
            snprintf(out_path, n, "%s", p);
        } else {
            if (rank == 0)
                fprintf(stderr, "checkpoint: %s: does not verify, falling back to the previous checkpoint\n", p);
            bad[nbad++] = steps[i];
        }
    }
    if (found >= 0 && quarantine && rank == 0)
        for (int i = 0; i < nbad; i++) {
            char name[32], p[4200];
            ckpt_step_name(bad[i], name, sizeof name);
            snprintf(p, sizeof p, "%s/%s", dir, name);
            herd_ckpt_quarantine(p, NULL, 0);   /* a failure leaves it: the step is then not rewritten */
        }
    free(steps);
    free(bad);
    if (found < 0 && rank == 0) fprintf(stderr, "checkpoint: %s: no complete checkpoint that verifies\n", dir);
    return found < 0 ? -1 : 0;
}

int herd_ckpt_find_latest(const char *dir, char *out_path, size_t n)
{
    return find_latest(MPI_COMM_NULL, dir, 0, out_path, n);
}

int herd_ckpt_find_latest_comm(MPI_Comm comm, const char *dir, char *out_path, size_t n)
{
    return find_latest(comm, dir, 0, out_path, n);
}

int herd_ckpt_find_resume(MPI_Comm comm, const char *dir, char *out_path, size_t n)
{
    return find_latest(comm, dir, 1, out_path, n);
}

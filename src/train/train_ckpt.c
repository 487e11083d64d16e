/* train_ckpt.c — see train_ckpt.h. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include "checkpoint/internal.h"
#include "src/train/train_ckpt.h"
#include "monitoring/clock.h"

#define META_MAGIC "HERDCKP1"

/* The metadata blob: this fixed header, then the loader state, then the
 * resolved config as YAML (little-endian, as the machines that run herd). */
typedef struct {
    char     magic[8];
    int64_t  step, tokens_seen, adam_t;
    uint64_t seed;
    int32_t  tp, cp, pp, dp, sp, world;
    uint32_t loader_len, config_len;
} meta_header;

static int64_t row_elems(const herd_tensor *t) { return t->ndim == 2 ? t->shape[1] : 1; }

int herd_train_ckpt_open(herd_train_ckpt *tc, const herd_config *c, const herd_grid *g)
{
    memset(tc, 0, sizeof *tc);
    tc->last_saved = -1;
    if (c->checkpoint.dir[0]) snprintf(tc->dir, sizeof tc->dir, "%s", c->checkpoint.dir);
    else snprintf(tc->dir, sizeof tc->dir, "%s/checkpoints", c->train.out_dir);
    MPI_Comm comm = g->world_size > 1 ? MPI_COMM_WORLD : MPI_COMM_NULL;
    if (herd_ckpt_stopper_create(&tc->stopper, comm)) return -1;
    if (c->checkpoint.every == 0) return 0;
    if (c->checkpoint.every == HERD_CKPT_EVERY_AUTO) {
        char log[HERD_PATH_MAX + 32];
        snprintf(log, sizeof log, "%s/recovery.log", c->train.out_dir); /* slurm/run_stage.sh's */
        tc->ival = malloc(sizeof *tc->ival);
        if (!tc->ival || herd_ckpt_interval_init(tc->ival, c, g->world_size, log)) return -1;
    }
    herd_ckpt_options opt;
    memset(&opt, 0, sizeof opt);
    opt.keep_last = c->checkpoint.keep_last;
    opt.keep_every = c->checkpoint.keep_every;
    /* the background thread takes the snapshot while the next forward and
     * backward run; herd_train_ckpt_snapshot_wait comes before the optimizer
     * changes the shards (measured stall: 0.06-3% of a synchronous write
     * instead of 13% with the copy in save_begin, docs/checkpoint-format.md) */
    opt.defer_copy = c->train.backend == HERD_BACKEND_CPU;
    return herd_ckpt_writer_create(&tc->writer, comm, &opt);
}

int herd_train_ckpt_snapshot_wait(herd_train_ckpt *tc, double *stall_s)
{
    double t0 = herd_now_s();
    int rc = tc->writer ? herd_ckpt_snapshot_wait(tc->writer) : 0;
    *stall_s = herd_now_s() - t0;
    return rc;
}

int herd_train_ckpt_close(herd_train_ckpt *tc)
{
    int rc = 0;
    if (tc->writer) rc = herd_ckpt_writer_destroy(tc->writer);
    herd_ckpt_stopper_destroy(tc->stopper);
    free(tc->stage);
    free(tc->ival);
    memset(tc, 0, sizeof *tc);
    return rc;
}

/* The host copy of a shard buffer: the buffer itself on the CPU backend. */
static float *host_view(herd_train_ckpt *tc, const herd_model *m, const herd_fsdp *f, float *dev,
                        int which)
{
    if (!strcmp(m->be->name, "cpu")) return dev;
    size_t n = (size_t)(f->n_shard ? f->n_shard : 1);
    if (!tc->stage) tc->stage = malloc(3 * n * sizeof(float));
    if (!tc->stage) return NULL;
    float *h = tc->stage + (size_t)which * n;
    m->be->copy_d2h(m->be, h, dev, n * sizeof(float));
    return h;
}

static void slice_of(herd_ckpt_slice *s, const herd_tensor *t, const herd_fsdp *f, int i,
                     const char *kind, const float *base)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", t->name);
    snprintf(s->kind, sizeof s->kind, "%s", kind);
    s->ndim = t->ndim;
    s->global_shape[0] = t->global_shape[0];
    s->global_shape[1] = t->ndim == 2 ? t->global_shape[1] : 0;
    s->offset[0] = t->global_offset[0] + f->row0[i];
    s->offset[1] = t->ndim == 2 ? t->global_offset[1] : 0;
    s->shape[0] = f->rows[i];
    s->shape[1] = t->ndim == 2 ? t->shape[1] : 0;
    s->data = base ? base + f->off[i] : NULL;
}

int herd_train_ckpt_save(herd_train_ckpt *tc, const herd_config *c, const herd_grid *g,
                         herd_model *m, herd_fsdp *f, herd_loader *ld, int64_t step,
                         int64_t tokens, double *stall_s)
{
    double t0 = herd_now_s();
    *stall_s = 0;
    if (!tc->writer) return 0;
    static const char *kinds[3] = {"param", "adam_m", "adam_v"};
    float *src[3] = {host_view(tc, m, f, f->master, 0), host_view(tc, m, f, f->m, 1),
                     host_view(tc, m, f, f->v, 2)};
    if (!src[0] || !src[1] || !src[2]) {
        fprintf(stderr, "herd: checkpoint: out of memory for the host copy\n");
        return -1;
    }
    herd_ckpt_slice *sl = calloc((size_t)m->n_tensors * 3, sizeof *sl);
    int n = 0;
    for (int k = 0; k < 3 && sl; k++)
        for (int i = 0; i < m->n_tensors; i++) {
            const herd_tensor *t = &m->tensors[i];
            if (!t->tp_primary || f->rows[i] == 0) continue; /* one writer per piece */
            slice_of(&sl[n++], t, f, i, kinds[k], src[k]);
        }
    /* metadata: header + loader state + config */
    char *cfg = NULL;
    size_t cfg_len = 0;
    FILE *mf = open_memstream(&cfg, &cfg_len);
    if (mf) {
        herd_config_write(c, mf);
        fclose(mf);
    }
    size_t ld_len = ld ? herd_loader_state_size(ld) : 0; /* post-training: no loader */
    size_t len = sizeof(meta_header) + ld_len + cfg_len;
    char *meta = calloc(1, len);
    int rc = sl && cfg && meta ? 0 : -1;
    if (rc == 0) {
        meta_header h = {.step = step, .tokens_seen = tokens, .adam_t = f->t, .seed = c->train.seed,
                         .tp = g->tp, .cp = g->cp, .pp = g->pp, .dp = g->dp, .sp = m->sp,
                         .world = g->world_size, .loader_len = (uint32_t)ld_len,
                         .config_len = (uint32_t)cfg_len};
        memcpy(h.magic, META_MAGIC, 8);
        memcpy(meta, &h, sizeof h);
        if (ld) rc = herd_loader_get_state(ld, meta + sizeof h, ld_len);
        memcpy(meta + sizeof h + ld_len, cfg, cfg_len);
    }
    if (rc == 0) rc = herd_ckpt_save_begin(tc->writer, tc->dir, step, sl, n, meta, len);
    if (rc == 0) tc->last_saved = step;
    free(sl);
    free(cfg);
    free(meta);
    *stall_s = herd_now_s() - t0;
    return rc;
}

/* Is there a step directory under dir with a MANIFEST (a committed
 * checkpoint, good or damaged)? Directories without one are writes that never
 * committed: recognisably incomplete, ignored, and a fresh run may start.
 * Only real directories named step_NNNNNNNN count (ckpt_list_steps). */
static int any_committed_checkpoint(const char *dir)
{
    int64_t *steps;
    int n, found = 0;
    struct stat st;
    if (stat(dir, &st) || ckpt_list_steps(dir, &steps, &n)) return 0;
    char path[HERD_PATH_MAX + 600];
    for (int i = 0; i < n && !found; i++) {
        char name[32];
        ckpt_step_name(steps[i], name, sizeof name);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        found = ckpt_dir_has_manifest(path);
    }
    free(steps);
    return found;
}

/* Rank 0's meta of a trainer checkpoint: *meta (malloc'ed; free it) and its
 * header, checked (magic, lengths). 0 or -1 with a message naming path. */
static int read_meta(herd_ckpt *ck, const char *path, void **meta, meta_header *h)
{
    size_t len = 0;
    if (herd_ckpt_meta(ck, 0, meta, &len)) return -1;
    if (len < sizeof *h || memcmp(*meta, META_MAGIC, 8)) {
        fprintf(stderr, "herd: %s: meta of rank 0: not a herd trainer checkpoint (magic)\n", path);
        return -1;
    }
    memcpy(h, *meta, sizeof *h);
    if (len != sizeof *h + h->loader_len + h->config_len) {
        fprintf(stderr, "herd: %s: meta of rank 0: length %zu does not match its header\n", path, len);
        return -1;
    }
    return 0;
}

/* The mix is the config's, not the checkpoint's: a new stage (long context,
 * annealing) changes the weights, and the same stage resumed has the same ones.
 * The cursors and credit stay those of the checkpoint. */
static int apply_mix(herd_loader *ld, const herd_config *c)
{
    if (c->data.n_sources == 0) return 0;
    double w[HERD_MAX_SOURCES];
    for (int i = 0; i < c->data.n_sources; i++) w[i] = c->data.sources[i].weight;
    return herd_loader_set_weights(ld, w, c->data.n_sources);
}

int herd_train_ckpt_resume(herd_train_ckpt *tc, const herd_config *c, const herd_grid *g,
                           herd_model *m, herd_fsdp *f, herd_loader *ld, int64_t *step,
                           int64_t *tokens, char *from, size_t from_len)
{
    from[0] = '\0';
    if (!c->checkpoint.resume) return 0;
    int any = any_committed_checkpoint(tc->dir), root = g->world_rank == 0;
    int32_t flag = any;
    if (herd_comm_all_reduce(g->world, &flag, 1, HERD_I32, HERD_MAX)) return -1;
    if (!flag) return 0;
    MPI_Comm comm = g->world_size > 1 ? MPI_COMM_WORLD : MPI_COMM_NULL;
    char path[HERD_PATH_MAX + 64];
    /* newer checkpoints that fail verification are moved aside, so that
     * training writes those steps again */
    if (herd_ckpt_find_resume(comm, tc->dir, path, sizeof path)) {
        if (root)
            fprintf(stderr, "herd: %s: checkpoints exist but none is complete and verifies; not "
                    "starting over them (move them away to start fresh)\n", tc->dir);
        return -1;
    }
    herd_ckpt *ck = NULL;
    /* this rank's own shard's index first: the same layout needs no other */
    int rc = herd_ckpt_open_rank(&ck, path, g->world_rank);
    void *meta = NULL;
    meta_header h;
    if (rc == 0) rc = read_meta(ck, path, &meta, &h);
    if (rc == 0 && ld) rc = herd_loader_set_state(ld, (char *)meta + sizeof h, h.loader_len);
    if (rc == 0 && ld) rc = apply_mix(ld, c);
    /* every tensor piece this rank holds (TP copies too), any layout wrote it */
    static const char *kinds[3] = {"param", "adam_m", "adam_v"};
    float *dst[3] = {f->master, f->m, f->v};
    int cpu = !strcmp(m->be->name, "cpu");
    float *tmp = NULL;
    for (int k = 0; k < 3 && rc == 0; k++)
        for (int i = 0; i < m->n_tensors && rc == 0; i++) {
            const herd_tensor *t = &m->tensors[i];
            if (f->rows[i] == 0) continue;
            herd_ckpt_slice s;
            slice_of(&s, t, f, i, kinds[k], NULL);
            size_t n = (size_t)(f->rows[i] * row_elems(t));
            float *out = dst[k] + f->off[i];
            if (!cpu) out = tmp = realloc(tmp, n * sizeof(float));
            rc = herd_ckpt_read(ck, kinds[k], t->name, t->ndim, s.offset, s.shape, out);
            if (rc == 0 && !cpu) m->be->copy_h2d(m->be, dst[k] + f->off[i], tmp, n * sizeof(float));
        }
    free(tmp);
    free(meta);
    herd_ckpt_close(ck);
    int32_t bad = rc != 0;
    if (herd_comm_all_reduce(g->world, &bad, 1, HERD_I32, HERD_MAX) || bad) return -1;
    if (herd_fsdp_gather_params(f, m)) return -1;
    f->t = h.adam_t;
    *step = h.step;
    *tokens = h.tokens_seen;
    tc->last_saved = h.step;
    snprintf(from, from_len, "%s (step %lld, written by TP%d x CP%d x PP%d x DP%d, %d ranks)", path,
             (long long)h.step, h.tp, h.cp, h.pp, h.dp, h.world);
    return 1;
}

int herd_train_ckpt_read_config(const char *step_dir, herd_config *c)
{
    herd_ckpt *ck = NULL;
    void *meta = NULL;
    int rc = herd_ckpt_open_rank(&ck, step_dir, 0);
    meta_header h;
    if (rc == 0) rc = read_meta(ck, step_dir, &meta, &h);
    if (rc == 0) {
        char origin[4200];
        snprintf(origin, sizeof origin, "%s (saved config)", step_dir);
        herd_config_defaults(c);
        rc = herd_config_load_text(c, origin, (char *)meta + sizeof h + h.loader_len, h.config_len);
    }
    free(meta);
    if (ck) herd_ckpt_close(ck);
    return rc ? -1 : 0;
}

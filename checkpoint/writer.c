/* writer.c — asynchronous checkpoint writer: snapshot copy on the caller's
 * thread, shard write on a background thread, commit by a collective that the
 * caller's thread progresses (MPI_THREAD_FUNNELED is enough).
 *
 * States: IDLE -> WRITING (background thread writes the shard)
 *               -> GATHER  (MPI_Igather of every rank's {ok, size, xxh64} to rank 0)
 *               -> BCAST   (rank 0 wrote model.h5 + MANIFEST; MPI_Ibcast of the outcome)
 *               -> IDLE.
 * Only one checkpoint is in flight: save_begin waits for the previous one. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hdf5.h>
#include "checkpoint/internal.h"
#include "monitoring/clock.h"

enum { W_IDLE, W_WRITING, W_GATHER, W_BCAST };

struct herd_ckpt_writer {
    MPI_Comm comm;               /* our own duplicate: our collectives never meet the trainer's */
    int rank, world;
    herd_ckpt_options opt;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int quit, job_pending, job_done, job_rc;  /* under mu */
    int copy_pending, snap_done;              /* under mu: defer_copy's snapshot */
    double job_write_s;                       /* under mu */

    /* the snapshot of the checkpoint in flight, reused from one checkpoint to the next */
    char step_dir[4096];
    int64_t step;
    ckpt_entry *ents;
    const float **ptrs;
    const float **srcs;          /* defer_copy: the caller's tensors, copied by the thread */
    int n, cap_n;
    float *buf;
    size_t buf_cap;              /* floats */
    unsigned char *meta;
    size_t meta_len, meta_cap;
    ckpt_shard_result res;

    int state;
    MPI_Request req;
    uint64_t mine[3];
    uint64_t *gathered;          /* rank 0: [world][3] */
    int commit_rc;
    double t_local_done, cur_stall, cur_wait;
    herd_ckpt_stats st;
};

static void copy_host(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }

static void *writer_main(void *arg)
{
    herd_ckpt_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->job_pending && !w->quit) pthread_cond_wait(&w->cv, &w->mu);
        if (w->quit) break;
        w->job_pending = 0;
        int copy = w->copy_pending;
        w->copy_pending = 0;
        pthread_mutex_unlock(&w->mu);
        if (copy) {
            for (int i = 0; i < w->n; i++)
                w->opt.copy((float *)w->ptrs[i], w->srcs[i],
                            (size_t)(w->ents[i].shape[0] * w->ents[i].shape[1]) * sizeof(float));
            pthread_mutex_lock(&w->mu);
            w->snap_done = 1;
            pthread_cond_broadcast(&w->cv);
            pthread_mutex_unlock(&w->mu);
        }
        double t0 = herd_now_s();   /* write_s: the file work only, not the deferred copy */
        int rc = ckpt_shard_write(w->step_dir, w->rank, w->world, w->step, w->ents, w->ptrs, w->n,
                                  w->meta, w->meta_len, &w->res);
        double t1 = herd_now_s();
        pthread_mutex_lock(&w->mu);
        w->job_rc = rc;
        w->job_write_s = t1 - t0;
        w->job_done = 1;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int herd_ckpt_writer_create(herd_ckpt_writer **out, MPI_Comm comm, const herd_ckpt_options *opt)
{
    herd_ckpt_writer *w = calloc(1, sizeof *w);
    w->comm = MPI_COMM_NULL;
    w->world = 1;
    if (comm != MPI_COMM_NULL) {
        if (MPI_Comm_dup(comm, &w->comm) != MPI_SUCCESS) {
            fprintf(stderr, "checkpoint: writer: MPI_Comm_dup failed\n");
            free(w);
            return -1;
        }
        MPI_Comm_rank(w->comm, &w->rank);
        MPI_Comm_size(w->comm, &w->world);
    }
    /* Initialise HDF5 here, on the caller's thread: parallel HDF5's library
     * initialisation makes MPI calls (an attribute on MPI_COMM_SELF), which
     * must not come from the writer thread under MPI_THREAD_FUNNELED. */
    H5open();
    if (opt) w->opt = *opt;
    if (!w->opt.copy) w->opt.copy = copy_host;
    if (!w->opt.host_alloc || !w->opt.host_free) {
        w->opt.host_alloc = malloc;
        w->opt.host_free = free;
    }
    w->st.step = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w)) {
        fprintf(stderr, "checkpoint: writer: cannot start the background thread\n");
        if (w->comm != MPI_COMM_NULL) MPI_Comm_free(&w->comm);
        free(w);
        return -1;
    }
    *out = w;
    return 0;
}

int herd_ckpt_writer_destroy(herd_ckpt_writer *w)
{
    if (!w) return 0;
    int rc = herd_ckpt_wait(w);
    pthread_mutex_lock(&w->mu);
    w->quit = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    if (w->comm != MPI_COMM_NULL) MPI_Comm_free(&w->comm);
    free(w->ents); free(w->ptrs); free(w->srcs);
    if (w->buf) w->opt.host_free(w->buf);
    free(w->meta); free(w->gathered);
    free(w);
    return rc;
}

int herd_ckpt_writer_reserve(herd_ckpt_writer *w, size_t bytes)
{
    herd_ckpt_wait(w);   /* the buffer may be in use by the thread */
    size_t n = (bytes + sizeof(float) - 1) / sizeof(float);
    if (n <= w->buf_cap) return 0;
    if (w->buf) w->opt.host_free(w->buf);
    w->buf = w->opt.host_alloc(n * sizeof(float));
    if (!w->buf) {
        fprintf(stderr, "checkpoint: writer: cannot allocate a %zu-byte snapshot buffer\n", bytes);
        w->buf_cap = 0;
        return -1;
    }
    /* not 0: the compiler would turn malloc + memset 0 into calloc, which maps
     * the zero page and leaves the faults for later */
    memset(w->buf, 0x7f, n * sizeof(float));
    w->buf_cap = n;
    return 0;
}

int herd_ckpt_busy(const herd_ckpt_writer *w) { return w->state != W_IDLE; }
void herd_ckpt_get_stats(const herd_ckpt_writer *w, herd_ckpt_stats *st) { *st = w->st; }

/* A slice as the index stores it; 1-D tensors get a unit second dimension. */
static int slice_check(const herd_ckpt_slice *s, int rank, ckpt_entry *e)
{
    memset(e, 0, sizeof *e);
    if (!s->name[0] || strlen(s->name) >= sizeof e->name || strchr(s->name, '/') || strchr(s->name, ' ')) {
        fprintf(stderr, "checkpoint: slice '%.96s': field 'name' empty, too long, or with '/' or ' '\n", s->name);
        return -1;
    }
    if (!s->kind[0] || strlen(s->kind) >= sizeof e->kind || strchr(s->kind, '/') || strchr(s->kind, ' ')) {
        fprintf(stderr, "checkpoint: slice '%s': field 'kind' empty, too long, or with '/' or ' '\n", s->name);
        return -1;
    }
    if (s->ndim != 1 && s->ndim != 2) {
        fprintf(stderr, "checkpoint: slice '%s': field 'ndim' is %d, not 1 or 2\n", s->name, s->ndim);
        return -1;
    }
    snprintf(e->name, sizeof e->name, "%s", s->name);
    snprintf(e->kind, sizeof e->kind, "%s", s->kind);
    e->ndim = s->ndim;
    e->rank = rank;
    for (int d = 0; d < 2; d++) {
        int used = d < s->ndim;
        e->global_shape[d] = used ? s->global_shape[d] : 1;
        e->offset[d] = used ? s->offset[d] : 0;
        e->shape[d] = used ? s->shape[d] : 1;
        if (e->shape[d] < 1 || e->offset[d] < 0 || e->offset[d] + e->shape[d] > e->global_shape[d]) {
            fprintf(stderr, "checkpoint: slice '%s' (%s): field 'offset'/'shape' dim %d: [%" PRId64
                    ", %" PRId64 ") is not inside global_shape %" PRId64 "\n", s->name, s->kind, d,
                    e->offset[d], e->offset[d] + e->shape[d], e->global_shape[d]);
            return -1;
        }
    }
    if (!s->data) {
        fprintf(stderr, "checkpoint: slice '%s': field 'data' is NULL\n", s->name);
        return -1;
    }
    return 0;
}

/* 1: the step has no committed checkpoint (or had one that fails
 * verification: moved aside, so that this save writes the step again);
 * 0: a committed checkpoint that verifies is there (never rewritten);
 * -1: error. Rank 0 only; the rare path of a run that reaches a step it
 * already saved, so the full verification costs little. */
static int step_is_fresh(const char *step_dir)
{
    if (!ckpt_dir_has_manifest(step_dir)) return 1;
    if (herd_ckpt_verify(step_dir) == 0) return 0;
    if (herd_ckpt_quarantine(step_dir, NULL, 0) || ckpt_mkdir_p(step_dir)) return -1;
    return 1;
}

static void log_commit(herd_ckpt_writer *w)
{
    if (w->opt.quiet || w->rank != 0) return;
    double mb = (double)w->st.bytes / 1e6;
    fprintf(stderr, "checkpoint: step %" PRId64 " committed (%s): rank 0 shard %.1f MB, stall %.4f s "
            "(waiting for the previous %.4f s), write %.3f s (%.0f MB/s), commit %.3f s (rank 0: %d "
            "shard indexes %.4f s, global view %.4f s, MANIFEST %.4f s)\n",
            w->st.step, w->step_dir, mb, w->st.stall_s, w->st.wait_prev_s, w->st.write_s,
            w->st.write_s > 0 ? mb / w->st.write_s : 0.0, w->st.commit_s, w->world, w->st.index_s,
            w->st.view_s, w->st.manifest_s);
}

/* rank 0, every shard done: global view, MANIFEST (the commit point), retention.
 * The global view needs every slice: rank 0 reads the shards' /index from
 * disk here rather than receiving them at save_begin, so the MANIFEST and
 * rank 0's memory stay O(world), not O(slices of the job). */
static int commit(herd_ckpt_writer *w, const uint64_t *all)
{
    ckpt_manifest m = {.step = w->step, .world = w->world, .version = 2};
    m.shards = calloc((size_t)w->world, sizeof *m.shards);
    int rc = 0;
    for (int r = 0; r < w->world; r++) {
        if (!all[3 * r]) {
            fprintf(stderr, "checkpoint: %s: shard of rank %d failed; step %" PRId64 " not committed\n",
                    w->step_dir, r, w->step);
            rc = -1;
        }
        ckpt_shard_name(r, m.shards[r].file, sizeof m.shards[r].file);
        m.shards[r].size = (int64_t)all[3 * r + 1];
        m.shards[r].xxh64 = all[3 * r + 2];
    }
    if (!rc) ckpt_step_dir_clean(w->step_dir, w->world);   /* debris only; failure is not fatal */
    int view_max = w->opt.view_max_world ? w->opt.view_max_world : HERD_CKPT_VIEW_MAX_WORLD;
    int view = view_max > 0 && w->world <= view_max;
    double t0 = herd_now_s();
    if (!rc && view) rc = ckpt_index_load(w->step_dir, &m);
    double t1 = herd_now_s();
    if (!rc && view) rc = ckpt_global_view_write(w->step_dir, &m);
    if (!rc && !view && w->st.n_committed == 0 && !w->opt.quiet)
        fprintf(stderr, "checkpoint: %s: no global view model.h5 at world %d (above view_max_world %d); "
                "`herd ckpt view STEP_DIR` writes it\n", w->step_dir, w->world, view_max);
    double t2 = herd_now_s();
    if (!rc) ckpt_fault_point("before_manifest");
    if (!rc) rc = ckpt_manifest_write(w->step_dir, &m);
    w->st.index_s = t1 - t0;
    w->st.view_s = t2 - t1;
    w->st.manifest_s = herd_now_s() - t2;
    ckpt_manifest_free(&m);
    if (!rc && (w->opt.keep_last > 0 || w->opt.keep_every > 0)) {
        char parent[4200];
        ckpt_parent_dir(w->step_dir, parent, sizeof parent);
        /* the step just committed is the newest known to verify */
        if (ckpt_retain(parent, w->opt.keep_last, w->opt.keep_every, w->step))
            fprintf(stderr, "checkpoint: %s: retention failed (the new checkpoint is committed)\n", parent);
    }
    return rc;
}

static int finish(herd_ckpt_writer *w)
{
    w->state = W_IDLE;
    if (w->commit_rc == 0) {
        w->st.step = w->step;
        w->st.stall_s = w->cur_stall;
        w->st.wait_prev_s = w->cur_wait;
        w->st.commit_s = herd_now_s() - w->t_local_done;
        w->st.bytes = w->res.size;
        w->st.n_committed++;
        log_commit(w);
    }
    return w->commit_rc;
}

/* One step of the state machine; blocking: wait instead of test. */
static int progress(herd_ckpt_writer *w, int blocking)
{
    int flag;
    switch (w->state) {
    case W_IDLE:
        return 0;
    case W_WRITING:
        pthread_mutex_lock(&w->mu);
        while (blocking && !w->job_done) pthread_cond_wait(&w->cv, &w->mu);
        int done = w->job_done;
        if (done) {
            w->job_done = 0;
            w->st.write_s = w->job_write_s;
            w->mine[0] = w->job_rc == 0;
        }
        pthread_mutex_unlock(&w->mu);
        if (!done) return 0;
        w->t_local_done = herd_now_s();
        w->mine[1] = (uint64_t)w->res.size;
        w->mine[2] = w->res.xxh64;
        if (w->comm == MPI_COMM_NULL) {
            w->commit_rc = commit(w, w->mine);
            return finish(w);
        }
        MPI_Igather(w->mine, 3, MPI_UINT64_T, w->gathered, 3, MPI_UINT64_T, 0, w->comm, &w->req);
        w->state = W_GATHER;
        /* fall through */
    case W_GATHER:
        if (blocking) MPI_Wait(&w->req, MPI_STATUS_IGNORE);
        else if (MPI_Test(&w->req, &flag, MPI_STATUS_IGNORE), !flag) return 0;
        if (w->rank == 0) w->commit_rc = commit(w, w->gathered);
        MPI_Ibcast(&w->commit_rc, 1, MPI_INT, 0, w->comm, &w->req);
        w->state = W_BCAST;
        /* fall through */
    case W_BCAST:
        if (blocking) MPI_Wait(&w->req, MPI_STATUS_IGNORE);
        else if (MPI_Test(&w->req, &flag, MPI_STATUS_IGNORE), !flag) return 0;
        return finish(w);
    }
    return 0;
}

int herd_ckpt_poll(herd_ckpt_writer *w) { return progress(w, 0); }

int herd_ckpt_snapshot_wait(herd_ckpt_writer *w)
{
    if (w->state != W_WRITING) return 0;   /* no copy can be pending outside WRITING */
    double t0 = herd_now_s();
    pthread_mutex_lock(&w->mu);
    while (!w->snap_done && !w->job_done) pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    w->cur_stall += herd_now_s() - t0;
    return 0;
}

int herd_ckpt_wait(herd_ckpt_writer *w)
{
    int rc = 0;
    while (w->state != W_IDLE) rc = progress(w, 1);
    return rc;
}

int ckpt_save_dir_begin(herd_ckpt_writer *w, const char *step_dir, int64_t step,
                        const herd_ckpt_slice *s, int n, const void *meta, size_t meta_len)
{
    double t0 = herd_now_s();
    int prev_rc = herd_ckpt_wait(w);
    (void)prev_rc;  /* a failed previous checkpoint was reported; this one still goes ahead */
    double t_wait = herd_now_s() - t0;

    if (n > w->cap_n) {
        w->cap_n = n;
        w->ents = realloc(w->ents, (size_t)n * sizeof *w->ents);
        w->ptrs = realloc(w->ptrs, (size_t)n * sizeof *w->ptrs);
        w->srcs = realloc(w->srcs, (size_t)n * sizeof *w->srcs);
    }
    int ok = snprintf(w->step_dir, sizeof w->step_dir, "%s", step_dir) < (int)sizeof w->step_dir;
    if (!ok) fprintf(stderr, "checkpoint: %s: path too long\n", step_dir);
    size_t total = 0;
    for (int i = 0; i < n && ok; i++) {
        if (slice_check(&s[i], w->rank, &w->ents[i])) ok = 0;
        else total += (size_t)(w->ents[i].shape[0] * w->ents[i].shape[1]);
    }
    if (ok && ckpt_mkdir_p(step_dir)) ok = 0;
    if (ok && !ckpt_is_real_dir(step_dir)) {
        fprintf(stderr, "checkpoint: %s: is a symbolic link or not a directory; step %" PRId64
                " not written through it\n", step_dir, step);
        ok = 0;
    }
    /* never rewrite a committed checkpoint in place: rank 0 decides, everybody follows */
    int fresh = w->rank == 0 && ok ? step_is_fresh(step_dir) : 1;
    if (fresh < 0) ok = 0, fresh = 1;
    int flags[2] = {ok, fresh};
    if (w->comm != MPI_COMM_NULL) MPI_Allreduce(MPI_IN_PLACE, flags, 2, MPI_INT, MPI_MIN, w->comm);
    if (!flags[0]) {
        if (ok) fprintf(stderr, "checkpoint: %s: step %" PRId64 " not saved: another rank refused its slices\n",
                        step_dir, step);
        return -1;
    }
    if (!flags[1]) {
        if (w->rank == 0)
            fprintf(stderr, "checkpoint: %s: step %" PRId64 " is already committed and verifies; not rewritten\n",
                    step_dir, step);
        return 0;
    }

    if (w->comm != MPI_COMM_NULL && w->rank == 0 && !w->gathered)
        w->gathered = malloc((size_t)w->world * 3 * sizeof *w->gathered);

    /* the snapshot: one buffer, kept between checkpoints so that its pages are
     * faulted in once, not at every checkpoint */
    if (total > w->buf_cap) {
        if (w->buf) w->opt.host_free(w->buf);
        w->buf = w->opt.host_alloc(total * sizeof(float));
        w->buf_cap = w->buf ? total : 0;
        if (!w->buf) {
            fprintf(stderr, "checkpoint: %s: cannot allocate the %zu-byte snapshot\n", step_dir, total * sizeof(float));
            return -1;
        }
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t k = (size_t)(w->ents[i].shape[0] * w->ents[i].shape[1]);
        if (!w->opt.defer_copy) w->opt.copy(w->buf + off, s[i].data, k * sizeof(float));
        w->ptrs[i] = w->buf + off;
        w->srcs[i] = s[i].data;
        off += k;
    }
    if (meta_len > w->meta_cap) {
        free(w->meta);
        w->meta = malloc(meta_len);
        w->meta_cap = meta_len;
    }
    if (meta_len) memcpy(w->meta, meta, meta_len);
    w->meta_len = meta_len;
    w->n = n;
    w->step = step;
    w->commit_rc = 0;

    pthread_mutex_lock(&w->mu);
    w->job_pending = 1;
    w->job_done = 0;
    w->copy_pending = w->opt.defer_copy;
    w->snap_done = !w->opt.defer_copy;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    w->state = W_WRITING;
    w->cur_wait = t_wait;
    w->cur_stall = herd_now_s() - t0;
    return 0;
}

int herd_ckpt_save_begin(herd_ckpt_writer *w, const char *dir, int64_t step,
                         const herd_ckpt_slice *s, int n, const void *meta, size_t meta_len)
{
    char name[32], path[4200];
    ckpt_step_name(step, name, sizeof name);
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
        fprintf(stderr, "checkpoint: %s: path too long\n", dir);
        return -1;
    }
    return ckpt_save_dir_begin(w, path, step, s, n, meta, meta_len);
}

/* ckpt.h — asynchronous, sharded, layout-agnostic HDF5 checkpoints.
 *
 * A checkpoint is the directory DIR/step_NNNNNNNN/ holding one HDF5 shard per
 * rank (shard_RRRRR.h5), a global-view file model.h5 (HDF5 virtual datasets
 * that show every whole tensor by name) and MANIFEST, written last: without a
 * MANIFEST that verifies, the directory does not count. docs/checkpoint-format.md
 * is the format.
 *
 * The trainer hands each rank's state as rectangular slices of global tensors
 * (whatever its TP/CP/PP/DP layout is); a later run asks for any rectangular
 * region of any tensor and gets it assembled from whichever shards hold it.
 *
 * Threads: the writer's background thread does file I/O (HDF5 included) only;
 * every MPI call is made from the thread that calls save_begin/poll/wait, so
 * MPI_THREAD_FUNNELED suffices. Do not call HDF5 from another thread of the
 * process while a checkpoint is in flight (HDF5 is not thread-safe) — this
 * includes the reader functions below: read at start-up, or after
 * herd_ckpt_wait.
 *
 * Every function returns 0 or -1 with a message on stderr naming the file and
 * the field (the project's status convention).
 */
#ifndef HERD_CKPT_H
#define HERD_CKPT_H

#include <stddef.h>
#include <stdint.h>
#include <mpi.h>

/* One rectangular slice of a global tensor held by this rank. 1-D tensors
 * use index 0 only (shape[1], offset[1] ignored). */
typedef struct {
    char         name[96];        /* HF Llama name, "model.layers.0.self_attn.q_proj.weight" */
    char         kind[16];        /* group: "param", "master", "adam_m", "adam_v", ... */
    int          ndim;            /* 1 or 2 */
    int64_t      global_shape[2]; /* the whole tensor */
    int64_t      offset[2];       /* of this slice in the whole tensor */
    int64_t      shape[2];        /* of this slice */
    const float *data;            /* host, row-major [shape[0], shape[1]] */
} herd_ckpt_slice;

typedef struct {
    int keep_last;   /* keep the newest K complete checkpoints (0: keep all) */
    int keep_every;  /* and every checkpoint whose step is a multiple of M (0: none) */
    int quiet;       /* 1: no per-checkpoint log line on stderr (rank 0 logs otherwise) */
    int defer_copy;  /* 1: the background thread takes the snapshot too; the caller
                        must call herd_ckpt_snapshot_wait before it next changes a
                        saved tensor (e.g. before the optimizer step, so that the
                        copy overlaps forward and backward) */
    /* The global view model.h5 maps every slice of the job: rank 0 reads
     * every shard's index to write it, so its cost grows with the slices of
     * the whole job. Written when world <= view_max_world (0: 1024; -1:
     * never); above, `herd ckpt view STEP_DIR` (herd_ckpt_global_view)
     * writes it afterwards, off the training job's time. */
    int view_max_world;
    /* GPU: slices' data may live on the device when `copy` moves it to the
     * host (e.g. the backend's copy_d2h; with defer_copy it is called from the
     * writer's thread), and the snapshot may be pinned host memory from
     * host_alloc/host_free (e.g. cudaHostAlloc). NULL: memcpy, malloc, free. */
    void  (*copy)(void *dst_host, const void *src, size_t bytes);
    void *(*host_alloc)(size_t bytes);
    void  (*host_free)(void *p);
} herd_ckpt_options;

/* Timings of the last committed checkpoint (and of the one in flight). */
typedef struct {
    int64_t step;          /* of the last committed checkpoint, -1 before any */
    double  stall_s;       /* time the caller was blocked: save_begin (waiting for the
                              previous checkpoint + copying the snapshot) plus, with
                              defer_copy, herd_ckpt_snapshot_wait */
    double  wait_prev_s;   /* part of stall_s spent waiting for the previous one */
    double  write_s;       /* background: HDF5 write + checksum + fsync + rename of this rank's shard */
    double  commit_s;      /* from local shard done to manifest committed (collective + rank 0 commit) */
    double  index_s;       /* rank 0, in commit_s: reading the shards' slice indexes */
    double  view_s;        /* rank 0, in commit_s: writing the global view model.h5 */
    double  manifest_s;    /* rank 0, in commit_s: writing and syncing MANIFEST */
    int64_t bytes;         /* this rank's shard file size */
    int     n_committed;   /* checkpoints committed by this writer */
} herd_ckpt_stats;

typedef struct herd_ckpt_writer herd_ckpt_writer;

/* comm: the ranks that write this checkpoint together (MPI_COMM_NULL: a single
 * process, no MPI calls at all). opt may be NULL (keep everything). */
int herd_ckpt_writer_create(herd_ckpt_writer **out, MPI_Comm comm, const herd_ckpt_options *opt);
/* Allocate and touch the snapshot buffer for `bytes` of slices now (at
 * start-up), so that the first checkpoint's stall does not pay the page
 * faults of a fresh buffer (measured: 0.36 s for 256 MB here). Optional. */
int herd_ckpt_writer_reserve(herd_ckpt_writer *w, size_t bytes);
/* Waits for the checkpoint in flight (it commits), then frees. Collective. */
int herd_ckpt_writer_destroy(herd_ckpt_writer *w);

/* Start checkpoint `step` under dir (OUT/checkpoints, created if missing).
 * Collective over the writer's communicator. Waits for the previous checkpoint
 * if it is still in flight, copies the n slices and meta (an opaque blob: step,
 * tokens, data-loader state, RNG, config, layout — serialised by the trainer)
 * into a reused snapshot buffer, and returns; the background thread writes the
 * shard. The caller may change its tensors as soon as this returns (with
 * defer_copy: once herd_ckpt_snapshot_wait returned; the slice data must stay
 * valid until then). */
int herd_ckpt_save_begin(herd_ckpt_writer *w, const char *dir, int64_t step,
                         const herd_ckpt_slice *s, int n, const void *meta, size_t meta_len);
/* With defer_copy: block until the snapshot of the checkpoint in flight is
 * taken (its time counts in the stall). Without: returns at once. */
int herd_ckpt_snapshot_wait(herd_ckpt_writer *w);
/* Progress the commit; call once per step from the main thread, on EVERY rank
 * of the communicator (the commit's collectives start from here: a rank that
 * stops polling holds the others' herd_ckpt_wait). Never blocks.
 * Returns 0 (nothing in flight, or still in flight, or just committed) or -1
 * when the checkpoint failed on some rank (it is then not committed). */
int herd_ckpt_poll(herd_ckpt_writer *w);
/* Block until the checkpoint in flight is committed (or failed: -1). */
int herd_ckpt_wait(herd_ckpt_writer *w);
/* 1 while a checkpoint is in flight. */
int herd_ckpt_busy(const herd_ckpt_writer *w);
void herd_ckpt_get_stats(const herd_ckpt_writer *w, herd_ckpt_stats *st);

/* ---- reading ---- */
typedef struct herd_ckpt herd_ckpt;

/* The newest checkpoint under dir that is complete and verifies (every shard's
 * size and XXH64 checksum, the manifest's own checksum). A bad one is reported
 * on stderr, naming the shard, and the previous one is tried. Writes its
 * directory to out_path. -1 when none (message says why). */
int herd_ckpt_find_latest(const char *dir, char *out_path, size_t n);
/* The same, for a whole job: every rank verifies its share of the shards
 * (rank r: shards r, r + world, ...: each shard read once, by one rank), an
 * allreduce decides, all ranks get the same answer. Collective. */
int herd_ckpt_find_latest_comm(MPI_Comm comm, const char *dir, char *out_path, size_t n);
/* For resuming a run: herd_ckpt_find_latest(_comm) (comm may be
 * MPI_COMM_NULL), and once a good checkpoint is found every newer one that
 * has a MANIFEST but fails verification is moved aside (quarantined, never
 * deleted), so that training writes those steps again. When none verifies,
 * nothing is moved. Collective. */
int herd_ckpt_find_resume(MPI_Comm comm, const char *dir, char *out_path, size_t n);
/* Move a step directory aside: renamed STEP.corrupt-TIME-PID in its
 * directory (never over an existing name); out (may be NULL) gets the new
 * path. */
int herd_ckpt_quarantine(const char *step_dir, char *out, size_t n);
/* Verify one step directory: 0 good, -1 with a message naming the bad file. */
int herd_ckpt_verify(const char *step_dir);

/* Open a committed checkpoint: parses and checks its MANIFEST and reads every
 * shard's slice index (the small /index dataset of each shard; a format-1
 * MANIFEST carries the index itself). Shard data is read lazily. */
int herd_ckpt_open(herd_ckpt **out, const char *step_dir);
/* The same for rank `rank` of a job that resumes: the slice index of shard
 * `rank` only is read at first, and herd_ckpt_read tries it alone before
 * reading every other shard's index. A job resumed on the layout that wrote
 * the checkpoint thus reads one index per rank, not world indexes per rank
 * (world^2 file opens over the job). rank outside the writer's world: as
 * herd_ckpt_open. */
int herd_ckpt_open_rank(herd_ckpt **out, const char *step_dir, int rank);
void herd_ckpt_close(herd_ckpt *c);
/* Read any region [offset, offset+shape) of tensor kind/name into out
 * (row-major [shape[0], shape[1]]), assembled from whichever shards hold it:
 * this is resharding. -1 if the tensor is unknown, ndim or global shape
 * disagree, or part of the region is in no shard. */
int herd_ckpt_read(herd_ckpt *c, const char *kind, const char *name, int ndim,
                   const int64_t offset[2], const int64_t shape[2], float *out);
/* The step, the world size that wrote it. */
int64_t herd_ckpt_step(const herd_ckpt *c);
int herd_ckpt_world(const herd_ckpt *c);
/* The metadata blob saved by `rank` (malloc'd; caller frees). */
int herd_ckpt_meta(herd_ckpt *c, int rank, void **meta, size_t *len);

/* The distinct tensors of a checkpoint: index i in [0, n_tensors). */
int herd_ckpt_n_tensors(herd_ckpt *c);   /* reads every shard's index if not yet read */
int herd_ckpt_tensor(herd_ckpt *c, int i, const char **kind, const char **name,
                     int *ndim, int64_t global_shape[2]);

/* ---- stopping on a signal (Slurm: --signal=B:USR1@120, scancel, preemption) ----
 * Installs SIGUSR1 and SIGTERM handlers that only set a flag. Every step each
 * rank calls herd_ckpt_stopper_check: it starts a non-blocking MAX-allreduce
 * of the flag and completes the one started at the previous call, so every
 * rank learns "someone was signalled" at the same step, one step late, without
 * blocking. On 1 the trainer saves a checkpoint at this step, waits for the
 * commit, and exits with HERD_EXIT_REQUEUE (monitoring/exitcodes.h). */
typedef struct herd_ckpt_stopper herd_ckpt_stopper;
int herd_ckpt_stopper_create(herd_ckpt_stopper **out, MPI_Comm comm); /* comm: MPI_COMM_NULL for one process */
int herd_ckpt_stopper_check(herd_ckpt_stopper *s);   /* 1: every rank stops after this step */
int herd_ckpt_stopper_signal(const herd_ckpt_stopper *s); /* the signal received here (0: none) */
void herd_ckpt_stopper_destroy(herd_ckpt_stopper *s);

/* ---- maintenance ---- */
/* Apply retention to dir: keep the newest keep_last complete checkpoints and
 * those whose step is a multiple of keep_every; never delete the newest
 * one that verifies (found by verifying from the newest down) nor anything
 * newer; remove incomplete directories older than it. Only real directories
 * named step_NNNNNNNN are ever deleted (never a link, never another name). */
int herd_ckpt_retain(const char *dir, int keep_last, int keep_every);

/* Element-wise mean of every tensor of kind `kind` (NULL: every kind) over n
 * checkpoints with identical tensor sets and shapes, written as a one-shard
 * checkpoint at out_step_dir (committed with a MANIFEST like any other). The
 * meta blob of the first input is carried over. */
int herd_ckpt_average(const char *out_step_dir, const char *const *in_step_dirs, int n,
                      const char *kind);

/* Write (or replace) the global view model.h5 of a committed checkpoint that
 * verifies, from its shards' slice indexes. */
int herd_ckpt_global_view(const char *step_dir);

/* Every tensor of kind `kind` (NULL: "param"), whole, into one file with the
 * usual Llama tensor names: safetensors when out_path ends in .safetensors,
 * HDF5 (one dataset per tensor at the root) when it ends in .h5 or .hdf5.
 * Crash-safe (temp name, fsync, rename). */
int herd_ckpt_export(const char *step_dir, const char *out_path, const char *kind);

/* XXH64 of a buffer and of a whole file (the shard checksum). */
uint64_t herd_xxh64(const void *p, size_t len, uint64_t seed);
int herd_xxh64_file(const char *path, uint64_t *hash, int64_t *size);

#endif

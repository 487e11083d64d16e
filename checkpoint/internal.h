/* internal.h — what the files of checkpoint/ share; not a public header. */
#ifndef HERD_CKPT_INTERNAL_H
#define HERD_CKPT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <hdf5.h>
#include "checkpoint/ckpt.h"
#include "checkpoint/sbuf.h"
#include "checkpoint/safetensors.h"

/* What this library writes; it still reads format 1 (the slice index in the
 * MANIFEST) so that checkpoints saved before the index moved keep working. */
#define HERD_CKPT_FORMAT "herd-checkpoint 2"
#define HERD_CKPT_FORMAT_V1 "herd-checkpoint 1"
#define HERD_CKPT_MANIFEST "MANIFEST"
/* the default of herd_ckpt_options.view_max_world */
#define HERD_CKPT_VIEW_MAX_WORLD 1024

/* One slice in the index: which rank's shard holds which rectangle. */
typedef struct {
    char    name[96];
    char    kind[16];
    int32_t ndim;
    int32_t rank;
    int64_t global_shape[2];
    int64_t offset[2];
    int64_t shape[2];
} ckpt_entry;

typedef struct {
    char     file[32];   /* shard_RRRRR.h5, relative to the step directory */
    int64_t  size;
    uint64_t xxh64;
} ckpt_shard;

typedef struct {
    int64_t     step;
    int         world;
    int         version;       /* 1 or 2: the MANIFEST's first line */
    ckpt_shard *shards;        /* [world] */
    /* The slice index of every rank: format 1 from the MANIFEST, format 2
     * empty until ckpt_index_load reads it from the shards. */
    ckpt_entry *ents;          /* [n_ents] */
    int         n_ents, cap_ents;
    int         index_loaded;
} ckpt_manifest;

/* manifest.c */
/* A whole decimal integer in [lo, hi] (the MANIFEST's and the /index's fields): 0 or -1. */
int  ckpt_parse_i64(const char *t, int64_t lo, int64_t hi, int64_t *v);
int  ckpt_manifest_write(const char *step_dir, const ckpt_manifest *m);
int  ckpt_manifest_read(const char *step_dir, ckpt_manifest *m);
void ckpt_manifest_free(ckpt_manifest *m);
int  ckpt_fsync_path(const char *path);       /* fsync a file or directory by name */
int  ckpt_mkdir_p(const char *path);
int  ckpt_parent_dir(const char *path, char *out, size_t n);
void ckpt_shard_name(int rank, char *out, size_t n);
void ckpt_step_name(int64_t step, char *out, size_t n);
int  ckpt_dir_has_manifest(const char *step_dir);   /* MANIFEST is a regular file */
int  ckpt_is_real_dir(const char *path);            /* a directory, not a link to one */
/* one path component: not empty, shorter than max, no '/', not "." or ".." */
int  ckpt_plain_name(const char *name, size_t max);
/* step_NNNNNNNN exactly as ckpt_step_name writes it: *step gets N */
int  ckpt_step_name_parse(const char *name, int64_t *step);

/* index.c: the slice index (format 2: /index of each shard, one text line per
 * slice "KIND NDIM G0 G1 O0 O1 S0 S1 NAME"; format 1: MANIFEST slice lines) */
void  ckpt_index_text(const ckpt_entry *ents, int n, herd_sbuf *b);
/* tok[0..8]: KIND NDIM G0 G1 O0 O1 S0 S1 NAME; *field names what is wrong */
int   ckpt_slice_parse(char **tok, int rank, ckpt_entry *e, const char **field);
int   ckpt_entries_push(ckpt_manifest *m, const ckpt_entry *e);
int   ckpt_index_write_h5(hid_t f, const ckpt_entry *ents, int n);
/* Append the /index of shard file f (rank's) to m->ents. */
int   ckpt_index_read_h5(hid_t f, const char *path, int rank, ckpt_manifest *m);
/* Every slice of one tensor agrees on ndim and global shape. */
int   ckpt_index_agree(const char *path, const ckpt_manifest *m);
/* Format 2: read every shard's /index into m->ents (format 1: nothing to do). */
int   ckpt_index_load(const char *step_dir, ckpt_manifest *m);
/* Shard r of step_dir opened read-only (regular file, no link); p gets its path. */
hid_t ckpt_shard_open(const char *step_dir, const ckpt_manifest *m, int r, char *p, size_t n);

/* shard_h5.c: every HDF5 call of the writer side */
typedef struct {
    int64_t size;
    uint64_t xxh64;
} ckpt_shard_result;
/* Write shard `rank` of step_dir: temp name, XXH64 while the kernel writes
 * back, fsync, rename, fsync dir. */
int ckpt_shard_write(const char *step_dir, int rank, int world, int64_t step,
                     const ckpt_entry *ents, const float *const *data, int n,
                     const void *meta, size_t meta_len, ckpt_shard_result *res);
/* The global view: one virtual dataset per tensor over the shards' slices. */
int ckpt_global_view_write(const char *step_dir, const ckpt_manifest *m);
void ckpt_h5_quiet(void);

/* export.c: every tensor of `kind` of an open checkpoint, whole, as F32 in
 * malloc'ed buffers (names owned by c); freed with ckpt_export_free. */
int ckpt_export_gather(herd_ckpt *c, const char *step_dir, const char *kind,
                       herd_st_tensor **out, int *n_out);
void ckpt_export_free(herd_st_tensor *t, int n);
/* Dataset path of a slice inside its shard: /kind/name/OFF0_OFF1 */
void ckpt_slice_path(const ckpt_entry *e, char *out, size_t n);

/* xxh64.c streaming state */
typedef struct {
    uint64_t v[4];
    uint64_t total;
    unsigned char buf[32];
    size_t   buflen;
    uint64_t seed;
} ckpt_xxh64_state;
void     ckpt_xxh64_init(ckpt_xxh64_state *s, uint64_t seed);
void     ckpt_xxh64_update(ckpt_xxh64_state *s, const void *p, size_t len);
uint64_t ckpt_xxh64_digest(const ckpt_xxh64_state *s);
/* XXH64 and size of the whole file open on fd (read with pread from 0) */
int      ckpt_xxh64_fd(int fd, const char *path, uint64_t *hash, int64_t *size);

/* shard_h5.c: the test hook (HERD_CKPT_PAUSE_AT) */
void ckpt_fault_point(const char *point);
/* reader.c: steps of the step_NNNNNNNN directories under dir, newest first */
int ckpt_list_steps(const char *dir, int64_t **steps, int *n);
/* retention.c: retention knowing that step newest_good verifies (-1: find it
 * by verifying from the newest down) */
int ckpt_retain(const char *dir, int keep_last, int keep_every, int64_t newest_good);
/* retention.c: remove a killed save's debris from a step directory */
int ckpt_step_dir_clean(const char *step_dir, int world);

/* writer.c — internal: write a checkpoint to an explicit step directory */
int ckpt_save_dir_begin(herd_ckpt_writer *w, const char *step_dir, int64_t step,
                        const herd_ckpt_slice *s, int n, const void *meta, size_t meta_len);

#endif

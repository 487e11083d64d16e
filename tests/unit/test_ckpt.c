/* test_ckpt.c — checkpoint library, one process (MPI_COMM_NULL): checksum,
 * round trip, regions across slices, corruption and fallback, SIGKILL at every
 * fault point of a save, retention, averaging, bad input. The multi-rank
 * layouts are in test_ckpt_mpi.c. */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint/ckpt.h"
#include "checkpoint/internal.h"
#include "checkpoint/safe_file.h"
#include "monitoring/clock.h"
#include "kernels/backend.h"
#include "tests/unit/test.h"

static char root[256];

/* The global tensors of these tests: A [12, 8] param, b [10] param, A's adam_m. */
static float val(int kind, int t, int64_t i, int64_t j, int64_t step)
{
    return (float)(kind * 1000 + t * 100 + i * 8 + j) * 0.5f + (float)step * 0.25f;
}
static float A[3][12 * 8], B[3][10];
static void fill(int64_t step)
{
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 12; i++)
            for (int j = 0; j < 8; j++) A[k][i * 8 + j] = val(k, 0, i, j, step);
        for (int i = 0; i < 10; i++) B[k][i] = val(k, 1, i, 0, step);
    }
}

/* A split in three row slices, b whole: param + adam_m; A split two ways in adam_v. */
static int make_slices(herd_ckpt_slice *s)
{
    int n = 0;
    for (int r = 0; r < 3; r++) {
        herd_ckpt_slice x = {.ndim = 2, .global_shape = {12, 8}, .offset = {4 * r, 0}, .shape = {4, 8},
                             .data = A[0] + 4 * r * 8};
        snprintf(x.name, sizeof x.name, "model.layers.0.mlp.up_proj.weight");
        snprintf(x.kind, sizeof x.kind, "param");
        s[n++] = x;
    }
    herd_ckpt_slice b = {.ndim = 1, .global_shape = {10, 0}, .offset = {0, 0}, .shape = {10, 0}, .data = B[0]};
    snprintf(b.name, sizeof b.name, "model.norm.weight");
    snprintf(b.kind, sizeof b.kind, "param");
    s[n++] = b;
    herd_ckpt_slice m = {.ndim = 2, .global_shape = {12, 8}, .offset = {0, 0}, .shape = {12, 8}, .data = A[1]};
    snprintf(m.name, sizeof m.name, "model.layers.0.mlp.up_proj.weight");
    snprintf(m.kind, sizeof m.kind, "adam_m");
    s[n++] = m;
    return n;
}

static int save_step(const char *dir, int64_t step, const herd_ckpt_options *opt)
{
    fill(step);
    herd_ckpt_slice s[8];
    int n = make_slices(s);
    char meta[64];
    snprintf(meta, sizeof meta, "step=%" PRId64, step);
    herd_ckpt_writer *w;
    herd_ckpt_options q = {.quiet = 1};
    if (herd_ckpt_writer_create(&w, MPI_COMM_NULL, opt ? opt : &q)) return -1;
    int rc = herd_ckpt_save_begin(w, dir, step, s, n, meta, strlen(meta) + 1);
    /* the caller may overwrite its tensors at once: the snapshot is a copy */
    memset(A, 0, sizeof A);
    if (!rc) rc = herd_ckpt_wait(w);
    if (herd_ckpt_writer_destroy(w)) rc = -1;
    return rc;
}

static void subdir(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", root, name);
    ckpt_mkdir_p(out);
}

TEST(xxh64_known_values)
{
    CHECK(herd_xxh64("", 0, 0) == 0xEF46DB3751D8E999ULL);
    /* streaming in odd pieces gives the one-shot value */
    unsigned char buf[1000];
    for (int i = 0; i < 1000; i++) buf[i] = (unsigned char)(i * 7 + 3);
    uint64_t one = herd_xxh64(buf, sizeof buf, 0);
    ckpt_xxh64_state s;
    ckpt_xxh64_init(&s, 0);
    size_t off = 0, step = 1;
    while (off < sizeof buf) {
        size_t k = step < sizeof buf - off ? step : sizeof buf - off;
        ckpt_xxh64_update(&s, buf + off, k);
        off += k;
        step = step * 3 + 1;
    }
    CHECK(ckpt_xxh64_digest(&s) == one);
    buf[500] ^= 1;
    CHECK(herd_xxh64(buf, sizeof buf, 0) != one);
}

TEST(roundtrip_and_regions)
{
    char dir[512];
    subdir(dir, sizeof dir, "rt");
    CHECK(save_step(dir, 7, NULL) == 0);
    char latest[512];
    CHECK(herd_ckpt_find_latest(dir, latest, sizeof latest) == 0);
    CHECK(strstr(latest, "step_00000007") != NULL);
    herd_ckpt *c;
    if (herd_ckpt_open(&c, latest)) { CHECK(0); return; }
    CHECK(herd_ckpt_step(c) == 7);
    CHECK(herd_ckpt_world(c) == 1);
    CHECK(herd_ckpt_n_tensors(c) == 3);
    /* a region across the three row slices: rows 2..9, cols 3..7 */
    int64_t o[2] = {2, 3}, s[2] = {8, 5};
    float out[40];
    CHECK(herd_ckpt_read(c, "param", "model.layers.0.mlp.up_proj.weight", 2, o, s, out) == 0);
    int bad = 0;
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 5; j++) bad += out[i * 5 + j] != val(0, 0, i + 2, j + 3, 7);
    CHECK(bad == 0);
    int64_t o1[2] = {3, 0}, s1[2] = {6, 0};
    float ob[6];
    CHECK(herd_ckpt_read(c, "param", "model.norm.weight", 1, o1, s1, ob) == 0);
    for (int i = 0; i < 6; i++) CHECK(ob[i] == val(0, 1, i + 3, 0, 7));
    int64_t oz[2] = {0, 0}, sz[2] = {12, 8};
    float whole[96];
    CHECK(herd_ckpt_read(c, "adam_m", "model.layers.0.mlp.up_proj.weight", 2, oz, sz, whole) == 0);
    CHECK(whole[95] == val(1, 0, 11, 7, 7));
    /* unknown tensor, wrong ndim, region outside */
    CHECK(herd_ckpt_read(c, "adam_v", "model.norm.weight", 1, o1, s1, ob) == -1);
    CHECK(herd_ckpt_read(c, "param", "model.norm.weight", 2, oz, sz, whole) == -1);
    int64_t ob2[2] = {8, 0}, sb2[2] = {5, 0};
    CHECK(herd_ckpt_read(c, "param", "model.norm.weight", 1, ob2, sb2, ob) == -1);
    void *meta;
    size_t len;
    CHECK(herd_ckpt_meta(c, 0, &meta, &len) == 0);
    CHECK(len == strlen("step=7") + 1 && meta && !strcmp(meta, "step=7"));
    free(meta);
    herd_ckpt_close(c);
}

static void flip_byte(const char *path, long at)
{
    int fd = open(path, O_RDWR);
    if (fd < 0) return;
    unsigned char ch;
    if (pread(fd, &ch, 1, at) == 1) { ch ^= 0x10; if (pwrite(fd, &ch, 1, at) != 1) ch = 0; }
    close(fd);
}

static long find_float(const char *path, float v)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t i = 0; i + 4 <= n; i++)
        if (!memcmp(buf + i, &v, 4)) return (long)i;
    return -1;
}

TEST(flipped_byte_falls_back)
{
    char dir[512], p[600], latest[600];
    subdir(dir, sizeof dir, "flip");
    CHECK(save_step(dir, 1, NULL) == 0);
    CHECK(save_step(dir, 2, NULL) == 0);
    snprintf(p, sizeof p, "%s/step_00000002/shard_00000.h5", dir);
    /* flip a byte of tensor data (not HDF5 metadata, which the header and
     * structure checks would catch anyway): only the checksum can tell */
    long at = find_float(p, val(0, 0, 5, 5, 2));
    CHECK(at > 0);
    flip_byte(p, at + 1);
    snprintf(latest, sizeof latest, "%s/step_00000002", dir);
    CHECK(herd_ckpt_verify(latest) == -1);
    CHECK(herd_ckpt_find_latest(dir, latest, sizeof latest) == 0);
    CHECK(strstr(latest, "step_00000001") != NULL);
    /* a bad HDF5 header (the signature) in the older one too: nothing verifies */
    snprintf(p, sizeof p, "%s/step_00000001/shard_00000.h5", dir);
    flip_byte(p, 1);
    CHECK(herd_ckpt_find_latest(dir, latest, sizeof latest) == -1);
}

/* A MANIFEST that is self-consistent but points at a bad shard: a truncated
 * file (size), a non-HDF5 file with the right checksum (header), a shard
 * without a dataset the index lists (content). Each is named. */
TEST(bad_shards_named)
{
    char dir[512], p[700], sd[600];
    subdir(dir, sizeof dir, "badshard");
    CHECK(save_step(dir, 1, NULL) == 0);
    snprintf(sd, sizeof sd, "%s/step_00000001", dir);
    ckpt_manifest m;
    if (ckpt_manifest_read(sd, &m)) { CHECK(0); return; }
    snprintf(p, sizeof p, "%s/shard_00000.h5", sd);
    /* truncated */
    CHECK(truncate(p, m.shards[0].size - 100) == 0);
    CHECK(herd_ckpt_verify(sd) == -1);
    /* garbage with a matching checksum and size */
    FILE *f = fopen(p, "wb");
    if (f) { fputs("this is not an HDF5 file", f); fclose(f); }
    CHECK(herd_xxh64_file(p, &m.shards[0].xxh64, &m.shards[0].size) == 0);
    CHECK(ckpt_manifest_write(sd, &m) == 0);
    CHECK(herd_ckpt_verify(sd) == -1);
    /* a real HDF5 file of another checkpoint, its checksum in the manifest,
     * whose own /index names a dataset it lacks, then an /index that lies
     * (a slice outside its tensor) */
    char other[512], op[600];
    subdir(other, sizeof other, "badshard_other");
    herd_ckpt_writer *w;
    herd_ckpt_options q = {.quiet = 1};
    float x[4] = {1, 2, 3, 4};
    herd_ckpt_slice s = {.ndim = 1, .global_shape = {4, 0}, .offset = {0, 0}, .shape = {4, 0}, .data = x};
    snprintf(s.name, sizeof s.name, "other");
    snprintf(s.kind, sizeof s.kind, "param");
    if (herd_ckpt_writer_create(&w, MPI_COMM_NULL, &q)) { CHECK(0); ckpt_manifest_free(&m); return; }
    CHECK(herd_ckpt_save_begin(w, other, 1, &s, 1, NULL, 0) == 0 && herd_ckpt_wait(w) == 0);
    herd_ckpt_writer_destroy(w);
    snprintf(op, sizeof op, "%s/step_00000001/shard_00000.h5", other);
    CHECK(rename(op, p) == 0);
    CHECK(herd_xxh64_file(p, &m.shards[0].xxh64, &m.shards[0].size) == 0);
    CHECK(ckpt_manifest_write(sd, &m) == 0);
    CHECK(herd_ckpt_verify(sd) == 0);   /* the control: a whole other checkpoint's shard */
    hid_t h = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    CHECK(h >= 0 && H5Ldelete(h, "/param/other/0_0", H5P_DEFAULT) >= 0);
    if (h >= 0) H5Fclose(h);
    CHECK(herd_xxh64_file(p, &m.shards[0].xxh64, &m.shards[0].size) == 0);
    CHECK(ckpt_manifest_write(sd, &m) == 0);
    CHECK(herd_ckpt_verify(sd) == -1);
    ckpt_entry lie = {.name = "other", .kind = "param", .ndim = 1, .global_shape = {4, 1},
                      .offset = {2, 0}, .shape = {4, 1}};
    h = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    CHECK(h >= 0 && H5Ldelete(h, "index", H5P_DEFAULT) >= 0 && ckpt_index_write_h5(h, &lie, 1) == 0);
    if (h >= 0) H5Fclose(h);
    CHECK(herd_xxh64_file(p, &m.shards[0].xxh64, &m.shards[0].size) == 0);
    CHECK(ckpt_manifest_write(sd, &m) == 0);
    herd_ckpt *c = NULL;
    CHECK(herd_ckpt_verify(sd) == -1);
    CHECK(herd_ckpt_open(&c, sd) == -1);
    ckpt_manifest_free(&m);
}

TEST(manifest_tamper_and_incomplete)
{
    char dir[512], p[600], latest[600];
    subdir(dir, sizeof dir, "tamper");
    CHECK(save_step(dir, 3, NULL) == 0);
    CHECK(save_step(dir, 4, NULL) == 0);
    /* a directory without MANIFEST (a crash before commit) is not a checkpoint */
    snprintf(p, sizeof p, "%s/step_00000009", dir);
    ckpt_mkdir_p(p);
    CHECK(herd_ckpt_find_latest(dir, latest, sizeof latest) == 0);
    CHECK(strstr(latest, "step_00000004") != NULL);
    /* an edited MANIFEST fails its own checksum */
    snprintf(p, sizeof p, "%s/step_00000004/MANIFEST", dir);
    FILE *f = fopen(p, "r+");
    if (f) { fseek(f, 22, SEEK_SET); fputc('9', f); fclose(f); }
    herd_ckpt *c;
    snprintf(p, sizeof p, "%s/step_00000004", dir);
    CHECK(herd_ckpt_open(&c, p) == -1);
    CHECK(herd_ckpt_find_latest(dir, latest, sizeof latest) == 0);
    CHECK(strstr(latest, "step_00000003") != NULL);
}

TEST(never_rewrites_a_committed_step)
{
    char dir[512], p[600];
    subdir(dir, sizeof dir, "rewrite");
    CHECK(save_step(dir, 5, NULL) == 0);
    snprintf(p, sizeof p, "%s/step_00000005/shard_00000.h5", dir);
    struct stat a, b;
    stat(p, &a);
    CHECK(save_step(dir, 5, NULL) == 0);  /* refused quietly: returns 0, file untouched */
    stat(p, &b);
    CHECK(a.st_ino == b.st_ino && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec);
}

/* SIGKILL a save of step 2 at each fault point: step 1 stays the newest good
 * one, and saving step 2 again afterwards commits over the debris. */
TEST(sigkill_during_save)
{
    const char *points[] = {"shard_open", "shard_written", "shard_synced", "shard_renamed", "before_manifest"};
    for (size_t k = 0; k < sizeof points / sizeof points[0]; k++) {
        char dir[512], mark[600], latest[600];
        snprintf(dir, sizeof dir, "%s/kill_%s", root, points[k]);
        ckpt_mkdir_p(dir);
        CHECK(save_step(dir, 1, NULL) == 0);
        snprintf(mark, sizeof mark, "%s/paused", root);
        unlink(mark);
        pid_t pid = fork();
        if (pid == 0) {
            setenv("HERD_CKPT_PAUSE_AT", points[k], 1);
            setenv("HERD_CKPT_PAUSE_MARK", mark, 1);
            if (!freopen("/dev/null", "w", stderr)) _exit(4);
            _exit(save_step(dir, 2, NULL) ? 3 : 0);
        }
        int waited = 0;
        while (access(mark, F_OK) && waited < 2000) { usleep(5000); waited++; }
        CHECK(waited < 2000);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status));
        CHECK(herd_ckpt_find_latest(dir, latest, sizeof latest) == 0);
        if (!strstr(latest, "step_00000001")) {
            fprintf(stderr, "  killed at %s: newest is %s\n", points[k], latest);
            CHECK(0);
        }
        CHECK(save_step(dir, 2, NULL) == 0);
        CHECK(herd_ckpt_find_latest(dir, latest, sizeof latest) == 0);
        CHECK(strstr(latest, "step_00000002") != NULL);
    }
}

TEST(retention_keeps_last_and_every)
{
    char dir[512], p[600];
    subdir(dir, sizeof dir, "retain");
    snprintf(p, sizeof p, "%s/step_00000000", dir);  /* crash debris, older than everything */
    ckpt_mkdir_p(p);
    herd_ckpt_options opt = {.keep_last = 2, .keep_every = 5, .quiet = 1};
    for (int s = 1; s <= 11; s++) CHECK(save_step(dir, s, &opt) == 0);
    int present[12];
    for (int s = 0; s <= 11; s++) {
        snprintf(p, sizeof p, "%s/step_%08d", dir, s);
        present[s] = access(p, F_OK) == 0;
    }
    for (int s = 0; s <= 11; s++) CHECK(present[s] == (s == 5 || s == 10 || s == 11));
    /* keep_last 1, keep_every 0 directly: only the newest complete survives */
    CHECK(herd_ckpt_retain(dir, 1, 0) == 0);
    snprintf(p, sizeof p, "%s/step_00000010", dir);
    CHECK(access(p, F_OK) != 0);
    snprintf(p, sizeof p, "%s/step_00000011", dir);
    CHECK(access(p, F_OK) == 0);
}

TEST(average_is_elementwise_mean)
{
    char dir[512], out[600];
    subdir(dir, sizeof dir, "avg");
    const char *in[3];
    char paths[3][600];
    for (int i = 0; i < 3; i++) {
        CHECK(save_step(dir, 10 * (i + 1), NULL) == 0);
        snprintf(paths[i], sizeof paths[i], "%s/step_%08d", dir, 10 * (i + 1));
        in[i] = paths[i];
    }
    snprintf(out, sizeof out, "%s/averaged", dir);
    CHECK(herd_ckpt_average(out, in, 3, NULL) == 0);
    CHECK(herd_ckpt_verify(out) == 0);
    herd_ckpt *c;
    if (herd_ckpt_open(&c, out)) { CHECK(0); return; }
    CHECK(herd_ckpt_step(c) == 30);
    int64_t o[2] = {0, 0}, s[2] = {12, 8};
    float got[96];
    CHECK(herd_ckpt_read(c, "param", "model.layers.0.mlp.up_proj.weight", 2, o, s, got) == 0);
    int bad = 0;
    for (int i = 0; i < 12; i++)
        for (int j = 0; j < 8; j++) {
            double m = ((double)val(0, 0, i, j, 10) + val(0, 0, i, j, 20) + val(0, 0, i, j, 30)) / 3;
            bad += got[i * 8 + j] != (float)m;
        }
    CHECK(bad == 0);
    CHECK(got[0] == val(0, 0, 0, 0, 20));  /* values are linear in the step: mean = middle */
    herd_ckpt_close(c);
    /* kind filter: only param tensors */
    snprintf(out, sizeof out, "%s/averaged_param", dir);
    CHECK(herd_ckpt_average(out, in, 3, "param") == 0);
    if (!herd_ckpt_open(&c, out)) { CHECK(herd_ckpt_n_tensors(c) == 2); herd_ckpt_close(c); }
    else CHECK(0);
}

TEST(bad_slices_refused)
{
    char dir[512];
    subdir(dir, sizeof dir, "bad");
    herd_ckpt_writer *w;
    herd_ckpt_options q = {.quiet = 1};
    if (herd_ckpt_writer_create(&w, MPI_COMM_NULL, &q)) { CHECK(0); return; }
    float x[4] = {0};
    herd_ckpt_slice s = {.ndim = 2, .global_shape = {2, 2}, .offset = {1, 0}, .shape = {2, 2}, .data = x};
    snprintf(s.name, sizeof s.name, "w");
    snprintf(s.kind, sizeof s.kind, "param");
    CHECK(herd_ckpt_save_begin(w, dir, 1, &s, 1, NULL, 0) == -1);   /* outside the tensor */
    s.offset[0] = 0;
    s.ndim = 3;
    CHECK(herd_ckpt_save_begin(w, dir, 1, &s, 1, NULL, 0) == -1);   /* ndim */
    s.ndim = 2;
    snprintf(s.name, sizeof s.name, "a/b");
    CHECK(herd_ckpt_save_begin(w, dir, 1, &s, 1, NULL, 0) == -1);   /* '/' in a name */
    snprintf(s.name, sizeof s.name, "w");
    herd_ckpt_slice two[2] = {s, s};                                 /* the same slice twice */
    CHECK(herd_ckpt_save_begin(w, dir, 1, two, 2, NULL, 0) == 0);
    CHECK(herd_ckpt_wait(w) == -1);
    CHECK(herd_ckpt_writer_destroy(w) == 0);
    char latest[600];
    CHECK(herd_ckpt_find_latest(dir, latest, sizeof latest) == -1);
}

/* defer_copy: the thread takes the snapshot; after snapshot_wait the caller's
 * changes do not reach the checkpoint */
TEST(deferred_snapshot)
{
    char dir[512], latest[600];
    subdir(dir, sizeof dir, "defer");
    fill(4);
    herd_ckpt_slice s[8];
    int n = make_slices(s);
    herd_ckpt_writer *w;
    herd_ckpt_options opt = {.quiet = 1, .defer_copy = 1};
    if (herd_ckpt_writer_create(&w, MPI_COMM_NULL, &opt)) { CHECK(0); return; }
    CHECK(herd_ckpt_save_begin(w, dir, 4, s, n, NULL, 0) == 0);
    CHECK(herd_ckpt_snapshot_wait(w) == 0);
    for (int i = 0; i < 96; i++) A[0][i] = -1.0f;
    CHECK(herd_ckpt_wait(w) == 0);
    herd_ckpt_stats st;
    herd_ckpt_get_stats(w, &st);
    CHECK(st.step == 4 && st.stall_s >= 0 && st.write_s > 0);
    CHECK(herd_ckpt_writer_destroy(w) == 0);
    herd_ckpt *c;
    if (herd_ckpt_find_latest(dir, latest, sizeof latest) || herd_ckpt_open(&c, latest)) { CHECK(0); return; }
    int64_t o[2] = {0, 0}, sh[2] = {12, 8};
    float got[96];
    CHECK(herd_ckpt_read(c, "param", "model.layers.0.mlp.up_proj.weight", 2, o, sh, got) == 0);
    int bad = 0;
    for (int i = 0; i < 96; i++) bad += got[i] != val(0, 0, i / 8, i % 8, 4);
    CHECK(bad == 0);
    herd_ckpt_close(c);
}

/* the GPU hooks: a copy function (here a host one that counts and flips a
 * sign, so that its use is visible in the saved values) and an allocator */
static size_t copied_bytes, allocs, frees;
static void negating_copy(void *dst, const void *src, size_t bytes)
{
    const float *s = src;
    float *d = dst;
    for (size_t i = 0; i < bytes / sizeof(float); i++) d[i] = -s[i];
    copied_bytes += bytes;
}
static void *count_alloc(size_t b) { allocs++; return malloc(b); }
static void count_free(void *p) { frees++; free(p); }

TEST(copy_and_alloc_hooks)
{
    for (int defer = 0; defer < 2; defer++) {
        char dir[512], latest[600];
        snprintf(dir, sizeof dir, "%s/hooks%d", root, defer);
        fill(6);
        herd_ckpt_slice s[8];
        int n = make_slices(s);
        herd_ckpt_writer *w;
        herd_ckpt_options opt = {.quiet = 1, .defer_copy = defer, .copy = negating_copy,
                                 .host_alloc = count_alloc, .host_free = count_free};
        copied_bytes = allocs = frees = 0;
        if (herd_ckpt_writer_create(&w, MPI_COMM_NULL, &opt)) { CHECK(0); return; }
        CHECK(herd_ckpt_save_begin(w, dir, 6, s, n, NULL, 0) == 0);
        CHECK(herd_ckpt_wait(w) == 0);
        CHECK(herd_ckpt_writer_destroy(w) == 0);
        CHECK(copied_bytes == (3 * 32 + 10 + 96) * sizeof(float));
        CHECK(allocs == 1 && frees == 1);
        herd_ckpt *c;
        if (herd_ckpt_find_latest(dir, latest, sizeof latest) || herd_ckpt_open(&c, latest)) { CHECK(0); return; }
        int64_t o[2] = {0, 0}, sh[2] = {10, 0};
        float got[10];
        CHECK(herd_ckpt_read(c, "param", "model.norm.weight", 1, o, sh, got) == 0);
        for (int i = 0; i < 10; i++) CHECK(got[i] == -val(0, 1, i, 0, 6));
        herd_ckpt_close(c);
    }
}

/* The trainer's path on any backend: tensors in the backend's memory, the
 * snapshot taken with its copy_d2h (defer_copy: from the writer's thread).
 * CPU always; CUDA where a device exists. */
static const herd_backend *copy_be; /* herd_ckpt_options.copy takes no context */
static void copy_from_backend(void *dst, const void *src, size_t bytes)
{
    copy_be->copy_d2h(copy_be, dst, src, bytes);
}

static void save_from_backend(const herd_backend *be, const char *tag)
{
    char dir[512], latest[600];
    snprintf(dir, sizeof dir, "%s/backend_%s", root, tag);
    fill(8);
    float *dev = be->alloc(be, sizeof A[0]);
    if (!dev) { CHECK(0); return; }
    be->copy_h2d(be, dev, A[0], sizeof A[0]);
    be->synchronize(be);
    herd_ckpt_slice sl = {.ndim = 2, .global_shape = {12, 8}, .offset = {0, 0}, .shape = {12, 8}, .data = dev};
    snprintf(sl.name, sizeof sl.name, "lm_head.weight");
    snprintf(sl.kind, sizeof sl.kind, "param");
    herd_ckpt_writer *w;
    copy_be = be;
    herd_ckpt_options opt = {.quiet = 1, .defer_copy = 1, .copy = copy_from_backend};
    if (herd_ckpt_writer_create(&w, MPI_COMM_NULL, &opt)) { CHECK(0); be->free(be, dev); return; }
    CHECK(herd_ckpt_save_begin(w, dir, 8, &sl, 1, NULL, 0) == 0);
    CHECK(herd_ckpt_snapshot_wait(w) == 0);
    be->zero(be, dev, 96);   /* the optimizer may now change the tensor */
    CHECK(herd_ckpt_wait(w) == 0);
    CHECK(herd_ckpt_writer_destroy(w) == 0);
    be->free(be, dev);
    herd_ckpt *c;
    if (herd_ckpt_find_latest(dir, latest, sizeof latest) || herd_ckpt_open(&c, latest)) { CHECK(0); return; }
    int64_t o[2] = {0, 0}, sh[2] = {12, 8};
    float got[96];
    CHECK(herd_ckpt_read(c, "param", "lm_head.weight", 2, o, sh, got) == 0);
    int bad = 0;
    for (int i = 0; i < 96; i++) bad += got[i] != val(0, 0, i / 8, i % 8, 8);
    CHECK(bad == 0);
    herd_ckpt_close(c);
}

TEST(snapshot_from_cpu_backend) { save_from_backend(herd_backend_cpu(), "cpu"); }

TEST(snapshot_from_cuda_backend)
{
    const herd_backend *gpu = herd_backend_cuda();
    if (!gpu) SKIP("no CUDA device");
    save_from_backend(gpu, "cuda");
}

TEST(sigterm_one_process)
{
    herd_ckpt_stopper *st;
    if (herd_ckpt_stopper_create(&st, MPI_COMM_NULL)) { CHECK(0); return; }
    CHECK(herd_ckpt_stopper_check(st) == 0);
    raise(SIGTERM);   /* handled: the process goes on */
    CHECK(herd_ckpt_stopper_check(st) == 1);
    CHECK(herd_ckpt_stopper_signal(st) == SIGTERM);
    herd_ckpt_stopper_destroy(st);
}

/* A child that installs the stopper, checks once, takes RAISE_SIG and (with
 * CHECK_AFTER) reaches the next check, then stays busy 4 graces long, as a
 * rank waiting in a collective does; its wait status and how long it lived. */
static int child_status(int raise_sig, int check_after, double grace_s, double *took)
{
    double t0 = herd_now_s();
    pid_t pid = fork();
    if (pid == 0) {
        char g[32];
        snprintf(g, sizeof g, "%g", grace_s);
        setenv("HERD_STOP_GRACE_S", g, 1);
        herd_ckpt_stopper *st;
        if (herd_ckpt_stopper_create(&st, MPI_COMM_NULL)) _exit(3);
        herd_ckpt_stopper_check(st);
        raise(raise_sig);
        if (check_after && herd_ckpt_stopper_check(st) != 1) _exit(5);
        usleep((useconds_t)(grace_s * 4e6));
        _exit(0);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    *took = herd_now_s() - t0;
    return status;
}

/* SIGTERM on a rank that cannot agree to stop (it never reaches the next
 * check, as when it waits in a collective on a dead peer and srun -K1 tears
 * the step down): it exits 143 once the grace is over, not at KillWait's SIGKILL */
TEST(sigterm_without_agreement_exits_after_grace)
{
    double took;
    int st = child_status(SIGTERM, 0, 0.4, &took);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGTERM);
    CHECK(took >= 0.35 && took < 1.5);
}

/* SIGTERM and the ranks agree (a time limit, a preemption): the checkpoint
 * path goes on past the grace */
TEST(sigterm_with_agreement_checkpoints)
{
    double took;
    int st = child_status(SIGTERM, 1, 0.3, &took);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* SIGUSR1 asks for the checkpoint explicitly: no grace, even unagreed */
TEST(sigusr1_never_exits)
{
    double took;
    int st = child_status(SIGUSR1, 0, 0.3, &took);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

TEST(bad_stop_grace_refused)
{
    setenv("HERD_STOP_GRACE_S", "soon", 1);
    herd_ckpt_stopper *st = NULL;
    CHECK(herd_ckpt_stopper_create(&st, MPI_COMM_NULL) == -1);
    unsetenv("HERD_STOP_GRACE_S");
}

/* ---- hostile MANIFESTs, planted links, foreign names, quarantine ---- */

/* Write body + its sealing end line as step_dir/MANIFEST. */
static void manifest_plant(const char *step_dir, const char *body)
{
    char p[700];
    snprintf(p, sizeof p, "%s/MANIFEST", step_dir);
    FILE *f = fopen(p, "w");
    if (!f) return;
    fprintf(f, "%send %016" PRIx64 "\n", body, herd_xxh64(body, strlen(body), 0));
    fclose(f);
}

/* The good MANIFEST's lines: [0] header, [1] step, [2] world, [3] shard 0, then slices. */
static int manifest_lines(const char *step_dir, char lines[16][256])
{
    char p[700];
    snprintf(p, sizeof p, "%s/MANIFEST", step_dir);
    FILE *f = fopen(p, "r");
    int n = 0;
    while (f && n < 16 && fgets(lines[n], 256, f))
        if (strncmp(lines[n], "end ", 4)) n++;
    if (f) fclose(f);
    return n;
}

/* The index of shard 0 as format 1's MANIFEST lines "slice 0 ...". */
static void v1_slice_lines(const char *step, char *out, size_t n)
{
    ckpt_manifest m;
    out[0] = '\0';
    if (ckpt_manifest_read(step, &m)) return;
    if (ckpt_index_load(step, &m) == 0) {
        herd_sbuf b = {0};
        ckpt_index_text(m.ents, m.n_ents, &b);
        size_t k = 0;
        for (char *save = NULL, *l = strtok_r(b.s, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
            k += (size_t)snprintf(out + k, k < n ? n - k : 0, "slice 0 %s\n", l);
        free(b.s);
    }
    ckpt_manifest_free(&m);
}

TEST(manifest_contradictions_refused)
{
    char dir[512], step[600];
    subdir(dir, sizeof dir, "lies");
    CHECK(save_step(dir, 3, NULL) == 0);
    snprintf(step, sizeof step, "%s/step_00000003", dir);
    char L[16][256];
    int n = manifest_lines(step, L);
    CHECK(n == 4);   /* header, step, world, shard: the slices are in the shard */
    if (n != 4) return;
    CHECK(!strcmp(L[0], "herd-checkpoint 2\n"));
    char slices[2048], V1[] = "herd-checkpoint 1\n";
    v1_slice_lines(step, slices, sizeof slices);
    char first_rank1[300];   /* the first slice, said to be rank 1's */
    snprintf(first_rank1, sizeof first_rank1, "%.*s", (int)strcspn(slices, "\n") + 1, slices);
    CHECK(!strncmp(first_rank1, "slice 0 ", 8));
    first_rank1[strlen("slice ")] = '1';
    char shard_at[300];
    const char *after_name = strstr(L[3], ".h5 ") + 3;   /* " SIZE HASH\n" */
    struct { const char *what; char body[4096]; } c[16];
    int k = 0, n_good = 2;
    /* the controls: the same content re-sealed parses, and so does format 1
     * (its slice index in the MANIFEST) over the same shard */
    snprintf(c[k].body, sizeof c[k].body, "%s%s%s%s", L[0], L[1], L[2], L[3]); c[k++].what = "control";
    snprintf(c[k].body, sizeof c[k].body, "%s%s%s%s%s", V1, L[1], L[2], L[3], slices);
    c[k++].what = "format 1 control";
    snprintf(c[k].body, sizeof c[k].body, "%s%s%s%s%s", L[0], L[1], L[2], L[3], slices);
    c[k++].what = "format 2 with slice lines";
    snprintf(c[k].body, sizeof c[k].body, "%s%sworld 2\n%sworld 1\n%s%s", V1, L[1], first_rank1, L[3], slices);
    c[k++].what = "world 2, a slice of rank 1, world 1";
    snprintf(c[k].body, sizeof c[k].body, "%s%s%s%s%s", V1, L[1], L[2], L[3], first_rank1);
    c[k++].what = "slice rank beyond world";
    snprintf(shard_at, sizeof shard_at, "shard 0 ../../../outside.h5%s", after_name);
    snprintf(c[k].body, sizeof c[k].body, "%s%s%s%s", L[0], L[1], L[2], shard_at);
    c[k++].what = "shard outside the directory";
    snprintf(shard_at, sizeof shard_at, "shard 0 shard_00001.h5%s", after_name);
    snprintf(c[k].body, sizeof c[k].body, "%s%s%s%s", L[0], L[1], L[2], shard_at);
    c[k++].what = "another rank's shard file";
    snprintf(c[k].body, sizeof c[k].body, "%s%s%s%s%s", L[0], L[1], L[1], L[2], L[3]);
    c[k++].what = "step twice";
    snprintf(c[k].body, sizeof c[k].body, "%s%s%s%s%s", V1, L[1], L[2], slices, L[3]);
    c[k++].what = "slices before the shard";
    snprintf(c[k].body, sizeof c[k].body, "%s%sworld 99999999999999999999\n%s", L[0], L[1], L[3]);
    c[k++].what = "world overflows";
    snprintf(c[k].body, sizeof c[k].body, "%s%s%s%s%sslice 0 param 2 12 8 12 0 4 8 model.layers.0.mlp.up_proj.weight\n",
             V1, L[1], L[2], L[3], slices);
    c[k++].what = "slice outside its tensor";
    snprintf(c[k].body, sizeof c[k].body, "%s%s%s%s%sslice 0 param 2 24 8 0 0 4 8 model.layers.0.mlp.up_proj.weight\n",
             V1, L[1], L[2], L[3], slices);
    c[k++].what = "slices of one tensor disagree on its shape";
    snprintf(c[k].body, sizeof c[k].body, "%s%s%s%s%sslice 0 param 1 10 2 0 0 10 1 x.bias\n",
             V1, L[1], L[2], L[3], slices);
    c[k++].what = "1-D slice with a second dimension";
    snprintf(c[k].body, sizeof c[k].body, "%s%s%s%s%sslice 0 .. 1 10 1 0 0 10 1 x.bias\n",
             V1, L[1], L[2], L[3], slices);
    c[k++].what = "kind '..'";
    snprintf(c[k].body, sizeof c[k].body, "herd-checkpoint 3\n%s%s%s", L[1], L[2], L[3]);
    c[k++].what = "an unknown format";
    for (int i = 0; i < k; i++) {
        manifest_plant(step, c[i].body);
        ckpt_manifest m;
        int rc = ckpt_manifest_read(step, &m);
        if (rc == 0) ckpt_manifest_free(&m);
        int want = i < n_good ? 0 : -1;
        if (rc != want || herd_ckpt_verify(step) != want) {
            fprintf(stderr, "  manifest case '%s': read %d verify, wanted %d\n", c[i].what, rc, want);
            CHECK(0);
        }
        herd_ckpt *ck = NULL;
        if (i >= n_good && herd_ckpt_open(&ck, step) == 0) {   /* never opened, so never indexed */
            CHECK(0);
            herd_ckpt_close(ck);
        }
        if (i < n_good) {   /* both formats read the same tensor */
            float got[12 * 8];
            int64_t off[2] = {0, 0}, shp[2] = {12, 8};
            CHECK(herd_ckpt_open(&ck, step) == 0);
            CHECK(ck && herd_ckpt_n_tensors(ck) == 3 &&
                  herd_ckpt_read(ck, "param", "model.layers.0.mlp.up_proj.weight", 2, off, shp, got) == 0 &&
                  got[0] == val(0, 0, 0, 0, 3) && got[12 * 8 - 1] == val(0, 0, 11, 7, 3));
            herd_ckpt_close(ck);
        }
    }
    /* text after the sealing line */
    manifest_plant(step, c[0].body);
    char p[700];
    snprintf(p, sizeof p, "%s/MANIFEST", step);
    FILE *f = fopen(p, "a");
    if (f) { fputs("slice 0 param 1 10 1 0 0 10 1 x.bias\n", f); fclose(f); }
    CHECK(herd_ckpt_verify(step) == -1);
}

/* A job above view_max_world commits without model.h5; herd_ckpt_global_view
 * writes it afterwards, from the shards' indexes; never for a bad checkpoint. */
TEST(global_view_skipped_then_written)
{
    char dir[512], step[600], p[700];
    subdir(dir, sizeof dir, "noview");
    herd_ckpt_options opt = {.quiet = 1, .view_max_world = -1};
    CHECK(save_step(dir, 6, &opt) == 0);
    snprintf(step, sizeof step, "%s/step_00000006", dir);
    snprintf(p, sizeof p, "%s/model.h5", step);
    struct stat st;
    CHECK(lstat(p, &st) == -1 && herd_ckpt_verify(step) == 0);
    CHECK(herd_ckpt_global_view(step) == 0 && lstat(p, &st) == 0 && S_ISREG(st.st_mode));
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    float got[12 * 8];
    hid_t d = f >= 0 ? H5Dopen2(f, "/param/model.layers.0.mlp.up_proj.weight", H5P_DEFAULT) : -1;
    CHECK(d >= 0 && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, got) >= 0 &&
          got[0] == val(0, 0, 0, 0, 6) && got[12 * 8 - 1] == val(0, 0, 11, 7, 6));
    if (d >= 0) H5Dclose(d);
    if (f >= 0) H5Fclose(f);
    snprintf(p, sizeof p, "%s/shard_00000.h5", step);
    flip_byte(p, 4000);
    CHECK(herd_ckpt_global_view(step) == -1);
}

static int file_is(const char *path, const char *text)
{
    char buf[256] = "";
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return !strcmp(buf, text);
}

static void put_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) { fputs(text, f); fclose(f); }
}

TEST(retention_ignores_links_and_foreign_names)
{
    char dir[512], out[512], p[700], q[700];
    subdir(dir, sizeof dir, "retlinks");
    subdir(out, sizeof out, "retlinks_outside");
    snprintf(p, sizeof p, "%s/a", out);
    put_file(p, "precious");
    snprintf(p, sizeof p, "%s/MANIFEST", out);
    put_file(p, "precious");
    snprintf(p, sizeof p, "%s/step_00000000", dir);
    CHECK(symlink(out, p) == 0);
    const char *foreign[2] = {"step_4", "step_0004"};   /* names of no step */
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, foreign[i]);
        ckpt_mkdir_p(p);
    }
    herd_ckpt_options opt = {.keep_last = 1, .quiet = 1};
    CHECK(save_step(dir, 2, &opt) == 0);
    CHECK(save_step(dir, 4, &opt) == 0);
    CHECK(herd_ckpt_retain(dir, 1, 0) == 0);
    snprintf(p, sizeof p, "%s/a", out);
    snprintf(q, sizeof q, "%s/MANIFEST", out);
    CHECK(file_is(p, "precious") && file_is(q, "precious"));
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, foreign[i]);
        CHECK(access(p, F_OK) == 0);
    }
    snprintf(p, sizeof p, "%s/step_00000004", dir);
    CHECK(herd_ckpt_verify(p) == 0);
    snprintf(p, sizeof p, "%s/step_00000002", dir);
    CHECK(access(p, F_OK) != 0);
    /* a link named as a step is not a checkpoint to read either */
    int64_t *steps;
    int ns;
    CHECK(ckpt_list_steps(dir, &steps, &ns) == 0 && ns == 1 && steps[0] == 4);
    free(steps);
}

TEST(quarantine_then_rewrite)
{
    char dir[512], p[700], latest[700];
    subdir(dir, sizeof dir, "quar");
    CHECK(save_step(dir, 2, NULL) == 0);
    CHECK(save_step(dir, 4, NULL) == 0);
    snprintf(p, sizeof p, "%s/step_00000004/shard_00000.h5", dir);
    struct stat st;
    CHECK(stat(p, &st) == 0);
    flip_byte(p, (long)st.st_size / 2);
    /* a read-only look moves nothing */
    CHECK(herd_ckpt_find_latest(dir, latest, sizeof latest) == 0 && strstr(latest, "step_00000002"));
    snprintf(p, sizeof p, "%s/step_00000004", dir);
    CHECK(access(p, F_OK) == 0);
    /* resuming moves the bad newer one aside, whole */
    CHECK(herd_ckpt_find_resume(MPI_COMM_NULL, dir, latest, sizeof latest) == 0 && strstr(latest, "step_00000002"));
    CHECK(access(p, F_OK) != 0);
    char cmd[800];
    snprintf(cmd, sizeof cmd, "test -f %s/step_00000004.corrupt-*/shard_00000.h5", dir);
    CHECK(system(cmd) == 0);
    /* the step is written again, and the copy aside outlives retention */
    herd_ckpt_options opt = {.keep_last = 1, .quiet = 1};
    CHECK(save_step(dir, 4, &opt) == 0);
    CHECK(herd_ckpt_verify(p) == 0);
    CHECK(system(cmd) == 0);
    /* a committed step that fails verification is quarantined by the save itself */
    snprintf(p, sizeof p, "%s/step_00000004/shard_00000.h5", dir);
    flip_byte(p, (long)st.st_size / 2);
    CHECK(save_step(dir, 4, &opt) == 0);
    snprintf(p, sizeof p, "%s/step_00000004", dir);
    CHECK(herd_ckpt_verify(p) == 0);
    snprintf(cmd, sizeof cmd, "test $(ls -d %s/step_00000004.corrupt-* | wc -l) -eq 2", dir);
    CHECK(system(cmd) == 0);
}

TEST(safe_file_never_follows_links)
{
    char dir[512], p[700], victim[700], tmp[700];
    subdir(dir, sizeof dir, "safe");
    snprintf(victim, sizeof victim, "%s/victim", root);
    put_file(victim, "precious");
    mode_t old = umask(0);
    /* a link at the target is replaced, one at the temporary removed: the victim stays */
    snprintf(p, sizeof p, "%s/out.txt", dir);
    snprintf(tmp, sizeof tmp, "%s/.out.txt.tmp.%d", dir, (int)getpid());
    CHECK(symlink(victim, p) == 0 && symlink(victim, tmp) == 0);
    CHECK(herd_safe_write(p, "new", 3) == 0);
    CHECK(file_is(victim, "precious") && file_is(p, "new"));
    struct stat st;
    CHECK(lstat(p, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0640);
    CHECK(lstat(tmp, &st) != 0);
    /* appending never goes through a link */
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    CHECK(symlink(victim, p) == 0);
    CHECK(herd_safe_open_append(p, 0) == -1);
    CHECK(file_is(victim, "precious"));
    int fd = herd_safe_open_append(p, 1);   /* fresh: the link goes, a new file comes */
    CHECK(fd >= 0 && write(fd, "x", 1) == 1);
    if (fd >= 0) close(fd);
    CHECK(file_is(victim, "precious") && file_is(p, "x"));
    CHECK(lstat(p, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0640);
    snprintf(p, sizeof p, "%s/new/sub", dir);
    CHECK(herd_safe_mkdirs(p) == 0 && stat(p, &st) == 0 && (st.st_mode & 0777) == 0750);
    umask(old);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/herd_test_ckpt.%d", (int)getpid());
    ckpt_mkdir_p(root);
    RUN(xxh64_known_values);
    RUN(roundtrip_and_regions);
    RUN(flipped_byte_falls_back);
    RUN(bad_shards_named);
    RUN(manifest_tamper_and_incomplete);
    RUN(never_rewrites_a_committed_step);
    RUN(sigkill_during_save);
    RUN(retention_keeps_last_and_every);
    RUN(average_is_elementwise_mean);
    RUN(bad_slices_refused);
    RUN(deferred_snapshot);
    RUN(copy_and_alloc_hooks);
    RUN(snapshot_from_cpu_backend);
    RUN(snapshot_from_cuda_backend);
    RUN(sigterm_one_process);
    RUN(sigterm_without_agreement_exits_after_grace);
    RUN(sigterm_with_agreement_checkpoints);
    RUN(sigusr1_never_exits);
    RUN(bad_stop_grace_refused);
    RUN(manifest_contradictions_refused);
    RUN(global_view_skipped_then_written);
    RUN(retention_ignores_links_and_foreign_names);
    RUN(quarantine_then_rewrite);
    RUN(safe_file_never_follows_links);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (!test_n_fail_ && system(cmd)) fprintf(stderr, "cannot remove %s\n", root);
    return test_summary();
}

/* test_data.c — token shards, packing with document ids, the seeded sampler
 * (the config is tested in test_config.c). Every case writes its own shards
 * into a fresh temporary directory. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "src/data/data.h"
#include "src/data/passkey.h"
#include "tests/unit/test.h"

static char dir[64];

/* dir/name, in a rotating set of buffers so that a call can use two */
static const char *tmp_path(const char *name)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_bytes(const char *p, const void *buf, size_t n)
{
    FILE *f = fopen(p, "wb");
    if (!f) return;
    fwrite(buf, 1, n, f);
    fclose(f);
}

/* A raw shard with any header fields, the ids stored as uint16: for shards
 * that herd_shard_write refuses to write. */
static void write_raw_shard(const char *p, uint32_t version, uint32_t dtype, uint32_t vocab,
                            uint32_t eot, uint64_t n_tokens, const uint16_t *ids, size_t n_ids)
{
    unsigned char b[HERD_SHARD_HEADER + 64] = {0};
    memcpy(b, HERD_SHARD_MAGIC, 8);
    uint32_t f32[4] = {version, dtype, vocab, eot};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) b[8 + 4 * i + j] = (unsigned char)(f32[i] >> 8 * j);
    for (int j = 0; j < 8; j++) b[24 + j] = (unsigned char)(n_tokens >> 8 * j);
    for (size_t i = 0; i < n_ids && i < 32; i++) {
        b[HERD_SHARD_HEADER + 2 * i] = (unsigned char)ids[i];
        b[HERD_SHARD_HEADER + 2 * i + 1] = (unsigned char)(ids[i] >> 8);
    }
    write_bytes(p, b, HERD_SHARD_HEADER + 2 * (n_ids < 32 ? n_ids : 32));
}

/* herd_data_open(path) fails and its stderr names the path and contains want. */
static int open_fails_with(const char *path, int model_vocab, const char *want)
{
    char log[256]; /* not tmp_path: its buffers may hold the caller's path */
    snprintf(log, sizeof log, "%s/stderr.txt", dir);
    fflush(stderr);
    int saved = dup(2), fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
    herd_data *d = NULL;
    int rc = herd_data_open(&d, path, model_vocab, 1);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char msg[1024] = "";
    FILE *f = fopen(log, "r");
    if (f) {
        size_t n = fread(msg, 1, sizeof msg - 1, f);
        msg[n] = 0;
        fclose(f);
    }
    unlink(log);
    herd_data_close(d);
    int ok = rc == -1 && d == NULL && strstr(msg, path) && strstr(msg, want);
    if (!ok) fprintf(stderr, "  open(%s): rc %d, message \"%s\", wanted \"%s\"\n", path, rc, msg, want);
    return ok;
}

/* ---- format ------------------------------------------------------------- */

TEST(shard_round_trip_uint16)
{
    uint32_t ids[] = {5, 6, 1, 7, 8, 9, 1, 99, 0};
    const char *p = tmp_path("u16.bin");
    CHECK(herd_shard_write(p, ids, 9, 100, 1) == 0);
    herd_data *d;
    CHECK(herd_data_open(&d, p, 128, 1) == 0);
    if (!d) return;
    const herd_shard_header *h = herd_data_header(d);
    CHECK(h->version == 1 && h->dtype_bytes == 2 && h->vocab_size == 100 && h->eot_id == 1);
    CHECK(h->n_tokens == 9 && h->n_docs == 2);
    uint32_t back[9];
    CHECK(herd_data_read(d, 0, 9, back) == 0 && !memcmp(back, ids, sizeof ids));
    CHECK(herd_data_read(d, 5, 5, back) == -1);
    herd_data_close(d);
    FILE *f = fopen(p, "rb");
    fseek(f, 0, SEEK_END);
    CHECK(ftell(f) == HERD_SHARD_HEADER + 9 * 2);
    fclose(f);
    unlink(p);
}

TEST(shard_round_trip_uint32)
{
    uint32_t ids[] = {70000, 3, 65536, 2, 69999, 65535};
    const char *p = tmp_path("u32.bin");
    CHECK(herd_shard_write(p, ids, 6, 70001, 2) == 0);
    herd_data *d;
    CHECK(herd_data_open(&d, p, 128256, 1) == 0);
    if (!d) return;
    const herd_shard_header *h = herd_data_header(d);
    CHECK(h->dtype_bytes == 4 && h->vocab_size == 70001 && h->n_tokens == 6 && h->n_docs == 1);
    uint32_t back[6];
    CHECK(herd_data_read(d, 0, 6, back) == 0 && !memcmp(back, ids, sizeof ids));
    int32_t tok[5], tgt[5], doc[5];
    CHECK(herd_data_next(d, 1, 5, tok, tgt, doc) == 0); /* the only window */
    CHECK(tok[0] == 70000 && tok[3] == 2 && tgt[4] == 65535);
    CHECK(doc[0] == 0 && doc[3] == 0 && doc[4] == 1); /* the eot ends document 0 */
    herd_data_close(d);
    unlink(p);
}

/* The write goes to a temporary name that is renamed: nothing else is left. */
TEST(shard_write_leaves_no_temp_file)
{
    uint32_t ids[] = {1, 2, 0};
    CHECK(herd_shard_write(tmp_path("a.bin"), ids, 3, 4, 0) == 0);
    CHECK(herd_shard_write(tmp_path("a.bin"), ids, 2, 4, 0) == 0); /* over an old one */
    DIR *dd = opendir(dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(dd));)
        if (e->d_name[0] != '.') {
            n++;
            CHECK(!strcmp(e->d_name, "a.bin"));
        }
    closedir(dd);
    CHECK(n == 1);
    uint32_t bad[] = {1, 4, 0};
    CHECK(herd_shard_write(tmp_path("b.bin"), bad, 3, 4, 0) == -1); /* id 4 >= vocab 4 */
    CHECK(herd_shard_write(tmp_path("b.bin"), ids, 3, 4, 4) == -1); /* eot 4 >= vocab 4 */
    CHECK(access(tmp_path("b.bin"), F_OK) != 0);
    unlink(tmp_path("a.bin"));
}

/* ---- packing -------------------------------------------------------------- */

/* 13 tokens, eot 1, T = 4: W = (13-1)/4 = 3 windows at 0, 4, 8, worked by hand. */
TEST(windows_targets_and_doc_ids)
{
    uint32_t ids[] = {5, 6, 1, 7, 8, 9, 1, 10, 1, 11, 12, 1, 13};
    static const int32_t want_tok[3][4] = {{5, 6, 1, 7}, {8, 9, 1, 10}, {1, 11, 12, 1}};
    static const int32_t want_tgt[3][4] = {{6, 1, 7, 8}, {9, 1, 10, 1}, {11, 12, 1, 13}};
    static const int32_t want_doc[3][4] = {{0, 0, 0, 1}, {0, 0, 0, 1}, {0, 1, 1, 1}};
    const char *p = tmp_path("hand.bin");
    CHECK(herd_shard_write(p, ids, 13, 32, 1) == 0);
    herd_data *d;
    CHECK(herd_data_open(&d, p, 32, 42) == 0);
    if (!d) return;
    CHECK(herd_data_n_windows(d, 4) == 3);
    int32_t tok[12], tgt[12], doc[12];
    CHECK(herd_data_next(d, 3, 4, tok, tgt, doc) == 0); /* one whole epoch in one batch */
    int seen[3] = {0};
    for (int b = 0; b < 3; b++) {
        int w = tok[4 * b] == 5 ? 0 : tok[4 * b] == 8 ? 1 : tok[4 * b] == 1 ? 2 : -1;
        CHECK(w >= 0);
        if (w < 0) continue;
        seen[w]++;
        CHECK(!memcmp(tok + 4 * b, want_tok[w], sizeof want_tok[w]));
        CHECK(!memcmp(tgt + 4 * b, want_tgt[w], sizeof want_tgt[w]));
        CHECK(!memcmp(doc + 4 * b, want_doc[w], sizeof want_doc[w]));
    }
    CHECK(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
    herd_data_close(d);
    unlink(p);
}

TEST(too_short_for_a_sequence)
{
    uint32_t ids[] = {1, 2, 3, 0, 4};
    const char *p = tmp_path("short.bin");
    CHECK(herd_shard_write(p, ids, 5, 8, 0) == 0);
    herd_data *d;
    CHECK(herd_data_open(&d, p, 8, 1) == 0);
    if (!d) return;
    int32_t tok[8], tgt[8], doc[8];
    CHECK(herd_data_next(d, 1, 4, tok, tgt, doc) == 0); /* 5 tokens: one window of 4+1 */
    CHECK(herd_data_next(d, 1, 5, tok, tgt, doc) == -1);
    CHECK(herd_data_next(d, 1, 0, tok, tgt, doc) == -1);
    herd_data_close(d);
    unlink(p);
}

/* ---- the sampler ------------------------------------------------------------ */

/* ids[i] = i: a window is known by its first token. 1001 tokens, T = 10: 100 windows. */
#define NS 1001
static const char *counting_shard(void)
{
    static uint32_t ids[NS];
    for (uint32_t i = 0; i < NS; i++) ids[i] = i;
    const char *p = tmp_path("count.bin");
    return herd_shard_write(p, ids, NS, 4096, 4095) == 0 ? p : "";
}

TEST(full_epochs_visit_every_window_once)
{
    const char *p = counting_shard();
    herd_data *d;
    CHECK(herd_data_open(&d, p, 4096, 3) == 0);
    if (!d) return;
    enum { T = 10, W = 100 };
    CHECK(herd_data_n_windows(d, T) == W);
    int32_t tok[T], tgt[T], doc[T], first[3][W];
    for (int e = 0; e < 3; e++) {
        int seen[W] = {0};
        for (int i = 0; i < W; i++) {
            CHECK(herd_data_next(d, 1, T, tok, tgt, doc) == 0);
            CHECK(tok[0] % T == 0 && tgt[T - 1] == tok[0] + T && doc[T - 1] == 0);
            if (tok[0] % T == 0 && tok[0] / T < W) seen[tok[0] / T]++;
            first[e][i] = tok[0];
            herd_data_state s;
            herd_data_get_state(d, &s);
            CHECK(s.epoch == (uint64_t)e && s.index == (uint64_t)i + 1 && s.T == T && s.seed == 3);
        }
        for (int w = 0; w < W; w++) CHECK(seen[w] == 1);
    }
    /* each epoch has its own order, and it is not the identity */
    CHECK(memcmp(first[0], first[1], sizeof first[0]) && memcmp(first[1], first[2], sizeof first[0]));
    int identity = 1;
    for (int i = 0; i < W; i++) identity &= first[0][i] == i * T;
    CHECK(!identity);
    herd_data_close(d);
    unlink(p);
}

TEST(same_seed_same_batches_other_seed_differs)
{
    const char *p = counting_shard();
    herd_data *a, *b, *c;
    CHECK(herd_data_open(&a, p, 4096, 7) == 0);
    CHECK(herd_data_open(&b, p, 4096, 7) == 0);
    CHECK(herd_data_open(&c, p, 4096, 8) == 0);
    if (!a || !b || !c) return;
    enum { B = 4, T = 16 };
    int32_t ta[B * T], tb[B * T], tc[B * T], x[B * T], y[B * T];
    int differs = 0;
    for (int i = 0; i < 40; i++) { /* 160 windows: past the end of the first epoch */
        CHECK(herd_data_next(a, B, T, ta, x, y) == 0);
        CHECK(herd_data_next(b, B, T, tb, x, y) == 0);
        CHECK(herd_data_next(c, B, T, tc, x, y) == 0);
        CHECK(!memcmp(ta, tb, sizeof ta));
        differs |= memcmp(ta, tc, sizeof ta) != 0;
    }
    CHECK(differs);
    herd_data_close(a);
    herd_data_close(b);
    herd_data_close(c);
    unlink(p);
}

TEST(state_restore_continues_exactly)
{
    const char *p = counting_shard();
    herd_data *a, *r;
    CHECK(herd_data_open(&a, p, 4096, 11) == 0);
    CHECK(herd_data_open(&r, p, 4096, 999) == 0); /* the state carries the seed */
    if (!a || !r) return;
    enum { B = 3, T = 8 };
    int32_t ta[B * T], tr[B * T], x[B * T], y[B * T];
    for (int i = 0; i < 30; i++) herd_data_next(a, B, T, ta, x, y); /* 90 of 125 windows */
    herd_data_state s;
    herd_data_get_state(a, &s);
    CHECK(s.seed == 11 && s.epoch == 0 && s.index == 90 && s.T == T);
    CHECK(herd_data_set_state(r, &s) == 0);
    for (int i = 0; i < 100; i++) { /* through two epoch boundaries */
        CHECK(herd_data_next(a, B, T, ta, x, y) == 0);
        CHECK(herd_data_next(r, B, T, tr, x, y) == 0);
        CHECK(!memcmp(ta, tr, sizeof ta));
    }
    herd_data_get_state(a, &s);
    CHECK(s.epoch == 3); /* 390 windows of 125 per epoch */
    herd_data_state bad = {11, 0, 126, T};
    CHECK(herd_data_set_state(r, &bad) == -1); /* beyond the 125 windows */
    herd_data_close(a);
    herd_data_close(r);
    unlink(p);
}

/* A new T (the batch ramp) restarts the current epoch's order at index 0. */
TEST(new_sequence_length_restarts_the_epoch)
{
    const char *p = counting_shard();
    herd_data *a, *f;
    CHECK(herd_data_open(&a, p, 4096, 5) == 0);
    CHECK(herd_data_open(&f, p, 4096, 5) == 0);
    if (!a || !f) return;
    int32_t ta[40], tf[40], x[40], y[40];
    for (int i = 0; i < 130; i++) herd_data_next(a, 1, 8, ta, x, y); /* into epoch 1 */
    CHECK(herd_data_next(a, 2, 20, ta, x, y) == 0);
    herd_data_state s;
    herd_data_get_state(a, &s);
    CHECK(s.epoch == 1 && s.index == 2 && s.T == 20);
    herd_data_state fresh = {5, 1, 0, 20};
    CHECK(herd_data_set_state(f, &fresh) == 0);
    CHECK(herd_data_next(f, 2, 20, tf, x, y) == 0);
    CHECK(!memcmp(ta, tf, sizeof ta));
    herd_data_close(a);
    herd_data_close(f);
    unlink(p);
}

/* ---- bad input ---------------------------------------------------------------- */

TEST(bad_shards_are_refused_with_the_field)
{
    uint32_t ids[] = {3, 4, 0, 5, 6, 7, 0, 8};
    const char *good = tmp_path("good.bin"), *bad = tmp_path("bad.bin");
    CHECK(herd_shard_write(good, ids, 8, 100, 0) == 0);
    unsigned char buf[256];
    FILE *f = fopen(good, "rb");
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    CHECK(n == HERD_SHARD_HEADER + 16);

    CHECK(open_fails_with(tmp_path("nonexistent.bin"), 128, "file: cannot open"));
    CHECK(open_fails_with(dir, 128, "file: not a regular file"));
    CHECK(open_fails_with(good, 64, "vocab_size: 100 is larger than the model's vocab_size 64"));
    write_bytes(bad, buf, n - 3);
    CHECK(open_fails_with(bad, 128, "n_tokens: truncated: header says 8 tokens (80 bytes) but the "
                                    "file has 77 bytes"));
    unsigned char longer[256];
    memcpy(longer, buf, n);
    longer[n] = longer[n + 1] = 0;
    write_bytes(bad, longer, n + 2);
    CHECK(open_fails_with(bad, 128, "n_tokens: trailing bytes"));
    write_bytes(bad, buf, 40);
    CHECK(open_fails_with(bad, 128, "header: the file has 40 bytes"));
    buf[0] = 'X';
    write_bytes(bad, buf, n);
    CHECK(open_fails_with(bad, 128, "magic"));

    uint16_t raw[] = {1, 2, 150, 0};
    write_raw_shard(bad, 2, 2, 100, 0, 4, raw, 4);
    CHECK(open_fails_with(bad, 128, "version: version 2 is not supported"));
    write_raw_shard(bad, 1, 3, 100, 0, 4, raw, 4);
    CHECK(open_fails_with(bad, 128, "dtype_bytes: 3"));
    write_raw_shard(bad, 1, 2, 100, 100, 4, raw, 4);
    CHECK(open_fails_with(bad, 128, "eot_id: 100 is not below vocab_size 100"));
    write_raw_shard(bad, 1, 2, 100, 0, 4, raw, 4);
    CHECK(open_fails_with(bad, 128, "tokens: id 150 at index 2 is not below vocab_size 100"));
    write_raw_shard(bad, 1, 2, 100, 0, UINT64_MAX / 2, raw, 4); /* n_tokens * 2 overflows */
    CHECK(open_fails_with(bad, 128, "n_tokens: truncated"));
    unlink(bad);
    unlink(good);
}

/* Every index gives a different key of five different digits, first digit 1-9;
 * the values are those slurm/recipe_passkey.sh's awk gives (its prompts must
 * ask for keys made the same way as the training documents'). */
TEST(passkey_keys_have_distinct_digits)
{
    static unsigned char seen[100000];
    int bad = 0;
    for (uint64_t i = 0; i < 27216; i++) {
        unsigned k = herd_passkey_key(i), mask = 0;
        if (k < 10000 || k > 99999 || seen[k]++) bad++;
        for (unsigned v = k; v; v /= 10) mask |= 1u << (v % 10);
        if (__builtin_popcount(mask) != 5) bad++;
    }
    CHECK(bad == 0);
    CHECK(herd_passkey_key(0) == 10234 && herd_passkey_key(1) == 20134 && herd_passkey_key(9) == 12034);
    CHECK(herd_passkey_key(27215) == 98765 && herd_passkey_key(12345) == 73084);
    CHECK(herd_passkey_key(27216) == herd_passkey_key(0));
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/herd-test-data-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(shard_round_trip_uint16);
    RUN(shard_round_trip_uint32);
    RUN(shard_write_leaves_no_temp_file);
    RUN(windows_targets_and_doc_ids);
    RUN(too_short_for_a_sequence);
    RUN(full_epochs_visit_every_window_once);
    RUN(same_seed_same_batches_other_seed_differs);
    RUN(state_restore_continues_exactly);
    RUN(new_sequence_length_restarts_the_epoch);
    RUN(bad_shards_are_refused_with_the_field);
    RUN(passkey_keys_have_distinct_digits);
    rmdir(dir);
    return test_summary();
}

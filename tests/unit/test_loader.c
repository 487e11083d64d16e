/* test_loader.c — the mixed-source loader: proportions of the mix, exact
 * resume from the state at every step, ranks' slices adding up to the single
 * process's batch, prefetch on == off, a change of T or of the weights that
 * neither repeats nor skips, validation batches, and bad weights/states. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/data/data.h"
#include "src/data/loader.h"
#include "tests/unit/test.h"

#define NS 4
#define VOCAB 65536
#define EOT 65535
static char dir[] = "/tmp/herd_loader_XXXXXX";
static herd_data_source src[NS];
/* source s holds ids s*16000 + position (all distinct, so an id tells its
 * source and its place), with an EOT every 37 tokens; sizes differ */
static const uint64_t sizes[NS] = {12000, 9000, 7001, 3000};

static void make_shards(void)
{
    const char *names[NS] = {"general", "math", "code", "multilingual"};
    const double w[NS] = {0.50, 0.25, 0.17, 0.08};
    for (int s = 0; s < NS; s++) {
        uint32_t *ids = malloc(sizeof(uint32_t) * sizes[s]);
        for (uint64_t i = 0; i < sizes[s]; i++) ids[i] = i % 37 == 36 ? EOT : (uint32_t)(s * 16000 + i);
        snprintf(src[s].name, sizeof src[s].name, "%s", names[s]);
        snprintf(src[s].path, sizeof src[s].path, "%s/%s.bin", dir, names[s]);
        snprintf(src[s].val_path, sizeof src[s].val_path, "%s/%s.val.bin", dir, names[s]);
        src[s].weight = w[s];
        herd_shard_write(src[s].path, ids, sizes[s], VOCAB, EOT);
        herd_shard_write(src[s].val_path, ids, 1000, VOCAB, EOT);
        free(ids);
    }
}

static int source_of(int32_t id) { return id == EOT ? -1 : id / 16000; }

TEST(mix_proportions_within_1pct_over_1M_tokens)
{
    herd_loader *l;
    CHECK(herd_loader_open_sources(&l, src, NS, 7, VOCAB) == 0);
    if (!l) return;
    enum { T = 64, G = 16 };
    static int32_t tok[G * T], tgt[G * T], doc[G * T];
    uint64_t n[NS] = {0}, total = 0;
    while (total < 1000000) {
        CHECK(herd_loader_next(l, T, G, 0, G, tok, tgt, doc) == 0);
        for (int b = 0; b < G; b++) {
            int s = -1;
            for (int t = 0; t < T && s < 0; t++) s = source_of(tok[b * T + t]);
            n[s] += T;
            total += T;
        }
    }
    for (int s = 0; s < NS; s++) {
        double share = (double)n[s] / (double)total;
        printf("  %-12s weight %.2f share %.4f\n", src[s].name, src[s].weight, share);
        CHECK_NEAR(share, src[s].weight, 0.01);
        CHECK(herd_loader_source_count(l, s) * T == n[s]);
    }
    herd_loader_close(l);
}

/* K batches of G x T from a fresh loader (or one restored to `state`). */
static void run(herd_loader *l, int K, int T, int G, int64_t first, int64_t count, int32_t *out)
{
    static int32_t tgt[1 << 16], doc[1 << 16];
    for (int k = 0; k < K; k++)
        if (herd_loader_next(l, T, G, first, count, out + (size_t)k * count * T, tgt, doc)) {
            CHECK(!"next failed");
            return;
        }
}

TEST(resume_at_every_step_is_exact)
{
    enum { K = 40, T = 48, G = 6 };
    static int32_t ref[K * G * T], got[K * G * T];
    herd_loader *a;
    CHECK(herd_loader_open_sources(&a, src, NS, 11, VOCAB) == 0);
    if (!a) return;
    run(a, K, T, G, 0, G, ref);
    herd_loader_close(a);
    for (int stop = 0; stop <= K; stop++) {
        herd_loader *b, *c;
        herd_loader_open_sources(&b, src, NS, 11, VOCAB);
        run(b, stop, T, G, 0, G, got);
        size_t sz = herd_loader_state_size(b);
        unsigned char state[1024];
        CHECK(sz <= sizeof state && herd_loader_get_state(b, state, sz) == 0);
        herd_loader_close(b);
        herd_loader_open_sources(&c, src, NS, 11, VOCAB);
        CHECK(herd_loader_set_state(c, state, sz) == 0);
        run(c, K - stop, T, G, 0, G, got + (size_t)stop * G * T);
        herd_loader_close(c);
        if (memcmp(ref, got, sizeof ref)) {
            fprintf(stderr, "  resumed after step %d differs\n", stop);
            CHECK(0);
            return;
        }
    }
}

TEST(ranks_slices_union_is_the_single_batch)
{
    enum { K = 30, T = 40, G = 8, R = 4 };
    static int32_t ref[K * G * T], part[K * (G / R) * T];
    herd_loader *a;
    herd_loader_open_sources(&a, src, NS, 3, VOCAB);
    run(a, K, T, G, 0, G, ref);
    unsigned char sa[1024], sb[1024];
    herd_loader_get_state(a, sa, sizeof sa);
    herd_loader_close(a);
    for (int r = 0; r < R; r++) {
        herd_loader *b;
        herd_loader_open_sources(&b, src, NS, 3, VOCAB);
        run(b, K, T, G, r * (G / R), G / R, part);
        herd_loader_get_state(b, sb, sizeof sb);
        CHECK(!memcmp(sa, sb, herd_loader_state_size(b))); /* every rank's state is the same */
        for (int k = 0; k < K; k++)
            CHECK(!memcmp(part + (size_t)k * (G / R) * T, ref + ((size_t)k * G + (size_t)r * (G / R)) * T,
                          sizeof(int32_t) * (G / R) * T));
        herd_loader_close(b);
    }
}

TEST(prefetch_on_equals_off)
{
    enum { K = 50, T = 32, G = 5 };
    static int32_t a_out[K * G * T], b_out[K * G * T];
    herd_loader *a, *b;
    herd_loader_open_sources(&a, src, NS, 5, VOCAB);
    herd_loader_open_sources(&b, src, NS, 5, VOCAB);
    herd_loader_set_prefetch(b, 0);
    run(a, K, T, G, 1, 3, a_out); /* with a thread, a rank's slice */
    run(b, K, T, G, 1, 3, b_out);
    CHECK(!memcmp(a_out, b_out, sizeof(int32_t) * K * 3 * T));
    /* a change of arguments misses the prefetched batch and still matches */
    run(a, 3, 16, G, 0, G, a_out);
    run(b, 3, 16, G, 0, G, b_out);
    CHECK(!memcmp(a_out, b_out, sizeof(int32_t) * 3 * G * 16));
    herd_loader_close(a);
    herd_loader_close(b);
}

/* The token stream of one source, T tokens per window, independent of T. */
TEST(changing_T_neither_repeats_nor_skips)
{
    herd_data_source one = src[0];
    one.weight = 1;
    herd_loader *a, *b;
    herd_loader_open_sources(&a, &one, 1, 9, VOCAB);
    herd_loader_open_sources(&b, &one, 1, 9, VOCAB);
    enum { N = 96 * 100 };
    static int32_t sa[N], sb[N];
    run(a, N / 32, 32, 1, 0, 1, sa);            /* all at T = 32 */
    run(b, 50, 32, 1, 0, 1, sb);                /* 1600 tokens at 32 ... */
    run(b, 50, 96, 1, 0, 1, sb + 1600);         /* ... 4800 at 96 ... */
    run(b, 50, 64, 1, 0, 1, sb + 6400);         /* ... 3200 at 64 */
    CHECK(!memcmp(sa, sb, sizeof sa));
    /* and no id repeats inside the epoch (N < the shard's 12000 tokens) */
    static unsigned char seen[16000];
    int dup = 0;
    for (int i = 0; i < N; i++)
        if (sb[i] != EOT) dup |= seen[sb[i]]++;
    CHECK(!dup);
    herd_loader_close(a);
    herd_loader_close(b);
}

TEST(changing_weights_keeps_cursors)
{
    herd_loader *l;
    herd_loader_open_sources(&l, src, NS, 1, VOCAB);
    enum { T = 16, G = 10 };
    static int32_t tok[G * T], tgt[G * T], doc[G * T];
    static unsigned char seen[NS * 16000];
    int dup = 0;
    double anneal[NS] = {0, 1, 1, 0}; /* upsample two sources */
    for (int k = 0; k < 60; k++) {
        if (k == 30) CHECK(herd_loader_set_weights(l, anneal, NS) == 0);
        herd_loader_next(l, T, G, 0, G, tok, tgt, doc);
        for (int i = 0; i < G * T; i++) {
            if (tok[i] == EOT) continue;
            dup |= seen[tok[i]]++;
            if (k >= 30) CHECK(source_of(tok[i]) == 1 || source_of(tok[i]) == 2);
        }
    }
    CHECK(!dup); /* 600 sequences x 16 < any epoch: nothing read twice */
    /* resume inside the annealing stage: the state carries its weights */
    unsigned char st[1024];
    size_t sz = herd_loader_state_size(l);
    herd_loader_get_state(l, st, sz);
    herd_loader *r;
    herd_loader_open_sources(&r, src, NS, 1, VOCAB); /* opened with the config's weights */
    CHECK(herd_loader_set_state(r, st, sz) == 0);
    static int32_t t2[G * T];
    int same = 1;
    for (int k = 0; k < 20; k++) {
        herd_loader_next(l, T, G, 0, G, tok, tgt, doc);
        herd_loader_next(r, T, G, 0, G, t2, tgt, doc);
        same &= !memcmp(tok, t2, sizeof tok);
    }
    CHECK(same);
    herd_loader_close(r);
    herd_loader_close(l);
}

TEST(doc_ids_and_targets)
{
    herd_loader *l;
    herd_loader_open_sources(&l, &src[3], 1, 2, VOCAB);
    enum { T = 100 };
    int32_t tok[T], tgt[T], doc[T];
    herd_loader_next(l, T, 1, 0, 1, tok, tgt, doc); /* inside the first block */
    int ok = doc[0] == 0;
    for (int t = 1; t < T; t++) {
        ok &= doc[t] - doc[t - 1] == (tok[t - 1] == EOT); /* the EOT ends its document */
        ok &= tgt[t - 1] == tok[t];
    }
    CHECK(ok);
    herd_loader_close(l);
    /* a window across a block boundary: the blocks are not neighbours, so a new document */
    enum { T2 = HERD_LOADER_BLOCK + 50 };
    static int32_t tk[T2], tg[T2], dc[T2];
    herd_loader_open_sources(&l, &src[0], 1, 2, VOCAB);
    herd_loader_next(l, T2, 1, 0, 1, tk, tg, dc);
    CHECK(dc[HERD_LOADER_BLOCK] > dc[HERD_LOADER_BLOCK - 1]);
    herd_loader_close(l);
}

TEST(validation_batches_repeat)
{
    herd_loader *l;
    herd_loader_open_sources(&l, src, NS, 2, VOCAB);
    CHECK(herd_loader_n_val_sources(l) == NS);
    CHECK(!strcmp(herd_loader_val_name(l, 2), "code"));
    int32_t a[4 * 50], b[4 * 50], tg[4 * 50], d[4 * 50];
    CHECK(herd_loader_val_batch(l, 1, 3, 4, 50, a, tg, d) == 0);
    CHECK(herd_loader_val_batch(l, 1, 3, 4, 50, b, tg, d) == 0);
    CHECK(!memcmp(a, b, sizeof a) && source_of(a[0]) == 1);
    CHECK(herd_loader_val_bytes_per_token(l, 0) == 0); /* no .meta, not byte-level: unknown */
    herd_loader_close(l);
}

TEST(bad_weights_and_states)
{
    herd_data_source bad[NS];
    memcpy(bad, src, sizeof bad);
    herd_loader *l;
    fprintf(stderr, "  (the messages below are expected)\n");
    bad[1].weight = -0.5;
    CHECK(herd_loader_open_sources(&l, bad, NS, 1, VOCAB) == -1 && l == NULL);
    for (int s = 0; s < NS; s++) bad[s].weight = 0;
    CHECK(herd_loader_open_sources(&l, bad, NS, 1, VOCAB) == -1);
    CHECK(herd_loader_open_sources(&l, src, NS, 1, 1000) == -1); /* shard vocab > model vocab */
    CHECK(herd_loader_open_sources(&l, src, NS, 1, VOCAB) == 0);
    unsigned char st[1024];
    herd_loader_get_state(l, st, sizeof st);
    size_t sz = herd_loader_state_size(l);
    CHECK(herd_loader_set_state(l, st, sz - 1) == -1);
    st[0] ^= 1;
    CHECK(herd_loader_set_state(l, st, sz) == -1);
    st[0] ^= 1;
    herd_loader *two;
    herd_loader_open_sources(&two, src, 2, 1, VOCAB);
    CHECK(herd_loader_set_state(two, st, sz) == -1); /* 4 sources into 2 */
    herd_loader_close(two);
    herd_loader_open_sources(&two, src, NS, 2, VOCAB);
    CHECK(herd_loader_set_state(two, st, sz) == -1); /* another seed */
    herd_loader_close(two);
    double zero[NS] = {0};
    CHECK(herd_loader_set_weights(l, zero, NS) == -1);
    herd_loader_close(l);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    make_shards();
    RUN(mix_proportions_within_1pct_over_1M_tokens);
    RUN(resume_at_every_step_is_exact);
    RUN(ranks_slices_union_is_the_single_batch);
    RUN(prefetch_on_equals_off);
    RUN(changing_T_neither_repeats_nor_skips);
    RUN(changing_weights_keeps_cursors);
    RUN(doc_ids_and_targets);
    RUN(validation_batches_repeat);
    RUN(bad_weights_and_states);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) return 1;
    return test_summary();
}

/* test_data.c — token shards, packing with document ids, the seeded sampler,
 * (the config is tested in test_config.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "src/data.h"
#include "tests/unit/test.h"

static char dir[64], path[128];

/* 10 documents of lengths 3..12, ids 1..99, each ended by eot 0 */
static uint32_t *make_ids(uint64_t *n)
{
    uint32_t *ids = malloc(sizeof(uint32_t) * 200);
    uint64_t k = 0;
    for (int doc = 0; doc < 10; doc++) {
        for (int j = 0; j < 3 + doc; j++) ids[k++] = (uint32_t)(1 + (doc * 7 + j) % 99);
        ids[k++] = 0;
    }
    *n = k;
    return ids;
}

TEST(shard_round_trip)
{
    uint64_t n;
    uint32_t *ids = make_ids(&n);
    CHECK(herd_shard_write(path, ids, n, 100, 0) == 0);
    herd_data *d;
    CHECK(herd_data_open(&d, path, 128, 1) == 0);
    const herd_shard_header *h = herd_data_header(d);
    CHECK(h->n_tokens == n && h->n_docs == 10 && h->vocab_size == 100 && h->eot_id == 0);
    CHECK(h->dtype_bytes == 2);
    herd_data_close(d);
    free(ids);
}

TEST(windows_targets_and_doc_ids)
{
    uint64_t n;
    uint32_t *ids = make_ids(&n);
    herd_data *d;
    CHECK(herd_data_open(&d, path, 128, 1) == 0);
    enum { T = 16 };
    int32_t tok[T], tgt[T], doc[T];
    uint64_t W = (n - 1) / T;
    for (uint64_t w = 0; w < W; w++) {
        CHECK(herd_data_next(d, 1, T, tok, tgt, doc) == 0);
        /* find the window in the stream: it starts at a multiple of T */
        int64_t start = -1;
        for (uint64_t s = 0; s + T < n; s += T)
            if ((uint32_t)tok[0] == ids[s] && (uint32_t)tok[1] == ids[s + 1] &&
                (uint32_t)tok[T - 1] == ids[s + T - 1])
                start = (int64_t)s;
        CHECK(start >= 0);
        if (start < 0) break;
        int32_t expect_doc = 0;
        for (int t = 0; t < T; t++) {
            CHECK((uint32_t)tok[t] == ids[start + t]);
            CHECK((uint32_t)tgt[t] == ids[start + t + 1]);
            CHECK(doc[t] == expect_doc);
            expect_doc += ids[start + t] == 0; /* the eot belongs to the document it ends */
        }
    }
    herd_data_close(d);
    free(ids);
}

TEST(sampler_epoch_determinism_and_resume)
{
    herd_data *a, *b, *c;
    CHECK(herd_data_open(&a, path, 128, 7) == 0);
    CHECK(herd_data_open(&b, path, 128, 7) == 0);
    CHECK(herd_data_open(&c, path, 128, 8) == 0);
    enum { T = 8 };
    const herd_shard_header *h = herd_data_header(a);
    int W = (int)((h->n_tokens - 1) / T);
    int32_t ta[T], tb[T], tc[T], x[T], y[T];
    int *seen = calloc(W, sizeof(int)), differs = 0;
    uint64_t n_ids;
    uint32_t *ids = make_ids(&n_ids);
    for (int i = 0; i < W; i++) {
        herd_data_next(a, 1, T, ta, x, y);
        herd_data_next(b, 1, T, tb, x, y);
        herd_data_next(c, 1, T, tc, x, y);
        CHECK(!memcmp(ta, tb, sizeof ta));
        differs |= memcmp(ta, tc, sizeof ta) != 0;
        /* every window exactly once per epoch: claim an unclaimed start with
         * the same content */
        int found = 0;
        for (int w = 0; w < W && !found; w++) {
            int same = !seen[w];
            for (int t = 0; t < T && same; t++) same = (uint32_t)ta[t] == ids[w * T + t];
            if (same) seen[w] = found = 1;
        }
        CHECK(found);
        herd_data_state s;
        herd_data_get_state(a, &s);
        CHECK(s.epoch == 0 && s.index == (uint64_t)i + 1);
    }
    CHECK(differs);
    /* resume: a state copied into a fresh reader gives the same continuation */
    herd_data_state s;
    herd_data_get_state(a, &s);
    herd_data *r;
    CHECK(herd_data_open(&r, path, 128, 0) == 0);
    herd_data_set_state(r, &s);
    for (int i = 0; i < W + 3; i++) {
        herd_data_next(a, 1, T, ta, x, y);
        herd_data_next(r, 1, T, tb, x, y);
        CHECK(!memcmp(ta, tb, sizeof ta));
    }
    herd_data_get_state(a, &s);
    CHECK(s.epoch == 2); /* W + W + 3 windows read: third epoch */
    free(seen);
    free(ids);
    herd_data_close(a); herd_data_close(b); herd_data_close(c); herd_data_close(r);
}

static void write_bytes(const char *p, const void *buf, size_t n)
{
    FILE *f = fopen(p, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
}

TEST(bad_shards_are_refused)
{
    herd_data *d;
    char bad[160];
    snprintf(bad, sizeof bad, "%s/bad.bin", dir);
    CHECK(herd_data_open(&d, "/nonexistent/shard.bin", 128, 1) == -1);
    CHECK(herd_data_open(&d, path, 64, 1) == -1); /* shard vocab 100 > model 64 */
    FILE *f = fopen(path, "rb");
    unsigned char buf[512];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_bytes(bad, buf, n - 3);                 /* truncated */
    CHECK(herd_data_open(&d, bad, 128, 1) == -1);
    write_bytes(bad, buf, 40);                    /* shorter than the header */
    CHECK(herd_data_open(&d, bad, 128, 1) == -1);
    buf[0] = 'X';
    write_bytes(bad, buf, n);                     /* bad magic */
    CHECK(herd_data_open(&d, bad, 128, 1) == -1);
    uint32_t ids[4] = {1, 2, 150, 0};             /* id >= vocab */
    CHECK(herd_shard_write(bad, ids, 4, 200, 0) == 0);
    f = fopen(bad, "r+b");
    fseek(f, 16, SEEK_SET);
    fputc(100, f);                                /* vocab_size 200 -> 100 */
    fclose(f);
    CHECK(herd_data_open(&d, bad, 128, 1) == -1);
    unlink(bad);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/herd-test-data-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/shard.bin", dir);
    RUN(shard_round_trip);
    RUN(windows_targets_and_doc_ids);
    RUN(sampler_epoch_determinism_and_resume);
    RUN(bad_shards_are_refused);
    unlink(path);
    rmdir(dir);
    return test_summary();
}

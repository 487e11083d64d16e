/* test_curate.c — cleaning: MinHash finds planted near-duplicates and keeps
 * distinct documents; normalisation + exact de-duplication; line-level
 * de-duplication of boilerplate; the heuristic filters; the report's counts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/data/curate.h"
#include "src/base/rng.h"
#include "tests/unit/test.h"

/* A document of n pseudo-words drawn from a 3000-word vocabulary. */
static size_t make_doc(char *out, uint64_t seed, int n)
{
    size_t w = 0;
    for (int i = 0; i < n; i++) {
        uint64_t r = herd_splitmix64(seed * 7919 + (uint64_t)i) % 3000;
        w += (size_t)sprintf(out + w, "%sw%llux", i ? " " : "", (unsigned long long)r);
    }
    return w;
}

enum { N_ORIG = 300, N_NEAR = 40, WORDS = 200 };

TEST(minhash_finds_planted_near_duplicates)
{
    herd_curate_params p;
    herd_curate_defaults(&p);
    static char text[N_ORIG + N_NEAR][WORDS * 8];
    static herd_doc docs[N_ORIG + N_NEAR];
    for (int j = 0; j < N_ORIG; j++) docs[j] = (herd_doc){(unsigned char *)text[j], make_doc(text[j], (uint64_t)j + 1, WORDS), 1};
    /* near copies of every 7th original: two words replaced, one appended */
    for (int k = 0; k < N_NEAR; k++) {
        int src = k * 7;
        char *t = text[N_ORIG + k];
        size_t n = docs[src].n;
        memcpy(t, text[src], n);
        t[10] = t[10] == 'w' ? 'q' : 'z';
        t[n / 2] = t[n / 2] == 'x' ? 'y' : '9';
        n += (size_t)sprintf(t + n, " extra");
        docs[N_ORIG + k] = (herd_doc){(unsigned char *)t, n, 1};
    }
    /* shuffle-free: copies come after their originals, as in a crawl */
    long marked = herd_minhash_dedup(&p, docs, N_ORIG + N_NEAR);
    int orig_kept = 0, near_gone = 0;
    for (int j = 0; j < N_ORIG; j++) orig_kept += docs[j].keep;
    for (int k = 0; k < N_NEAR; k++) near_gone += !docs[N_ORIG + k].keep;
    printf("  %d/%d distinct documents kept, %d/%d near-duplicates removed\n", orig_kept, N_ORIG,
           near_gone, N_NEAR);
    CHECK(orig_kept == N_ORIG);
    CHECK(near_gone == N_NEAR);
    CHECK(marked == N_NEAR);
    /* the estimate: a near copy is similar, two distinct documents are not */
    double s_near = herd_minhash_similarity(&p, docs[0].p, docs[0].n, docs[N_ORIG].p, docs[N_ORIG].n);
    double s_far = herd_minhash_similarity(&p, docs[1].p, docs[1].n, docs[2].p, docs[2].n);
    CHECK(s_near > 0.8 && s_near < 1.0);
    CHECK(s_far < 0.1);
}

static herd_doc doc_of(const char *s)
{
    herd_doc d = {(unsigned char *)strdup(s), strlen(s), 1};
    return d;
}

TEST(normalise_then_exact_dedup)
{
    herd_curate_params p;
    herd_curate_defaults(&p);
    p.min_bytes = 0;
    herd_doc d[4] = {doc_of("  Hello there, general reader.  \r\nSecond line here.\n\n\n\n"),
                     doc_of("Hello there, general reader.\nSecond line here."),
                     doc_of("\x01\x02 \n\t\n"), /* only control characters and blanks */
                     doc_of("Bad \xff byte, kept otherwise.")};
    herd_curate_report r;
    CHECK(herd_curate_run(&p, d, 4, &r) == 0);
    CHECK(d[0].keep && d[0].n == strlen("Hello there, general reader.\nSecond line here.") &&
          !memcmp(d[0].p, "Hello there, general reader.\nSecond line here.", d[0].n));
    CHECK(!d[1].keep && r.docs[HERD_CURATE_EXACT] == 1);
    CHECK(!d[2].keep && r.docs[HERD_CURATE_NORMALIZE] == 1);
    CHECK(d[3].keep && d[3].n == strlen("Bad  byte, kept otherwise."));
    CHECK(r.in_docs == 4 && r.out_docs == 2);
    for (int i = 0; i < 4; i++) free(d[i].p);
}

TEST(line_dedup_removes_boilerplate)
{
    herd_curate_params p;
    herd_curate_defaults(&p);
    p.min_bytes = 0;
    enum { N = 20 };
    herd_doc d[N];
    char buf[512];
    for (int i = 0; i < N; i++) {
        char body[300];
        make_doc(body, (uint64_t)i + 100, 30);
        snprintf(buf, sizeof buf, "Copyright 2024 Example Corp. All rights reserved.\n%s\nShort\n", body);
        d[i] = doc_of(buf);
    }
    herd_curate_report r;
    CHECK(herd_curate_run(&p, d, N, &r) == 0);
    int ok = 1;
    for (int i = 0; i < N; i++) {
        ok &= d[i].keep;
        ok &= memmem(d[i].p, d[i].n, "Copyright", 9) == NULL;  /* 20 > 6 times: gone */
        ok &= memmem(d[i].p, d[i].n, "Short", 5) != NULL;      /* too short to judge: kept */
        ok &= memmem(d[i].p, d[i].n, " w", 2) != NULL;         /* the content: kept */
    }
    CHECK(ok);
    CHECK(r.bytes[HERD_CURATE_LINES] == N * (strlen("Copyright 2024 Example Corp. All rights reserved.") + 1));
    for (int i = 0; i < N; i++) free(d[i].p);
    /* under the threshold, a repeated line stays */
    p.line_max_repeat = N;
    for (int i = 0; i < N; i++) {
        snprintf(buf, sizeof buf, "Copyright 2024 Example Corp. All rights reserved.\nunique %d text here", i);
        d[i] = doc_of(buf);
    }
    CHECK(herd_curate_run(&p, d, N, &r) == 0 && r.bytes[HERD_CURATE_LINES] == 0);
    for (int i = 0; i < N; i++) free(d[i].p);
}

TEST(heuristic_filters)
{
    herd_curate_params p;
    herd_curate_defaults(&p);
    char normal[2000], rep[2000];
    make_doc(normal, 42, 100);
    rep[0] = 0;
    for (int i = 0; i < 30; i++) strcat(rep, "buy cheap pills now today ");
    herd_doc d[4] = {doc_of(normal), doc_of("too short"), doc_of(rep),
                     doc_of("# # # title ## more ### and ... then ... and ... words here and there")};
    herd_curate_report r;
    CHECK(herd_curate_run(&p, d, 4, &r) == 0);
    CHECK(d[0].keep);
    CHECK(!d[1].keep && r.docs[HERD_CURATE_LENGTH] == 1);
    CHECK(!d[2].keep && r.docs[HERD_CURATE_DUP_NGRAM] == 1);
    CHECK(!d[3].keep && r.docs[HERD_CURATE_SYMBOLS] == 1);
    CHECK(r.out_docs == 1 && r.out_bytes == d[0].n);
    for (int i = 0; i < 4; i++) free(d[i].p);
}

TEST(bad_parameters)
{
    herd_curate_params p;
    herd_curate_defaults(&p);
    CHECK(herd_curate_check(&p) == 0);
    fprintf(stderr, "  (the messages below are expected)\n");
    p.minhash_bands = 7; /* does not divide 128 */
    CHECK(herd_curate_check(&p) == -1);
    herd_curate_defaults(&p);
    p.max_bytes = 1;
    CHECK(herd_curate_check(&p) == -1);
}

int main(void)
{
    RUN(minhash_finds_planted_near_duplicates);
    RUN(normalise_then_exact_dedup);
    RUN(line_dedup_removes_boilerplate);
    RUN(heuristic_filters);
    RUN(bad_parameters);
    return test_summary();
}

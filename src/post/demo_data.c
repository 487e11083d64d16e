/* demo_data.c — see demo_data.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "src/base/rng.h"
#include "src/post/demo_data.h"

/* Problem i of the stream `seed`: question and exact answer. Operands of up to
 * `digits` digits whose sums carry nothing (and differences borrow nothing):
 * each answer digit is a one-digit fact of the digits above it, so a small
 * model can generalise to unseen questions (with carries it would have to
 * learn the carry chain first: 2-digit sums with carries stayed under 10%
 * held-out accuracy at the demo's budget). Kinds: a+b, c-b, x+b=c. */
static void problem(uint64_t seed, uint64_t i, int digits, char *q, size_t nq, int *answer)
{
    uint64_t r = herd_splitmix64(seed * 0x9E3779B97F4A7C15ULL + i);
    int kind = (int)(r % 3), a = 0, b = 0, p10 = 1;
    r /= 3;
    for (int d = 0; d < digits; d++, p10 *= 10) {
        int k = (int)(r % 55), x = 0; /* the k-th of the 55 pairs (x, y) with x + y <= 9 */
        r /= 55;
        while (k >= 10 - x) k -= 10 - x, x++;
        a += x * p10, b += k * p10;
    }
    if (r & 1) { int t = a; a = b; b = t; }
    int c = a + b;
    if (kind == 0) snprintf(q, nq, "%d+%d=?", a, b), *answer = c;
    else if (kind == 1) snprintf(q, nq, "%d-%d=?", c, b), *answer = a;
    else snprintf(q, nq, "x+%d=%d, x=?", b, c), *answer = a; /* short algebra */
}

static void write_sft(FILE *f, const char *q, const char *ans)
{
    fprintf(f, "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"},"
               "{\"role\":\"assistant\",\"content\":\"%s\"}]}\n", q, ans);
}

/* Five files of one task, disjoint question sets:
 *   sft.jsonl      questions with their answers (the SFT data)
 *   pref.jsonl     other questions, correct vs a near miss (the preference data)
 *   pref_questions.jsonl  the same questions with their answers (for annotate:
 *                  pairs on the model's own samples, each round)
 *   prompts.jsonl  other questions without answers (rejection sampling's prompts)
 *   test.jsonl     held-out questions with answers (accuracy), none in the others
 *   corpus.txt     every question and answer as text (to train a tokenizer) */
int herd_post_demo_data_write(const herd_demo_data_args *a)
{
    const char *dir = a->dir;
    long n_train = a->n_train, n_test = a->n_test, n_pref = a->n_pref, n_rs = a->n_rs, digits = a->digits;
    uint64_t seed = a->seed;
    mkdir(dir, 0777);
    enum { SFT, TEST, PREF, PROMPTS, CORPUS, PREF_QA, N_FILES };
    char path[N_FILES][1200];
    const char *names[N_FILES] = {"sft.jsonl", "test.jsonl", "pref.jsonl", "prompts.jsonl", "corpus.txt",
                                  "pref_questions.jsonl"};
    FILE *f[N_FILES];
    for (int k = 0; k < N_FILES; k++) {
        snprintf(path[k], sizeof path[k], "%s/%s", dir, names[k]);
        if (!(f[k] = fopen(path[k], "w"))) {
            perror(path[k]);
            fprintf(stderr, "herd post demo-data: %s: cannot write\n", path[k]);
            return 1;
        }
    }
    char q[64], ans[16], bad[16];
    int x;
    /* the test set is a separate stream; a training question equal to a test one is dropped */
    char (*tq)[64] = malloc(sizeof *tq * (size_t)n_test);
    for (long i = 0; i < n_test; i++) {
        problem(seed + 1000, (uint64_t)i, (int)digits, tq[i], sizeof tq[i], &x);
        snprintf(ans, sizeof ans, "%d", x);
        write_sft(f[TEST], tq[i], ans);
    }
    long dropped = 0, n_sft = 0, n_pairs = 0, n_prompts = 0;
    for (long i = 0; i < n_train + n_pref + n_rs; i++) {
        problem(seed, (uint64_t)i, (int)digits, q, sizeof q, &x);
        int in_test = 0;
        for (long t = 0; t < n_test && !in_test; t++) in_test = !strcmp(q, tq[t]);
        if (in_test) {
            dropped++;
            continue;
        }
        snprintf(ans, sizeof ans, "%d", x);
        fprintf(f[CORPUS], "%s %s\n", q, ans);
        if (i < n_train) {
            write_sft(f[SFT], q, ans);
            n_sft++;
        } else if (i < n_train + n_pref) {
            n_pairs++; /* correct vs a near miss */
            uint64_t r = herd_splitmix64(seed ^ (uint64_t)i * 7919);
            int off = 1 + (int)(r % 10);
            snprintf(bad, sizeof bad, "%d", (r >> 8) & 1 && x >= off ? x - off : x + off);
            fprintf(f[PREF], "{\"prompt\":[{\"role\":\"user\",\"content\":\"%s\"}],"
                             "\"chosen\":\"%s\",\"rejected\":\"%s\"}\n", q, ans, bad);
            write_sft(f[PREF_QA], q, ans);
        } else {
            n_prompts++;
            fprintf(f[PROMPTS], "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}\n", q);
        }
    }
    int rc = 0;
    for (int k = 0; k < N_FILES; k++) rc |= fclose(f[k]) != 0;
    free(tq);
    printf("herd post demo-data: %s: %ld SFT conversations, %ld preference pairs, %ld prompts, %ld "
           "held-out, operands of %ld digits (%ld questions dropped as equal to a held-out one)\n", dir,
           n_sft, n_pairs, n_prompts, n_test, digits, dropped);
    return rc;
}

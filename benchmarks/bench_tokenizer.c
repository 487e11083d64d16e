/* bench_tokenizer.c — herd's BPE encoder throughput, one thread.
 *
 * usage: bench_tokenizer RANKS TEXT [REPEATS]
 * Encodes TEXT (ordinary text, no special tokens) REPEATS times (default 5)
 * and prints the best pass as a JSON line: MB/s (10^6 bytes per second) and
 * tokens. benchmarks/tokenizer.sh runs Python tiktoken on the same text and
 * rank file beside it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "src/data/tokenizer.h"
#include "monitoring/clock.h"
#include "src/base/file.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_tokenizer RANKS TEXT [REPEATS]\n");
        return 2;
    }
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    herd_tokenizer *t;
    if (herd_tokenizer_load(&t, argv[1])) return 1;
    size_t n;
    unsigned char *s = herd_file_slurp(argv[2], &n);
    if (!s) return 1;
    herd_ids ids = {0};
    double best = 1e30;
    for (int r = 0; r < (reps < 1 ? 1 : reps); r++) {
        ids.n = 0;
        double t0 = herd_now_s();
        if (herd_tokenizer_encode(t, s, n, 0, &ids)) return 1;
        double dt = herd_now_s() - t0;
        if (dt < best) best = dt;
    }
    printf("{\"bench\": \"tokenizer\", \"impl\": \"herd\", \"vocab\": %d, \"bytes\": %zu, \"tokens\": %zu, "
           "\"seconds\": %.4f, \"MB_per_s\": %.2f}\n",
           herd_tokenizer_vocab_size(t), n, ids.n, best, (double)n / best / 1e6);
    free(ids.ids);
    free(s);
    herd_tokenizer_free(t);
    return 0;
}

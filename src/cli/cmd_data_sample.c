/* cmd_data_sample.c — `herd data sample CONFIG`: open the training loader of a
 * config (data.sources or data.path) exactly as the trainer does, read
 * batches, and print what each source gave and what the validation sources
 * hold. It checks a mix before a run spends compute on it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/cli/commands.h"
#include "src/config/config.h"
#include "src/data/loader.h"

static int sample_usage(const char *why)
{
    if (why) fprintf(stderr, "herd data sample: %s\n", why);
    fputs("usage: herd data sample [--set section.key=value]... [--batches N] CONFIG\n"
          "  reads N global batches (default 100) of the first batch.ramp stage through the\n"
          "  loader and prints each source's share of the tokens and its validation split\n",
          stderr);
    return 2;
}

int herd_cmd_data_sample(int argc, char **argv)
{
    const char *path = NULL;
    long batches = 100;
    char **sets = malloc(sizeof(char *) * (size_t)argc);
    int n_sets = 0;
    if (!sets) return 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--set") && i + 1 < argc) sets[n_sets++] = argv[++i];
        else if (!strcmp(argv[i], "--batches") && i + 1 < argc) {
            char *end;
            batches = strtol(argv[++i], &end, 10);
            if (*end || batches < 1) {
                free(sets);
                return sample_usage("--batches: expected a positive count");
            }
        } else if (argv[i][0] == '-' && argv[i][1]) {
            free(sets);
            return sample_usage("unknown option or missing value");
        } else path = argv[i];
    }
    herd_config *c = malloc(sizeof *c);
    herd_loader *l = NULL;
    int rc = !c || herd_config_resolve(c, path, n_sets, sets) ||
             herd_loader_open(&l, c, c->model.vocab_size) ? 1 : 0;
    free(sets);
    int T = rc ? 0 : c->batch.ramp[0].seq_len;
    int64_t G = rc ? 0 : c->batch.ramp[0].batch_tokens / T;
    int32_t *buf = rc ? NULL : malloc(sizeof(int32_t) * 3 * (size_t)(G * T));
    if (!rc && !buf) rc = 1;
    for (long b = 0; !rc && b < batches; b++)
        if (herd_loader_next(l, T, G, 0, G, buf, buf + G * T, buf + 2 * G * T)) rc = 1;
    if (!rc) {
        uint64_t total = 0;
        for (int s = 0; s < herd_loader_n_sources(l); s++) total += herd_loader_source_count(l, s);
        printf("herd data sample: %ld batches of %lld x %d tokens, vocab_size %d\n", batches,
               (long long)G, T, c->model.vocab_size);
        printf("%-16s %8s %12s %8s\n", "source", "weight", "tokens", "share");
        for (int s = 0; s < herd_loader_n_sources(l); s++) {
            double w = c->data.n_sources ? c->data.sources[s].weight : 1.0;
            uint64_t n = herd_loader_source_count(l, s);
            printf("%-16s %8.3f %12llu %8.4f\n", herd_loader_source_name(l, s), w,
                   (unsigned long long)n * (unsigned long long)T, (double)n / (double)total);
        }
        for (int v = 0; v < herd_loader_n_val_sources(l); v++)
            printf("validation %-12s %.3f bytes/token\n", herd_loader_val_name(l, v),
                   herd_loader_val_bytes_per_token(l, v));
        printf("loader state: %zu bytes\n", herd_loader_state_size(l));
    }
    free(buf);
    herd_loader_close(l);
    free(c);
    return rc;
}

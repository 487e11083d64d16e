/* cmd_data_passkey.c — `herd data passkey`: a shard of synthetic retrieval
 * documents (src/data/passkey.h), one training source of a long-context stage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/cli/commands.h"
#include "src/data/data.h"
#include "src/data/loader.h"
#include "src/data/passkey.h"
#include "src/data/tokenizer.h"

static int passkey_usage(const char *why)
{
    if (why) fprintf(stderr, "herd data passkey: %s\n", why);
    fputs("usage: herd data passkey --tokenizer RANKS --len T --docs N [--seed S] --out SHARD\n"
          "  N documents of exactly T tokens each: a pass key at a random depth of a filler\n"
          "  haystack, the question for it at the end and the key as the answer. T divides\n"
          "  the loader's block of 2048 tokens or is a multiple of it, and N is rounded up\n"
          "  to whole blocks, so that sequences of T tokens hold one whole document each\n",
          stderr);
    return 2;
}

static int num(const char *s, long long lo, long long hi, long long *v)
{
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return errno || end == s || *end || *v < lo || *v > hi ? -1 : 0;
}

int herd_cmd_data_passkey(int argc, char **argv)
{
    const char *rank = NULL, *out = NULL;
    long long len = 0, docs = 0, seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--tokenizer") && i + 1 < argc) rank = argv[++i];
        else if (!strcmp(a, "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(a, "--len") && i + 1 < argc) {
            if (num(argv[++i], HERD_PASSKEY_MIN_LEN, 1 << 20, &len))
                return passkey_usage("--len: expected an integer from 64 to 1048576");
        } else if (!strcmp(a, "--docs") && i + 1 < argc) {
            if (num(argv[++i], 1, 1LL << 24, &docs)) return passkey_usage("--docs: expected a positive count");
        } else if (!strcmp(a, "--seed") && i + 1 < argc) {
            if (num(argv[++i], 0, 1LL << 62, &seed)) return passkey_usage("--seed: expected an integer >= 0");
        } else return passkey_usage(a[0] == '-' ? "unknown option or missing value" : "unexpected argument");
    }
    if (!rank || !out || !len || !docs) return passkey_usage("--tokenizer, --len, --docs and --out are required");
    if (HERD_LOADER_BLOCK % len && len % HERD_LOADER_BLOCK)
        return passkey_usage("--len: must divide 2048 (the loader's block) or be a multiple of it");
    long long per_block = len < HERD_LOADER_BLOCK ? HERD_LOADER_BLOCK / len : 1;
    docs = (docs + per_block - 1) / per_block * per_block;
    herd_tokenizer *t;
    if (herd_tokenizer_open(&t, rank, NULL)) return 1;
    herd_ids ids = {0};
    int rc = herd_passkey_docs(t, (int)len, docs, (uint64_t)seed, &ids) ||
             herd_shard_write(out, ids.ids, ids.n, (uint32_t)herd_tokenizer_vocab_size(t),
                              (uint32_t)(herd_tokenizer_n_regular(t) + HERD_TOK_EOT));
    if (!rc) printf("herd data passkey: %s: %lld documents of %lld tokens\n", out, docs, len);
    free(ids.ids);
    herd_tokenizer_free(t);
    return rc ? 1 : 0;
}

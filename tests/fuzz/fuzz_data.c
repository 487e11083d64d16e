/* fuzz_data.c — the token shard reader (src/data/data.c): header checks, the id
 * scan, then a few batches of the sampler from whatever shard passed. */
#include "src/data/data.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init(argc, argv);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_path(data, size);
    if (!path) return 0;
    herd_data *d;
    /* the model's vocabulary from the input, so that both outcomes are reached */
    int vocab = size > 8 ? 1 + (data[size - 1] | data[size - 2] << 8) : 512;
    if (herd_data_open(&d, path, vocab, size) == 0) {
        enum { B = 2, T = 8 };
        int32_t tokens[B * T], targets[B * T], doc[B * T];
        for (int i = 0; i < 3; i++) herd_data_next(d, B, T, tokens, targets, doc);
        herd_data_next(d, 1, 1, tokens, targets, doc);
        uint32_t ids[16];
        const herd_shard_header *h = herd_data_header(d);
        herd_data_read(d, h->n_tokens > 4 ? h->n_tokens - 4 : 0, 4, ids);
        herd_data_close(d);
    }
    return 0;
}

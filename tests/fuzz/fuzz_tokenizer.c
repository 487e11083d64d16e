/* fuzz_tokenizer.c — a tiktoken rank file (src/data/tokenizer.c): the loader,
 * then encode and decode of a fixed text and of the input itself with the
 * tokenizer it defines; decode(encode(s)) must give s back. */
#include "src/data/tokenizer.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init(argc, argv);
    return 0;
}

static void round_trip(const herd_tokenizer *t, const unsigned char *s, size_t n, int special)
{
    herd_ids ids = {0};
    if (herd_tokenizer_encode(t, s, n, special, &ids) == 0 && !special) {
        size_t len;
        unsigned char *back = herd_tokenizer_decode(t, ids.ids, ids.n, &len);
        if (!back || len != n || memcmp(back, s, n)) abort();
        free(back);
    }
    free(ids.ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    herd_tokenizer *t;
    if (herd_tokenizer_load_text(&t, "fuzz.tiktoken", (const char *)data, size)) return 0;
    static const char text[] = "Hello, herd! 12345 caf\xc3\xa9 \xf0\x9f\x98\x80 \xff\xfe <|eot_id|>\r\n\n  x";
    round_trip(t, (const unsigned char *)text, sizeof text - 1, 0);
    round_trip(t, (const unsigned char *)text, sizeof text - 1, 1);
    round_trip(t, data, size < 512 ? size : 512, 0);
    herd_tokenizer_free(t);
    return 0;
}

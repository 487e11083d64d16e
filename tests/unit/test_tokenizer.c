/* test_tokenizer.c — BPE: exact round trip on random bytes (invalid UTF-8
 * included), the pre-split on known cases, rank files saved and loaded back,
 * special tokens, and clear failures on bad rank files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "src/base/rng.h"
#include "src/data/tokenizer.h"
#include "src/data/tokenizer_impl.h"
#include "tests/unit/test.h"

static herd_tokenizer *trained;
static char tmpdir[] = "/tmp/herd_tok_XXXXXX";

static const char corpus[] =
    "The tokenizer learns merges from this text. It's the text it learns from; we'll "
    "encode the text, and decode the ids back to the text.\n\n  Numbers 123 4567 and "
    "code: int main(void) { return 0; }\n\tTabs\tand  spaces   galore.\n"
    "Grüße aus München, ça va très bien, 日本語 テキスト.\n";

static herd_tokenizer *train_small(int n)
{
    /* the corpus repeated, so that pairs have counts */
    size_t L = strlen(corpus), reps = 20;
    unsigned char *t = malloc(L * reps);
    for (size_t r = 0; r < reps; r++) memcpy(t + r * L, corpus, L);
    herd_tokenizer *tok = NULL;
    if (herd_tokenizer_train(&tok, t, L * reps, n)) tok = NULL;
    free(t);
    return tok;
}

static int roundtrip(const herd_tokenizer *t, const unsigned char *s, size_t n, int special)
{
    herd_ids ids = {0};
    if (herd_tokenizer_encode(t, s, n, special, &ids)) return 0;
    size_t len;
    unsigned char *back = herd_tokenizer_decode(t, ids.ids, ids.n, &len);
    int ok = back && len == n && !memcmp(back, s, n);
    free(back);
    free(ids.ids);
    return ok;
}

TEST(train_is_deterministic_and_compresses)
{
    CHECK(trained != NULL);
    if (!trained) return;
    CHECK(herd_tokenizer_n_regular(trained) == 400);
    CHECK(herd_tokenizer_vocab_size(trained) == 400 + 256);
    herd_tokenizer *again = train_small(400);
    CHECK(again != NULL);
    for (uint32_t id = 0; again && id < 400; id++) {
        size_t la, lb;
        const unsigned char *a = herd_tokenizer_token(trained, id, &la);
        const unsigned char *b = herd_tokenizer_token(again, id, &lb);
        if (la != lb || memcmp(a, b, la)) {
            CHECK(!"token differs between two trainings");
            break;
        }
    }
    herd_tokenizer_free(again);
    herd_ids ids = {0};
    CHECK(herd_tokenizer_encode(trained, (const unsigned char *)corpus, strlen(corpus), 0, &ids) == 0);
    CHECK(ids.n * 3 < strlen(corpus)); /* learned merges: well under one token per byte */
    free(ids.ids);
}

TEST(roundtrip_random_bytes)
{
    if (!trained) SKIP("no tokenizer");
    unsigned char buf[4096];
    for (int k = 0; k < 300; k++) {
        size_t n = (size_t)(herd_splitmix64((uint64_t)k) % sizeof buf);
        for (size_t i = 0; i < n; i++) {
            uint64_t r = herd_splitmix64((uint64_t)k * 1000003 + i);
            /* mix pure random bytes with runs of text-like bytes */
            buf[i] = (k % 3 == 0) ? (unsigned char)r : (unsigned char)" aeZ\n\t'9\xc3\xa9\xe6\x97\xa5\xff\x80"[r % 15];
        }
        if (!roundtrip(trained, buf, n, 0) || !roundtrip(trained, buf, n, 1)) {
            fprintf(stderr, "  round trip failed on case %d (%zu bytes)\n", k, n);
            CHECK(0);
            return;
        }
    }
    CHECK(roundtrip(trained, (const unsigned char *)"", 0, 0));
}

/* The heap merge (long pieces) and the quadratic scan pick the same pairs. */
TEST(long_piece_heap_equals_scan)
{
    if (!trained) SKIP("no tokenizer");
    static unsigned char buf[3000];
    for (int k = 0; k < 40; k++) {
        size_t n = 1 + (size_t)(herd_splitmix64((uint64_t)k + 77) % sizeof buf);
        for (size_t i = 0; i < n; i++) /* letters of the corpus: many merges apply */
            buf[i] = (unsigned char)"the text learns merges "[herd_splitmix64((uint64_t)k * 7777 + i) % (k % 2 ? 23 : 6)];
        herd_ids a = {0}, b = {0};
        CHECK(herd_tok_bpe_piece(trained, buf, n, &a, 1) == 0);
        CHECK(herd_tok_bpe_piece(trained, buf, n, &b, 2) == 0);
        if (a.n != b.n || memcmp(a.ids, b.ids, a.n * sizeof(uint32_t))) {
            fprintf(stderr, "  case %d (%zu bytes): %zu vs %zu ids\n", k, n, a.n, b.n);
            CHECK(0);
        }
        free(a.ids);
        free(b.ids);
    }
    /* a pathological piece: 1 MB of one symbol is fast (not quadratic) */
    size_t big = 1 << 20;
    unsigned char *s = malloc(big);
    memset(s, '=', big);
    herd_ids ids = {0};
    CHECK(herd_tokenizer_encode(trained, s, big, 0, &ids) == 0);
    size_t len;
    unsigned char *back = herd_tokenizer_decode(trained, ids.ids, ids.n, &len);
    CHECK(back && len == big && !memcmp(back, s, big));
    free(back);
    free(ids.ids);
    free(s);
}

static int pieces(const char *s, const char *const *want, int n_want)
{
    size_t n = strlen(s), i = 0;
    int k = 0;
    while (i < n) {
        size_t e = herd_pretok_next((const unsigned char *)s, n, i);
        if (k >= n_want || strlen(want[k]) != e - i || memcmp(want[k], s + i, e - i)) {
            fprintf(stderr, "  piece %d of \"%s\" is \"%.*s\"\n", k, s, (int)(e - i), s + i);
            return 0;
        }
        k++;
        i = e;
    }
    return k == n_want;
}

TEST(pretok_cases)
{
    const char *b[] = {"Hello", ",", " world", "'s", " ", "123", "4"};
    CHECK(pieces("Hello, world's 1234", b, 7));
    const char *c[] = {"a", "  ", " b", "\n\n", "c"};
    CHECK(pieces("a   b\n\nc", c, 5));
    const char *d[] = {"x", " ...\n", "  ", "\ty"}; /* [\r\n]* joins the punctuation */
    CHECK(pieces("x ...\n  \ty", d, 4));
    const char *e[] = {"I", "'LL", " go", "   "};
    CHECK(pieces("I'LL go   ", e, 4));
}

TEST(special_tokens)
{
    if (!trained) SKIP("no tokenizer");
    int n = herd_tokenizer_n_regular(trained);
    CHECK(herd_tokenizer_special_id(trained, "<|begin_of_text|>") == n);
    CHECK(herd_tokenizer_special_id(trained, "<|end_of_text|>") == n + 1);
    CHECK(herd_tokenizer_special_id(trained, "<|start_header_id|>") == n + 6);
    CHECK(herd_tokenizer_special_id(trained, "<|eot_id|>") == n + 9);
    CHECK(herd_tokenizer_special_id(trained, "<|reserved_special_token_250|>") == n + 255);
    CHECK(herd_tokenizer_special_id(trained, "<|nope|>") == -1);
    const char *s = "a<|eot_id|>b";
    herd_ids ids = {0};
    CHECK(herd_tokenizer_encode(trained, (const unsigned char *)s, strlen(s), 1, &ids) == 0);
    CHECK(ids.n == 3 && ids.ids[1] == (uint32_t)(n + 9));
    ids.n = 0;
    CHECK(herd_tokenizer_encode(trained, (const unsigned char *)s, strlen(s), 0, &ids) == 0);
    int any_special = 0;
    for (size_t i = 0; i < ids.n; i++) any_special |= ids.ids[i] >= (uint32_t)n;
    CHECK(!any_special); /* ordinary text unless allowed */
    free(ids.ids);
    uint32_t bad = (uint32_t)n + 256;
    size_t len;
    CHECK(herd_tokenizer_decode(trained, &bad, 1, &len) == NULL);
}

TEST(special_families)
{
    herd_tokenizer *t = train_small(300);
    if (!t) SKIP("no tokenizer");
    int n = herd_tokenizer_n_regular(t);
    CHECK(herd_tokenizer_special_id(t, "<|python_tag|>") == -1); /* llama3: reserved */
    CHECK(herd_tokenizer_bos(t) == n && herd_tokenizer_eos(t) == n + 1);
    CHECK(herd_tokenizer_set_specials(t, "llama3.1") == 0);
    CHECK(herd_tokenizer_special_id(t, "<|finetune_right_pad_id|>") == n + 4);
    CHECK(herd_tokenizer_special_id(t, "<|step_id|>") == n + 5);
    CHECK(herd_tokenizer_special_id(t, "<|eom_id|>") == n + 8);
    CHECK(herd_tokenizer_special_id(t, "<|eot_id|>") == n + 9);
    CHECK(herd_tokenizer_special_id(t, "<|python_tag|>") == n + 10);
    CHECK(herd_tokenizer_special_id(t, "<|reserved_special_token_2|>") == n + 11);
    CHECK(herd_tokenizer_special_id(t, "<|reserved_special_token_246|>") == n + 255);
    CHECK(!strcmp(herd_tokenizer_special_text(t, 2), "<|reserved_special_token_0|>"));
    CHECK(herd_tokenizer_special_text(t, 256) == NULL && herd_tokenizer_special_text(t, -1) == NULL);
    /* a failed change keeps the texts it had */
    CHECK(herd_tokenizer_set_specials(t, "llama2") == -1);
    CHECK(herd_tokenizer_set_specials(t, "/nonexistent/tokenizer.json") == -1);
    CHECK(herd_tokenizer_special_id(t, "<|python_tag|>") == n + 10);
    CHECK(herd_tokenizer_set_specials(t, "llama3") == 0);
    CHECK(herd_tokenizer_special_id(t, "<|reserved_special_token_4|>") == n + 8);
    herd_tokenizer_free(t);
}

static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
    return path;
}

TEST(save_load_roundtrip)
{
    if (!trained) SKIP("no tokenizer");
    char path[512];
    snprintf(path, sizeof path, "%s/ranks.tik", tmpdir);
    CHECK(herd_tokenizer_save(trained, path) == 0);
    herd_tokenizer *t;
    CHECK(herd_tokenizer_load(&t, path) == 0);
    if (!t) return;
    CHECK(herd_tokenizer_n_regular(t) == herd_tokenizer_n_regular(trained));
    herd_ids a = {0}, b = {0};
    herd_tokenizer_encode(trained, (const unsigned char *)corpus, strlen(corpus), 0, &a);
    herd_tokenizer_encode(t, (const unsigned char *)corpus, strlen(corpus), 0, &b);
    CHECK(a.n == b.n && !memcmp(a.ids, b.ids, a.n * sizeof(uint32_t)));
    free(a.ids);
    free(b.ids);
    herd_tokenizer_free(t);
}

TEST(bad_rank_files)
{
    herd_tokenizer *t;
    fprintf(stderr, "  (the messages below are expected)\n");
    CHECK(herd_tokenizer_load(&t, write_file("empty.tik", "")) == -1 && t == NULL);
    CHECK(herd_tokenizer_load(&t, write_file("nospace.tik", "QQ==0\n")) == -1);
    CHECK(herd_tokenizer_load(&t, write_file("b64.tik", "Q!== 0\n")) == -1);
    CHECK(herd_tokenizer_load(&t, write_file("rank.tik", "AA== 0\nAQ== 5\n")) == -1);
    CHECK(herd_tokenizer_load(&t, write_file("neg.tik", "AA== -1\n")) == -1);
    CHECK(herd_tokenizer_load(&t, write_file("bytes.tik", "AA== 0\nAQ== 1\n")) == -1); /* 254 bytes missing */
    CHECK(herd_tokenizer_load(&t, write_file("dup.tik", "AA== 0\nAA== 1\n")) == -1);
    CHECK(herd_tokenizer_load(&t, "/nonexistent/ranks.tik") == -1);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) return 1;
    trained = train_small(400);
    RUN(train_is_deterministic_and_compresses);
    RUN(roundtrip_random_bytes);
    RUN(long_piece_heap_equals_scan);
    RUN(pretok_cases);
    RUN(special_tokens);
    RUN(special_families);
    RUN(save_load_roundtrip);
    RUN(bad_rank_files);
    herd_tokenizer_free(trained);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) return 1;
    return test_summary();
}

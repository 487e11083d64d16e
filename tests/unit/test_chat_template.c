/* test_chat_template.c — herd's chat tokens against Llama 3 / 3.1's chat
 * templates: tests/fixtures/chat/cases.jsonl holds conversations and the text
 * transformers' apply_chat_template renders for them (make_fixture.py). For
 * each case, herd's tokens must decode to exactly that text and equal the
 * encoding of the text with special tokens allowed (what a tiktoken-style
 * tokenizer of the same vocabulary gives for the rendered template).
 * usage: [HERD_CHAT_RANKS=RANKS] test_chat_template [CASES.jsonl]
 * (tests/golden/chat_template.sh passes a freshly rendered file when
 * transformers is importable; HERD_CHAT_RANKS: a rank file to use instead of
 * the vocabulary trained on the fixture) */
#include <stdlib.h>
#include <string.h>
#include "src/base/file.h"
#include "src/data/chat.h"
#include "tests/unit/test.h"

static const char *cases_path = "tests/fixtures/chat/cases.jsonl";
static herd_tokenizer *tok;

/* A vocabulary trained on the fixture itself, so that pieces merge. */
static herd_tokenizer *train_on(const unsigned char *text, size_t n)
{
    herd_tokenizer *t = NULL;
    if (herd_tokenizer_train(&t, text, n, n > 4000 ? 500 : 270)) t = NULL;
    return t;
}

/* One case: -1 (with a message) when herd differs from the template. */
static int check_case(const herd_json *j, int line)
{
    const herd_json *tpl = herd_json_get(j, "template"), *gen = herd_json_get(j, "add_generation_prompt");
    const herd_json *text = herd_json_get(j, "text");
    if (!tpl || tpl->type != HERD_JSON_STR || !gen || !text || text->type != HERD_JSON_STR) return -1;
    herd_tokenizer_set_chat_template(tok, strcmp(tpl->str, "llama3") ? HERD_CHAT_LLAMA31 : HERD_CHAT_LLAMA3);
    herd_chat c;
    if (herd_chat_from_json(&c, herd_json_get(j, "messages"), cases_path, "messages")) return -1;
    herd_chat_tokens tk = {0};
    herd_ids want = {0};
    size_t len = 0;
    int rc = herd_chat_encode(tok, &c, 1, gen->type == HERD_JSON_BOOL && gen->num != 0, &tk);
    unsigned char *got = rc ? NULL : herd_tokenizer_decode(tok, tk.ids, tk.n, &len);
    if (!got || len != text->len || memcmp(got, text->str, len)) {
        fprintf(stderr, "  line %d (%s): herd renders\n%.*s\n  the template\n%s\n", line, tpl->str,
                (int)len, got ? (const char *)got : "", text->str);
        rc = -1;
    } else if (herd_tokenizer_encode(tok, (const unsigned char *)text->str, text->len, 1, &want) ||
               want.n != tk.n || memcmp(want.ids, tk.ids, tk.n * sizeof *tk.ids)) {
        fprintf(stderr, "  line %d (%s): same text, but %zu ids where the text encodes to %zu\n", line,
                tpl->str, tk.n, want.n);
        rc = -1;
    }
    free(got);
    free(want.ids);
    herd_chat_tokens_free(&tk);
    herd_chat_free(&c);
    return rc;
}

TEST(fixture_cases_match_template)
{
    size_t n;
    char *s = (char *)herd_file_slurp(cases_path, &n);
    if (!s) SKIP("no fixture file");
    const char *ranks = getenv("HERD_CHAT_RANKS"); /* e.g. Meta's Llama 3 tokenizer.model */
    if (ranks) {
        if (herd_tokenizer_load(&tok, ranks)) tok = NULL;
    } else
        tok = train_on((const unsigned char *)s, n);
    CHECK(tok != NULL);
    int line = 0, n_cases = 0, n_31 = 0, n_bad = 0;
    for (char *p = s, *nl; tok && p < s + n; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(s + n - p));
        if (!nl) nl = s + n;
        line++;
        if (nl == p) continue;
        herd_json j;
        char err[128];
        if (herd_json_parse(&j, p, (size_t)(nl - p), err, sizeof err)) {
            fprintf(stderr, "  %s: line %d: %s\n", cases_path, line, err);
            n_bad++;
            continue;
        }
        const herd_json *tpl = herd_json_get(&j, "template");
        n_31 += tpl && tpl->type == HERD_JSON_STR && !strcmp(tpl->str, "llama3.1");
        n_bad += check_case(&j, line) != 0;
        n_cases++;
        herd_json_free(&j);
    }
    printf("  %d cases (%d llama3.1), %d differ\n", n_cases, n_31, n_bad);
    CHECK(n_cases >= 20 && n_31 >= 10 && n_bad == 0);
    herd_tokenizer_free(tok);
    free(s);
}

/* The template choice follows the tokenizer's definition. */
TEST(template_follows_specials)
{
    static const unsigned char text[] = "hello world, hello chat templates";
    herd_tokenizer *t = train_on(text, sizeof text - 1);
    CHECK(t && herd_tokenizer_chat_template(t) == HERD_CHAT_LLAMA3);
    CHECK(herd_tokenizer_set_specials(t, "llama3.1") == 0);
    CHECK(herd_tokenizer_chat_template(t) == HERD_CHAT_LLAMA31);
    CHECK(herd_tokenizer_set_specials(t, "llama3") == 0);
    CHECK(herd_tokenizer_chat_template(t) == HERD_CHAT_LLAMA3);
    herd_tokenizer_free(t);
}

int main(int argc, char **argv)
{
    if (argc > 1) cases_path = argv[1];
    RUN(fixture_cases_match_template);
    RUN(template_follows_specials);
    return test_summary();
}

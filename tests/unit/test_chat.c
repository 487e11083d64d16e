/* test_chat.c — chat format, loss mask, data files and their bad input. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "src/data/chat.h"
#include "tests/unit/test.h"

static herd_tokenizer *tok;
static char dir[64];

static const char *write_file(const char *name, const char *text)
{
    static char path[160];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

TEST(json_parses_escapes_and_rejects_garbage)
{
    herd_json j;
    char err[128];
    const char *s = "{\"a\": [1, -2.5e1, true, null], \"b\": \"x\\n\\u00e9\\ud83d\\ude00\"}";
    CHECK(herd_json_parse(&j, s, strlen(s), err, sizeof err) == 0);
    const herd_json *a = herd_json_get(&j, "a"), *b = herd_json_get(&j, "b");
    CHECK(a && a->type == HERD_JSON_ARR && a->len == 4 && a->items[1].num == -25.0);
    CHECK(b && b->type == HERD_JSON_STR && !strcmp(b->str, "x\n\xc3\xa9\xf0\x9f\x98\x80"));
    herd_json_free(&j);
    const char *bad[] = {"{\"a\" 1}", "[1, 2", "{\"a\": \"unterminated}", "{} x", "[tru]"};
    for (int i = 0; i < 5; i++) CHECK(herd_json_parse(&j, bad[i], strlen(bad[i]), err, sizeof err) == -1);
}

/* The masked tokens decode to exactly the assistant contents, each followed by <|eot_id|>. */
TEST(mask_covers_exactly_assistant_tokens)
{
    const char *line = "{\"messages\": [{\"role\": \"system\", \"content\": \"be brief\"},"
                       "{\"role\": \"user\", \"content\": \"what is 2+3?\"},"
                       "{\"role\": \"assistant\", \"content\": \"5\"},"
                       "{\"role\": \"user\", \"content\": \"and 4*4?\"},"
                       "{\"role\": \"assistant\", \"content\": \"16, since 4*4=16\"}]}";
    herd_json j;
    char err[128];
    CHECK(herd_json_parse(&j, line, strlen(line), err, sizeof err) == 0);
    herd_chat c;
    CHECK(herd_chat_from_json(&c, herd_json_get(&j, "messages"), "x", "messages") == 0);
    herd_chat_tokens tk = {0};
    CHECK(herd_chat_encode(tok, &c, 1, 0, &tk) == 0);
    int n0 = herd_tokenizer_n_regular(tok), eot = n0 + HERD_TOK_EOT_ID;
    CHECK(tk.ids[0] == (uint32_t)(n0 + HERD_TOK_BOS) && tk.mask[0] == 0);
    /* masked content tokens, decoded, with a marker at each masked eot */
    herd_ids content = {0};
    int n_eot_masked = 0, n_eot = 0;
    for (size_t i = 0; i < tk.n; i++) {
        n_eot += tk.ids[i] == (uint32_t)eot;
        if (tk.mask[i] == HERD_MASK_EOT) {
            CHECK(tk.ids[i] == (uint32_t)eot);
            n_eot_masked++;
            const char *sep = "|";
            herd_tokenizer_encode(tok, (const unsigned char *)sep, 1, 0, &content);
        } else if (tk.mask[i] == HERD_MASK_CONTENT) {
            CHECK(tk.ids[i] < (uint32_t)n0);
            if (content.n == content.cap) {
                content.cap = content.cap ? 2 * content.cap : 64;
                content.ids = realloc(content.ids, content.cap * sizeof(uint32_t));
            }
            content.ids[content.n++] = tk.ids[i];
        }
    }
    size_t len;
    unsigned char *txt = herd_tokenizer_decode(tok, content.ids, content.n, &len);
    CHECK(len == strlen("5|16, since 4*4=16|") && !memcmp(txt, "5|16, since 4*4=16|", len));
    CHECK(n_eot == 5 && n_eot_masked == 2);
    /* the whole sequence decodes to the documented format */
    unsigned char *all = herd_tokenizer_decode(tok, tk.ids, tk.n, &len);
    const char *want = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nbe brief<|eot_id|>"
                       "<|start_header_id|>user<|end_header_id|>\n\nwhat is 2+3?<|eot_id|>"
                       "<|start_header_id|>assistant<|end_header_id|>\n\n5<|eot_id|>";
    CHECK(len > strlen(want) && !memcmp(all, want, strlen(want)));
    free(all);
    free(txt);
    free(content.ids);
    /* packed: the targets are exactly the masked tokens, shifted by one */
    int T = (int)tk.n + 5, next = 0;
    int32_t *tt = malloc(sizeof(int32_t) * 3 * T), *tg = tt + T, *dc = tg + T;
    CHECK(herd_chat_pack(&tk, 1, &next, 1, T, HERD_MASK_EOT, tt, tg, dc) == 1);
    int n_targets = 0;
    for (int i = 0; i < T; i++) {
        int want_t = i + 1 < (int)tk.n && tk.mask[i + 1] ? (int)tk.ids[i + 1] : -1;
        CHECK(tg[i] == want_t);
        n_targets += tg[i] >= 0;
        CHECK(dc[i] == (i < (int)tk.n ? 0 : 1));
    }
    CHECK(n_targets > 5);
    /* DPO's mask leaves the eot out */
    CHECK(herd_chat_pack(&tk, 1, &next, 1, T, HERD_MASK_CONTENT, tt, tg, dc) == 1);
    int n2 = 0;
    for (int i = 0; i < T; i++) n2 += tg[i] >= 0;
    CHECK(n2 == n_targets - 2);
    free(tt);
    herd_chat_tokens_free(&tk);
    herd_chat_free(&c);
    herd_json_free(&j);
}

TEST(sft_file_counts_long_and_rejects_unknown_role)
{
    const char *good = write_file("sft.jsonl",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"1+1\"}, {\"role\": \"assistant\", \"content\": \"2\"}]}\n"
        "\n"
        "{\"messages\": [{\"role\": \"user\", \"content\": \"a very long question that will not fit in the context at all, no way\"}, {\"role\": \"assistant\", \"content\": \"no\"}]}\n"
        "{\"messages\": [{\"role\": \"user\", \"content\": \"2+2\"}, {\"role\": \"assistant\", \"content\": \"4\"}]}\n");
    herd_sft_data d;
    CHECK(herd_sft_data_load(&d, good, tok, 40) == 0);
    CHECK(d.n == 2 && d.stats.lines == 3 && d.stats.kept == 2 && d.stats.skipped_long == 1);
    /* two packed in one row, separate documents */
    int T = 40, next = 0;
    int32_t tt[80], tg[80], dc[80];
    int placed = herd_chat_pack(d.convs, d.n, &next, 2, T, 1, tt, tg, dc);
    CHECK(placed == 2 && dc[0] == 0 && dc[d.convs[0].n] == 1);
    herd_sft_data_free(&d);

    const char *bad = write_file("bad.jsonl",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n"
        "{\"messages\": [{\"role\": \"robot\", \"content\": \"hi\"}]}\n");
    CHECK(herd_sft_data_load(&d, bad, tok, 100) == -1);
    const char *bad2 = write_file("bad2.jsonl", "{\"messages\": [{\"role\": \"user\"}]}\n");
    CHECK(herd_sft_data_load(&d, bad2, tok, 100) == -1);
    const char *bad3 = write_file("bad3.jsonl", "{\"messages\": [}\n");
    CHECK(herd_sft_data_load(&d, bad3, tok, 100) == -1);
    CHECK(herd_sft_data_load(&d, "/nonexistent/x.jsonl", tok, 100) == -1);
}

TEST(pref_file_ranks_and_counts_identical)
{
    const char *p = write_file("pref.jsonl",
        "{\"prompt\": [{\"role\": \"user\", \"content\": \"3+4\"}], \"chosen\": \"7\", \"rejected\": \"8\"}\n"
        "{\"prompt\": [{\"role\": \"user\", \"content\": \"3+5\"}], \"chosen\": \"8\", \"rejected\": \"8\"}\n"
        "{\"prompt\": [{\"role\": \"user\", \"content\": \"3+6\"}], \"edited\": \"9\", \"chosen\": \"9.\", \"rejected\": \"10\"}\n"
        "{\"prompt\": [{\"role\": \"user\", \"content\": \"1+6\"}], \"responses\": [\"7\", \"6\", \"5\"]}\n");
    herd_pref_data d;
    CHECK(herd_pref_data_load(&d, p, tok, 64) == 0);
    CHECK(d.n == 3 && d.stats.skipped_same == 1 && d.stats.lines == 4);
    CHECK(d.items[0].n_resp == 2 && d.items[1].n_resp == 3 && d.items[2].n_resp == 3);
    /* a row: targets only inside the response */
    int32_t tt[64], tg[64], dc[64];
    int last = herd_chat_row(&d.items[0].prompt, &d.items[0].resp[0], 64, 1, tt, tg, dc);
    CHECK(last == (int)(d.items[0].prompt.n + d.items[0].resp[0].n) - 1);
    CHECK(tt[last] == herd_tokenizer_n_regular(tok) + HERD_TOK_EOT_ID);
    int nt = 0;
    for (int i = 0; i < 64; i++) {
        nt += tg[i] >= 0;
        if (tg[i] >= 0) CHECK(i >= (int)d.items[0].prompt.n - 1 && i < last);
    }
    CHECK(nt == (int)d.items[0].resp[0].n - 1); /* content only: the eot is a formatting token */
    herd_chat_row(&d.items[0].prompt, &d.items[0].resp[0], 64, HERD_MASK_EOT, tt, tg, dc);
    nt = 0;
    for (int i = 0; i < 64; i++) nt += tg[i] >= 0;
    CHECK(nt == (int)d.items[0].resp[0].n);
    herd_pref_data_free(&d);
    const char *bad = write_file("pbad.jsonl", "{\"prompt\": [{\"role\": \"user\", \"content\": \"x\"}], \"chosen\": \"7\"}\n");
    CHECK(herd_pref_data_load(&d, bad, tok, 64) == -1);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/herd_test_chat_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    const char *text = "what is 2+3? 5. and 4*4? 16, since 4*4=16. the user asks, the assistant answers.";
    if (herd_tokenizer_train(&tok, (const unsigned char *)text, strlen(text), 280)) return 1;
    RUN(json_parses_escapes_and_rejects_garbage);
    RUN(mask_covers_exactly_assistant_tokens);
    RUN(sft_file_counts_long_and_rejects_unknown_role);
    RUN(pref_file_ranks_and_counts_identical);
    herd_tokenizer_free(tok);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) return 1;
    return test_summary();
}

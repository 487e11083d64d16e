/* cmd_generate.c — `herd generate`: sample from a model in the chat format,
 * batched, with a KV cache; or an interactive chat in the terminal.
 *
 *   herd generate CONFIG --tokenizer RANKS --weights W.safetensors
 *        [--prompt TEXT]... [--prompts FILE.jsonl] [--chat] [--raw]
 *        [--max-new N] [--temperature T] [--top-p P] [--seed S] [--no-cache]
 *        [--set section.key=value]...
 *
 * --prompt TEXT is one user message (the chat format around it; --raw: the
 * text as is after <|begin_of_text|>). --prompts reads conversations as the
 * SFT data format (the assistant turn is generated) and prints one JSON line
 * per prompt: {"index": I, "response": "..."}. Single process, CPU. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/data/chat.h"
#include "src/cli/commands.h"
#include "src/model/generate.h"
#include "src/post/post_common.h"

static int usage(const char *why)
{
    if (why) fprintf(stderr, "herd generate: %s\n", why);
    fputs("usage: herd generate CONFIG --tokenizer RANKS [--weights W.safetensors|HF_DIR]\n"
          "         [--prompt TEXT]... [--prompts FILE.jsonl] [--chat] [--raw]\n"
          "         [--max-new N] [--temperature T] [--top-p P] [--seed S] [--no-cache]\n"
          "         [--set section.key=value]...\n", stderr);
    return 2;
}

static int encode_user(const herd_post_env *e, const char *text, int raw, herd_chat_tokens *out)
{
    if (raw) {
        herd_ids ids = {0};
        int rc = herd_chat_tokens_push(out, (uint32_t)(e->n_regular + HERD_TOK_BOS), 0) ||
                 herd_tokenizer_encode(e->tok, (const unsigned char *)text, strlen(text), 0, &ids);
        for (size_t i = 0; i < ids.n && rc == 0; i++) rc = herd_chat_tokens_push(out, ids.ids[i], 0);
        free(ids.ids);
        return rc;
    }
    herd_chat_msg msg = {HERD_ROLE_USER, (char *)text, strlen(text)};
    herd_chat c = {&msg, 1};
    return herd_chat_encode(e->tok, &c, 1, 1, out);
}

static int chat_loop(const herd_post_env *e, herd_model *m, herd_gen_opts *o)
{
    herd_chat c = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    fprintf(stderr, "herd chat: type a message; /reset starts over, /quit or end of input leaves\n");
    for (int turn = 0;; turn++) {
        fprintf(stderr, "you> ");
        if ((n = getline(&line, &cap, stdin)) < 0) break;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (!strcmp(line, "/quit")) break;
        if (!strcmp(line, "/reset")) {
            herd_chat_free(&c);
            continue;
        }
        c.msgs = realloc(c.msgs, sizeof *c.msgs * (size_t)(c.n + 2));
        c.msgs[c.n++] = (herd_chat_msg){HERD_ROLE_USER, strdup(line), (size_t)n};
        herd_chat_tokens tk = {0};
        herd_chat_encode(e->tok, &c, 1, 1, &tk);
        if ((int)tk.n + o->max_new > m->dims.max_seq_len) {
            fprintf(stderr, "herd chat: the conversation (%zu tokens) no longer fits model.max_seq_len "
                    "%d with --max-new %d; starting over\n", tk.n, m->dims.max_seq_len, o->max_new);
            herd_chat_tokens_free(&tk);
            herd_chat_free(&c);
            continue;
        }
        const uint32_t *pr[1] = {tk.ids};
        int pl[1] = {(int)tk.n}, ol[1];
        uint32_t *out[1];
        o->seed += (uint64_t)turn;
        int rc = herd_generate(m, pr, pl, 1, o, out, ol);
        herd_chat_tokens_free(&tk);
        if (rc) break;
        char *text = herd_post_decode(e, out[0], ol[0]);
        printf("assistant> %s\n", text);
        fflush(stdout);
        c.msgs[c.n++] = (herd_chat_msg){HERD_ROLE_ASSISTANT, text, strlen(text)};
        free(out[0]);
    }
    free(line);
    herd_chat_free(&c);
    return 0;
}

int herd_cmd_generate(int argc, char **argv)
{
    const char *config = NULL, *tokenizer = NULL, *weights = NULL, *prompts_file = NULL;
    char **sets = calloc(argc, sizeof(char *)), **texts = calloc(argc, sizeof(char *));
    int n_sets = 0, n_texts = 0, chat = 0, raw = 0, rc = 0;
    herd_gen_opts o = {64, 0.0, 1.0, 1, -1, 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "--set") && v) sets[n_sets++] = argv[++i];
        else if (!strcmp(a, "--tokenizer") && v) tokenizer = argv[++i];
        else if (!strcmp(a, "--weights") && v) weights = argv[++i];
        else if (!strcmp(a, "--prompt") && v) texts[n_texts++] = argv[++i];
        else if (!strcmp(a, "--prompts") && v) prompts_file = argv[++i];
        else if (!strcmp(a, "--chat")) chat = 1;
        else if (!strcmp(a, "--raw")) raw = 1;
        else if (!strcmp(a, "--no-cache")) o.use_cache = 0;
        else if (!strcmp(a, "--max-new") && v) {
            o.max_new = (int)strtol(argv[++i], &end, 10);
            if (*end || o.max_new < 1) rc = usage("--max-new: expected an integer >= 1");
        } else if (!strcmp(a, "--temperature") && v) {
            o.temperature = strtod(argv[++i], &end);
            if (*end || o.temperature < 0) rc = usage("--temperature: expected a number >= 0");
        } else if (!strcmp(a, "--top-p") && v) {
            o.top_p = strtod(argv[++i], &end);
            if (*end || o.top_p <= 0 || o.top_p > 1) rc = usage("--top-p: expected a number in (0, 1]");
        } else if (!strcmp(a, "--seed") && v) {
            o.seed = strtoull(argv[++i], &end, 10);
            if (*end) rc = usage("--seed: expected an integer");
        } else if (a[0] != '-' && !config) config = a;
        else rc = usage(a[0] == '-' ? "unknown option or missing value" : "one CONFIG only");
        if (rc) break;
    }
    if (!rc && !config) rc = usage("CONFIG is required");
    if (!rc && !chat && !n_texts && !prompts_file) rc = usage("give --prompt, --prompts or --chat");
    herd_post_env e;
    herd_model m;
    if (!rc && herd_post_env_open(&e, config, n_sets, sets, tokenizer)) rc = 1;
    if (!rc && herd_post_model_open(&m, &e, weights)) {
        herd_post_env_close(&e);
        rc = 1;
    }
    free(sets);
    if (rc) {
        free(texts);
        return rc;
    }
    o.stop_id = e.eot_id;
    if (chat) {
        rc = chat_loop(&e, &m, &o);
    } else {
        /* every prompt in one batch */
        herd_chat_tokens *tk = NULL;
        int n = 0;
        herd_sft_data d = {0};
        if (prompts_file) {
            if (herd_sft_data_load(&d, prompts_file, e.tok, m.dims.max_seq_len)) rc = 1;
            else if (d.stats.skipped_long)
                fprintf(stderr, "herd generate: %s: %lld of %lld prompts skipped: longer than "
                        "model.max_seq_len %d\n", prompts_file, (long long)d.stats.skipped_long,
                        (long long)d.stats.lines, m.dims.max_seq_len);
        }
        tk = calloc((size_t)(n_texts + d.n + 1), sizeof *tk);
        for (int i = 0; i < n_texts && !rc; i++) rc = encode_user(&e, texts[i], raw, &tk[n++]) ? 1 : 0;
        for (int i = 0; i < d.n && !rc; i++) {
            /* the prompt: the conversation up to its last assistant turn, then the assistant header */
            herd_chat_tokens *c = &d.convs[i];
            size_t cut = c->n;
            while (cut > 0 && c->mask[cut - 1]) cut--;
            for (size_t k = 0; k < cut; k++) herd_chat_tokens_push(&tk[n], c->ids[k], 0);
            n++;
        }
        const uint32_t **pr = malloc(sizeof *pr * (size_t)(n + 1));
        int *pl = malloc(sizeof(int) * (size_t)(n + 1)), *ol = malloc(sizeof(int) * (size_t)(n + 1));
        uint32_t **out = calloc((size_t)(n + 1), sizeof *out);
        for (int i = 0; i < n; i++) pr[i] = tk[i].ids, pl[i] = (int)tk[i].n;
        if (!rc && n && herd_generate(&m, pr, pl, n, &o, out, ol)) rc = 1;
        for (int i = 0; i < n && !rc; i++) {
            char *text = herd_post_decode(&e, out[i], ol[i]);
            if (i < n_texts) printf("%s\n", text);
            else {
                printf("{\"index\":%d,\"response\":", i - n_texts);
                herd_post_json_str(stdout, text, strlen(text));
                printf("}\n");
            }
            free(text);
        }
        for (int i = 0; i < n; i++) free(out[i]), herd_chat_tokens_free(&tk[i]);
        free(tk), free(pr), free(pl), free(ol), free(out);
        herd_sft_data_free(&d);
    }
    free(texts);
    herd_model_destroy(&m);
    herd_post_env_close(&e);
    return rc;
}

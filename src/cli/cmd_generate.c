/* cmd_generate.c — `herd generate`: sample from a model in the chat format,
 * batched, with a KV cache; or an interactive chat in the terminal.
 *
 *   herd generate CONFIG --tokenizer RANKS --weights W.safetensors
 *        [--prompt TEXT]... [--prompts FILE.jsonl] [--chat] [--raw]
 *        [--max-new N] [--temperature T] [--top-p P] [--seed S] [--no-cache]
 *        [--batch N] [--timing] [--set section.key=value]...
 *
 * --prompt TEXT is one user message (the chat format around it; --raw: the
 * text as is after <|begin_of_text|>). --prompts reads conversations as the
 * SFT data format (the assistant turn is generated) and prints one JSON line
 * per prompt: {"index": I, "response": "..."}. On the CPU; under mpirun /
 * srun the prompts are split between data-parallel replicas of a model
 * tensor-parallel over parallel.tp ranks (src/post/gen_batch.h), --batch N
 * sequences decoded together (default: a replica's whole share); --timing
 * prints the decoding rate (tokens/s) to stderr. --chat is one process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/data/chat.h"
#include "src/cli/commands.h"
#include "src/model/generate.h"
#include "src/post/gen_batch.h"
#include "src/post/gen_layout.h"
#include "src/post/post_common.h"
#include "src/post/post_dp.h"

static int usage(const char *why)
{
    if (why) fprintf(stderr, "herd generate: %s\n", why);
    fputs("usage: herd generate CONFIG --tokenizer RANKS [--weights W.safetensors|HF_DIR]\n"
          "         [--prompt TEXT]... [--prompts FILE.jsonl] [--chat] [--raw]\n"
          "         [--max-new N] [--temperature T] [--top-p P] [--seed S] [--no-cache]\n"
          "         [--batch N] [--timing] [--set section.key=value]...\n", stderr);
    return 2;
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

/* Open the job, its layout and this rank's slice of the model; 0 / 1. */
static int open_all(herd_post_dp *dp, herd_post_env *e, herd_gen_layout *g, herd_model *m,
                    const char *config, int n_sets, char **sets, const char *tokenizer,
                    const char *weights)
{
    if (herd_post_dp_open(dp)) return 1;
    int rc = herd_post_env_open(e, config, n_sets, sets, tokenizer) ? 1 : 0;
    if (!rc && herd_gen_layout_open(g, dp, &e->cfg)) {
        herd_post_env_close(e);
        rc = 1;
    }
    if (!rc && herd_gen_model_open(m, e, g, weights)) {
        herd_gen_layout_close(g);
        herd_post_env_close(e);
        rc = 1;
    }
    if (herd_post_dp_any(dp, rc)) {
        if (!rc) herd_model_destroy(m), herd_gen_layout_close(g), herd_post_env_close(e);
        herd_post_dp_close(dp);
        return 1;
    }
    return 0;
}

int herd_cmd_generate(int argc, char **argv)
{
    const char *config = NULL, *tokenizer = NULL, *weights = NULL;
    char **sets = calloc(argc, sizeof(char *)), **texts = calloc(argc, sizeof(char *));
    int n_sets = 0, chat = 0, rc = 0;
    herd_gen_batch_args ba = {texts, 0, 0, NULL, 0, 0};
    herd_gen_opts o = {64, 0.0, 1.0, 1, -1, 1, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "--set") && v) sets[n_sets++] = argv[++i];
        else if (!strcmp(a, "--tokenizer") && v) tokenizer = argv[++i];
        else if (!strcmp(a, "--weights") && v) weights = argv[++i];
        else if (!strcmp(a, "--prompt") && v) texts[ba.n_texts++] = argv[++i];
        else if (!strcmp(a, "--prompts") && v) ba.prompts_file = argv[++i];
        else if (!strcmp(a, "--chat")) chat = 1;
        else if (!strcmp(a, "--raw")) ba.raw = 1;
        else if (!strcmp(a, "--no-cache")) o.use_cache = 0;
        else if (!strcmp(a, "--timing")) ba.timing = 1;
        else if (!strcmp(a, "--max-new") && v) {
            o.max_new = (int)strtol(argv[++i], &end, 10);
            if (*end || o.max_new < 1) rc = usage("--max-new: expected an integer >= 1");
        } else if (!strcmp(a, "--batch") && v) {
            ba.batch = (int)strtol(argv[++i], &end, 10);
            if (*end || ba.batch < 1) rc = usage("--batch: expected an integer >= 1");
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
    if (!rc && !chat && !ba.n_texts && !ba.prompts_file) rc = usage("give --prompt, --prompts or --chat");
    herd_post_dp dp;
    herd_post_env e;
    herd_gen_layout g;
    herd_model m;
    if (!rc && open_all(&dp, &e, &g, &m, config, n_sets, sets, tokenizer, weights)) rc = 1;
    free(sets);
    if (rc) {
        free(texts);
        return rc;
    }
    o.stop_id = e.eot_id;
    if (chat && dp.size > 1) {
        if (dp.rank == 0) fprintf(stderr, "herd generate: --chat runs in one process (got %d ranks)\n", dp.size);
        rc = 2;
    } else if (chat) {
        rc = chat_loop(&e, &m, &o);
    } else {
        rc = herd_post_generate_batch(&e, &g, &m, &ba, &o, stdout) ? 1 : 0;
    }
    free(texts);
    herd_model_destroy(&m);
    herd_gen_layout_close(&g);
    herd_post_env_close(&e);
    herd_post_dp_close(&dp);
    return rc;
}

/* cmd_post_rs.c — `herd post rs|eval|average|demo-data`: rejection sampling
 * with a reward model, exact-answer evaluation, averaging of weights files,
 * and the demo's data with checkable answers (arithmetic, short algebra).
 *
 * rs and eval run data-parallel under mpirun / srun (src/post/post_dp.h): the
 * prompts go in chunks of the single-process run (the chunk a prompt falls in,
 * and so its sampling counters, depend on its index alone), each rank takes a
 * contiguous run of chunks, and rank 0 writes the outputs in prompt order and
 * prints the global counts: N ranks write the same bytes as one. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "src/data/chat.h"
#include "src/model/generate.h"
#include "src/post/post_common.h"
#include "src/post/post_dp.h"
#include "src/post/reward.h"
#include "src/base/rng.h"
#include "src/model/weights.h"

int herd_post_rs(int argc, char **argv, const herd_post_dp *dp);
int herd_post_eval(int argc, char **argv, const herd_post_dp *dp);
int herd_post_average(int argc, char **argv);
int herd_post_demo_data(int argc, char **argv);

typedef struct {
    const char *config, *tokenizer, *weights, *rm, *prompts, *out, *pairs, *data;
    char **sets;
    int n_sets, k, max_new, batch;
    double temperature, top_p;
    uint64_t seed;
} rs_args;

static int rs_usage(const char *why)
{
    if (why) fprintf(stderr, "herd post: %s\n", why);
    fputs("usage: herd post rs CONFIG --tokenizer R --prompts F.jsonl --weights W --rm RM --out SFT.jsonl\n"
          "                [--k K] [--temperature T] [--top-p P] [--max-new 16] [--seed S]\n"
          "                (defaults: post.rs_k 4, post.rs_temperature 0.8, post.rs_top_p 0.95)\n"
          "                [--pairs PREF.jsonl]\n"
          "       herd post eval CONFIG --tokenizer R --data TEST.jsonl [--weights W] [--max-new 16]\n",
          stderr);
    return 2;
}

static int rs_parse(int argc, char **argv, rs_args *a)
{
    memset(a, 0, sizeof *a);
    a->sets = calloc(argc, sizeof(char *));
    a->k = 0, a->max_new = 16, a->batch = 64, a->temperature = 0, a->top_p = 0, a->seed = 1; /* 0: the config's post.rs_* */
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        char *end = NULL;
        if (k[0] == '-' && i + 1 >= argc) return rs_usage("an option is missing its value");
        if (!strcmp(k, "--set")) a->sets[a->n_sets++] = argv[++i];
        else if (!strcmp(k, "--tokenizer")) a->tokenizer = argv[++i];
        else if (!strcmp(k, "--weights")) a->weights = argv[++i];
        else if (!strcmp(k, "--rm")) a->rm = argv[++i];
        else if (!strcmp(k, "--prompts")) a->prompts = argv[++i];
        else if (!strcmp(k, "--data")) a->data = argv[++i];
        else if (!strcmp(k, "--out")) a->out = argv[++i];
        else if (!strcmp(k, "--pairs")) a->pairs = argv[++i];
        else if (!strcmp(k, "--k") || !strcmp(k, "--max-new") || !strcmp(k, "--seed")) {
            long long v = strtoll(argv[++i], &end, 10);
            if (*end || v < 1 || v > 1 << 20) return rs_usage("--k, --max-new, --seed: expected an integer >= 1");
            if (!strcmp(k, "--k")) a->k = (int)v;
            else if (!strcmp(k, "--max-new")) a->max_new = (int)v;
            else a->seed = (uint64_t)v;
        } else if (!strcmp(k, "--temperature") || !strcmp(k, "--top-p")) {
            double v = strtod(argv[++i], &end);
            if (*end || !(v > 0) || (!strcmp(k, "--top-p") && v > 1))
                return rs_usage("--temperature > 0, --top-p in (0, 1]");
            *(!strcmp(k, "--top-p") ? &a->top_p : &a->temperature) = v;
        } else if (k[0] != '-' && !a->config) a->config = k;
        else {
            fprintf(stderr, "herd post: unexpected argument '%s'\n", k);
            return rs_usage(NULL);
        }
    }
    if (!a->config) return rs_usage("CONFIG is required");
    return 0;
}

/* K, temperature and top-p not given on the command line: the config's post.rs_*. */
static void sampling_defaults(rs_args *a, const herd_post_env *e)
{
    if (!a->k) a->k = e->cfg.post.rs_k;
    if (!(a->temperature > 0)) a->temperature = e->cfg.post.rs_temperature;
    if (!(a->top_p > 0)) a->top_p = e->cfg.post.rs_top_p;
}

/* The prompt of a conversation: its messages before the last assistant turn. */
static int prompt_len(const herd_chat *c)
{
    int n = c->n;
    while (n > 0 && c->msgs[n - 1].role == HERD_ROLE_ASSISTANT) n--;
    return n;
}

/* The first n messages as a JSON array; with open_end the ']' is left to the caller. */
static void write_messages(FILE *f, const herd_chat *c, int n, int open_end)
{
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s{\"role\":\"%s\",\"content\":", i ? "," : "", herd_chat_role_name(c->msgs[i].role));
        herd_post_json_str(f, c->msgs[i].content, c->msgs[i].len);
        fputc('}', f);
    }
    if (!open_end) fputc(']', f);
}

/* Generate for prompts [first, first + n) of chats, `k` samples each;
 * texts[(i - first) * k + s] malloc'ed. */
static int sample_chunk(const herd_post_env *e, herd_model *m, herd_chat *chats, int first, int n,
                        int k, const herd_gen_opts *o, char **texts, herd_chat_tokens *prompts,
                        herd_chat_tokens *samples)
{
    int B = n * k, rc = 0;
    const uint32_t **pr = malloc(sizeof *pr * (size_t)B);
    int *pl = malloc(sizeof(int) * (size_t)B), *ol = malloc(sizeof(int) * (size_t)B);
    uint32_t **out = calloc((size_t)B, sizeof *out);
    for (int i = 0; i < n && !rc; i++) {
        herd_chat c = chats[first + i];
        c.n = prompt_len(&c);
        memset(&prompts[i], 0, sizeof prompts[i]);
        rc = herd_chat_encode(e->tok, &c, 1, 1, &prompts[i]);
        for (int s = 0; s < k; s++) pr[i * k + s] = prompts[i].ids, pl[i * k + s] = (int)prompts[i].n;
    }
    if (!rc) rc = herd_generate(m, pr, pl, B, o, out, ol);
    for (int b = 0; b < B && !rc; b++) {
        texts[b] = herd_post_decode(e, out[b], ol[b]);
        if (!samples) continue;
        /* the sampled ids as a response: content, then the eot (added if the sample ran out) */
        memset(&samples[b], 0, sizeof samples[b]);
        for (int i = 0; i < ol[b]; i++)
            herd_chat_tokens_push(&samples[b], out[b][i],
                                  out[b][i] == (uint32_t)e->eot_id ? HERD_MASK_EOT : HERD_MASK_CONTENT);
        if (ol[b] == 0 || out[b][ol[b] - 1] != (uint32_t)e->eot_id)
            herd_chat_tokens_push(&samples[b], (uint32_t)e->eot_id, HERD_MASK_EOT);
    }
    for (int b = 0; b < B; b++) free(out[b]);
    free(out), free(pr), free(pl), free(ol);
    return rc;
}

int herd_post_rs(int argc, char **argv, const herd_post_dp *dp)
{
    rs_args a;
    if (rs_parse(argc, argv, &a)) return 2;
    if (!a.prompts || !a.weights || !a.rm || !a.out) {
        free(a.sets);
        return rs_usage("rs: --prompts, --weights, --rm and --out are required");
    }
    herd_post_env e;
    herd_model pol, rm;
    herd_chat *chats = NULL;
    int n = 0, rc = 0;
    if (herd_post_env_open(&e, a.config, a.n_sets, a.sets, a.tokenizer)) return 1;
    sampling_defaults(&a, &e);
    if (herd_chat_load_jsonl(a.prompts, &chats, &n) || herd_post_model_open(&pol, &e, a.weights) ||
        herd_post_model_open(&rm, &e, a.rm))
        return 1;
    /* the files are rank 0's; every rank writes its lines to memory first */
    FILE *fo = NULL, *fp = NULL;
    int bad = 0;
    if (dp->rank == 0) {
        fo = fopen(a.out, "w"), fp = a.pairs ? fopen(a.pairs, "w") : NULL;
        if (!fo || (a.pairs && !fp)) {
            perror(fo ? a.pairs : a.out);
            bad = 1;
        }
    }
    if (herd_post_dp_any(dp, bad)) return 1;
    char *mo = NULL, *mp = NULL;
    size_t nmo = 0, nmp = 0;
    FILE *so = open_memstream(&mo, &nmo), *sp = a.pairs ? open_memstream(&mp, &nmp) : NULL;
    int T = e.cfg.model.max_seq_len, head = herd_rm_head_id(e.n_regular), chunk = a.batch / a.k;
    if (chunk < 1) chunk = 1;
    herd_gen_opts o = {a.max_new, a.temperature, a.top_p, a.seed, e.eot_id, 1};
    char **texts = calloc((size_t)chunk * a.k, sizeof *texts);
    herd_chat_tokens *prompts = calloc((size_t)chunk, sizeof *prompts);
    herd_chat_tokens *samples = calloc((size_t)chunk * a.k, sizeof *samples);
    int32_t *tok = malloc(sizeof(int32_t) * 3 * (size_t)a.k * T), *tgt = tok + a.k * T,
            *doc = tgt + a.k * T;
    int *last = malloc(sizeof(int) * a.k);
    double *r = malloc(sizeof(double) * a.k), sum_best = 0, sum_mean = 0;
    int kept = 0, skipped = 0, n_pairs = 0;
    int64_t c0, cn; /* this rank's chunks */
    herd_post_dp_share(dp, (n + chunk - 1) / chunk, &c0, &cn);
    for (int first = (int)c0 * chunk; first < n && first < (c0 + cn) * chunk && !rc; first += chunk) {
        int m = n - first < chunk ? n - first : chunk;
        o.seed = a.seed + (uint64_t)first; /* each chunk its own sample counters */
        if (sample_chunk(&e, &pol, chats, first, m, a.k, &o, texts, prompts, samples)) {
            rc = 1;
            break;
        }
        for (int i = 0; i < m && !rc; i++) {
            int rows = 0, fits = 1;
            for (int s = 0; s < a.k; s++) { /* the RM scores exactly the sampled ids */
                last[s] = herd_chat_row(&prompts[i], &samples[i * a.k + s], T, HERD_MASK_EOT,
                                        tok + (size_t)s * T, tgt + (size_t)s * T, doc + (size_t)s * T);
                fits &= last[s] >= 0;
                rows++;
            }
            if (!fits) { /* the prompt + a sample exceed the context: counted, not kept */
                skipped++;
                continue;
            }
            if (herd_rm_score(&rm, tok, doc, rows, T, last, head, r)) {
                rc = 1;
                break;
            }
            int best = 0, worst = 0;
            double mean = 0;
            for (int s = 0; s < a.k; s++) {
                if (r[s] > r[best]) best = s;
                if (r[s] < r[worst]) worst = s;
                mean += r[s] / a.k;
            }
            sum_best += r[best], sum_mean += mean, kept++;
            const herd_chat *c = &chats[first + i];
            int pn = prompt_len(c);
            const char *bt = texts[i * a.k + best], *wt = texts[i * a.k + worst];
            fprintf(so, "{\"messages\":");
            write_messages(so, c, pn, 1);
            fprintf(so, "%s{\"role\":\"assistant\",\"content\":", pn ? "," : "");
            herd_post_json_str(so, bt, strlen(bt));
            fprintf(so, "}]}\n");
            if (sp && strcmp(bt, wt)) {
                fprintf(sp, "{\"prompt\":");
                write_messages(sp, c, pn, 0);
                fprintf(sp, ",\"chosen\":");
                herd_post_json_str(sp, bt, strlen(bt));
                fprintf(sp, ",\"rejected\":");
                herd_post_json_str(sp, wt, strlen(wt));
                fprintf(sp, "}\n");
                n_pairs++;
            }
        }
        for (int b = 0; b < m * a.k; b++) {
            free(texts[b]);
            texts[b] = NULL;
            herd_chat_tokens_free(&samples[b]);
        }
        for (int i = 0; i < m; i++) herd_chat_tokens_free(&prompts[i]);
    }
    /* every rank's lines to rank 0, in rank (= prompt) order; the counts summed */
    fclose(so);
    if (sp) fclose(sp);
    rc = herd_post_dp_any(dp, rc);
    if (!rc) {
        double g[5] = {kept, skipped, n_pairs, sum_best, sum_mean};
        herd_post_dp_sum(dp, g, 5);
        kept = (int)g[0], skipped = (int)g[1], n_pairs = (int)g[2], sum_best = g[3], sum_mean = g[4];
        if (herd_post_dp_gather_text(dp, mo, nmo, fo)) rc = 1;
        if (a.pairs && herd_post_dp_gather_text(dp, mp, nmp, fp)) rc = 1;
    }
    free(mo);
    free(mp);
    if (fo && fclose(fo)) rc = 1;
    if (fp && fclose(fp)) rc = 1;
    if (!rc)
        printf("herd post rs: %d prompts, K %d: kept %d best samples (mean reward of the best %.4f "
               "vs of all %.4f), %d skipped as longer than model.max_seq_len %d; %s%s%s\n", n, a.k,
               kept, kept ? sum_best / kept : 0.0, kept ? sum_mean / kept : 0.0, skipped, T, a.out,
               fp ? ", pairs in " : "", fp ? a.pairs : "");
    if (fp && !rc) printf("herd post rs: %d preference pairs (best vs worst) written\n", n_pairs);
    for (int i = 0; i < n; i++) herd_chat_free(&chats[i]);
    free(chats), free(texts), free(prompts), free(samples), free(tok), free(last), free(r);
    free(a.sets);
    herd_model_destroy(&pol);
    herd_model_destroy(&rm);
    herd_post_env_close(&e);
    return rc;
}

static void trim(const char *s, const char **b, size_t *n)
{
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1])) len--;
    while (len && isspace((unsigned char)*s)) s++, len--;
    *b = s;
    *n = len;
}

int herd_post_eval(int argc, char **argv, const herd_post_dp *dp)
{
    rs_args a;
    if (rs_parse(argc, argv, &a)) return 2;
    if (!a.data) {
        free(a.sets);
        return rs_usage("eval: --data TEST.jsonl is required");
    }
    herd_post_env e;
    herd_model m;
    herd_chat *chats = NULL;
    int n = 0, rc = 0, correct = 0, total = 0;
    if (herd_post_env_open(&e, a.config, a.n_sets, a.sets, a.tokenizer)) return 1;
    if (herd_chat_load_jsonl(a.data, &chats, &n) || herd_post_model_open(&m, &e, a.weights)) return 1;
    herd_gen_opts o = {a.max_new, 0.0, 1.0, 1, e.eot_id, 1};
    int chunk = a.batch;
    char **texts = calloc((size_t)chunk, sizeof *texts);
    herd_chat_tokens *prompts = calloc((size_t)chunk, sizeof *prompts);
    int64_t c0, cn; /* this rank's chunks of prompts */
    herd_post_dp_share(dp, (n + chunk - 1) / chunk, &c0, &cn);
    for (int first = (int)c0 * chunk; first < n && first < (c0 + cn) * chunk && !rc; first += chunk) {
        int k = n - first < chunk ? n - first : chunk;
        if (sample_chunk(&e, &m, chats, first, k, 1, &o, texts, prompts, NULL)) {
            rc = 1;
            break;
        }
        for (int i = 0; i < k; i++) {
            const herd_chat *c = &chats[first + i];
            if (c->n > 0 && c->msgs[c->n - 1].role == HERD_ROLE_ASSISTANT) {
                const char *want, *got;
                size_t nw, ng;
                trim(c->msgs[c->n - 1].content, &want, &nw);
                trim(texts[i], &got, &ng);
                correct += nw == ng && !memcmp(want, got, nw);
                total++;
            }
            free(texts[i]);
            herd_chat_tokens_free(&prompts[i]);
        }
    }
    rc = herd_post_dp_any(dp, rc);
    if (!rc) { /* accuracy over the whole test set */
        double g[2] = {correct, total};
        herd_post_dp_sum(dp, g, 2);
        correct = (int)g[0], total = (int)g[1];
    }
    if (!rc)
        printf("herd post eval: %s: accuracy %.4f (%d of %d exact answers, greedy)\n", a.data,
               total ? (double)correct / total : 0.0, correct, total);
    for (int i = 0; i < n; i++) herd_chat_free(&chats[i]);
    free(chats), free(texts), free(prompts), free(a.sets);
    herd_model_destroy(&m);
    herd_post_env_close(&e);
    return rc;
}

/* herd post annotate: preference pairs on the current model's own samples, as
 * the paper collects them each round (annotators rank the latest models'
 * responses and edit the chosen one). The annotator here is the exact answer:
 * --data holds conversations whose last assistant message is the reference;
 * K samples per prompt; a prompt with a wrong sample gives the pair
 * (chosen: the reference — a correct sample equals it —, rejected: the first
 * non-empty wrong sample); a prompt whose K samples are all right (or wrong
 * only by being empty) gives none. */
int herd_post_annotate(int argc, char **argv, const herd_post_dp *dp)
{
    rs_args a;
    if (rs_parse(argc, argv, &a)) return 2;
    if (!a.data || !a.weights || !a.out) {
        free(a.sets);
        return rs_usage("annotate: --data QA.jsonl, --weights and --out are required");
    }
    herd_post_env e;
    herd_model m;
    herd_chat *chats = NULL;
    int n = 0, rc = 0, bad = 0;
    if (herd_post_env_open(&e, a.config, a.n_sets, a.sets, a.tokenizer)) return 1;
    sampling_defaults(&a, &e);
    if (herd_chat_load_jsonl(a.data, &chats, &n) || herd_post_model_open(&m, &e, a.weights)) return 1;
    for (int i = 0; i < n && !bad; i++)
        if (chats[i].n < 2 || chats[i].msgs[chats[i].n - 1].role != HERD_ROLE_ASSISTANT) {
            fprintf(stderr, "herd post annotate: %s: line %d: messages: the last message must be the "
                    "assistant's reference answer\n", a.data, i + 1);
            bad = 1;
        }
    FILE *fo = NULL;
    if (!bad && dp->rank == 0 && !(fo = fopen(a.out, "w"))) {
        perror(a.out);
        bad = 1;
    }
    if (herd_post_dp_any(dp, bad)) return 1;
    char *mo = NULL;
    size_t nmo = 0;
    FILE *so = open_memstream(&mo, &nmo);
    int chunk = a.batch / a.k;
    if (chunk < 1) chunk = 1;
    herd_gen_opts o = {a.max_new, a.temperature, a.top_p, a.seed, e.eot_id, 1};
    char **texts = calloc((size_t)chunk * a.k, sizeof *texts);
    herd_chat_tokens *prompts = calloc((size_t)chunk, sizeof *prompts);
    double right = 0, samples = 0, pairs = 0, all_right = 0, empty = 0;
    int64_t c0, cn;
    herd_post_dp_share(dp, (n + chunk - 1) / chunk, &c0, &cn);
    for (int first = (int)c0 * chunk; first < n && first < (c0 + cn) * chunk && !rc; first += chunk) {
        int mm = n - first < chunk ? n - first : chunk;
        o.seed = a.seed + (uint64_t)first; /* the prompt index decides the samples, not the rank */
        if (sample_chunk(&e, &m, chats, first, mm, a.k, &o, texts, prompts, NULL)) {
            rc = 1;
            break;
        }
        for (int i = 0; i < mm; i++) {
            const herd_chat *c = &chats[first + i];
            const char *want, *got;
            size_t nw, ng;
            trim(c->msgs[c->n - 1].content, &want, &nw);
            int wrong = -1;
            for (int s = 0; s < a.k; s++) {
                trim(texts[i * a.k + s], &got, &ng);
                int ok = nw == ng && !memcmp(want, got, nw);
                right += ok, samples++;
                /* an empty sample (the eot first) is wrong but has no token DPO can score */
                if (!ok && ng > 0 && wrong < 0) wrong = s;
                if (!ok && ng == 0) empty++;
            }
            if (wrong < 0) all_right++;
            else {
                int pn = prompt_len(c);
                fprintf(so, "{\"prompt\":");
                write_messages(so, c, pn, 0);
                fprintf(so, ",\"chosen\":");
                herd_post_json_str(so, want, nw);
                fprintf(so, ",\"rejected\":");
                trim(texts[i * a.k + wrong], &got, &ng);
                herd_post_json_str(so, got, ng);
                fprintf(so, "}\n");
                pairs++;
            }
            for (int s = 0; s < a.k; s++) {
                free(texts[i * a.k + s]);
                texts[i * a.k + s] = NULL;
            }
            herd_chat_tokens_free(&prompts[i]);
        }
    }
    fclose(so);
    rc = herd_post_dp_any(dp, rc);
    if (!rc) {
        double g[5] = {right, samples, pairs, all_right, empty};
        herd_post_dp_sum(dp, g, 5);
        right = g[0], samples = g[1], pairs = g[2], all_right = g[3], empty = g[4];
        if (herd_post_dp_gather_text(dp, mo, nmo, fo)) rc = 1;
    }
    free(mo);
    if (fo && fclose(fo)) rc = 1;
    if (!rc)
        printf("herd post annotate: %s: %d prompts, K %d: %.0f of %.0f samples right (%.4f); %.0f "
               "pairs (reference vs a wrong sample) in %s, %.0f prompts without a non-empty wrong "
               "sample (%.0f empty samples)\n", a.data, n, a.k, right, samples,
               samples ? right / samples : 0.0, pairs, a.out, all_right, empty);
    for (int i = 0; i < n; i++) herd_chat_free(&chats[i]);
    free(chats), free(texts), free(prompts), free(a.sets);
    herd_model_destroy(&m);
    herd_post_env_close(&e);
    return rc;
}

/* herd post average CONFIG --tokenizer R --out W W1 W2 ...: element-wise mean. */
int herd_post_average(int argc, char **argv)
{
    const char *config = NULL, *tokenizer = NULL, *out = NULL;
    const char **in = calloc(argc, sizeof *in);
    char **sets = calloc(argc, sizeof *sets);
    int n = 0, n_sets = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tokenizer = argv[++i];
        else if (!strcmp(argv[i], "--set") && i + 1 < argc) sets[n_sets++] = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!config) config = argv[i];
        else in[n++] = argv[i];
    }
    if (!config || !out || n < 1) {
        free(in);
        free(sets);
        fputs("usage: herd post average CONFIG --tokenizer R --out W.safetensors W1 W2 ...\n", stderr);
        return 2;
    }
    herd_post_env e;
    herd_model acc, m;
    int bad = herd_post_env_open(&e, config, n_sets, sets, tokenizer);
    free(sets);
    if (bad || herd_post_model_open(&acc, &e, NULL) ||
        herd_post_model_open(&m, &e, NULL))
        return 1;
    int rc = 0;
    for (int64_t j = 0; j < acc.n_params; j++) acc.params[j] = 0.0f;
    for (int i = 0; i < n && !rc; i++) {
        if (herd_weights_load(&m, in[i])) rc = 1;
        for (int64_t j = 0; j < acc.n_params && !rc; j++) acc.params[j] += m.params[j] / (float)n;
    }
    if (!rc && herd_weights_save(&acc, out)) rc = 1;
    if (!rc) printf("herd post average: %s = mean of %d models\n", out, n);
    free(in);
    herd_model_destroy(&acc);
    herd_model_destroy(&m);
    herd_post_env_close(&e);
    return rc;
}

/* ---- demo data ------------------------------------------------------------ */

/* Problem i of the stream `seed`: question and exact answer. Operands of up to
 * `digits` digits whose sums carry nothing (and differences borrow nothing):
 * each answer digit is a one-digit fact of the digits above it, so a small
 * model can generalise to unseen questions (with carries it would have to
 * learn the carry chain first: 2-digit sums with carries stayed under 10%
 * held-out accuracy at the demo's budget). Kinds: a+b, c-b, x+b=c. */
static void problem(uint64_t seed, uint64_t i, int digits, char *q, size_t nq, int *answer)
{
    uint64_t r = herd_splitmix64(seed * 0x9E3779B97F4A7C15ULL + i);
    int kind = (int)(r % 3), a = 0, b = 0, p10 = 1;
    r /= 3;
    for (int d = 0; d < digits; d++, p10 *= 10) {
        int k = (int)(r % 55), x = 0; /* the k-th of the 55 pairs (x, y) with x + y <= 9 */
        r /= 55;
        while (k >= 10 - x) k -= 10 - x, x++;
        a += x * p10, b += k * p10;
    }
    if (r & 1) { int t = a; a = b; b = t; }
    int c = a + b;
    if (kind == 0) snprintf(q, nq, "%d+%d=?", a, b), *answer = c;
    else if (kind == 1) snprintf(q, nq, "%d-%d=?", c, b), *answer = a;
    else snprintf(q, nq, "x+%d=%d, x=?", b, c), *answer = a; /* short algebra */
}

static void write_sft(FILE *f, const char *q, const char *ans)
{
    fprintf(f, "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"},"
               "{\"role\":\"assistant\",\"content\":\"%s\"}]}\n", q, ans);
}

/* `herd post demo-data`: five files of one task, disjoint question sets:
 *   sft.jsonl      questions with their answers (the SFT data)
 *   pref.jsonl     other questions, correct vs a near miss (the preference data)
 *   pref_questions.jsonl  the same questions with their answers (for annotate:
 *                  pairs on the model's own samples, each round)
 *   prompts.jsonl  other questions without answers (rejection sampling's prompts)
 *   test.jsonl     held-out questions with answers (accuracy), none in the others
 *   corpus.txt     every question and answer as text (to train a tokenizer) */
int herd_post_demo_data(int argc, char **argv)
{
    const char *dir = NULL;
    long n_train = 2000, n_test = 200, n_pref = 1000, n_rs = 1000, digits = 2;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--train") && i + 1 < argc) n_train = atol(argv[++i]);
        else if (!strcmp(argv[i], "--test") && i + 1 < argc) n_test = atol(argv[++i]);
        else if (!strcmp(argv[i], "--pref") && i + 1 < argc) n_pref = atol(argv[++i]);
        else if (!strcmp(argv[i], "--prompts") && i + 1 < argc) n_rs = atol(argv[++i]);
        else if (!strcmp(argv[i], "--digits") && i + 1 < argc) digits = atol(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "herd post demo-data: unexpected argument '%s'\n", argv[i]);
            dir = NULL;
            break;
        }
    }
    if (!dir || n_train < 1 || n_test < 1 || n_pref < 1 || n_rs < 0 || digits < 1 || digits > 4) {
        fputs("usage: herd post demo-data --out DIR [--train N] [--test N] [--pref N] [--prompts N]\n"
              "                           [--digits D (operands of 1..4 digits, no carries)] [--seed S]\n", stderr);
        return 2;
    }
    mkdir(dir, 0777);
    enum { SFT, TEST, PREF, PROMPTS, CORPUS, PREF_QA, N_FILES };
    char path[N_FILES][1200];
    const char *names[N_FILES] = {"sft.jsonl", "test.jsonl", "pref.jsonl", "prompts.jsonl", "corpus.txt",
                                  "pref_questions.jsonl"};
    FILE *f[N_FILES];
    for (int k = 0; k < N_FILES; k++) {
        snprintf(path[k], sizeof path[k], "%s/%s", dir, names[k]);
        if (!(f[k] = fopen(path[k], "w"))) {
            perror(path[k]);
            fprintf(stderr, "herd post demo-data: %s: cannot write\n", path[k]);
            return 1;
        }
    }
    char q[64], ans[16], bad[16];
    int x;
    /* the test set is a separate stream; a training question equal to a test one is dropped */
    char (*tq)[64] = malloc(sizeof *tq * (size_t)n_test);
    for (long i = 0; i < n_test; i++) {
        problem(seed + 1000, (uint64_t)i, (int)digits, tq[i], sizeof tq[i], &x);
        snprintf(ans, sizeof ans, "%d", x);
        write_sft(f[TEST], tq[i], ans);
    }
    long dropped = 0, n_sft = 0, n_pairs = 0, n_prompts = 0;
    for (long i = 0; i < n_train + n_pref + n_rs; i++) {
        problem(seed, (uint64_t)i, (int)digits, q, sizeof q, &x);
        int in_test = 0;
        for (long t = 0; t < n_test && !in_test; t++) in_test = !strcmp(q, tq[t]);
        if (in_test) {
            dropped++;
            continue;
        }
        snprintf(ans, sizeof ans, "%d", x);
        fprintf(f[CORPUS], "%s %s\n", q, ans);
        if (i < n_train) {
            write_sft(f[SFT], q, ans);
            n_sft++;
        } else if (i < n_train + n_pref) {
            n_pairs++; /* correct vs a near miss */
            uint64_t r = herd_splitmix64(seed ^ (uint64_t)i * 7919);
            int off = 1 + (int)(r % 10);
            snprintf(bad, sizeof bad, "%d", (r >> 8) & 1 && x >= off ? x - off : x + off);
            fprintf(f[PREF], "{\"prompt\":[{\"role\":\"user\",\"content\":\"%s\"}],"
                             "\"chosen\":\"%s\",\"rejected\":\"%s\"}\n", q, ans, bad);
            write_sft(f[PREF_QA], q, ans);
        } else {
            n_prompts++;
            fprintf(f[PROMPTS], "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}\n", q);
        }
    }
    int rc = 0;
    for (int k = 0; k < N_FILES; k++) rc |= fclose(f[k]) != 0;
    free(tq);
    printf("herd post demo-data: %s: %ld SFT conversations, %ld preference pairs, %ld prompts, %ld "
           "held-out, operands of %ld digits (%ld questions dropped as equal to a held-out one)\n", dir,
           n_sft, n_pairs, n_prompts, n_test, digits, dropped);
    return rc;
}

/* cmd_post_rs.c — `herd post rs|annotate|eval|average|demo-data`: the
 * arguments of the sampling commands of a round (rejection sampling with a
 * reward model, annotation, exact-answer evaluation: src/post/sampling.h),
 * of averaging (src/post/average.h) and of the demo's data
 * (src/post/demo_data.h); the work is theirs.
 *
 * rs, annotate and eval run on the generation layout (src/post/gen_layout.h):
 * data-parallel replicas of a model tensor-parallel over parallel.tp ranks,
 * under mpirun / srun; any layout writes the same bytes as one process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/post/average.h"
#include "src/post/demo_data.h"
#include "src/post/post_dp.h"
#include "src/post/sampling.h"

int herd_post_rs(int argc, char **argv, const herd_post_dp *dp);
int herd_post_eval(int argc, char **argv, const herd_post_dp *dp);
int herd_post_annotate(int argc, char **argv, const herd_post_dp *dp);
int herd_post_average(int argc, char **argv);
int herd_post_demo_data(int argc, char **argv);

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

static int rs_parse(int argc, char **argv, herd_sampling_args *a)
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

int herd_post_rs(int argc, char **argv, const herd_post_dp *dp)
{
    herd_sampling_args a;
    int rc = rs_parse(argc, argv, &a);
    if (!rc && (!a.prompts || !a.weights || !a.rm || !a.out))
        rc = rs_usage("rs: --prompts, --weights, --rm and --out are required");
    if (!rc) rc = herd_post_rejection_sample(&a, dp);
    free(a.sets);
    return rc;
}

int herd_post_eval(int argc, char **argv, const herd_post_dp *dp)
{
    herd_sampling_args a;
    int rc = rs_parse(argc, argv, &a);
    if (!rc && !a.data) rc = rs_usage("eval: --data TEST.jsonl is required");
    if (!rc) rc = herd_post_answer_eval(&a, dp);
    free(a.sets);
    return rc;
}

int herd_post_annotate(int argc, char **argv, const herd_post_dp *dp)
{
    herd_sampling_args a;
    int rc = rs_parse(argc, argv, &a);
    if (!rc && (!a.data || !a.weights || !a.out))
        rc = rs_usage("annotate: --data QA.jsonl, --weights and --out are required");
    if (!rc) rc = herd_post_annotate_pairs(&a, dp);
    free(a.sets);
    return rc;
}

/* herd post average CONFIG --tokenizer R --out W W1 W2 ...: element-wise mean. */
int herd_post_average(int argc, char **argv)
{
    const char *config = NULL, *tokenizer = NULL, *out = NULL;
    const char **in = calloc(argc, sizeof *in);
    char **sets = calloc(argc, sizeof *sets);
    int n = 0, n_sets = 0, rc = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tokenizer = argv[++i];
        else if (!strcmp(argv[i], "--set") && i + 1 < argc) sets[n_sets++] = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!config) config = argv[i];
        else in[n++] = argv[i];
    }
    herd_post_env e;
    if (!config || !out || n < 1) {
        fputs("usage: herd post average CONFIG --tokenizer R --out W.safetensors W1 W2 ...\n", stderr);
        rc = 2;
    } else if (herd_post_env_open(&e, config, n_sets, sets, tokenizer)) {
        rc = 1;
    } else {
        rc = herd_post_weights_average(&e, out, in, n) ? 1 : 0;
        herd_post_env_close(&e);
    }
    free(in);
    free(sets);
    return rc;
}

/* herd post demo-data --out DIR ...: the demo's data (src/post/demo_data.h). */
int herd_post_demo_data(int argc, char **argv)
{
    herd_demo_data_args a = {NULL, 2000, 200, 1000, 1000, 2, 1};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) a.dir = argv[++i];
        else if (!strcmp(argv[i], "--train") && i + 1 < argc) a.n_train = atol(argv[++i]);
        else if (!strcmp(argv[i], "--test") && i + 1 < argc) a.n_test = atol(argv[++i]);
        else if (!strcmp(argv[i], "--pref") && i + 1 < argc) a.n_pref = atol(argv[++i]);
        else if (!strcmp(argv[i], "--prompts") && i + 1 < argc) a.n_rs = atol(argv[++i]);
        else if (!strcmp(argv[i], "--digits") && i + 1 < argc) a.digits = atol(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) a.seed = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "herd post demo-data: unexpected argument '%s'\n", argv[i]);
            a.dir = NULL;
            break;
        }
    }
    if (!a.dir || a.n_train < 1 || a.n_test < 1 || a.n_pref < 1 || a.n_rs < 0 || a.digits < 1 ||
        a.digits > 4) {
        fputs("usage: herd post demo-data --out DIR [--train N] [--test N] [--pref N] [--prompts N]\n"
              "                           [--digits D (operands of 1..4 digits, no carries)] [--seed S]\n", stderr);
        return 2;
    }
    return herd_post_demo_data_write(&a);
}

/* cmd_post.c — `herd post sft|rm|dpo`: the training steps of a post-training
 * round on the CPU, one process or data-parallel over MPI ranks (below; TP,
 * PP and CP come with the trainer's 4D layout).
 *
 *   herd post sft CONFIG --tokenizer R --data SFT.jsonl [--weights W] --out W2
 *   herd post rm  CONFIG --tokenizer R --data PREF.jsonl [--weights W] --out RM
 *   herd post dpo CONFIG --tokenizer R --data PREF.jsonl --weights W [--ref W0] --out W2
 *        [--beta B] [--nll-coef C]   (default: post.dpo_beta 0.1, post.dpo_nll_coef 0.2)
 *   common: [--steps N] [--lr X] [--val FILE] [--set section.key=value]...
 *   herd post rm-eval CONFIG --tokenizer R --data PREF.jsonl --weights RM
 *
 * The runs themselves (shapes, schedule, steps) are in src/post/post_train.h;
 * this file parses their arguments.
 * rs, eval and demo-data are in cmd_post_rs.c.
 *
 * Under mpirun / srun with N ranks the same commands run data-parallel
 * (src/post/post_dp.h): the global batch stays batch.micro_batch rows / records /
 * pairs per step, each rank takes a contiguous share (micro_batch >= N; an
 * uneven split is fine), the loss is normalised over the global batch, the
 * gradients are summed over the ranks, AdamW runs replicated, and rank 0
 * alone prints, evaluates --val and writes --out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/cli/commands.h"
#include "src/post/post_common.h"
#include "src/post/post_dp.h"
#include "src/post/post_train.h"

int herd_post_rs(int argc, char **argv, const herd_post_dp *dp);
int herd_post_eval(int argc, char **argv, const herd_post_dp *dp);
int herd_post_annotate(int argc, char **argv, const herd_post_dp *dp);
int herd_post_demo_data(int argc, char **argv);
int herd_post_average(int argc, char **argv);

typedef struct {
    const char *config, *tokenizer;
    char **sets;
    int n_sets;
    herd_post_run run;
} post_args;

static int usage(const char *why)
{
    if (why) fprintf(stderr, "herd post: %s\n", why);
    fputs("usage: herd post sft CONFIG --tokenizer R --data SFT.jsonl [--weights W] --out W2\n"
          "       herd post rm  CONFIG --tokenizer R --data PREF.jsonl [--weights W] --out RM\n"
          "       herd post dpo CONFIG --tokenizer R --data PREF.jsonl --weights W [--ref W0] --out W2\n"
          "                [--beta B] [--nll-coef C]   (config: post.dpo_beta, post.dpo_nll_coef)\n"
          "         (common: [--steps N] [--lr X] [--val FILE] [--set section.key=value]...)\n"
          "       herd post rm-eval CONFIG --tokenizer R --data PREF.jsonl --weights RM   (pairwise accuracy)\n"
          "       herd post rs CONFIG --tokenizer R --prompts F.jsonl --weights W --rm RM --out SFT.jsonl\n"
          "                [--k K] [--temperature T] [--top-p P] [--max-new N] [--pairs PREF.jsonl]\n"
          "       herd post eval CONFIG --tokenizer R --data TEST.jsonl [--weights W] [--max-new N]\n"
          "       herd post annotate CONFIG --tokenizer R --data QA.jsonl --weights W --out PREF.jsonl\n"
          "                [--k K] [--temperature T] [--top-p P] [--seed S]   (pairs on the model's samples)\n"
          "       herd post average CONFIG --tokenizer R --out W.safetensors W1 W2 ...\n"
          "       herd post demo-data --out DIR [--train N] [--test N] [--pref N] [--prompts N] [--digits D] [--seed S]\n", stderr);
    return 2;
}

static int parse(int argc, char **argv, post_args *a, int needs_out)
{
    memset(a, 0, sizeof *a);
    a->sets = calloc(argc, sizeof(char *));
    a->run.beta = a->run.nll_coef = -1; /* not given: post.dpo_beta, post.dpo_nll_coef of the config */
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!v && k[0] == '-') return usage("an option is missing its value");
        if (!strcmp(k, "--set")) a->sets[a->n_sets++] = argv[++i];
        else if (!strcmp(k, "--tokenizer")) a->tokenizer = argv[++i];
        else if (!strcmp(k, "--data")) a->run.data = argv[++i];
        else if (!strcmp(k, "--weights")) a->run.weights = argv[++i];
        else if (!strcmp(k, "--ref")) a->run.ref = argv[++i];
        else if (!strcmp(k, "--out")) a->run.out = argv[++i];
        else if (!strcmp(k, "--val")) a->run.val = argv[++i];
        else if (!strcmp(k, "--steps")) {
            a->run.steps = strtoll(argv[++i], &end, 10);
            if (*end || a->run.steps < 1) return usage("--steps: expected an integer >= 1");
        } else if (!strcmp(k, "--lr") || !strcmp(k, "--beta") || !strcmp(k, "--nll-coef")) {
            double x = strtod(argv[++i], &end);
            if (*end || !(x >= 0)) return usage("--lr, --beta, --nll-coef: expected a number >= 0");
            *(!strcmp(k, "--lr") ? &a->run.lr : !strcmp(k, "--beta") ? &a->run.beta : &a->run.nll_coef) = x;
        } else if (k[0] != '-' && !a->config) a->config = k;
        else {
            fprintf(stderr, "herd post: unexpected argument '%s'\n", k);
            return usage(NULL);
        }
    }
    if (!a->config || !a->run.data || (needs_out && !a->run.out))
        return usage(needs_out ? "CONFIG, --data and --out are required" : "CONFIG and --data are required");
    return 0;
}

int herd_cmd_post(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) return usage(NULL);
    const char *sub = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines reach a log file as they happen */
    if (!strcmp(sub, "demo-data")) return herd_post_demo_data(argc - 1, argv + 1);
    if (!strcmp(sub, "average")) return herd_post_average(argc - 1, argv + 1);
    int is_rs = !strcmp(sub, "rs"), is_eval = !strcmp(sub, "eval"), is_ann = !strcmp(sub, "annotate");
    int (*run)(const herd_post_run *, const herd_post_env *, const herd_post_dp *) =
        !strcmp(sub, "sft") ? herd_post_sft : !strcmp(sub, "rm") ? herd_post_rm
        : !strcmp(sub, "dpo") ? herd_post_dpo : !strcmp(sub, "rm-eval") ? herd_post_rm_eval : NULL;
    if (!run && !is_rs && !is_eval && !is_ann) {
        fprintf(stderr, "herd post: unknown command '%s'\n", sub);
        return usage(NULL);
    }
    /* the data-parallel job (one process without a launcher); ranks other
     * than 0 keep stderr for their errors but print no progress: rank 0 speaks
     * for the job, with the global numbers */
    herd_post_dp dp;
    if (herd_post_dp_open(&dp)) return 1;
    if (dp.rank != 0 && !freopen("/dev/null", "w", stdout)) perror("herd post: /dev/null");
    int rc;
    if (is_rs || is_eval || is_ann) {
        rc = is_rs    ? herd_post_rs(argc - 1, argv + 1, &dp)
             : is_ann ? herd_post_annotate(argc - 1, argv + 1, &dp)
                      : herd_post_eval(argc - 1, argv + 1, &dp);
        herd_post_dp_close(&dp);
        return rc;
    }
    post_args a;
    rc = parse(argc - 1, argv + 1, &a, run != herd_post_rm_eval);
    herd_post_env e;
    if (!rc && herd_post_env_open(&e, a.config, a.n_sets, a.sets, a.tokenizer)) rc = 1;
    if (!rc && e.cfg.batch.micro_batch < dp.size) { /* the same test on every rank: all stop */
        if (dp.rank == 0)
            fprintf(stderr, "herd post %s: %s: key 'batch.micro_batch': %d is fewer than the %d "
                    "ranks (each rank needs at least one row, record or pair of a step)\n", sub,
                    a.config, e.cfg.batch.micro_batch, dp.size);
        herd_post_env_close(&e);
        rc = 1;
    }
    if (!rc) {
        rc = run == herd_post_dpo && !a.run.weights
                 ? usage("dpo: --weights (the SFT model: policy and reference) is required")
             : run == herd_post_rm_eval && !a.run.weights
                 ? usage("rm-eval: --weights (the reward model) is required")
                 : run(&a.run, &e, &dp);
        herd_post_env_close(&e);
    }
    free(a.sets);
    herd_post_dp_close(&dp);
    return rc;
}

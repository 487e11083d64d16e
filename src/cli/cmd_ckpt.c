/* cmd_ckpt.c — `herd ckpt ls|verify|view|average|export`: look at, check, average
 * and export the checkpoints of checkpoint/ (docs/checkpoint-format.md). */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "checkpoint/ckpt.h"
#include "checkpoint/hf_export.h"
#include "checkpoint/internal.h"
#include "src/cli/commands.h"
#include "src/data/data.h"
#include "src/data/tokenizer_hf.h"
#include "src/train/train_ckpt.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: herd ckpt ls DIR|STEP_DIR        steps, sizes, state in DIR; or one checkpoint's tensors\n"
            "       herd ckpt verify DIR|STEP_DIR    check every shard's size, checksum and header\n"
            "       herd ckpt view STEP_DIR          write its global view model.h5 (skipped by large jobs)\n"
            "       herd ckpt average OUT CKPT...  [--kind KIND]   element-wise mean into OUT\n"
            "       herd ckpt export CKPT OUT.safetensors|OUT.h5 [--kind KIND]   one-file model\n"
            "       herd ckpt export CKPT OUT_DIR --format hf [--dtype bf16|f32] [--max-shard-size 5GB]\n"
            "                        [--tie auto|yes|no] [--tokenizer RANKS]   Hugging Face Llama directory\n"
            "DIR is OUT_DIR/checkpoints (or OUT_DIR, when it holds checkpoints/); CKPT is a step\n"
            "directory, or a checkpoints directory whose newest good checkpoint is meant.\n");
    return 2;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* OUT_DIR given for OUT_DIR/checkpoints: use the latter */
static void resolve_dir(const char *in, char *out, size_t n)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/checkpoints", in);
    if (snprintf(out, n, "%s", is_dir(p) ? p : in) >= (int)n) out[n - 1] = '\0';
}

static int64_t dir_bytes(const char *p)
{
    DIR *d = opendir(p);
    if (!d) return 0;
    int64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char f[8300];
        struct stat st;
        snprintf(f, sizeof f, "%s/%s", p, de->d_name);
        if (de->d_name[0] != '.' && stat(f, &st) == 0 && S_ISREG(st.st_mode)) total += st.st_size;
    }
    closedir(d);
    return total;
}

/* complete: MANIFEST parses, every shard has its size and its index; cheap (no checksums) */
static const char *state_of(const char *p, int *world, int *slices)
{
    *world = 0;
    *slices = 0;
    if (!ckpt_dir_has_manifest(p)) return "incomplete";
    ckpt_manifest m;
    if (ckpt_manifest_read(p, &m)) return "damaged (manifest)";
    *world = m.world;
    if (ckpt_index_load(p, &m)) { ckpt_manifest_free(&m); return "damaged (shard index)"; }
    *slices = m.n_ents;
    const char *s = "complete";
    for (int r = 0; r < m.world; r++) {
        char f[8300];
        struct stat st;
        snprintf(f, sizeof f, "%s/%s", p, m.shards[r].file);
        if (stat(f, &st) || st.st_size != m.shards[r].size) { s = "damaged (shard size)"; break; }
    }
    ckpt_manifest_free(&m);
    return s;
}

/* ls of one step directory: its tensors */
static int ls_step(const char *p)
{
    herd_ckpt *c;
    if (herd_ckpt_open(&c, p)) return 1;
    printf("step %" PRId64 ", written by %d rank(s), %.2f MB\n", herd_ckpt_step(c), herd_ckpt_world(c),
           (double)dir_bytes(p) / 1e6);
    printf("%-8s %-56s %s\n", "kind", "tensor", "global shape");
    for (int i = 0; i < herd_ckpt_n_tensors(c); i++) {
        const char *k, *name;
        int nd;
        int64_t g[2];
        herd_ckpt_tensor(c, i, &k, &name, &nd, g);
        if (nd == 1) printf("%-8s %-56s [%" PRId64 "]\n", k, name, g[0]);
        else printf("%-8s %-56s [%" PRId64 ", %" PRId64 "]\n", k, name, g[0], g[1]);
    }
    herd_ckpt_close(c);
    return 0;
}

static int cmd_ls(const char *arg)
{
    if (ckpt_dir_has_manifest(arg)) return ls_step(arg);
    char dir[4096];
    resolve_dir(arg, dir, sizeof dir);
    int64_t *steps;
    int n;
    if (ckpt_list_steps(dir, &steps, &n)) return 1;
    printf("%-10s %10s %6s %7s  %s\n", "step", "MB", "ranks", "slices", "state");
    for (int i = n - 1; i >= 0; i--) {
        char name[32], p[4200];
        ckpt_step_name(steps[i], name, sizeof name);
        snprintf(p, sizeof p, "%s/%s", dir, name);
        int world, slices;
        const char *st = state_of(p, &world, &slices);
        printf("%-10" PRId64 " %10.2f %6d %7d  %s\n", steps[i], (double)dir_bytes(p) / 1e6, world, slices, st);
    }
    if (!n) printf("(no checkpoints in %s)\n", dir);
    free(steps);
    return 0;
}

static int cmd_verify(const char *arg)
{
    if (ckpt_dir_has_manifest(arg)) {
        if (herd_ckpt_verify(arg)) { printf("BAD %s\n", arg); return 1; }
        printf("OK %s\n", arg);
        return 0;
    }
    char dir[4096];
    resolve_dir(arg, dir, sizeof dir);
    int64_t *steps;
    int n, bad = 0, good = 0;
    if (ckpt_list_steps(dir, &steps, &n)) return 1;
    if (!n) {
        /* a step directory that never committed, or an empty directory */
        fprintf(stderr, "herd ckpt verify: %s: no MANIFEST and no step_* directories\n", arg);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        char name[32], p[4200];
        ckpt_step_name(steps[i], name, sizeof name);
        snprintf(p, sizeof p, "%s/%s", dir, name);
        if (!ckpt_dir_has_manifest(p)) { printf("INCOMPLETE %s (ignored by resume)\n", p); continue; }
        if (herd_ckpt_verify(p)) { printf("BAD %s\n", p); bad++; }
        else { printf("OK %s\n", p); good++; }
    }
    free(steps);
    printf("%d good, %d bad\n", good, bad);
    return bad || !good ? 1 : 0;
}

/* CKPT: a step directory, or a directory whose newest good checkpoint is meant */
static int resolve_ckpt(const char *arg, char *out, size_t n)
{
    if (ckpt_dir_has_manifest(arg)) { snprintf(out, n, "%s", arg); return 0; }
    char dir[4096];
    resolve_dir(arg, dir, sizeof dir);
    return herd_ckpt_find_latest(dir, out, n);
}

static const char *take_opt(int *argc, char **argv, const char *opt)
{
    for (int i = 0; i < *argc; i++)
        if (!strcmp(argv[i], opt) && i + 1 < *argc) {
            const char *k = argv[i + 1];
            for (int j = i; j + 2 <= *argc; j++) argv[j] = argv[j + 2];
            *argc -= 2;
            return k;
        }
    return NULL;
}

/* the model section of the checkpoint's saved config, as hf_export reads it */
static int hf_model_of(const char *step_dir, herd_hf_model *m)
{
    herd_config *c = malloc(sizeof *c);
    if (!c || herd_train_ckpt_read_config(step_dir, c)) { free(c); return -1; }
    const herd_config_model *cm = &c->model;
    *m = (herd_hf_model){.n_layers = cm->n_layers, .d_model = cm->d_model, .n_heads = cm->n_heads,
                         .n_kv_heads = cm->n_kv_heads, .ffn_dim = cm->ffn_dim,
                         .vocab_size = cm->vocab_size, .max_seq_len = cm->max_seq_len,
                         .rope_theta = cm->rope_theta, .norm_eps = cm->norm_eps,
                         /* herd's byte-level ids; a BPE run's are the tokenizer's */
                         .bos_id = HERD_BYTE_BOS < cm->vocab_size ? HERD_BYTE_BOS : -1,
                         .eos_id = HERD_BYTE_EOT < cm->vocab_size ? HERD_BYTE_EOT : -1};
    free(c);
    return 0;
}

static int write_tokenizer(const char *dir, void *tok)
{
    return herd_tokenizer_write_hf(tok, dir);
}

/* The run's tokenizer (a tiktoken rank file) as the export's tokenizer files:
 * its ids must fit the model's vocabulary; bos/eos become its special ids. */
static int hf_tokenizer(const char *path, herd_hf_model *m, herd_tokenizer **tok)
{
    if (herd_tokenizer_load(tok, path)) return -1;
    int v = herd_tokenizer_vocab_size(*tok);
    if (v > m->vocab_size) {
        fprintf(stderr, "herd ckpt export: --tokenizer %s: %d ids, but the model's vocab_size is %d\n",
                path, v, m->vocab_size);
        herd_tokenizer_free(*tok);
        *tok = NULL;
        return -1;
    }
    m->bos_id = herd_tokenizer_n_regular(*tok) + HERD_TOK_BOS;
    m->eos_id = herd_tokenizer_n_regular(*tok) + HERD_TOK_EOT;
    return 0;
}

/* hf[]: --format, --dtype, --max-shard-size, --tie, --tokenizer (NULL: default) */
static int cmd_export_hf(const char *ckpt, const char *out, const char *const *hf)
{
    herd_hf_options o = {0};
    if (hf[0] && strcmp(hf[0], "hf")) {
        fprintf(stderr, "herd ckpt export: --format %s: expected hf (or no --format: one file)\n", hf[0]);
        return 2;
    }
    if (hf[1] && strcmp(hf[1], "bf16") && strcmp(hf[1], "f32")) {
        fprintf(stderr, "herd ckpt export: --dtype %s: expected bf16 or f32\n", hf[1]);
        return 2;
    }
    o.bf16 = hf[1] && !strcmp(hf[1], "bf16");
    if (hf[2] && (o.max_shard_bytes = herd_hf_parse_size(hf[2])) < 0) {
        fprintf(stderr, "herd ckpt export: --max-shard-size %s: expected a size (5GB, 500MB, 2GiB, bytes)\n",
                hf[2]);
        return 2;
    }
    const char *ties[3] = {"auto", "no", "yes"};
    int t = 0;
    while (hf[3] && t < 3 && strcmp(hf[3], ties[t])) t++;
    if (t == 3) {
        fprintf(stderr, "herd ckpt export: --tie %s: expected auto, yes or no\n", hf[3]);
        return 2;
    }
    o.tie = (herd_hf_tie)t;
    char p[4096];
    herd_hf_model m;
    herd_tokenizer *tok = NULL;
    if (resolve_ckpt(ckpt, p, sizeof p) || hf_model_of(p, &m)) return 1;
    if (hf[4] && hf_tokenizer(hf[4], &m, &tok)) return 1;
    o.extra = tok ? write_tokenizer : NULL;
    o.extra_arg = tok;
    int rc = herd_ckpt_export_hf(p, out, &m, &o);
    if (tok) herd_tokenizer_free(tok);
    if (rc) return 1;
    printf("exported %s to %s (Hugging Face Llama, %s%s)\n", p, out, o.bf16 ? "bf16" : "f32",
           tok ? ", tokenizer" : "");
    return 0;
}

int herd_cmd_ckpt(int argc, char **argv)
{
    if (argc < 2) return usage();
    const char *sub = argv[1];
    argc -= 2;
    argv += 2;
    const char *kind = take_opt(&argc, argv, "--kind");
    const char *hf[5] = {take_opt(&argc, argv, "--format"), take_opt(&argc, argv, "--dtype"),
                         take_opt(&argc, argv, "--max-shard-size"), take_opt(&argc, argv, "--tie"),
                         take_opt(&argc, argv, "--tokenizer")};
    for (int i = 0; i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "herd ckpt %s: unknown option '%s'\n", sub, argv[i]);
            return usage();
        }
    if (!strcmp(sub, "ls") && argc == 1) return cmd_ls(argv[0]);
    if (!strcmp(sub, "verify") && argc == 1) return cmd_verify(argv[0]);
    if (!strcmp(sub, "view") && argc == 1) {
        if (herd_ckpt_global_view(argv[0])) return 1;
        printf("wrote %s/model.h5\n", argv[0]);
        return 0;
    }
    if (!strcmp(sub, "average") && argc >= 2) {
        if (ckpt_dir_has_manifest(argv[0])) {
            fprintf(stderr, "herd ckpt average: %s: is a committed checkpoint; not overwritten\n", argv[0]);
            return 1;
        }
        char (*in)[4096] = malloc((size_t)(argc - 1) * sizeof *in);
        const char **inp = malloc((size_t)(argc - 1) * sizeof *inp);
        int rc = 0;
        for (int i = 1; i < argc && !rc; i++) {
            if (resolve_ckpt(argv[i], in[i - 1], sizeof in[i - 1])) rc = 1;
            inp[i - 1] = in[i - 1];
        }
        if (!rc && herd_ckpt_average(argv[0], inp, argc - 1, kind)) rc = 1;
        if (!rc) printf("averaged %d checkpoints into %s\n", argc - 1, argv[0]);
        free(in);
        free(inp);
        return rc;
    }
    if (!strcmp(sub, "export") && argc == 2 && (hf[0] || hf[1] || hf[2] || hf[3] || hf[4]))
        return cmd_export_hf(argv[0], argv[1], hf);
    if (!strcmp(sub, "export") && argc == 2) {
        char p[4096];
        if (resolve_ckpt(argv[0], p, sizeof p)) return 1;
        if (herd_ckpt_export(p, argv[1], kind)) return 1;
        printf("exported %s (%s) to %s\n", p, kind ? kind : "param", argv[1]);
        return 0;
    }
    return usage();
}

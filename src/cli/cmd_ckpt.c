/* cmd_ckpt.c — `herd ckpt ls|verify|view|average|export|import`: look at, check, average
 * and export the checkpoints of checkpoint/ (docs/checkpoint-format.md). */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "checkpoint/ckpt.h"
#include "checkpoint/internal.h"
#include "src/cli/cmd_ckpt_export.h"
#include "src/cli/commands.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: herd ckpt ls DIR|STEP_DIR        steps, sizes, state in DIR; or one checkpoint's tensors\n"
            "       herd ckpt verify DIR|STEP_DIR    check every shard's size, checksum and header\n"
            "       herd ckpt view STEP_DIR          write its global view model.h5 (skipped by large jobs)\n"
            "       herd ckpt average OUT CKPT...  [--kind KIND]   element-wise mean into OUT\n"
            "       herd ckpt export CKPT OUT_DIR --format hf [--dtype bf16|f32] [--max-shard-size 5GB]\n"
            "                        [--tie auto|yes|no] [--tokenizer RANKS]   Hugging Face Llama directory\n"
            "       herd ckpt export CKPT OUT.safetensors|OUT.h5 [--kind KIND]   one-file model\n"
            "       herd ckpt import HF_DIR CONFIG.yaml [--set k=v]...   a Hugging Face Llama as step 0\n"
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

static const char *take_kind(int *argc, char **argv)
{
    for (int i = 0; i < *argc; i++)
        if (!strcmp(argv[i], "--kind") && i + 1 < *argc) {
            const char *k = argv[i + 1];
            for (int j = i; j + 2 <= *argc; j++) argv[j] = argv[j + 2];
            *argc -= 2;
            return k;
        }
    return NULL;
}

int herd_cmd_ckpt(int argc, char **argv)
{
    if (argc < 2) return usage();
    const char *sub = argv[1];
    argc -= 2;
    argv += 2;
    if (!strcmp(sub, "import")) return herd_cmd_ckpt_import(argc, argv);
    const char *kind = take_kind(&argc, argv);
    if (!strcmp(sub, "export") && herd_ckpt_export_wants_hf(argc, argv))
        return herd_cmd_ckpt_export_hf(argc, argv, kind);
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
    if (!strcmp(sub, "export") && argc == 2) {
        char p[4096];
        if (resolve_ckpt(argv[0], p, sizeof p)) return 1;
        if (herd_ckpt_export(p, argv[1], kind)) return 1;
        printf("exported %s (%s) to %s\n", p, kind ? kind : "param", argv[1]);
        return 0;
    }
    return usage();
}

int herd_cmd_ckpt_resolve(const char *arg, char *out, size_t n)
{
    return resolve_ckpt(arg, out, n);
}

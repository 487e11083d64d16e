/* cmd_check.c — `herd check CONFIG [--out DIR] [--set key=value]...`: the
 * preflight (src/parallel/preflight.h), run on the allocation with srun or
 * mpirun before training. Exit 0 when the check ran (slow nodes are a
 * finding, written to DIR/slow_nodes), 1 when it could not, 2 on usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/comm.h"
#include "src/cli/cli_config.h"
#include "src/cli/commands.h"
#include "src/config/config.h"
#include "src/parallel/preflight.h"

static int usage(FILE *f)
{
    fprintf(f, "usage: herd check CONFIG.yaml [--out DIR] [--set section.key=value]... [--reps N] [--factor X]\n"
               "  run with srun/mpirun on the job's ranks and layout: each rank's binding, an arithmetic probe,\n"
               "  each parallel group's collectives at the step's sizes, the links between neighbouring ranks.\n"
               "  --out DIR    DIR/slow_nodes, DIR/links, DIR/check.json (default: train.out_dir/check)\n"
               "  --reps N     repetitions of each measurement, the median counts (default 5)\n"
               "  --factor X   slow = more than X times the median of its peers (default 3)\n");
    return f == stdout ? 0 : 2;
}

typedef struct {
    const char *path, *out;
    char **sets;
    int n_sets, reps;
    double factor;
} check_args;

static int parse_number(const char *flag, const char *v, double lo, double hi, double *x)
{
    char *end;
    *x = strtod(v, &end);
    if (end == v || *end || !(*x >= lo && *x <= hi)) {
        fprintf(stderr, "herd check: %s '%s': expected a number in [%g, %g]\n", flag, v, lo, hi);
        return -1;
    }
    return 0;
}

/* -1: go on; else the exit status */
static int parse_args(int argc, char **argv, check_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x;
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) return usage(stdout);
        if (!strcmp(s, "--set") && v) a->sets[a->n_sets++] = argv[++i];
        else if (!strncmp(s, "--set=", 6)) a->sets[a->n_sets++] = argv[i] + 6;
        else if (!strcmp(s, "--out") && v) a->out = argv[++i];
        else if (!strcmp(s, "--reps") && v) {
            if (parse_number(s, v, 1, 1000, &x)) return 2;
            a->reps = (int)x;
            i++;
        } else if (!strcmp(s, "--factor") && v) {
            if (parse_number(s, v, 1.01, 1000, &x)) return 2;
            a->factor = x;
            i++;
        } else if (s[0] == '-' || a->path) {
            fprintf(stderr, "herd check: unexpected argument '%s'\n", s);
            return usage(stderr);
        } else a->path = s;
    }
    if (!a->path) return usage(stderr);
    return -1;
}

static int check(const herd_config *c, const check_args *a, int rank)
{
    herd_preflight_options o = {.reps = a->reps};
    herd_preflight_result r;
    if (herd_preflight_run(c, a->path, &o, &r)) return 1;
    if (rank != 0) return 0;
    char dir[4096];
    if (a->out) snprintf(dir, sizeof dir, "%s", a->out);
    else snprintf(dir, sizeof dir, "%s/check", c->train.out_dir);
    herd_preflight_verdict v;
    int rc = herd_preflight_judge(&r, a->factor, &v) ? (fprintf(stderr, "herd check: out of memory\n"), 1)
             : herd_preflight_write(&r, &v, a->factor, dir) ? 1 : 0;
    herd_preflight_verdict_free(&v);
    herd_preflight_free(&r);
    return rc;
}

int herd_cmd_check(int argc, char **argv)
{
    check_args a = {.reps = 5, .factor = 3};
    a.sets = calloc((size_t)argc, sizeof(char *));
    if (!a.sets) return 1;
    int status = parse_args(argc, argv, &a);
    if (status >= 0) {
        free(a.sets);
        return status;
    }
    if (herd_mpi_init(NULL, NULL)) {
        free(a.sets);
        return 1;
    }
    int rank = herd_mpi_world_rank();
    herd_config c;
    int rc = herd_cli_config_resolve_quietly(&c, a.path, a.n_sets, a.sets, rank) ? 1 : check(&c, &a, rank);
    free(a.sets);
    herd_mpi_finalize();
    return rc;
}

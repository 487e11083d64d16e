/* cmd_train.c — `herd train CONFIG [--set key=value]... [--dump-params FILE]`
 *
 * One process per rank: `mpirun -np N herd train ...` or `srun --mpi=pmix -n N
 * herd train ...`; started alone it is a one-rank job. Every rank reads the
 * config; only rank 0 prints, so that a bad key is reported once, and every
 * rank exits non-zero. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/comm.h"
#include "src/cli/cli_config.h"
#include "src/cli/commands.h"
#include "src/config/config.h"
#include "src/train/train.h"
#include "monitoring/exitcodes.h"

static int usage(void)
{
    fprintf(stderr, "usage: herd train CONFIG.yaml [--set section.key=value]... "
            "[--dump-params FILE.safetensors] [--print-schedule]\n");
    return 2;
}

int herd_cmd_train(int argc, char **argv)
{
    const char *path = NULL;
    herd_train_options opt = {0};
    char **sets = calloc(argc, sizeof(char *));
    int n_sets = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--set") && i + 1 < argc) sets[n_sets++] = argv[++i];
        else if (!strncmp(argv[i], "--set=", 6)) sets[n_sets++] = argv[i] + 6;
        else if (!strcmp(argv[i], "--dump-params") && i + 1 < argc) opt.dump_params = argv[++i];
        else if (!strcmp(argv[i], "--print-schedule")) opt.print_schedule = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { free(sets); return usage(); }
        else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "herd train: unexpected argument '%s'\n", argv[i]);
            free(sets);
            return usage();
        } else path = argv[i];
    }
    if (!path) { free(sets); return usage(); }
    if (herd_mpi_init(NULL, NULL)) { free(sets); return 1; }
    int rank = herd_mpi_world_rank();
    herd_config c;
    int rc = herd_cli_config_resolve_quietly(&c, path, n_sets, sets, rank);
    free(sets);
    if (rc == 0) {
        if (rank == 0) {
            printf("== resolved config (%s) ==\n", path);
            herd_config_write(&c, stdout);
            printf("==\n");
            fflush(stdout);
        }
        rc = herd_train(&c, path, &opt);
    }
    herd_mpi_finalize();
    /* HERD_EXIT_USAGE: the launch itself is wrong (two ranks on one GPU), and
     * slurm/run_stage.sh does not relaunch it */
    if (rc == HERD_EXIT_REQUEUE || rc == HERD_EXIT_USAGE) return rc;
    return rc ? HERD_EXIT_FAIL : HERD_EXIT_OK;
}

/* cmd_ckpt_import.c — `herd ckpt import HF_DIR CONFIG.yaml [--set key=value]...`
 *
 * A Hugging Face Llama directory (config.json, safetensors: src/model/hf.h)
 * becomes herd checkpoint step 0 in CONFIG's checkpoint.dir (default
 * train.out_dir/checkpoints), which `herd train CONFIG --set
 * checkpoint.resume=1` resumes on any layout. CONFIG's model keys must agree
 * with config.json; its data and batch keys are the run's to come. Runs as one
 * process or under mpirun (each rank reads its slices). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/comm.h"
#include "src/cli/commands.h"
#include "src/config/config.h"
#include "src/train/train_import.h"

int herd_cmd_ckpt_import(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: herd ckpt import HF_DIR CONFIG.yaml [--set section.key=value]...\n");
        return 2;
    }
    const char *hf = argv[0], *path = argv[1];
    char **sets = calloc((size_t)argc + 3, sizeof(char *));
    char from[HERD_PATH_MAX + 32];
    int n = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--set") && i + 1 < argc) sets[n++] = argv[++i];
        else if (!strncmp(argv[i], "--set=", 6)) sets[n++] = argv[i] + 6;
        else {
            fprintf(stderr, "herd ckpt import: unexpected argument '%s'\n", argv[i]);
            free(sets);
            return 2;
        }
    }
    snprintf(from, sizeof from, "train.init_from=%s", hf);
    sets[n++] = from;
    sets[n++] = "checkpoint.resume=0"; /* the import is step 0, never a resumed run */
    if (herd_mpi_init(NULL, NULL)) {
        free(sets);
        return 1;
    }
    herd_config c;
    int rc = herd_config_resolve(&c, path, n, sets);
    free(sets);
    if (rc == 0 && c.checkpoint.every == 0) c.checkpoint.every = 1; /* the writer exists */
    if (rc == 0) rc = herd_train_import(&c, path);
    if (rc == 0 && herd_mpi_world_rank() == 0)
        printf("imported %s as checkpoint step 0 in %s%s\n", hf,
               c.checkpoint.dir[0] ? c.checkpoint.dir : c.train.out_dir,
               c.checkpoint.dir[0] ? "" : "/checkpoints");
    herd_mpi_finalize();
    return rc ? 1 : 0;
}

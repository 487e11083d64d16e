/* cli_config.c — see cli_config.h. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include "src/cli/cli_config.h"

int herd_cli_config_resolve_quietly(herd_config *c, const char *path, int n_sets, char **sets, int rank)
{
    int saved = -1;
    if (rank != 0) {
        fflush(stderr);
        saved = dup(2);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 2);
            close(devnull);
        }
    }
    int rc = herd_config_resolve(c, path, n_sets, sets);
    if (saved >= 0) {
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
    }
    return rc;
}

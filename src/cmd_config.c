/* cmd_config.c — `herd config [CONFIG.yaml] [--set key=value]... [--keys]` */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/commands.h"
#include "src/config.h"

int herd_cmd_config(int argc, char **argv)
{
    const char *path = NULL;
    char **sets = calloc(argc, sizeof(char *));
    int n_sets = 0, rc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--keys")) {
            herd_config_print_keys(stdout);
            free(sets);
            return 0;
        } else if (!strcmp(argv[i], "--set") && i + 1 < argc) {
            sets[n_sets++] = argv[++i];
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "usage: herd config [CONFIG.yaml] [--set section.key=value]... [--keys]\n");
            free(sets);
            return 2;
        } else {
            path = argv[i];
        }
    }
    herd_config c;
    rc = herd_config_resolve(&c, path, n_sets, sets);
    free(sets);
    if (rc) return 1;
    return herd_config_write(&c, stdout) ? 1 : 0;
}

/* cmd_config.c — `herd config [CONFIG.yaml] [--set key=value]... [--keys]`
 *
 * Prints the config exactly as `herd train` would resolve it (defaults <
 * preset < file < --set), so that a user can check a change before a run;
 * `--keys` prints every key with its type, default, range and meaning. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/cli/commands.h"
#include "src/config/config.h"

static int usage(FILE *f)
{
    fprintf(f, "usage: herd config [CONFIG.yaml] [--set section.key=value]... [--keys]\n"
               "  print the resolved config as YAML (defaults < preset < CONFIG < --set);\n"
               "  --keys prints every key with its type, default and meaning\n");
    return f == stdout ? 0 : 2;
}

int herd_cmd_config(int argc, char **argv)
{
    const char *path = NULL;
    int n_sets = 0, keys = 0;
    char **sets = calloc((size_t)argc + 1, sizeof *sets);
    if (!sets) return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--keys")) {
            keys = 1;
        } else if (!strcmp(a, "--set") && i + 1 < argc) {
            sets[n_sets++] = argv[++i];
        } else if (!strncmp(a, "--set=", 6)) {
            sets[n_sets++] = argv[i] + 6;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            free(sets);
            return usage(stdout);
        } else if (a[0] == '-' || path) {
            fprintf(stderr, "herd config: unexpected argument '%s'\n", a);
            free(sets);
            return usage(stderr);
        } else {
            path = a;
        }
    }
    if (keys) {
        free(sets);
        herd_config_print_keys(stdout);
        return 0;
    }
    herd_config c;
    int rc = herd_config_resolve(&c, path, n_sets, sets);
    free(sets);
    if (rc) return 1;
    return herd_config_write(&c, stdout) ? 1 : 0;
}

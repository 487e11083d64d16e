/* cmd_train.c — `herd train CONFIG [--set key=value]...` */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/commands.h"
#include "src/config.h"
#include "src/train.h"

static int usage(void)
{
    fprintf(stderr, "usage: herd train CONFIG.yaml [--set section.key=value]...\n");
    return 2;
}

int herd_cmd_train(int argc, char **argv)
{
    const char *path = NULL;
    char **sets = calloc(argc, sizeof(char *));
    int n_sets = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--set") && i + 1 < argc) sets[n_sets++] = argv[++i];
        else if (!strncmp(argv[i], "--set=", 6)) sets[n_sets++] = argv[i] + 6;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { free(sets); return usage(); }
        else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "herd train: unexpected argument '%s'\n", argv[i]);
            free(sets);
            return usage();
        } else path = argv[i];
    }
    if (!path) { free(sets); return usage(); }
    herd_config c;
    int rc = herd_config_resolve(&c, path, n_sets, sets);
    free(sets);
    if (rc) return 1;
    printf("== resolved config (%s) ==\n", path);
    herd_config_write(&c, stdout);
    printf("==\n");
    return herd_train(&c, path) ? 1 : 0;
}

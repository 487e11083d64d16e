/* cli_config.h — reading the config in a command that every rank of a job runs. */
#ifndef HERD_CLI_CONFIG_H
#define HERD_CLI_CONFIG_H

#include "src/config/config.h"

/* herd_config_resolve on every rank; ranks other than 0 keep quiet (their
 * messages would be copies of rank 0's). */
int herd_cli_config_resolve_quietly(herd_config *c, const char *path, int n_sets, char **sets, int rank);

#endif

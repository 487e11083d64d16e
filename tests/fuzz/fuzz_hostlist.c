/* fuzz_hostlist.c — Slurm host-list expansion (topology/slurm_topo.c):
 * "node[01-16],gpu[1,3-5]" and the like, as topology.conf and srun give them. */
#include "topology/topo_internal.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init(argc, argv);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *list = fuzz_string(data, size);
    char **names;
    int n;
    if (herd_topo_hostlist_expand(list, "fuzz", &names, &n) == 0) {
        for (int i = 0; i < n; i++) herd_topo_host_match(names[i], list);
        herd_topo_names_free(names, n);
    }
    free(list);
    return 0;
}

/* fuzz_topo_conf.c — topology.conf (topology/slurm_topo.c, tree.c): the
 * parser, then the switch tree built from it for a few ranks. */
#include "topology/topo_internal.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init(argc, argv);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_path(data, size);
    if (!path) return 0;
    herd_conf_switch *sw;
    int n;
    if (herd_topo_conf_parse(path, &sw, &n) == 0) herd_topo_conf_free(sw, n);
    herd_topo *t;
    if (herd_topo_from_conf(&t, path, 2, 4) == 0) {
        herd_topo_rank_distance(t, 0, 3);
        herd_topo_rank_switch(t, 1, 1);
        herd_topo_free(t);
    }
    return 0;
}

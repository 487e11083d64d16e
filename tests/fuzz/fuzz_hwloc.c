/* fuzz_hwloc.c — loading a node's hwloc XML (topology/hwloc_discover.c):
 * hwloc's XML reader, then herd's walk for GPUs, NICs and their distances. */
#include "topology/topo.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init(argc, argv);
    /* hwloc's own XML reader, not its libxml2 plugin: the plugin leaks on some
     * malformed files (inside libxml2/hwloc, nothing herd can free), which
     * would stop every run at its first such input */
    setenv("HWLOC_LIBXML_IMPORT", "0", 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_path(data, size);
    if (!path) return 0;
    herd_topo_machine m;
    if (herd_topo_machine_load(&m, path) == 0) {
        char buf[4096];
        for (int r = 0; r < 4; r++) herd_topo_machine_rank_cpus(&m, r, 4, buf, sizeof buf);
        herd_topo_machine_rank_nic(&m, 0);
    }
    return 0;
}

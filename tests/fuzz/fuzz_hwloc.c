/* fuzz_hwloc.c — loading a node's hwloc XML (topology/hwloc_discover.c):
 * hwloc's XML import, then herd's walk for GPUs, NICs and their distances. */
#include <hwloc.h>
#include "topology/topo.h"
#include "tests/fuzz/fuzz.h"

/* hwloc's libxml2 import leaks a little of some malformed files itself
 * (inside libxml2 and the plugin, after herd has destroyed the topology): not
 * herd's to free. A leak whose allocation has no frame in these libraries is
 * still reported. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libxml2.so\nleak:hwloc_xml_libxml.so\nleak:libhwloc.so\n";
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init(argc, argv);
    /* one topology that lives to the end keeps hwloc's plugins loaded: without
     * it every input would load and unload them (slow, and a leak report
     * could not name the plugin) */
    static hwloc_topology_t keep;
    if (hwloc_topology_init(&keep)) abort();
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

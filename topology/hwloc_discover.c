/* hwloc_discover.c — one node with hwloc: sockets, NUMA, cores, GPUs and
 * NICs by PCI bus id, which NIC is closest to each GPU, the cores of each
 * local rank, and binding.
 *
 * GPUs are the OS devices of hwloc's GPU plugins (CUDA, NVML, ROCm SMI,
 * OpenCL), or else PCI functions of a compute class; NICs OpenFabrics (RDMA)
 * devices; a device seen twice (cuda0 and nvml0 on one PCI function) counts
 * once. Both lists are sorted by bus id, the order of
 * CUDA_DEVICE_ORDER=PCI_BUS_ID, so that local rank i drives gpu[i].
 */
#include <errno.h>
#include <hwloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "topology/topo.h"
#include "topology/topo_internal.h"

static hwloc_obj_t pci_parent(hwloc_obj_t o)
{
    while (o && o->type != HWLOC_OBJ_PCI_DEVICE) o = o->parent;
    return o;
}

/* A GPU as hwloc's GPU plugins show one: a GPU or co-processor OS device
 * named by CUDA (cuda0), NVML (nvml0), ROCm SMI (rsmi0) or OpenCL (opencl0d0).
 * Not a DRM device (card0, renderD128): every display chip has one, a
 * server's management VGA too. */
static int is_gpu(hwloc_obj_t o)
{
    static const char *prefix[] = {"cuda", "nvml", "rsmi", "opencl"};
    hwloc_obj_osdev_type_t t = o->attr->osdev.type;
    if ((t != HWLOC_OBJ_OSDEV_GPU && t != HWLOC_OBJ_OSDEV_COPROC) || !o->name) return 0;
    for (size_t i = 0; i < sizeof prefix / sizeof prefix[0]; i++)
        if (!strncmp(o->name, prefix[i], strlen(prefix[i]))) return 1;
    return 0;
}

/* A compute GPU as a bare PCI function (hwloc without its GPU plugins, as
 * Debian's): a 3D controller (class 0x0302: NVIDIA's data-centre GPUs), or an
 * AMD accelerator without display (0x0380 MI100-MI250, 0x1200 MI300). Never
 * a VGA controller (0x0300): the console of a server (ASPEED, Matrox, ATI
 * ES1000) or a workstation's display card, which no rank should drive. */
static int is_compute_pci(const struct hwloc_pcidev_attr_s *a)
{
    if (a->class_id == 0x0302) return 1;
    return a->vendor_id == 0x1002 && (a->class_id == 0x0380 || a->class_id == 0x1200);
}

static int cmp_busid(const void *a, const void *b)
{
    return strcmp(((const herd_topo_pcidev *)a)->busid, ((const herd_topo_pcidev *)b)->busid);
}

/* set as hwloc list syntax into buf; -1 if it does not fit */
static int cpu_list(char *buf, size_t len, hwloc_const_bitmap_t set)
{
    int k = hwloc_bitmap_list_snprintf(buf, len, set);
    return k < 0 || (size_t)k >= len ? -1 : 0;
}

/* fill d from OS device o; 1 if its PCI function is already in list[0..n),
 * -1 if its cpu lists do not fit */
static int describe(hwloc_topology_t topo, hwloc_obj_t o, herd_topo_pcidev *list, int n, herd_topo_pcidev *d)
{
    hwloc_obj_t pci = pci_parent(o);
    memset(d, 0, sizeof *d);
    if (pci) {
        struct hwloc_pcidev_attr_s *a = &pci->attr->pcidev;
        snprintf(d->busid, sizeof d->busid, "%04x:%02x:%02x.%01x", a->domain, a->bus, a->dev, a->func);
        for (int i = 0; i < n; i++)
            if (!strcmp(list[i].busid, d->busid)) return 1;
    }
    snprintf(d->name, sizeof d->name, "%s", o->name ? o->name : "?");
    hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(topo, o);
    hwloc_obj_t pkg = anc ? hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, anc) : NULL;
    if (anc && anc->type == HWLOC_OBJ_PACKAGE) pkg = anc;
    d->package = pkg ? (int)pkg->os_index : -1;
    d->numa = anc && anc->nodeset ? hwloc_bitmap_first(anc->nodeset) : -1;
    hwloc_obj_t domain = pkg ? pkg : anc;
    if ((anc && anc->cpuset && cpu_list(d->cpus, sizeof d->cpus, anc->cpuset)) ||
        (domain && domain->cpuset && cpu_list(d->package_cpus, sizeof d->package_cpus, domain->cpuset)))
        return -1;
    d->nearest_nic = -1;
    d->nic_distance = -1;
    return 0;
}

/* The nearest object above both a and b, by parent pointers alone.
 * hwloc_get_common_ancestor_obj walks by depth, and the depths of I/O
 * objects (bridges, PCI devices) are negative special values, so on an
 * unusual (or hostile) XML tree it can run off the root. */
static hwloc_obj_t common_ancestor(hwloc_obj_t a, hwloc_obj_t b)
{
    for (hwloc_obj_t x = a; x; x = x->parent)
        for (hwloc_obj_t y = b; y; y = y->parent)
            if (x == y) return x;
    return NULL;
}

/* 0 same PCIe switch, 1 same host bridge, 2 same socket, 3 other socket */
static int pci_distance(hwloc_topology_t topo, hwloc_obj_t a, hwloc_obj_t b)
{
    hwloc_obj_t c = common_ancestor(a, b);
    if (!c) return 3;
    if (c->type == HWLOC_OBJ_BRIDGE)
        return c->attr->bridge.upstream_type == HWLOC_OBJ_BRIDGE_HOST ? 1 : 0;
    if (c->type == HWLOC_OBJ_PCI_DEVICE) return 0;
    hwloc_obj_t pa = hwloc_get_non_io_ancestor_obj(topo, a), pb = hwloc_get_non_io_ancestor_obj(topo, b);
    hwloc_obj_t ka = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, pa);
    hwloc_obj_t kb = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, pb);
    if (pa && pa->type == HWLOC_OBJ_PACKAGE) ka = pa;
    if (pb && pb->type == HWLOC_OBJ_PACKAGE) kb = pb;
    return ka && ka == kb ? 2 : 3;
}

static hwloc_obj_t find_pci(hwloc_topology_t topo, const char *busid)
{
    for (hwloc_obj_t o = NULL; (o = hwloc_get_next_pcidev(topo, o));) {
        char b[16];
        struct hwloc_pcidev_attr_s *a = &o->attr->pcidev;
        snprintf(b, sizeof b, "%04x:%02x:%02x.%01x", a->domain, a->bus, a->dev, a->func);
        if (!strcmp(b, busid)) return o;
    }
    return NULL;
}

/* Why hwloc refused an XML file, after hwloc's own messages: a format
 * version newer than this hwloc reads is the common case (files written by a
 * newer hwloc elsewhere), and hwloc names it only as a parser failure. */
static void explain_xml_failure(const char *path)
{
    char head[4096] = "";
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(head, 1, sizeof head - 1, f) : 0;
    if (f) fclose(f);
    head[n] = '\0';
    const char *tag = strstr(head, "<topology"), *end = tag ? strchr(tag, '>') : NULL;
    const char *ver = tag ? strstr(tag, "version=\"") : NULL;
    unsigned major = 0, minor = 0, ours = hwloc_get_api_version() >> 16;
    if (ver && (!end || ver < end) && sscanf(ver + 9, "%u.%u", &major, &minor) == 2 && major > ours) {
        fprintf(stderr,
                "%s: hwloc XML format %u.%u is newer than this hwloc (%s) reads (format %u.x and older): "
                "export it again with hwloc %u (lstopo --of xml), or with hwloc 3's lstopo --of xml "
                "--export-xml-flags v2\n",
                path, major, minor, HWLOC_VERSION, ours, ours);
        return;
    }
    if (!tag)
        fprintf(stderr, "%s: not an hwloc XML file (no <topology> element in its first %zu bytes)\n", path,
                sizeof head - 1);
    else
        fprintf(stderr, "%s: hwloc cannot read this XML file (%s)\n", path,
                atoi(getenv("HWLOC_XML_VERBOSE") ? getenv("HWLOC_XML_VERBOSE") : "0")
                    ? "hwloc's parser says why above"
                    : "HWLOC_XML_VERBOSE=1 makes hwloc say why");
}

/* hwloc 2.9's XML import trusts its input: some malformed files (a missing
 * cpuset attribute, say) crash it inside hwloc_topology_load. An XML file is
 * something a user hands herd, so it is loaded once in a child process
 * first: 0 when hwloc reads it, 1 when hwloc refuses it (its messages are
 * already on stderr), -1 when hwloc crashed on it. A live topology needs no
 * such care. */
enum { XML_PROBE_OK = 0, XML_PROBE_REFUSED = 3 };

static int xml_probe_in_child(const char *path)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return 0; /* cannot tell: the load itself decides */
    if (pid == 0) {
        /* die by the signal itself: no crash handler inherited from the
         * parent (a sanitizer's, a fuzzer's) may report for the child */
        const int fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
        for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) signal(fatal[i], SIG_DFL);
        hwloc_topology_t t;
        int rc = XML_PROBE_REFUSED;
        if (!hwloc_topology_init(&t)) {
            hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_ALL);
            if (!hwloc_topology_set_xml(t, path) && !hwloc_topology_load(t)) rc = XML_PROBE_OK;
            hwloc_topology_destroy(t);
        }
        _exit(rc);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == XML_PROBE_OK) return 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == XML_PROBE_REFUSED) return 1;
    if (WIFSIGNALED(st))
        fprintf(stderr, "%s: hwloc crashed reading this XML file (signal %d): it is malformed; "
                "export it again with lstopo --of xml\n", path, WTERMSIG(st));
    else
        fprintf(stderr, "%s: hwloc crashed reading this XML file (exit %d): it is malformed; "
                "export it again with lstopo --of xml\n", path, WEXITSTATUS(st));
    return -1;
}

int herd_topo_machine_load(herd_topo_machine *m, const char *xml_path)
{
    memset(m, 0, sizeof *m);
    if (!xml_path) {
        const char *env = getenv("HWLOC_XMLFILE");
        if (env && *env) xml_path = env;
    }
    if (xml_path) {
        if (access(xml_path, R_OK)) {
            fprintf(stderr, "%s: cannot read hwloc XML file: %s\n", xml_path, strerror(errno));
            return -1;
        }
        /* hwloc says why it refuses an XML file (the parser's line and
         * column) only with HWLOC_XML_VERBOSE set, which it reads once per
         * process: set it before the first XML load, unless the user chose */
        setenv("HWLOC_XML_VERBOSE", "1", 0);
        if (herd_topo_xml_check(xml_path)) return -1;
        int probe = xml_probe_in_child(xml_path);
        if (probe) {
            if (probe > 0) explain_xml_failure(xml_path);
            return -1;
        }
    }
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo)) {
        fprintf(stderr, "herd topo: hwloc_topology_init failed\n");
        return -1;
    }
    /* PCI bridges too: they tell which NIC shares a PCIe switch with a GPU */
    hwloc_topology_set_io_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_ALL);
    if ((xml_path && hwloc_topology_set_xml(topo, xml_path)) || hwloc_topology_load(topo)) {
        if (xml_path) explain_xml_failure(xml_path);
        else fprintf(stderr, "herd topo: hwloc cannot load the live machine\n");
        hwloc_topology_destroy(topo);
        return -1;
    }
    snprintf(m->source, sizeof m->source, "%s", xml_path ? xml_path : "live");
    hwloc_obj_t root = hwloc_get_root_obj(topo);
    const char *host = hwloc_obj_get_info_by_name(root, "HostName");
    if (host) snprintf(m->hostname, sizeof m->hostname, "%s", host);
    else if (gethostname(m->hostname, sizeof m->hostname)) m->hostname[0] = '\0';
    m->n_packages = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);
    m->n_numa = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    m->n_cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    m->n_pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    int too_long = cpu_list(m->cpus, sizeof m->cpus, hwloc_topology_get_topology_cpuset(topo));
    for (int i = 0; i < HERD_TOPO_MAX_PU; i++) m->core_of_pu[i] = -1;
    for (int c = 0; c < m->n_cores; c++) {
        hwloc_obj_t core = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, (unsigned)c);
        int pu;
        hwloc_bitmap_foreach_begin(pu, core->cpuset)
            if (pu < HERD_TOPO_MAX_PU) m->core_of_pu[pu] = c;
        hwloc_bitmap_foreach_end();
    }

    for (hwloc_obj_t o = NULL; (o = hwloc_get_next_osdev(topo, o));) {
        herd_topo_pcidev d;
        int r = 1;
        if (is_gpu(o)) {
            if (m->n_gpus < HERD_TOPO_MAX_DEV && !(r = describe(topo, o, m->gpu, m->n_gpus, &d))) m->gpu[m->n_gpus++] = d;
        } else if (o->attr->osdev.type == HWLOC_OBJ_OSDEV_OPENFABRICS) {
            if (m->n_nics < HERD_TOPO_MAX_DEV && !(r = describe(topo, o, m->nic, m->n_nics, &d))) m->nic[m->n_nics++] = d;
        }
        too_long |= r < 0;
    }
    /* hwloc without its GPU plugins (Debian's) shows a GPU only as a PCI function */
    for (hwloc_obj_t o = NULL; (o = hwloc_get_next_pcidev(topo, o));) {
        herd_topo_pcidev d;
        int r = 1;
        if (!is_compute_pci(&o->attr->pcidev) || m->n_gpus == HERD_TOPO_MAX_DEV) continue;
        if (!(r = describe(topo, o, m->gpu, m->n_gpus, &d))) {
            snprintf(d.name, sizeof d.name, "pci:%s", d.busid);
            m->gpu[m->n_gpus++] = d;
        }
        too_long |= r < 0;
    }
    if (too_long) {
        fprintf(stderr, "%s: a cpu list of this machine is longer than %d characters in hwloc's list syntax\n",
                m->source, HERD_TOPO_CPUS_LEN - 1);
        hwloc_topology_destroy(topo);
        return -1;
    }
    qsort(m->gpu, (size_t)m->n_gpus, sizeof m->gpu[0], cmp_busid);
    qsort(m->nic, (size_t)m->n_nics, sizeof m->nic[0], cmp_busid);

    /* nearest NIC per GPU; ties go to the NIC with the fewest GPUs so far */
    int users[HERD_TOPO_MAX_DEV] = {0};
    for (int g = 0; g < m->n_gpus; g++) {
        hwloc_obj_t gp = find_pci(topo, m->gpu[g].busid);
        int best = -1, bestd = 99;
        for (int k = 0; gp && k < m->n_nics; k++) {
            hwloc_obj_t np = find_pci(topo, m->nic[k].busid);
            if (!np) continue;
            int dist = pci_distance(topo, gp, np);
            if (dist < bestd || (dist == bestd && users[k] < users[best])) {
                best = k;
                bestd = dist;
            }
        }
        if (best >= 0) {
            users[best]++;
            m->gpu[g].nearest_nic = best;
            m->gpu[g].nic_distance = bestd;
        }
    }
    hwloc_topology_destroy(topo);
    return 0;
}

/* The j-th of k even shares of the cores of a cpu list, every PU of each
 * chosen core (ranks never share a core's hyperthreads while whole cores are
 * left); with more shares than cores, share j gets core j*cores/k, so that the
 * cores are shared evenly too. Cores are taken in the order of their first PU. */
static int share(const herd_topo_machine *m, const char *list, int j, int k, char *buf, size_t len)
{
    hwloc_bitmap_t all = hwloc_bitmap_alloc(), part = hwloc_bitmap_alloc();
    int *core_id = NULL, *rank = NULL, rc = -1;
    if (!all || !part || hwloc_bitmap_list_sscanf(all, list)) goto out;
    int n_pu = hwloc_bitmap_weight(all);
    if (n_pu <= 0) goto out;
    core_id = malloc((size_t)n_pu * sizeof *core_id);  /* hwloc's core of each PU, -1 unknown */
    rank = malloc((size_t)n_pu * sizeof *rank);        /* its core's position in the list */
    if (!core_id || !rank) goto out;
    int n_core = 0, i = 0, cpu;
    hwloc_bitmap_foreach_begin(cpu, all)
        core_id[i] = cpu < HERD_TOPO_MAX_PU ? m->core_of_pu[cpu] : -1;
        rank[i] = -1;
        for (int q = 0; core_id[i] >= 0 && q < i && rank[i] < 0; q++)
            if (core_id[q] == core_id[i]) rank[i] = rank[q];
        if (rank[i] < 0) rank[i] = n_core++; /* a new core (or a PU of unknown core: its own) */
        i++;
    hwloc_bitmap_foreach_end();
    int lo = (int)((long)j * n_core / k), hi = (int)((long)(j + 1) * n_core / k);
    if (hi <= lo) hi = lo + 1;
    i = 0;
    hwloc_bitmap_foreach_begin(cpu, all)
        if (rank[i] >= lo && rank[i] < hi) hwloc_bitmap_set(part, (unsigned)cpu);
        i++;
    hwloc_bitmap_foreach_end();
    rc = cpu_list(buf, len, part);
out:
    free(core_id);
    free(rank);
    hwloc_bitmap_free(all);
    hwloc_bitmap_free(part);
    return rc;
}

/* order of the ranks that share a package: by their GPU's nearest cores (a
 * NUMA node or group inside the package first), then GPU, then rank */
/* 1 if local rank a comes before b among the ranks of one package: by
 * their GPUs' cores, then GPU index, then rank (ga, gb: their GPUs) */
static int rank_before(const herd_topo_machine *m, int a, int ga, int b, int gb)
{
    int ca = atoi(m->gpu[ga].cpus), cb = atoi(m->gpu[gb].cpus); /* list syntax starts at the lowest PU */
    if (ca != cb) return ca < cb;
    if (ga != gb) return ga < gb;
    return a < b;
}

int herd_topo_machine_gpu_rank_cpus(const herd_topo_machine *m, const int *gpu_of, int local_rank,
                                    int local_size, char *buf, size_t len)
{
    if (local_size < 1 || local_rank < 0 || local_rank >= local_size) {
        fprintf(stderr, "herd topo: local rank %d of %d: out of range\n", local_rank, local_size);
        return -1;
    }
    int gi = gpu_of[local_rank];
    const herd_topo_pcidev *g = gi >= 0 && gi < m->n_gpus ? &m->gpu[gi] : NULL;
    if (!g || !g->package_cpus[0]) return share(m, m->cpus, local_rank, local_size, buf, len);
    /* the package's cores, divided among the ranks whose GPUs sit there */
    int j = 0, k = 0;
    for (int r = 0; r < local_size; r++) {
        int gr = gpu_of[r];
        if (gr < 0 || gr >= m->n_gpus || strcmp(m->gpu[gr].package_cpus, g->package_cpus)) continue;
        k++;
        j += rank_before(m, r, gr, local_rank, gi);
    }
    return share(m, g->package_cpus, j, k, buf, len);
}

int herd_topo_machine_rank_cpus(const herd_topo_machine *m, int local_rank, int local_size, char *buf,
                                size_t len)
{
    if (local_size < 1 || local_rank < 0 || local_rank >= local_size) {
        fprintf(stderr, "herd topo: local rank %d of %d: out of range\n", local_rank, local_size);
        return -1;
    }
    int *gpu_of = malloc((size_t)local_size * sizeof *gpu_of);
    if (!gpu_of) return -1;
    for (int r = 0; r < local_size; r++) gpu_of[r] = m->n_gpus ? r % m->n_gpus : -1;
    int rc = herd_topo_machine_gpu_rank_cpus(m, gpu_of, local_rank, local_size, buf, len);
    free(gpu_of);
    return rc;
}

const char *herd_topo_machine_rank_nic(const herd_topo_machine *m, int local_rank)
{
    if (m->n_gpus == 0 || local_rank < 0) return "";
    int k = m->gpu[local_rank % m->n_gpus].nearest_nic;
    return k >= 0 ? m->nic[k].name : "";
}

int herd_topo_bind_cpus(const herd_topo_machine *m, const char *cpus)
{
    if (strcmp(m->source, "live")) {
        fprintf(stderr, "%s: binding needs the live machine, this topology came from XML\n", m->source);
        return -1;
    }
    hwloc_topology_t topo;
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (!set || hwloc_topology_init(&topo)) {
        hwloc_bitmap_free(set);
        return -1;
    }
    int rc = -1;
    if (hwloc_topology_load(topo) || hwloc_bitmap_list_sscanf(set, cpus))
        fprintf(stderr, "herd topo: hwloc cannot load the live machine\n");
    else if (hwloc_set_cpubind(topo, set, HWLOC_CPUBIND_PROCESS))
        fprintf(stderr, "herd topo: hwloc_set_cpubind(%s) failed\n", cpus);
    else
        rc = 0;
    hwloc_bitmap_free(set);
    hwloc_topology_destroy(topo);
    return rc;
}

int herd_topo_bind_rank(const herd_topo_machine *m, int local_rank, int local_size, char *desc, size_t desc_len)
{
    char cpus[HERD_TOPO_CPUS_LEN];
    if (herd_topo_machine_rank_cpus(m, local_rank, local_size, cpus, sizeof cpus)) return -1;
    if (herd_topo_bind_cpus(m, cpus)) {
        fprintf(stderr, "herd topo: local rank %d: not bound to %s\n", local_rank, cpus);
        return -1;
    }
    if (desc && desc_len) {
        if (m->n_gpus) {
            const herd_topo_pcidev *g = &m->gpu[local_rank % m->n_gpus];
            snprintf(desc, desc_len, "cores %s (near %s %s, NIC %s)", cpus, g->name, g->busid,
                     g->nearest_nic >= 0 ? m->nic[g->nearest_nic].name : "none");
        } else {
            snprintf(desc, desc_len, "cores %s (no GPU: share %d of %d)", cpus, local_rank + 1, local_size);
        }
    }
    return 0;
}

/* hwloc_discover.c — one node with hwloc: sockets, NUMA, cores, GPUs and
 * NICs by PCI bus id, which NIC is closest to each GPU, and binding.
 *
 * GPUs are CUDA/NVML/ROCm OS devices, or else NVIDIA/AMD PCI functions of
 * class 03xx; NICs OpenFabrics (RDMA) devices; a device seen twice (cuda0 and
 * nvml0 on one PCI function) counts once. Both
 * lists are sorted by bus id, the order of CUDA_DEVICE_ORDER=PCI_BUS_ID, so
 * that local rank i drives gpu[i].
 */
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "topology/topo.h"

static hwloc_obj_t pci_parent(hwloc_obj_t o)
{
    while (o && o->type != HWLOC_OBJ_PCI_DEVICE) o = o->parent;
    return o;
}

static int is_gpu(hwloc_obj_t o)
{
    const char *n = o->name ? o->name : "";
    if (!strncmp(n, "cuda", 4) || !strncmp(n, "nvml", 4) || !strncmp(n, "rsmi", 4)) return 1;
    return o->attr->osdev.type == HWLOC_OBJ_OSDEV_GPU && o->subtype && !strcmp(o->subtype, "CUDA");
}

static int cmp_busid(const void *a, const void *b)
{
    return strcmp(((const herd_topo_pcidev *)a)->busid, ((const herd_topo_pcidev *)b)->busid);
}

/* fill d from OS device o; -1 if its PCI function is already in list[0..n) */
static int describe(hwloc_topology_t topo, hwloc_obj_t o, herd_topo_pcidev *list, int n, herd_topo_pcidev *d)
{
    hwloc_obj_t pci = pci_parent(o);
    memset(d, 0, sizeof *d);
    if (pci) {
        struct hwloc_pcidev_attr_s *a = &pci->attr->pcidev;
        snprintf(d->busid, sizeof d->busid, "%04x:%02x:%02x.%01x", a->domain, a->bus, a->dev, a->func);
        for (int i = 0; i < n; i++)
            if (!strcmp(list[i].busid, d->busid)) return -1;
    }
    snprintf(d->name, sizeof d->name, "%s", o->name ? o->name : "?");
    hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(topo, o);
    hwloc_obj_t pkg = anc ? hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, anc) : NULL;
    if (anc && anc->type == HWLOC_OBJ_PACKAGE) pkg = anc;
    d->package = pkg ? (int)pkg->os_index : -1;
    d->numa = anc && anc->nodeset ? hwloc_bitmap_first(anc->nodeset) : -1;
    if (anc && anc->cpuset) hwloc_bitmap_list_snprintf(d->cpus, sizeof d->cpus, anc->cpuset);
    d->nearest_nic = -1;
    d->nic_distance = -1;
    return 0;
}

/* 0 same PCIe switch, 1 same host bridge, 2 same socket, 3 other socket */
static int pci_distance(hwloc_topology_t topo, hwloc_obj_t a, hwloc_obj_t b)
{
    hwloc_obj_t c = hwloc_get_common_ancestor_obj(topo, a, b);
    if (c->type == HWLOC_OBJ_BRIDGE)
        return c->attr->bridge.upstream_type == HWLOC_OBJ_BRIDGE_HOST ? 1 : 0;
    if (c->type == HWLOC_OBJ_PCI_DEVICE) return 0;
    hwloc_obj_t pa = hwloc_get_non_io_ancestor_obj(topo, a), pb = hwloc_get_non_io_ancestor_obj(topo, b);
    hwloc_obj_t ka = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, pa);
    hwloc_obj_t kb = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, pb);
    if (pa->type == HWLOC_OBJ_PACKAGE) ka = pa;
    if (pb->type == HWLOC_OBJ_PACKAGE) kb = pb;
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

int herd_topo_machine_load(herd_topo_machine *m, const char *xml_path)
{
    memset(m, 0, sizeof *m);
    if (!xml_path) {
        const char *env = getenv("HWLOC_XMLFILE");
        if (env && *env) xml_path = env;
    }
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo)) {
        fprintf(stderr, "herd topo: hwloc_topology_init failed\n");
        return -1;
    }
    /* PCI bridges too: they tell which NIC shares a PCIe switch with a GPU */
    hwloc_topology_set_io_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_ALL);
    if (xml_path) {
        if (access(xml_path, R_OK)) {
            fprintf(stderr, "%s: cannot read hwloc XML file\n", xml_path);
            hwloc_topology_destroy(topo);
            return -1;
        }
        if (hwloc_topology_set_xml(topo, xml_path)) {
            fprintf(stderr, "%s: hwloc does not accept this XML file\n", xml_path);
            hwloc_topology_destroy(topo);
            return -1;
        }
    }
    if (hwloc_topology_load(topo)) {
        fprintf(stderr, "%s: hwloc could not parse the topology (not an hwloc XML file?)\n",
                xml_path ? xml_path : "live machine");
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
    hwloc_bitmap_list_snprintf(m->cpus, sizeof m->cpus, hwloc_topology_get_topology_cpuset(topo));

    for (hwloc_obj_t o = NULL; (o = hwloc_get_next_osdev(topo, o));) {
        herd_topo_pcidev d;
        if (is_gpu(o)) {
            if (m->n_gpus == HERD_TOPO_MAX_DEV || describe(topo, o, m->gpu, m->n_gpus, &d)) continue;
            m->gpu[m->n_gpus++] = d;
        } else if (o->attr->osdev.type == HWLOC_OBJ_OSDEV_OPENFABRICS) {
            if (m->n_nics == HERD_TOPO_MAX_DEV || describe(topo, o, m->nic, m->n_nics, &d)) continue;
            m->nic[m->n_nics++] = d;
        }
    }
    /* hwloc without its CUDA/NVML plugins (Debian's) shows a GPU only as a PCI
     * function: NVIDIA or AMD, class 03xx (display / 3D controller) */
    for (hwloc_obj_t o = NULL; (o = hwloc_get_next_pcidev(topo, o));) {
        struct hwloc_pcidev_attr_s *a = &o->attr->pcidev;
        herd_topo_pcidev d;
        if ((a->vendor_id != 0x10de && a->vendor_id != 0x1002) || (a->class_id >> 8) != 0x03) continue;
        if (m->n_gpus == HERD_TOPO_MAX_DEV || describe(topo, o, m->gpu, m->n_gpus, &d)) continue;
        snprintf(d.name, sizeof d.name, "pci:%s", d.busid);
        m->gpu[m->n_gpus++] = d;
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

/* the j-th of k contiguous shares of a cpu list */
static int share(const char *list, int j, int k, char *buf, size_t len)
{
    hwloc_bitmap_t all = hwloc_bitmap_alloc(), part = hwloc_bitmap_alloc();
    int rc = -1;
    if (!all || !part || hwloc_bitmap_list_sscanf(all, list)) goto out;
    int n = hwloc_bitmap_weight(all);
    if (n <= 0) goto out;
    int lo = (int)((long)j * n / k), hi = (int)((long)(j + 1) * n / k);
    if (hi <= lo) { lo = j % n; hi = lo + 1; } /* more ranks than cores: share one */
    int idx = 0, cpu;
    hwloc_bitmap_foreach_begin(cpu, all)
        if (idx >= lo && idx < hi) hwloc_bitmap_set(part, (unsigned)cpu);
        idx++;
    hwloc_bitmap_foreach_end();
    hwloc_bitmap_list_snprintf(buf, len, part);
    rc = 0;
out:
    hwloc_bitmap_free(all);
    hwloc_bitmap_free(part);
    return rc;
}

int herd_topo_machine_rank_cpus(const herd_topo_machine *m, int local_rank, int local_size, char *buf,
                                size_t len)
{
    if (local_size < 1 || local_rank < 0 || local_rank >= local_size) {
        fprintf(stderr, "herd topo: local rank %d of %d: out of range\n", local_rank, local_size);
        return -1;
    }
    if (m->n_gpus == 0 || !m->gpu[local_rank % m->n_gpus].cpus[0])
        return share(m->cpus, local_rank, local_size, buf, len);
    int g = local_rank % m->n_gpus, j = 0, k = 0;
    for (int i = 0; i < m->n_gpus; i++)
        if (!strcmp(m->gpu[i].cpus, m->gpu[g].cpus)) {
            if (i < g) j++;
            k++;
        }
    return share(m->gpu[g].cpus, j, k, buf, len);
}

const char *herd_topo_machine_rank_nic(const herd_topo_machine *m, int local_rank)
{
    if (m->n_gpus == 0 || local_rank < 0) return "";
    int k = m->gpu[local_rank % m->n_gpus].nearest_nic;
    return k >= 0 ? m->nic[k].name : "";
}

int herd_topo_bind_rank(const herd_topo_machine *m, int local_rank, int local_size, char *desc, size_t desc_len)
{
    if (strcmp(m->source, "live")) {
        fprintf(stderr, "%s: binding needs the live machine, this topology came from XML\n", m->source);
        return -1;
    }
    char cpus[128];
    if (herd_topo_machine_rank_cpus(m, local_rank, local_size, cpus, sizeof cpus)) return -1;
    hwloc_topology_t topo;
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (!set || hwloc_topology_init(&topo)) {
        hwloc_bitmap_free(set);
        return -1;
    }
    int rc = -1;
    if (hwloc_topology_load(topo) || hwloc_bitmap_list_sscanf(set, cpus)) {
        fprintf(stderr, "herd topo: hwloc cannot load the live machine\n");
    } else if (hwloc_set_cpubind(topo, set, HWLOC_CPUBIND_PROCESS)) {
        fprintf(stderr, "herd topo: local rank %d: hwloc_set_cpubind(%s) failed\n", local_rank, cpus);
    } else {
        rc = 0;
        if (desc && desc_len) {
            if (m->n_gpus) {
                const herd_topo_pcidev *g = &m->gpu[local_rank % m->n_gpus];
                snprintf(desc, desc_len, "cores %s (near %s %s, NIC %s)", cpus, g->name, g->busid,
                         g->nearest_nic >= 0 ? m->nic[g->nearest_nic].name : "none");
            } else {
                snprintf(desc, desc_len, "cores %s (no GPU: share %d of %d)", cpus, local_rank + 1, local_size);
            }
        }
    }
    hwloc_bitmap_free(set);
    hwloc_topology_destroy(topo);
    return rc;
}

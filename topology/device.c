/* device.c — which GPU each local rank of a node uses: CUDA's visible devices
 * matched to hwloc's GPUs by PCI bus id, chosen by the cores each rank is
 * bound to, or by local rank (topo.h). No CUDA and no MPI here: the caller
 * gives the bus ids CUDA shows and every local rank's binding. */
#include <hwloc.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "topology/topo.h"

int herd_topo_busid_norm(const char *in, char out[16])
{
    unsigned dom, bus, dev, fn;
    int end = 0;
    const char *dot = in ? strrchr(in, '.') : NULL;
    /* the function is one digit 0-7 (and no "0x" that %x would take) */
    if (!dot || dot[1] < '0' || dot[1] > '7' || dot[2] ||
        sscanf(in, "%x:%x:%x.%x%n", &dom, &bus, &dev, &fn, &end) != 4 || in[end] ||
        dom > 0xffff || bus > 0xff || dev > 0x1f)
        return -1;
    snprintf(out, 16, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
    return 0;
}

int herd_topo_current_cpus(char *buf, size_t len)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set)) return -1;
    hwloc_bitmap_t b = hwloc_bitmap_alloc();
    if (!b) return -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set)) hwloc_bitmap_set(b, (unsigned)c);
    int k = hwloc_bitmap_list_snprintf(buf, len, b);
    int mine = hwloc_bitmap_weight(b);
    hwloc_bitmap_free(b);
    if (k < 0 || (size_t)k >= len) return -1;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 && mine < online ? 1 : 0;
}

/* PUs that cpu lists a and b have in common; 0 when either is empty or bad */
static int common_pus(const char *a, const char *b)
{
    if (!a || !a[0] || !b || !b[0]) return 0;
    hwloc_bitmap_t x = hwloc_bitmap_alloc(), y = hwloc_bitmap_alloc();
    int n = 0;
    if (x && y && !hwloc_bitmap_list_sscanf(x, a) && !hwloc_bitmap_list_sscanf(y, b)) {
        hwloc_bitmap_and(x, x, y);
        n = hwloc_bitmap_weight(x);
    }
    hwloc_bitmap_free(x);
    hwloc_bitmap_free(y);
    return n < 0 ? 0 : n;
}

/* index into m->gpu[] of the GPU with bus id `busid`, -1 if none */
static int machine_gpu(const herd_topo_machine *m, const char *busid)
{
    char want[16], have[16];
    if (herd_topo_busid_norm(busid, want)) return -1;
    for (int g = 0; g < m->n_gpus; g++)
        if (!herd_topo_busid_norm(m->gpu[g].busid, have) && !strcmp(have, want)) return g;
    return -1;
}

int herd_topo_pick_devices(const herd_topo_machine *m, const char (*visible)[16], int n_visible,
                           int local_size, const char *const *bound, herd_topo_pick *picks)
{
    if (n_visible < 1) {
        fprintf(stderr, "herd: no CUDA device visible (CUDA_VISIBLE_DEVICES='%s')\n",
                getenv("CUDA_VISIBLE_DEVICES") ? getenv("CUDA_VISIBLE_DEVICES") : "(unset)");
        return -1;
    }
    if (local_size < 1 || n_visible > HERD_TOPO_MAX_DEV) {
        fprintf(stderr, "herd: %d local ranks, %d visible devices: out of range (1..%d devices)\n",
                local_size, n_visible, HERD_TOPO_MAX_DEV);
        return -1;
    }
    int gpu[HERD_TOPO_MAX_DEV], taken[HERD_TOPO_MAX_DEV] = {0};
    for (int d = 0; d < n_visible; d++) gpu[d] = machine_gpu(m, visible[d]);
    for (int r = 0; r < local_size; r++) {
        const char *cpus = bound ? bound[r] : NULL;
        int best = 0, best_common = -1;
        for (int d = 0; d < n_visible; d++) {
            int common = gpu[d] >= 0 ? common_pus(cpus, m->gpu[gpu[d]].cpus) : 0;
            if (taken[d] < taken[best] || (taken[d] == taken[best] && common > best_common)) {
                best = d;
                best_common = common;
            }
        }
        taken[best]++;
        picks[r].device = best;
        picks[r].gpu = gpu[best];
        picks[r].nic = gpu[best] >= 0 ? m->gpu[gpu[best]].nearest_nic : -1;
        picks[r].how = n_visible == 1 ? "the only visible device"
                       : best_common > 0 ? "nearest its cores" : "by local rank";
    }
    return 0;
}

/* device.c — see device.h: this rank's GPU, cores and NIC, chosen over the
 * ranks of its node. Every collective runs on every rank whatever fails
 * locally; the failures are agreed on at the end. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kernels/backend.h"
#include "src/parallel/device.h"

enum { NAME_LEN = HERD_TOPO_NAME_MAX, BUS_LEN = 16 };

/* The ranks on this rank's node: a communicator of them in world-rank order
 * (colour: the first world rank with the same node name). */
static int node_comm(const char *me, int world_rank, int world_size, MPI_Comm *node)
{
    char *all = calloc((size_t)world_size, NAME_LEN);
    int color = world_rank, rc = -1;
    if (all && MPI_Allgather(me, NAME_LEN, MPI_CHAR, all, NAME_LEN, MPI_CHAR, MPI_COMM_WORLD) == MPI_SUCCESS) {
        for (int r = 0; r < world_rank; r++)
            if (!strncmp(all + (size_t)r * NAME_LEN, me, NAME_LEN)) { color = r; break; }
        rc = 0;
    }
    free(all);
    if (MPI_Comm_split(MPI_COMM_WORLD, color, world_rank, node) != MPI_SUCCESS) return -1;
    return rc;
}

/* Every local rank's launcher binding ("" unbound): bound[r] into *buf */
static int gather_bound(MPI_Comm node, int local_size, const char *mine, char **buf, const char ***bound)
{
    *buf = calloc((size_t)local_size, HERD_TOPO_CPUS_LEN);
    *bound = calloc((size_t)local_size, sizeof **bound);
    char send[HERD_TOPO_CPUS_LEN] = "";
    snprintf(send, sizeof send, "%s", mine);
    if (!*buf || !*bound ||
        MPI_Allgather(send, HERD_TOPO_CPUS_LEN, MPI_CHAR, *buf, HERD_TOPO_CPUS_LEN, MPI_CHAR, node) != MPI_SUCCESS)
        return -1;
    for (int r = 0; r < local_size; r++) (*bound)[r] = *buf + (size_t)r * HERD_TOPO_CPUS_LEN;
    return 0;
}

/* 0; 1 with the message when an earlier rank of the node uses my GPU; -1 when
 * MPI or memory failed */
static int check_shared(MPI_Comm node, const herd_device_info *me, int share_gpu, int n_visible)
{
    struct { char bus[BUS_LEN]; int rank; } mine = {{0}, me->world_rank}, *all;
    snprintf(mine.bus, BUS_LEN, "%s", me->busid);
    all = calloc((size_t)me->local_size, sizeof *all);
    if (!all || MPI_Allgather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE, node) != MPI_SUCCESS) {
        free(all);
        return -1;
    }
    int rc = 0;
    for (int r = 0; r < me->local_rank && !share_gpu && me->busid[0] && rc == 0; r++) {
        if (strcmp(all[r].bus, me->busid)) continue;
        const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
        fprintf(stderr, "herd: key 'parallel.share_gpu': node %s: ranks %d and %d both use GPU %s "
                "(%d ranks on the node, %d GPU(s) visible to rank %d, CUDA_VISIBLE_DEVICES=%s): give "
                "each rank its own GPU (srun --gpus-per-task=1, or no more tasks per node than GPUs) "
                "or set parallel.share_gpu: 1\n", me->host, all[r].rank, me->world_rank, me->busid,
                me->local_size, n_visible, me->world_rank, cvd ? cvd : "(unset)");
        rc = 1;
    }
    free(all);
    return rc;
}

/* NCCL and UCX use the NIC nearest the GPU, unless the user chose */
static void export_nic(const char *nic)
{
    if (!nic[0]) return;
    char v[48];
    snprintf(v, sizeof v, "=%s", nic); /* '=': this device exactly, not every name it prefixes */
    setenv("NCCL_IB_HCA", v, 0);
    snprintf(v, sizeof v, "%s:1", nic);
    setenv("UCX_NET_DEVICES", v, 0);
}

/* With do_bind: bind to the cores of my GPU's package shared among the
 * local ranks whose GPUs sit there (gpu_of gathered: each rank's own choice),
 * or, where hwloc does not know my GPU, to my share of all cores. */
static int bind_near_gpu(const herd_topo_machine *m, MPI_Comm node, int my_gpu, int do_bind, herd_device_info *me)
{
    int *gpu_of = calloc((size_t)me->local_size, sizeof *gpu_of);
    int rc = gpu_of && MPI_Allgather(&my_gpu, 1, MPI_INT, gpu_of, 1, MPI_INT, node) == MPI_SUCCESS ? 0 : -1;
    char cpus[HERD_TOPO_CPUS_LEN];
    if (rc == 0 && do_bind) {
        if (strcmp(m->source, "live"))
            fprintf(stderr, "herd: rank %d: parallel.bind_cores: not bound (the machine came from %s, not "
                    "the live one)\n", me->world_rank, m->source);
        else if (herd_topo_machine_gpu_rank_cpus(m, gpu_of, me->local_rank, me->local_size, cpus, sizeof cpus) == 0 &&
                 herd_topo_bind_cpus(m, cpus) == 0) {
            snprintf(me->cores, sizeof me->cores, "%s", cpus);
            me->binding = my_gpu >= 0 ? "near its GPU" : "its share of the node";
        }
    }
    free(gpu_of);
    return rc;
}

int herd_device_select(int bind, int share_gpu, int need_device, herd_device_info *me)
{
    memset(me, 0, sizeof *me);
    me->device = -1;
    me->binding = "not bound";
    me->how = "no device visible";
    MPI_Comm_rank(MPI_COMM_WORLD, &me->world_rank);
    int world_size;
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    const char *node_env = getenv("SLURMD_NODENAME");
    if (node_env && *node_env) snprintf(me->host, sizeof me->host, "%s", node_env);
    else gethostname(me->host, sizeof me->host - 1);

    MPI_Comm node = MPI_COMM_NULL;
    int bad = node_comm(me->host, me->world_rank, world_size, &node);
    if (node == MPI_COMM_NULL) return -1; /* MPI itself failed: nothing more can be agreed */
    MPI_Comm_rank(node, &me->local_rank);
    MPI_Comm_size(node, &me->local_size);

    int launcher_bound = herd_topo_current_cpus(me->cores, sizeof me->cores);
    if (launcher_bound == 1) me->binding = "by the launcher";
    char *bound_buf = NULL;
    const char **bound = NULL;
    bad |= gather_bound(node, me->local_size, launcher_bound == 1 ? me->cores : "", &bound_buf, &bound);

    herd_topo_machine *m = calloc(1, sizeof *m);
    if (!m || herd_topo_machine_load(m, NULL)) {
        if (m) memset(m, 0, sizeof *m); /* no locality: devices by local rank */
        if (m) snprintf(m->source, sizeof m->source, "none");
    }
    char vis[HERD_TOPO_MAX_DEV][16];
    int n_visible = herd_backend_cuda_devices(vis, HERD_TOPO_MAX_DEV);
    herd_topo_pick *picks = calloc((size_t)me->local_size, sizeof *picks);
    int my_gpu = -1, refused = 0;
    if (!m || !picks) bad = -1;
    else if (n_visible > 0 && bound &&
             herd_topo_pick_devices(m, (const char (*)[16])vis, n_visible, me->local_size, bound, picks) == 0) {
        const herd_topo_pick *p = &picks[me->local_rank];
        me->device = p->device;
        me->how = p->how;
        my_gpu = p->gpu;
        if (herd_topo_busid_norm(vis[p->device], me->busid)) snprintf(me->busid, sizeof me->busid, "%s", vis[p->device]);
        if (p->nic >= 0) snprintf(me->nic, sizeof me->nic, "%s", m->nic[p->nic].name);
    } else if (need_device && n_visible == 0) {
        fprintf(stderr, "herd: rank %d (%s): backend cuda: no CUDA device visible (CUDA_VISIBLE_DEVICES=%s)\n",
                me->world_rank, me->host, getenv("CUDA_VISIBLE_DEVICES") ? getenv("CUDA_VISIBLE_DEVICES") : "(unset)");
        refused = 1;
    } else if (need_device) {
        bad = -1;
    }
    /* the other direction: not bound by the launcher, bind near the GPU */
    if (m && bind_near_gpu(m, node, my_gpu, bind && launcher_bound == 0 && me->device >= 0, me)) bad = -1;
    export_nic(me->nic);
    int shared = check_shared(node, me, share_gpu, n_visible);
    if (shared < 0) bad = -1;
    if (shared > 0) refused = 1;
    /* 2: something failed; 1: the launch's layout is refused (a relaunch with
     * the same binding fails the same way) */
    int worst = bad ? 2 : refused;
    MPI_Allreduce(MPI_IN_PLACE, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Comm_free(&node);
    free(picks);
    free(m);
    free(bound_buf);
    free(bound);
    return worst == 2 ? -1 : worst == 1 ? HERD_DEVICE_REFUSED : 0;
}

void herd_device_format(const herd_device_info *d, char *buf, size_t n)
{
    char gpu[96] = "none";
    if (d->device >= 0) snprintf(gpu, sizeof gpu, "%d (%s, %s)", d->device, d->busid, d->how);
    snprintf(buf, n, "rank %d: host %s, local rank %d of %d, GPU %s, cores %s (%s), NIC %s", d->world_rank,
             d->host, d->local_rank, d->local_size, gpu, d->cores[0] ? d->cores : "?", d->binding,
             d->nic[0] ? d->nic : "none");
}

/* device.h — which GPU each rank of the CUDA backend uses, and on which cores
 * it runs (docs/topology.md "Which GPU each rank uses").
 *
 * Collective over MPI_COMM_WORLD: every rank gathers the node names
 * (SLURMD_NODENAME under Slurm, whose emulated nodes share one host, else the
 * host name), the cores each rank of its node is bound to, and CUDA's visible
 * devices; topology/ chooses (herd_topo_pick_devices): one visible device ->
 * that one; several -> the one nearest the rank's bound cores, or the one of
 * its local rank. Two ranks of one node on one GPU is an error unless allowed. */
#ifndef HERD_PARALLEL_DEVICE_H
#define HERD_PARALLEL_DEVICE_H

#include <stddef.h>
#include "topology/topo.h"

typedef struct {
    char host[HERD_TOPO_NAME_MAX];
    int  world_rank, local_rank, local_size;
    int  device;                    /* CUDA device index (cudaSetDevice), -1: none visible */
    char busid[16];                 /* its PCI bus id, hwloc's form; "" if none */
    char cores[HERD_TOPO_CPUS_LEN]; /* the cores it runs on after binding */
    const char *binding;            /* "by the launcher", "near its GPU", "its share of the
                                       node" (hwloc lacks the GPU), "not bound" */
    char nic[32];                   /* the NIC nearest its GPU, "" if none */
    const char *how;                /* how the device was chosen (herd_topo_pick.how) */
} herd_device_info;

/* Choose this rank's device; with bind (parallel.bind_cores) and no binding
 * from the launcher, bind it to the cores nearest that GPU (the other
 * direction: a rank bound by its launcher gets the GPU nearest its cores).
 * Exports NCCL_IB_HCA and UCX_NET_DEVICES for the NIC nearest the GPU unless
 * the user set them. need_device: no visible device is an error (backend
 * cuda), else reported as device -1 (`herd topo`). share_gpu 0: two ranks of a
 * node on one GPU is an error on every rank, with a message naming the node,
 * the ranks and the GPU. On every rank: 0; HERD_DEVICE_REFUSED when the
 * launch gave a rank no visible device (need_device) or two ranks one GPU, and
 * nothing else failed (the same launch would fail again: a bad input, not a
 * fault); -1 if any rank failed otherwise. */
enum { HERD_DEVICE_REFUSED = -2 };
int herd_device_select(int bind, int share_gpu, int need_device, herd_device_info *me);

/* The rank's start-up line (no newline): "rank 3: host node2, local rank 1 of
 * 2, GPU 1 (0000:91:00.0, by local rank), cores 0-1 (not bound), NIC mlx5_1". */
void herd_device_format(const herd_device_info *d, char *buf, size_t n);

#endif

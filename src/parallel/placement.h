/* placement.h — where each grid position of the job runs (topology/ decides).
 *
 * Every rank gathers every rank's node name (SLURMD_NODENAME under Slurm, whose
 * emulated nodes share one host, else the host name), builds the job's tree
 * from them and Slurm's topology.conf when there is one, and asks
 * herd_topo_place for the assignment that keeps TP inside a node and PP/CP
 * inside a pod. The result is the same on every rank (same inputs).
 * parallel.links (herd check's measured links file) is read into the tree; a
 * file that cannot be read stops every rank. The assignment depends on the
 * tree's shape, not on its link numbers (docs/slurm.md "Preflight"). */
#ifndef HERD_PLACEMENT_H
#define HERD_PLACEMENT_H

#include "src/config/config.h"
#include "src/parallel/device.h"

/* perm[grid index] = world rank (see grid.h). Falls back to the identity
 * (returns 0, says why in desc) when the layout does not divide the world
 * size (the grid reports that) or the topology cannot be built. */
int herd_placement_perm(const herd_config_parallel *p, int world_size, int *perm, char *desc, size_t n);

/* With parallel.bind_cores: bind this rank to its share of the node's cores
 * (hwloc). desc gets what was done. */
int herd_placement_bind(char *desc, size_t n);

/* Where this rank runs, as the trainer and `herd check` both start a job:
 * perm from herd_placement_perm (parallel.placement; else rank order, place
 * says so); then with cuda this rank's GPU and cores (herd_device_select,
 * collective: dev filled, bind gets "cores C (how), GPU BUSID"), else with
 * parallel.bind_cores its share of the node's cores (dev->device -1).
 * 0; HERD_DEVICE_REFUSED (every rank) when a rank has no GPU or two share
 * one; -1 when placement or the device choice failed otherwise. */
int herd_placement_prepare(const herd_config_parallel *p, int cuda, int world_size, int *perm,
                           herd_device_info *dev, char *place, size_t place_len, char *bind, size_t bind_len);

#endif

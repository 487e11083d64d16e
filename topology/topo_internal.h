/* topo_internal.h — shared between the files of topology/, not installed. */
#ifndef HERD_TOPO_INTERNAL_H
#define HERD_TOPO_INTERNAL_H

#include "topology/topo.h"

/* One SwitchName= line of topology.conf. */
typedef struct {
    char   name[HERD_TOPO_NAME_MAX];
    char **nodes;     int n_nodes;     /* expanded Nodes= */
    char **switches;  int n_switches;  /* expanded Switches= */
    int    line;
} herd_conf_switch;

int  herd_topo_conf_parse(const char *path, herd_conf_switch **sw, int *n);
void herd_topo_conf_free(herd_conf_switch *sw, int n);


/* ancestors of a node: path[0] = its leaf, up to the root; returns the count */
int herd_topo_node_path(const herd_topo *t, int node, int *path, int max);

/* the memory half of herd_plan_estimate (memmodel.c): fills r->mem_*, r->fits;
 * V chunks per rank, M micro-batches per step */
int herd_plan_memory(const herd_plan_inputs *in, int tp, int cp, int pp, int dp, int V, int M,
                     herd_plan_result *r);

#endif

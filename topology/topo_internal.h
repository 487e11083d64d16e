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

/* A hash index of names (names.c): name -> index into the caller's array. */
typedef struct {
    unsigned hash;
    int      idx1;    /* index + 1; 0: empty slot */
} herd_names_slot;

typedef struct {
    herd_names_slot *slot;
    size_t cap, n;    /* cap a power of two, n <= cap / 2 */
} herd_names;

typedef int (*herd_names_match)(int idx, const void *ctx);

/* key[0..len) names entry idx; 0 or -1 (out of memory) */
int  herd_names_add(herd_names *x, const char *key, size_t len, int idx);
/* the smallest idx added under key for which match(idx, ctx) holds; -1 if none */
int  herd_names_find(const herd_names *x, const char *key, size_t len, herd_names_match match, const void *ctx);
void herd_names_free(herd_names *x);
void herd_topo_conf_free(herd_conf_switch *sw, int n);


/* ancestors of a node: path[0] = its leaf, up to the root; returns the count */
int herd_topo_node_path(const herd_topo *t, int node, int *path, int max);

/* the memory half of herd_plan_estimate (memmodel.c): fills r->mem_*, r->fits;
 * V chunks per rank, M micro-batches per step */
int herd_plan_memory(const herd_plan_inputs *in, int tp, int cp, int pp, int dp, int V, int M,
                     herd_plan_result *r);

/* hwloc_xml_check.c: refuse an hwloc XML file whose PU or NUMANode elements
 * lack an os_index below HERD_TOPO_MAX_OS_INDEX (hwloc would allocate a
 * bitmap of 2^32 bits), before hwloc reads it. 0, or -1 with "PATH:LINE: ...". */
#define HERD_TOPO_MAX_OS_INDEX (1 << 20)
int herd_topo_xml_check(const char *path);

#endif

/* linkstat.h — the statistics of a measured network: medians, what is slow
 * against its peers, and the links file of measured numbers (the format
 * herd_topo_links_load reads, topology/links.c).
 *
 * Used by `herd check` (src/parallel/preflight*.c); pure, no MPI. */
#ifndef HERD_LINKSTAT_H
#define HERD_LINKSTAT_H

#include "topology/topo.h"

/* The median of v[0..n) (n >= 1; v is not changed). */
double herd_stat_median(const double *v, int n);

/* The median of v's elements other than v[i] (n >= 2). */
double herd_stat_peer_median(const double *v, int n, int i);

/* slow[i] = 1 where v[i] > factor x the median of its peers (every other
 * element): a peer's median, not the median of all, so that one slow element
 * among two or three does not raise its own yardstick. Returns how many are
 * slow; none when n < 2 (no peers to compare with). -1 if out of memory. */
int herd_stat_slow_vs_peers(const double *v, int n, double factor, int *slow);

/* The measured numbers of one height of the tree. */
typedef struct {
    int    height;      /* 1 inside a node, 2 across a leaf switch, ... */
    int    n_pairs;     /* pairs of ranks measured at this height */
    double bw_GBps;     /* median one-direction bandwidth of a large message, GB/s */
    double latency_us;  /* median one-way time of a small message, microseconds */
} herd_link_measure;

/* Write `path` (crash-safe, never through a link): a comment line `comment`
 * (may be NULL), then one line per height "H bandwidth=X latency=Y" that
 * herd_topo_links_load reads back; heights not given keep its defaults. */
int herd_topo_links_write(const char *path, const herd_link_measure *m, int n, const char *comment);

#endif

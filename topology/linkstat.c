/* linkstat.c — see linkstat.h. */
#include <stdlib.h>
#include <string.h>
#include "checkpoint/safe_file.h"
#include "topology/linkstat.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* the k-th smallest of sorted s without its element at position skip */
static double without(const double *s, int skip, int k)
{
    return s[k < skip ? k : k + 1];
}

static double median_sorted_without(const double *s, int n, int skip)
{
    int m = skip >= 0 ? n - 1 : n;
    if (skip < 0) skip = n; /* nothing skipped */
    if (m % 2) return without(s, skip, m / 2);
    return 0.5 * (without(s, skip, m / 2 - 1) + without(s, skip, m / 2));
}

static double *sorted_copy(const double *v, int n)
{
    double *s = malloc(sizeof *s * (size_t)(n > 0 ? n : 1));
    if (!s) return NULL;
    memcpy(s, v, sizeof *s * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return s;
}

/* a position of x in sorted s (it is there) */
static int position(const double *s, int n, double x)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (s[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

double herd_stat_median(const double *v, int n)
{
    double *s = sorted_copy(v, n);
    if (!s) return 0;
    double m = median_sorted_without(s, n, -1);
    free(s);
    return m;
}

double herd_stat_peer_median(const double *v, int n, int i)
{
    double *s = sorted_copy(v, n);
    if (!s) return 0;
    double m = median_sorted_without(s, n, position(s, n, v[i]));
    free(s);
    return m;
}

int herd_stat_slow_vs_peers(const double *v, int n, double factor, int *slow)
{
    for (int i = 0; i < n; i++) slow[i] = 0;
    if (n < 2) return 0;
    double *s = sorted_copy(v, n);
    if (!s) return -1;
    int count = 0;
    for (int i = 0; i < n; i++) {
        slow[i] = v[i] > factor * median_sorted_without(s, n, position(s, n, v[i]));
        count += slow[i];
    }
    free(s);
    return count;
}

int herd_topo_links_write(const char *path, const herd_link_measure *m, int n, const char *comment)
{
    herd_safe_file sf;
    FILE *f = herd_safe_file_begin_stream(&sf, path, HERD_FILE_MODE);
    if (!f) return -1;
    if (comment) fprintf(f, "# %s\n", comment);
    fprintf(f, "# height bandwidth=GB/s (one direction) latency=us (one way); pairs measured\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "%d bandwidth=%.6g latency=%.6g  # %d pairs\n", m[i].height, m[i].bw_GBps, m[i].latency_us,
                m[i].n_pairs);
    return herd_safe_file_stream_commit(&sf, f);
}

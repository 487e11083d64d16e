/* straggler.c — consistently slow ranks from all-gathered compute times. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "checkpoint/safe_file.h"
#include "monitoring/straggler.h"

#define HOST_LEN MPI_MAX_PROCESSOR_NAME

struct herd_straggler {
    MPI_Comm comm;
    int      rank, size, window;
    double   threshold;
    int      n_gathers;
    char    *hosts;          /* [size][HOST_LEN] */
    double  *ratios;         /* [window][size] ring of the last gathers' ratios */
    double  *times, *tmp;    /* [size] scratch */
    herd_prom_straggler *scores; /* [size] */
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median of n values; sorts `scratch` (a copy) */
static double median(const double *v, int n, double *scratch)
{
    memcpy(scratch, v, sizeof(double) * n);
    qsort(scratch, n, sizeof(double), cmp_double);
    return n % 2 ? scratch[n / 2] : 0.5 * (scratch[n / 2 - 1] + scratch[n / 2]);
}

void herd_straggler_ratios(const double *t, int n, double *ratio)
{
    double *scratch = malloc(sizeof(double) * n);
    double m = scratch ? median(t, n, scratch) : 0;
    for (int i = 0; i < n; i++) ratio[i] = m > 0 ? t[i] / m : 1.0;
    free(scratch);
}

int herd_straggler_create(herd_straggler **out, MPI_Comm comm, int window, double threshold)
{
    *out = NULL;
    if (window < 1 || !(threshold > 1.0)) {
        fprintf(stderr, "herd: monitoring/straggler: %s: %s (window %d, threshold %g)\n",
                window < 1 ? "window" : "threshold",
                window < 1 ? "must be at least 1 gather" : "must be above 1 (a ratio to the median)",
                window, threshold);
        return -1;
    }
    herd_straggler *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->comm = comm;
    s->window = window;
    s->threshold = threshold;
    if (MPI_Comm_rank(comm, &s->rank) != MPI_SUCCESS || MPI_Comm_size(comm, &s->size) != MPI_SUCCESS) {
        fprintf(stderr, "herd: monitoring/straggler: comm: not a valid communicator\n");
        free(s);
        return -1;
    }
    s->hosts = calloc((size_t)s->size, HOST_LEN);
    s->ratios = calloc((size_t)s->size * window, sizeof(double));
    s->times = calloc((size_t)s->size, sizeof(double));
    s->tmp = calloc((size_t)s->size * (window > 1 ? window : 1), sizeof(double));
    s->scores = calloc((size_t)s->size, sizeof *s->scores);
    char me[HOST_LEN] = {0};
    int len = 0;
    if (!s->hosts || !s->ratios || !s->times || !s->tmp || !s->scores ||
        MPI_Get_processor_name(me, &len) != MPI_SUCCESS ||
        MPI_Allgather(me, HOST_LEN, MPI_CHAR, s->hosts, HOST_LEN, MPI_CHAR, comm) != MPI_SUCCESS) {
        fprintf(stderr, "herd: monitoring/straggler: rank %d: cannot gather host names\n", s->rank);
        herd_straggler_destroy(s);
        return -1;
    }
    for (int r = 0; r < s->size; r++) {
        s->hosts[(size_t)r * HOST_LEN + HOST_LEN - 1] = '\0';
        s->scores[r] = (herd_prom_straggler){r, s->hosts + (size_t)r * HOST_LEN, 1.0, 0};
    }
    *out = s;
    return 0;
}

void herd_straggler_destroy(herd_straggler *s)
{
    if (!s) return;
    free(s->hosts); free(s->ratios); free(s->times); free(s->tmp); free(s->scores);
    free(s);
}

int herd_straggler_gather(herd_straggler *s, double compute_seconds)
{
    /* agree on validity collectively, so that a bad time on one rank does not
     * leave the others blocked in the gather */
    double t = isfinite(compute_seconds) && compute_seconds >= 0 ? compute_seconds : -1.0;
    if (MPI_Allgather(&t, 1, MPI_DOUBLE, s->times, 1, MPI_DOUBLE, s->comm) != MPI_SUCCESS) {
        fprintf(stderr, "herd: monitoring/straggler: rank %d: MPI_Allgather failed\n", s->rank);
        return -1;
    }
    for (int r = 0; r < s->size; r++)
        if (s->times[r] < 0) {
            if (r == s->rank)
                fprintf(stderr, "herd: monitoring/straggler: rank %d: compute_seconds is not a "
                                "finite time >= 0 (%g); gather skipped\n", r, compute_seconds);
            else if (s->rank == 0)
                fprintf(stderr, "herd: monitoring/straggler: rank %d passed a bad compute_seconds; "
                                "gather skipped on every rank\n", r);
            return -1;
        }
    double *row = s->ratios + (size_t)(s->n_gathers % s->window) * s->size;
    herd_straggler_ratios(s->times, s->size, row);
    s->n_gathers++;
    int filled = s->n_gathers < s->window ? s->n_gathers : s->window;
    for (int r = 0; r < s->size; r++) {
        double *col = s->tmp; /* this rank's ratios over the window */
        for (int g = 0; g < filled; g++) col[g] = s->ratios[(size_t)g * s->size + r];
        qsort(col, filled, sizeof(double), cmp_double);
        double score = filled % 2 ? col[filled / 2] : 0.5 * (col[filled / 2 - 1] + col[filled / 2]);
        int suspect = filled == s->window && score > s->threshold;
        herd_prom_straggler *sc = &s->scores[r];
        if (s->rank == 0 && suspect != sc->suspect) {
            if (suspect)
                fprintf(stderr, "herd: straggler: rank %d on host %s: compute %.2fx the median "
                                "over the last %d gathers\n", r, sc->host, score, filled);
            else
                fprintf(stderr, "herd: straggler: rank %d on host %s recovered: %.2fx the median\n",
                        r, sc->host, score);
        }
        sc->score = score;
        sc->suspect = suspect;
    }
    return 0;
}

const herd_prom_straggler *herd_straggler_scores(const herd_straggler *s, int *n_ranks)
{
    *n_ranks = s->size;
    return s->scores;
}

int herd_straggler_n_gathers(const herd_straggler *s) { return s->n_gathers; }

int herd_straggler_suspects(const herd_straggler *s, int *ranks, int max)
{
    int n = 0;
    for (int r = 0; r < s->size; r++)
        if (s->scores[r].suspect) {
            if (n < max) ranks[n] = r;
            n++;
        }
    return n;
}

int herd_straggler_write_hosts(const herd_straggler *s, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        fprintf(stderr, "herd: %s: straggler hosts: out of memory\n", path);
        return -1;
    }
    for (int r = 0; r < s->size; r++) {
        if (!s->scores[r].suspect) continue;
        int seen = 0; /* a host once, however many of its ranks are slow */
        for (int q = 0; q < r && !seen; q++)
            seen = s->scores[q].suspect && !strcmp(s->scores[q].host, s->scores[r].host);
        if (!seen) fprintf(f, "%s\n", s->scores[r].host);
    }
    int rc = fclose(f) == 0 ? herd_safe_write(path, buf, len) : -1;  /* temp, fsync, rename */
    free(buf);
    return rc;
}

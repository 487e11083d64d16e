/* average.c — the element-wise mean of N checkpoints (Llama 3: the average of
 * the annealing checkpoints is the final model; post-training averages models
 * too). Inputs may have been written by different layouts: every tensor is
 * read whole through herd_ckpt_read. The mean is accumulated in double and
 * rounded once, so it does not depend on the order of the inputs beyond the
 * double sum's rounding. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "checkpoint/internal.h"

int herd_ckpt_average(const char *out_step_dir, const char *const *in_step_dirs, int n, const char *kind)
{
    if (n < 1) {
        fprintf(stderr, "checkpoint: average: no input checkpoint\n");
        return -1;
    }
    herd_ckpt **c = calloc((size_t)n, sizeof *c);
    herd_ckpt_slice *sl = NULL;
    float **bufs = NULL;
    int ns = 0, rc = 0;
    int64_t step = 0;
    for (int i = 0; i < n && !rc; i++) {
        if (herd_ckpt_open(&c[i], in_step_dirs[i])) rc = -1;
        else if (herd_ckpt_step(c[i]) > step) step = herd_ckpt_step(c[i]);
    }
    int nt = rc ? 0 : herd_ckpt_n_tensors(c[0]);
    if (!rc) {
        sl = calloc((size_t)(nt ? nt : 1), sizeof *sl);
        bufs = calloc((size_t)(nt ? nt : 1), sizeof *bufs);
    }
    for (int t = 0; t < nt && !rc; t++) {
        const char *k, *name;
        int nd;
        int64_t g[2];
        herd_ckpt_tensor(c[0], t, &k, &name, &nd, g);
        if (kind && strcmp(kind, k)) continue;
        /* the same tensor, same shape, in every input */
        for (int i = 1; i < n && !rc; i++) {
            int found = 0;
            for (int u = 0; u < herd_ckpt_n_tensors(c[i]); u++) {
                const char *k2, *n2;
                int nd2;
                int64_t g2[2];
                herd_ckpt_tensor(c[i], u, &k2, &n2, &nd2, g2);
                if (strcmp(k, k2) || strcmp(name, n2)) continue;
                found = 1;
                if (nd2 != nd || g2[0] != g[0] || g2[1] != g[1]) {
                    fprintf(stderr, "checkpoint: average: %s: tensor %s/%s: field 'global_shape' "
                            "differs from %s's\n", in_step_dirs[i], k, name, in_step_dirs[0]);
                    rc = -1;
                }
            }
            if (!found) {
                fprintf(stderr, "checkpoint: average: %s: tensor %s/%s missing (present in %s)\n",
                        in_step_dirs[i], k, name, in_step_dirs[0]);
                rc = -1;
            }
        }
        if (rc) break;
        size_t numel = (size_t)(g[0] * g[1]);
        double *acc = calloc(numel, sizeof *acc);
        float *tmp = malloc(numel * sizeof *tmp);
        int64_t off[2] = {0, 0};
        for (int i = 0; i < n && !rc; i++) {
            if (herd_ckpt_read(c[i], k, name, nd, off, g, tmp)) rc = -1;
            else for (size_t e = 0; e < numel; e++) acc[e] += tmp[e];
        }
        for (size_t e = 0; e < numel; e++) tmp[e] = (float)(acc[e] / n);
        free(acc);
        bufs[ns] = tmp;
        herd_ckpt_slice *s = &sl[ns++];
        snprintf(s->name, sizeof s->name, "%s", name);
        snprintf(s->kind, sizeof s->kind, "%s", k);
        s->ndim = nd;
        for (int d = 0; d < 2; d++) { s->global_shape[d] = g[d]; s->shape[d] = g[d]; s->offset[d] = 0; }
        s->data = tmp;
    }
    if (!rc && ns == 0) {
        fprintf(stderr, "checkpoint: average: %s: no tensor of kind '%s'\n", in_step_dirs[0], kind ? kind : "*");
        rc = -1;
    }
    void *meta = NULL;
    size_t meta_len = 0;
    if (!rc && herd_ckpt_meta(c[0], 0, &meta, &meta_len)) rc = -1;
    if (!rc) {
        herd_ckpt_options opt = {.quiet = 1};
        herd_ckpt_writer *w;
        if (herd_ckpt_writer_create(&w, MPI_COMM_NULL, &opt)) rc = -1;
        else {
            if (ckpt_save_dir_begin(w, out_step_dir, step, sl, ns, meta, meta_len) || herd_ckpt_wait(w)) rc = -1;
            herd_ckpt_writer_destroy(w);
        }
    }
    free(meta);
    for (int i = 0; i < ns; i++) free(bufs[i]);
    free(bufs);
    free(sl);
    for (int i = 0; i < n; i++) herd_ckpt_close(c[i]);
    free(c);
    return rc;
}

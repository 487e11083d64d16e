/* average.c — see average.h. */
#include <stdio.h>
#include "src/post/average.h"
#include "src/model/weights.h"

int herd_post_weights_average(const herd_post_env *e, const char *out, const char *const *in, int n)
{
    herd_model acc, m;
    if (herd_post_model_open(&acc, e, NULL)) return -1;
    if (herd_post_model_open(&m, e, NULL)) {
        herd_model_destroy(&acc);
        return -1;
    }
    int rc = 0;
    for (int64_t j = 0; j < acc.n_params; j++) acc.params[j] = 0.0f;
    for (int i = 0; i < n && !rc; i++) {
        if (herd_weights_load(&m, in[i])) rc = -1;
        for (int64_t j = 0; j < acc.n_params && !rc; j++) acc.params[j] += m.params[j] / (float)n;
    }
    if (!rc && herd_weights_save(&acc, out)) rc = -1;
    if (!rc) printf("herd post average: %s = mean of %d models\n", out, n);
    herd_model_destroy(&acc);
    herd_model_destroy(&m);
    return rc;
}

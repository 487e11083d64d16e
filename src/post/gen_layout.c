/* gen_layout.c — see gen_layout.h. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "src/post/gen_layout.h"
#include "src/model/hf.h"
#include "src/model/weights.h"

int herd_gen_layout_open(herd_gen_layout *g, const herd_post_dp *dp, const herd_config *c)
{
    memset(g, 0, sizeof *g);
    g->dp = dp;
    const herd_config_parallel *p = &c->parallel;
    int tp = p->tp > 0 ? p->tp : 1, val = 0;
    const char *key = NULL, *why = NULL;
    if (p->pp > 1) {
        key = "parallel.pp", val = p->pp;
        why = "is above 1: generation runs tensor- and data-parallel only; set it to 1 (weights "
              "files hold whole tensors: a model trained with any layout loads)";
    } else if (p->cp > 1) {
        key = "parallel.cp", val = p->cp;
        why = "is above 1: generation runs tensor- and data-parallel only; set it to 1";
    } else if (dp->size % tp) {
        key = "parallel.tp", val = tp, why = "does not divide the job's ranks";
    }
    if (key) {
        if (dp->rank == 0)
            fprintf(stderr, "herd: generate: key '%s': %d %s (%d rank%s)\n", key, val, why,
                    dp->size, dp->size == 1 ? "" : "s");
        return -1;
    }
    g->tp = tp;
    g->tp_rank = dp->rank % tp;
    g->replica = dp->rank / tp;
    g->n_replicas = dp->size / tp;
    g->speaker = g->tp_rank == 0;
    if (tp > 1) {
        g->tp_group = herd_comm_mpi_split(dp->grid.world, g->replica, g->tp_rank, "gen-tp");
        if (!g->tp_group) return -1;
    }
    return 0;
}

void herd_gen_layout_close(herd_gen_layout *g)
{
    if (g->tp_group) herd_comm_destroy(g->tp_group);
    g->tp_group = NULL;
}

void herd_gen_layout_share(const herd_gen_layout *g, int64_t n, int64_t *first, int64_t *count)
{
    int64_t q = n / g->n_replicas, r = n % g->n_replicas;
    *count = q + (g->replica < r);
    *first = q * g->replica + (g->replica < r ? g->replica : r);
}

int herd_gen_model_open(herd_model *m, const herd_post_env *e, const herd_gen_layout *g,
                        const char *weights)
{
    herd_model_dims d;
    herd_model_dims_from_config(&d, &e->cfg.model);
    /* the logits are kept whole (xent_chunk 0): sampling and reward scoring read them */
    herd_model_parallel par = {0};
    par.tp = g->tp_group;
    if (herd_model_create_parallel(m, &d, herd_backend_cpu(), e->cfg.train.seed, &par)) return -1;
    herd_model_drop_grads(m); /* no backward: the memory is the weights' and the cache's */
    struct stat st; /* a directory is a Hugging Face Llama checkpoint (src/model/hf.h) */
    int hf = weights && stat(weights, &st) == 0 && S_ISDIR(st.st_mode);
    if (weights && (hf ? herd_hf_load_checked(m, weights, &e->cfg.model) : herd_weights_load(m, weights))) {
        herd_model_destroy(m);
        return -1;
    }
    return 0;
}

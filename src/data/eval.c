/* eval.c — per-source validation loss and bits per byte (src/data/eval.h). */
#include <math.h>
#include <stdlib.h>
#include "src/data/eval.h"

int herd_eval_source(herd_loader *l, int v, herd_forward_fn f, void *ctx, int B, int T, int i0,
                     int i1, herd_eval_acc *acc)
{
    size_t n = (size_t)B * (size_t)T;
    int32_t *tok = malloc(sizeof(int32_t) * n), *tgt = malloc(sizeof(int32_t) * n),
            *doc = malloc(sizeof(int32_t) * n);
    int rc = tok && tgt && doc ? 0 : -1;
    if (rc) fprintf(stderr, "herd: validation: out of memory for %d x %d tokens\n", B, T);
    for (int i = i0; rc == 0 && i < i1; i++) {
        if (herd_loader_val_batch(l, v, i, B, T, tok, tgt, doc)) {
            rc = -1;
            break;
        }
        int64_t nv = 0;
        acc->loss_sum += f(ctx, tok, tgt, doc, B, T, &nv);
        acc->n_tokens += nv;
    }
    free(tok);
    free(tgt);
    free(doc);
    return rc;
}

int herd_eval_report(const herd_loader *l, const herd_eval_acc *acc, int64_t step, FILE *jsonl,
                     FILE *human)
{
    for (int v = 0; v < herd_loader_n_val_sources(l); v++) {
        const char *name = herd_loader_val_name(l, v);
        double loss = acc[v].n_tokens ? acc[v].loss_sum / (double)acc[v].n_tokens : NAN;
        if (!isfinite(loss)) {
            fprintf(stderr, "herd: validation source \"%s\": loss is not finite (%lld tokens)\n", name,
                    (long long)acc[v].n_tokens);
            return -1;
        }
        double bpt = herd_loader_val_bytes_per_token(l, v);
        double bpb = bpt > 0 ? loss / M_LN2 / bpt : NAN;
        if (human) {
            fprintf(human, "eval   %6lld | %-14s val loss %.4f", (long long)step, name, loss);
            if (bpt > 0) fprintf(human, "  %.4f bits/byte", bpb);
            fprintf(human, "  (%lld tokens)\n", (long long)acc[v].n_tokens);
        }
        if (jsonl) {
            fprintf(jsonl, "{\"step\":%lld,\"val_source\":\"%s\",\"val_loss\":%.17g,\"val_bpb\":", (long long)step,
                    name, loss);
            if (bpt > 0) fprintf(jsonl, "%.17g", bpb);
            else fputs("null", jsonl);
            fprintf(jsonl, ",\"val_tokens\":%lld}\n", (long long)acc[v].n_tokens);
        }
    }
    if (human) fflush(human);
    if (jsonl && (fflush(jsonl) || ferror(jsonl))) {
        fprintf(stderr, "herd: validation: cannot write the metrics\n");
        return -1;
    }
    return 0;
}

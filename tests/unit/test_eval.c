/* test_eval.c — per-source validation: loss, bits per byte from the shard's
 * .meta, the JSON line, and rank slices that add up to the whole. The model
 * is a real one, if simple: uniform over the vocabulary, whose cross-entropy
 * is ln V per token, so every number has a closed form. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/data/data.h"
#include "src/data/eval.h"
#include "src/data/loader.h"
#include "tests/unit/test.h"

#define V 1000
static char dir[] = "/tmp/herd_eval_XXXXXX";

static double uniform_forward(void *ctx, const int32_t *tok, const int32_t *tgt, const int32_t *doc,
                              int B, int T, int64_t *n_valid)
{
    (void)ctx, (void)tok, (void)doc;
    int64_t n = 0;
    for (int i = 0; i < B * T; i++) n += tgt[i] >= 0;
    *n_valid = n;
    return (double)n * log((double)V);
}

TEST(loss_bpb_json_and_rank_slices)
{
    herd_data_source src[2];
    memset(src, 0, sizeof src);
    uint32_t ids[5000];
    for (int i = 0; i < 5000; i++) ids[i] = i % 50 == 49 ? V - 1 : (uint32_t)(i % 900);
    for (int s = 0; s < 2; s++) {
        snprintf(src[s].name, sizeof src[s].name, s ? "code" : "general");
        snprintf(src[s].path, sizeof src[s].path, "%s/%d.bin", dir, s);
        snprintf(src[s].val_path, sizeof src[s].val_path, "%s/%d.val.bin", dir, s);
        src[s].weight = 1;
        herd_shard_write(src[s].path, ids, 5000, V, V - 1);
        herd_shard_write(src[s].val_path, ids, 3000, V, V - 1);
    }
    /* source 0 has 2.5 text bytes per token; source 1 has no .meta (unknown) */
    char meta[1100];
    snprintf(meta, sizeof meta, "%s.meta", src[0].val_path);
    FILE *f = fopen(meta, "w");
    fprintf(f, "text_bytes 7500\ntokens 3000\ndocs 60\n");
    fclose(f);
    herd_loader *l;
    CHECK(herd_loader_open_sources(&l, src, 2, 1, V) == 0);
    if (!l) return;
    herd_eval_acc all[2] = {{0, 0}, {0, 0}}, part[2] = {{0, 0}, {0, 0}};
    for (int v = 0; v < 2; v++) {
        CHECK(herd_eval_source(l, v, uniform_forward, NULL, 4, 64, 0, 6, &all[v]) == 0);
        CHECK(herd_eval_source(l, v, uniform_forward, NULL, 4, 64, 0, 2, &part[v]) == 0); /* rank 0 */
        CHECK(herd_eval_source(l, v, uniform_forward, NULL, 4, 64, 2, 6, &part[v]) == 0); /* rank 1 */
        CHECK(all[v].n_tokens == 6 * 4 * 64 && part[v].n_tokens == all[v].n_tokens);
        CHECK_NEAR(part[v].loss_sum, all[v].loss_sum, 1e-9 * all[v].loss_sum);
    }
    char buf[2048] = "";
    FILE *j = fmemopen(buf, sizeof buf, "w");
    CHECK(herd_eval_report(l, all, 42, j, NULL) == 0);
    fclose(j);
    double loss, bpb;
    char *g = strstr(buf, "{\"step\":42,\"val_source\":\"general\",\"val_loss\":");
    CHECK(g && sscanf(g, "{\"step\":42,\"val_source\":\"general\",\"val_loss\":%lf,\"val_bpb\":%lf", &loss, &bpb) == 2);
    CHECK_NEAR(loss, log((double)V), 1e-12);
    CHECK_NEAR(bpb, log2((double)V) / 2.5, 1e-12); /* 9.97 bits per token over 2.5 bytes */
    CHECK(strstr(buf, "\"val_source\":\"code\"") && strstr(buf, "\"val_bpb\":null"));
    herd_eval_acc bad[2] = {{0, 0}, {0, 0}};
    fprintf(stderr, "  (the message below is expected)\n");
    CHECK(herd_eval_report(l, bad, 1, NULL, NULL) == -1); /* no tokens: not finite */
    herd_loader_close(l);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    RUN(loss_bpb_json_and_rank_slices);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) return 1;
    return test_summary();
}

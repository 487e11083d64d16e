/* hf_logits.c — herd's logits and loss on a Hugging Face checkpoint against
 * transformers' (tests/golden/hf_make_fixtures.py wrote them to
 * HF_DIR/expected.safetensors):
 *
 *   build/tests/hf_logits HF_DIR [TOL]
 *
 * reads config.json and the weights as `train.init_from` does (src/model/hf.h),
 * runs one forward on input.tokens with next-token targets (labels =
 * input_ids), and prints the largest logit difference relative to the largest
 * |logit| and the loss's relative difference. Exit 1 when either exceeds TOL
 * (default 1e-4). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/base/safetensors.h"
#include "src/model/hf.h"

/* name's F32/I32 data from the expected file into a new buffer of n elements
 * (*cols: its last dimension) */
static void *read_expected(const char *dir, const char *name, int64_t *n, int64_t *cols)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    FILE *f = fopen(path, "rb");
    unsigned char len8[8], *buf = NULL;
    uint64_t hlen = 0;
    if (!f || fread(len8, 1, 8, f) != 8) return NULL;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
    buf = malloc(8 + hlen);
    memcpy(buf, len8, 8);
    herd_st_header h;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 8, SEEK_SET);
    void *out = NULL;
    if (fread(buf + 8, 1, hlen, f) == hlen && !herd_st_header_parse(&h, path, buf, 8 + hlen, size)) {
        const herd_st_entry *e = herd_st_header_find(&h, name);
        if (e) {
            *n = (int64_t)(e->end - e->begin) / 4;
            *cols = e->shape[e->ndim - 1];
            out = malloc(e->end - e->begin);
            if (fseek(f, (long)(8 + hlen + e->begin), SEEK_SET) ||
                fread(out, 4, (size_t)*n, f) != (size_t)*n) {
                free(out);
                out = NULL;
            }
        }
        herd_st_header_free(&h);
    }
    free(buf);
    fclose(f);
    if (!out) fprintf(stderr, "hf_logits: %s: %s: cannot read\n", path, name);
    return out;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: hf_logits HF_DIR [TOL]\n");
        return 2;
    }
    double tol = argc > 2 ? atof(argv[2]) : 1e-4;
    herd_config_model c = {0};
    int tied = 0;
    if (herd_hf_config_read(argv[1], &c, &tied)) return 1;
    int64_t nt = 0, nl = 0, n1 = 0, T = 0, cols = 0;
    int32_t *tok = read_expected(argv[1], "input.tokens", &nt, &T);
    float *want = read_expected(argv[1], "logits", &nl, &cols);
    float *want_loss = read_expected(argv[1], "loss", &n1, &cols);
    if (!tok || !want || !want_loss || T < 2 || nt % T || nl != nt * c.vocab_size) {
        fprintf(stderr, "hf_logits: %s/expected.safetensors: shapes disagree with config.json\n", argv[1]);
        return 1;
    }
    int B = (int)(nt / T);
    herd_model_dims d;
    c.init_std = 0.02;
    herd_model_dims_from_config(&d, &c);
    herd_model m;
    if (herd_model_create(&m, &d, herd_backend_cpu(), 1) || herd_hf_load(&m, argv[1], tied)) return 1;
    int32_t *tgt = malloc(sizeof(int32_t) * nt), *doc = calloc(nt, sizeof(int32_t));
    for (int64_t i = 0; i < nt; i++) tgt[i] = i % T == T - 1 ? -1 : tok[i + 1];
    int64_t nv = 0;
    double loss = herd_model_forward(&m, tok, tgt, doc, B, (int)T, &nv) / nv;
    double dmax = 0, lmax = 0;
    for (int64_t i = 0; i < nl; i++) {
        dmax = fmax(dmax, fabs((double)m.logits[i] - want[i]));
        lmax = fmax(lmax, fabs((double)want[i]));
    }
    double rel = dmax / lmax, lrel = fabs(loss - want_loss[0]) / fabs(want_loss[0]);
    printf("hf_logits %s: logits max rel diff %.3g, loss herd %.7f transformers %.7f (rel %.3g)%s\n",
           argv[1], rel, loss, want_loss[0], lrel, tied ? " [tied]" : "");
    herd_model_destroy(&m);
    free(tok); free(want); free(want_loss); free(tgt); free(doc);
    return rel <= tol && lrel <= tol ? 0 : 1;
}

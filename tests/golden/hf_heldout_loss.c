/* hf_heldout_loss.c — herd's loss on a held-out batch, from herd's own weights
 * (a one-file F32 export, `herd ckpt export RUN X.safetensors`) and the model
 * the run trained (a Hugging Face config.json: dims, tying, rope scaling), for
 * the round-trip test (tests/golden/hf_roundtrip.sh):
 *
 *   build/tests/hf_heldout_loss CONFIG_DIR WEIGHTS.safetensors BATCH.safetensors [LOGITS_OUT]
 *   build/tests/hf_heldout_loss --hf HF_DIR BATCH.safetensors [LOGITS_OUT]
 *
 * The second form reads config and weights from a Hugging Face directory as
 * `train.init_from` does: herd's view of an export (its config.json included).
 *
 * BATCH holds "input.tokens" [B, T] I32; the loss is the next-token loss with
 * labels = input_ids, as LlamaForCausalLM computes it. Prints it with 9 digits;
 * LOGITS_OUT gets "logits" [B*T, V] F32. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "checkpoint/safetensors.h"
#include "src/base/safetensors.h"
#include "src/model/hf.h"
#include "src/model/weights.h"

/* "input.tokens" of path into a new buffer (*n ids in rows of *cols) */
static int32_t *read_tokens(const char *path, int64_t *n, int64_t *cols)
{
    FILE *f = fopen(path, "rb");
    unsigned char len8[8], *buf = NULL;
    uint64_t hlen = 0;
    int32_t *out = NULL;
    if (!f || fread(len8, 1, 8, f) != 8) {
        fprintf(stderr, "hf_heldout_loss: %s: cannot read\n", path);
        if (f) fclose(f);
        return NULL;
    }
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    if (hlen > (uint64_t)size) hlen = 0;
    buf = malloc(8 + hlen);
    memcpy(buf, len8, 8);
    fseek(f, 8, SEEK_SET);
    herd_st_header h;
    if (fread(buf + 8, 1, hlen, f) == hlen && !herd_st_header_parse(&h, path, buf, 8 + hlen, size)) {
        const herd_st_entry *e = herd_st_header_find(&h, "input.tokens");
        if (e && e->ndim == 2 && !strcmp(e->dtype, "I32")) {
            *n = (int64_t)(e->end - e->begin) / 4;
            *cols = e->shape[1];
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
    if (!out) fprintf(stderr, "hf_heldout_loss: %s: input.tokens: missing or not [B, T] I32\n", path);
    return out;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: hf_heldout_loss CONFIG_DIR WEIGHTS.safetensors BATCH.safetensors [LOGITS_OUT]\n"
                        "       hf_heldout_loss --hf HF_DIR BATCH.safetensors [LOGITS_OUT]\n");
        return 2;
    }
    int hf = !strcmp(argv[1], "--hf");
    herd_config_model c = {0};
    int tied = 0;
    if (herd_hf_config_read(argv[2 - !hf], &c, &tied)) return 1;
    int64_t nt = 0, T = 0;
    int32_t *tok = read_tokens(argv[3], &nt, &T);
    if (!tok || T < 2 || nt % T) return 1;
    for (int64_t i = 0; i < nt; i++)
        if (tok[i] < 0 || tok[i] >= c.vocab_size) {
            fprintf(stderr, "hf_heldout_loss: %s: input.tokens: id %d outside the vocabulary\n",
                    argv[3], (int)tok[i]);
            return 1;
        }
    herd_model_dims d;
    c.init_std = 0.02;
    herd_model_dims_from_config(&d, &c);
    herd_model m;
    if (herd_model_create(&m, &d, herd_backend_cpu(), 1)) return 1;
    if (hf ? herd_hf_load(&m, argv[2], tied) : herd_weights_load(&m, argv[2])) return 1;
    int32_t *tgt = malloc(sizeof(int32_t) * nt), *doc = calloc(nt, sizeof(int32_t));
    for (int64_t i = 0; i < nt; i++) tgt[i] = i % T == T - 1 ? -1 : tok[i + 1];
    int64_t nv = 0;
    double loss = herd_model_forward(&m, tok, tgt, doc, (int)(nt / T), (int)T, &nv) / nv;
    printf("%.9g\n", loss);
    int rc = 0;
    if (argc == 5) {
        herd_st_tensor out = {"logits", "F32", 2, {nt, d.vocab_size}, m.logits};
        rc = herd_safetensors_write(argv[4], &out, 1, NULL, 0) ? 1 : 0;
    }
    herd_model_destroy(&m);
    free(tok); free(tgt); free(doc);
    return rc;
}

/* hf_export.h — a checkpoint as a Hugging Face Llama model directory that
 * transformers' LlamaForCausalLM.from_pretrained(DIR) loads as it is:
 * config.json, generation_config.json, model-0000K-of-0000N.safetensors and
 * model.safetensors.index.json (docs/checkpoint-format.md "Hugging Face export").
 *
 * herd's tensors already carry the Hugging Face Llama names, and herd's RoPE
 * is the rotate-half convention of HF's Llama (kernels/cpu/rope.c: the pair
 * (x[i], x[i + hd/2]) is rotated), so q_proj and k_proj are written as they
 * are: no row permutation (that permutation exists only between Meta's
 * interleaved-pair layout and HF's). */
#ifndef HERD_HF_EXPORT_H
#define HERD_HF_EXPORT_H

#include <stdint.h>

/* The model section of the run's config (the checkpoint's tensors give the
 * shapes; these say how to read them). */
typedef struct {
    int    n_layers, d_model, n_heads, n_kv_heads, ffn_dim, vocab_size, max_seq_len;
    double rope_theta, norm_eps;
    int    bos_id, eos_id;           /* -1: not written */
    /* Llama 3.1 "llama3" RoPE frequency scaling (factor 0: none) */
    double rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int    rope_original_max_pos;
} herd_hf_model;

typedef enum { HERD_HF_TIE_AUTO = 0, HERD_HF_TIE_NO = 1, HERD_HF_TIE_YES = 2 } herd_hf_tie;

typedef struct {
    int         bf16;            /* 1: BF16 tensors (round to nearest even), 0: F32 */
    int64_t     max_shard_bytes; /* tensor bytes per shard (0: 5 GB, transformers' default) */
    herd_hf_tie tie;             /* AUTO: tied when lm_head equals the embedding bit for bit;
                                    YES: the same, refused when they differ; NO: always untied */
    /* called with the directory being built, before it is renamed into place
       (the tokenizer files); NULL: none. 0 or -1 (the export fails) */
    int       (*extra)(const char *dir, void *arg);
    void       *extra_arg;
} herd_hf_options;

/* Write the parameters of step_dir into out_dir, which must not exist: built
 * as out_dir.tmp.PID and renamed into place when whole. 0 or -1 with a
 * message naming the file and the field. */
int herd_ckpt_export_hf(const char *step_dir, const char *out_dir, const herd_hf_model *m,
                        const herd_hf_options *o);

/* "5GB", "500MB", "2GiB", "123456" -> bytes; -1 when not a size. */
int64_t herd_hf_parse_size(const char *s);

#endif

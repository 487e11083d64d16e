/* hf.h — reading a Hugging Face Llama checkpoint as it is published: a
 * directory with config.json and model.safetensors, or model-K-of-N.safetensors
 * shards with model.safetensors.index.json; F32, BF16 or F16 tensors. Names
 * and layout: checkpoint/hf_names.h. */
#ifndef HERD_MODEL_HF_H
#define HERD_MODEL_HF_H

#include "src/config/config.h"
#include "src/model/model.h"

/* DIR/config.json into the architecture keys of *m (n_layers, d_model,
 * n_heads, n_kv_heads, ffn_dim, vocab_size, max_seq_len, rope_theta,
 * norm_eps, Llama 3.1 rope_scaling) and *tied (tie_word_embeddings);
 * defaults as transformers' LlamaConfig's. -1 with "herd: DIR/config.json:
 * KEY: ..." on a missing or unsupported field. */
int herd_hf_config_read(const char *dir, herd_config_model *m, int *tied);

/* 0 when the run's model keys agree with the checkpoint's; else -1 naming
 * each key that differs with both values. max_seq_len may be smaller than
 * the checkpoint's (a run uses less context than the model supports). */
int herd_hf_config_check(const char *dir, const herd_config_model *run, const herd_config_model *hf);

/* This rank's pieces of m's tensors (the TP/PP slices of its table) from
 * DIR's safetensors, widened to F32; only those bytes are read. A tied
 * checkpoint's lm_head comes from model.embed_tokens.weight. -1 naming the
 * file and the tensor on a missing tensor, a wrong shape or dtype. */
int herd_hf_load(herd_model *m, const char *dir, int tied);

/* The three above in one: read DIR/config.json, check it against the run's
 * model keys, load. For one process (each rank of a job would print the
 * same mismatch; the trainer checks on rank 0). */
int herd_hf_load_checked(herd_model *m, const char *dir, const herd_config_model *run);

#endif

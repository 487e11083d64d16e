/* hf_names.h — herd's tensor names against a Hugging Face LlamaForCausalLM's.
 *
 * herd names its tensors as transformers does (model.embed_tokens.weight,
 * model.layers.N.self_attn.q_proj.weight, ..., model.norm.weight,
 * lm_head.weight), with the same [out, in] shapes, and its RoPE is
 * transformers' rotate-half one (kernels/cpu/rope.c: the pair (x[i],
 * x[i + hd/2])), so q_proj and k_proj rows need no permutation either way.
 * (Meta's original consolidated.*.pth files use interleaved pairs; converting
 * those is transformers' convert_llama_weights_to_hf.py's job, not herd's.)
 * What differs: a tied checkpoint (tie_word_embeddings) stores no
 * lm_head.weight; herd always holds its own output projection. */
#ifndef HERD_CHECKPOINT_HF_NAMES_H
#define HERD_CHECKPOINT_HF_NAMES_H

#include <stddef.h>

/* The name of herd tensor `herd` in a Hugging Face checkpoint, into out
 * (cap bytes). 0, or -1 when it does not fit or is not a Llama tensor name. */
int herd_hf_name(const char *herd, char *out, size_t cap);
/* The tensor a tied checkpoint reads for `hf` (lm_head.weight ->
 * model.embed_tokens.weight; any other name itself). */
const char *herd_hf_tied_source(const char *hf);

#endif

/* hf_names.c — see hf_names.h. */
#include <stdio.h>
#include <string.h>
#include "checkpoint/hf_names.h"

static int is_llama_name(const char *n)
{
    return !strncmp(n, "model.layers.", 13) || !strcmp(n, "model.embed_tokens.weight") ||
           !strcmp(n, "model.norm.weight") || !strcmp(n, "lm_head.weight");
}

int herd_hf_name(const char *herd, char *out, size_t cap)
{
    if (!is_llama_name(herd)) return -1;
    int n = snprintf(out, cap, "%s", herd);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

const char *herd_hf_tied_source(const char *hf)
{
    return strcmp(hf, "lm_head.weight") ? hf : "model.embed_tokens.weight";
}

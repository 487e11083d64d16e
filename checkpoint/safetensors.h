/* safetensors.h — write tensors in the safetensors format (8-byte little-endian
 * header length, a JSON header of name -> {dtype, shape, data_offsets}, then the
 * raw little-endian data), readable by Hugging Face tools and by a few lines of
 * numpy. Used by `herd ckpt export`, the trainer's --dump-params and the
 * PyTorch golden tests. The reader's header parser is src/base/safetensors.h. */
#ifndef HERD_SAFETENSORS_H
#define HERD_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name;
    const char *dtype;     /* "F32", "I32" (4 bytes) or "BF16", "F16" (2 bytes) */
    int         ndim;
    int64_t     shape[4];
    const void *data;      /* host memory, numel * element size bytes */
} herd_st_tensor;

/* Crash-safe write (temp file, fsync, rename). `metadata` is a list of n_meta
 * key/value string pairs stored in "__metadata__". 0 or -1 with a message. */
int herd_safetensors_write(const char *path, const herd_st_tensor *t, int n,
                           const char *const *metadata, int n_meta);

#endif

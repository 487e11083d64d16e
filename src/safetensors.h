/* safetensors.h — write tensors in the safetensors format (8-byte little-endian
 * header length, a JSON header of name -> {dtype, shape, data_offsets}, then the
 * raw little-endian data), readable by Hugging Face tools and by a few lines of
 * numpy. Used for the PyTorch golden test and, later, `herd ckpt export`. */
#ifndef HERD_SAFETENSORS_H
#define HERD_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name;
    const char *dtype;     /* "F32" or "I32" */
    int         ndim;
    int64_t     shape[4];
    const void *data;      /* host memory, numel * 4 bytes */
} herd_st_tensor;

/* Crash-safe write (temp file, fsync, rename). `metadata` is a list of n_meta
 * key/value string pairs stored in "__metadata__". 0 or -1 with a message. */
int herd_safetensors_write(const char *path, const herd_st_tensor *t, int n,
                           const char *const *metadata, int n_meta);

/* ---- reading (safetensors_read.c) ---------------------------------------- */

#define HERD_ST_MAX_DIMS 8

/* One tensor of a header, checked: a known dtype, whole non-negative shape,
 * data_offsets [begin, end) inside the data, end - begin = numel * dtype size. */
typedef struct {
    char    *name;
    char     dtype[8];          /* "F32", "BF16", ... */
    int      ndim;
    int64_t  shape[HERD_ST_MAX_DIMS];
    uint64_t begin, end;        /* data_offsets: bytes from the start of the data */
} herd_st_entry;

typedef struct {
    herd_st_entry *t;
    int            n;
    uint64_t       header_len;  /* the data starts at byte 8 + header_len */
    uint64_t       data_len;    /* file_size - 8 - header_len */
} herd_st_header;

/* Parse the header of a file of file_size bytes from its first len bytes (the
 * 8-byte length and the JSON; more is ignored). -1 with "herd: ORIGIN: ..."
 * naming the tensor and the field when anything disagrees with the format. */
int herd_st_header_parse(herd_st_header *h, const char *origin, const unsigned char *buf, size_t len,
                         uint64_t file_size);
void herd_st_header_free(herd_st_header *h);
/* The tensor called name, or NULL. */
const herd_st_entry *herd_st_header_find(const herd_st_header *h, const char *name);

#endif

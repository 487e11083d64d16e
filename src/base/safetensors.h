/* safetensors.h — reading the safetensors format: the header parser that
 * loading a weights file needs (safetensors_read.c). The writer is
 * checkpoint/safetensors.h (the checkpoint library exports with it). */
#ifndef HERD_SRC_SAFETENSORS_H
#define HERD_SRC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

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

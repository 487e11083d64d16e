/* fuzz_safetensors.c — the header of a safetensors file (src/base/safetensors_read.c
 * over src/base/json.c), as `herd post` reads a model: the input is the whole file.
 * Every tensor the parser accepts must lie inside the file; the target reads
 * its bytes to prove it. */
#include "src/base/safetensors.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init(argc, argv);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    herd_st_header h;
    if (herd_st_header_parse(&h, "fuzz.safetensors", data, size, size)) return 0;
    unsigned sum = 0;
    for (int i = 0; i < h.n; i++) {
        const herd_st_entry *e = &h.t[i];
        if (herd_st_header_find(&h, e->name) != e) abort(); /* names are unique */
        const uint8_t *p = data + 8 + h.header_len;
        if (8 + h.header_len + e->end > size) abort();
        for (uint64_t b = e->begin; b < e->end; b++) sum += p[b];
    }
    herd_st_header_free(&h);
    return (int)(sum & 0);
}

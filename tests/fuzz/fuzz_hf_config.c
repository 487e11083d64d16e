/* fuzz_hf_config.c — a Hugging Face checkpoint's config.json
 * (src/model/hf_config.c over src/base/json.c), as `herd ckpt import` and
 * train.init_from read it: the input is the file. What the reader accepts
 * must be a model herd can build (positive sizes, heads that divide the
 * width) and must agree with itself. */
#include <limits.h>
#include "src/model/hf.h"
#include "tests/fuzz/fuzz.h"

static char dir[64];
static char file[96];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init(argc, argv);
    snprintf(dir, sizeof dir, "/tmp/herd-fuzz-hf.XXXXXX");
    if (!mkdtemp(dir)) abort();
    snprintf(file, sizeof file, "%s/config.json", dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(file, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    herd_config_model m;
    memset(&m, 0, sizeof m);
    int tied = -1;
    if (herd_hf_config_read(dir, &m, &tied)) return 0;
    if (m.n_layers <= 0 || m.d_model <= 0 || m.n_heads <= 0 || m.n_kv_heads <= 0 || m.ffn_dim <= 0 ||
        m.vocab_size <= 0 || m.max_seq_len <= 0 || (tied != 0 && tied != 1))
        abort();
    if (m.d_model % m.n_heads || m.n_heads % m.n_kv_heads) abort();
    if (herd_hf_config_check(dir, &m, &m)) abort(); /* a config agrees with itself */
    return 0;
}

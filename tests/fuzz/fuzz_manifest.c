/* fuzz_manifest.c — a checkpoint's MANIFEST (checkpoint/manifest.c) and what
 * the reader does with it (checkpoint/reader.c): open, the tensor index,
 * verify, a read of each small tensor, the metadata of rank 0.
 *
 * The input is the MANIFEST without its last line: the target seals it with
 * "end XXH64" as the writer does, so that mutations reach the fields instead
 * of stopping at the checksum. The step directory is a fresh directory in
 * /dev/shm holding only the MANIFEST: shard files are not there (HDF5 from
 * memory is not fuzzed), so every read that gets as far as a shard fails. */
#include <ftw.h>
#include <inttypes.h>
#include "checkpoint/ckpt.h"
#include "tests/fuzz/fuzz.h"

static char dir[64];

static int rm_one(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
    return remove(p);
}

static void rm_dir(void) { nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init(argc, argv);
    snprintf(dir, sizeof dir, "/dev/shm/herd-fuzz-manifest-XXXXXX");
    if (!mkdtemp(dir)) {
        snprintf(dir, sizeof dir, "/tmp/herd-fuzz-manifest-XXXXXX");
        if (!mkdtemp(dir)) abort();
    }
    atexit(rm_dir);
    return 0;
}

static void write_manifest(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 32);
    if (!text) abort();
    memcpy(text, data, size);
    size_t n = size;
    if (n == 0 || text[n - 1] != '\n') text[n++] = '\n';
    n += (size_t)snprintf(text + n, 32, "end %016" PRIx64 "\n", herd_xxh64(text, n, 0));
    char path[128];
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    fwrite(text, 1, n, f);
    fclose(f);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    write_manifest(data, size);
    herd_ckpt_verify(dir);
    herd_ckpt *c;
    if (herd_ckpt_open(&c, dir)) return 0;
    herd_ckpt_step(c);
    for (int i = 0; i < herd_ckpt_n_tensors(c); i++) {
        const char *kind, *name;
        int ndim;
        int64_t g[2];
        if (herd_ckpt_tensor(c, i, &kind, &name, &ndim, g)) continue;
        if (g[0] < 1 || g[1] < 1 || g[0] > 64 || g[1] > 64) continue; /* the output buffer */
        static float out[64 * 64];
        int64_t off[2] = {0, 0};
        herd_ckpt_read(c, kind, name, ndim, off, g, out);
    }
    void *meta;
    size_t len;
    if (herd_ckpt_meta(c, 0, &meta, &len) == 0) free(meta);
    herd_ckpt_close(c);
    return 0;
}

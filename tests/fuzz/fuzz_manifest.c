/* fuzz_manifest.c — a checkpoint's MANIFEST (checkpoint/manifest.c) and what
 * the reader does with it (checkpoint/reader.c): open, the tensor index,
 * verify, a read of each small tensor, the metadata of rank 0.
 *
 * The input is the MANIFEST without its last line: the target seals it with
 * "end XXH64" as the writer does, so that mutations reach the fields instead
 * of stopping at the checksum. Format 1 MANIFESTs carry the slice index
 * themselves; for format 2 the index is in the shards: whatever follows a
 * line "--index--" in the input becomes the /index dataset of a real
 * shard_00000.h5 (written here with HDF5: the index text is fuzzed, HDF5's
 * own file format is not), so the index parser and the reader behind it
 * are reached. Other shard files are not there: every read that gets as far
 * as one fails. The step directory is a fresh directory in /dev/shm. */
#include <ftw.h>
#include <inttypes.h>
#include <hdf5.h>
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

/* shard_00000.h5 with /index = the bytes given (none: no shard file) */
static void write_shard(const uint8_t *index, size_t n, int present)
{
    char path[128];
    snprintf(path, sizeof path, "%s/shard_00000.h5", dir);
    unlink(path);
    if (!present) return;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) abort();
    hsize_t d = n;
    hid_t sp = H5Screate_simple(1, &d, NULL);
    hid_t ds = H5Dcreate2(f, "index", H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (ds < 0 || (n && H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, index) < 0)) abort();
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char sep[] = "\n--index--\n";
    const uint8_t *ix = size >= sizeof sep - 1 ? memmem(data, size, sep, sizeof sep - 1) : NULL;
    size_t msize = ix ? (size_t)(ix - data) + 1 : size;
    write_shard(ix ? ix + sizeof sep - 1 : NULL, ix ? size - msize - (sizeof sep - 2) : 0, ix != NULL);
    write_manifest(data, msize);
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

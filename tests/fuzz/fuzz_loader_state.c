/* fuzz_loader_state.c — the data loader's position as a checkpoint stores it
 * in each shard's /meta after the trainer's header (src/data/loader.c
 * herd_loader_set_state, what resume decodes once HDF5 has read the bytes),
 * then a batch read from the position it gives. The loader is over two small
 * shards in /dev/shm made at start-up; each input starts from its first state. */
#include <ftw.h>
#include "src/data/loader.h"
#include "src/data/data.h"
#include "tests/fuzz/fuzz.h"

static herd_loader *loader;
static unsigned char *first_state;
static size_t state_size;
static char dir[64];

static int rm_one(const char *p, const struct stat *sb, int type, struct FTW *ftw) { return remove(p); }
static void rm_dir(void) { nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS); }

static void make_shard(const char *path, uint32_t n, uint32_t salt)
{
    uint32_t *ids = malloc(sizeof *ids * n);
    for (uint32_t i = 0; i < n; i++) ids[i] = (i * 7919u + salt) % 300u;
    if (herd_shard_write(path, ids, n, 300, 299)) abort();
    free(ids);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init(argc, argv);
    snprintf(dir, sizeof dir, "/dev/shm/herd-fuzz-loader-XXXXXX");
    if (!mkdtemp(dir)) abort();
    atexit(rm_dir);
    herd_data_source src[2] = {{.name = "general", .weight = 3}, {.name = "math", .weight = 1}};
    snprintf(src[0].path, sizeof src[0].path, "%s/general.bin", dir);
    snprintf(src[1].path, sizeof src[1].path, "%s/math.bin", dir);
    make_shard(src[0].path, 5000, 1);
    make_shard(src[1].path, 2500, 2);
    if (herd_loader_open_sources(&loader, src, 2, 7, 300)) abort();
    herd_loader_set_prefetch(loader, 0);
    state_size = herd_loader_state_size(loader);
    first_state = malloc(state_size);
    if (herd_loader_get_state(loader, first_state, state_size)) abort();
    if (getenv("FUZZ_WRITE_SEED")) { /* the seed of tests/fuzz/corpus/loader_state */
        FILE *f = fopen(getenv("FUZZ_WRITE_SEED"), "wb");
        int32_t t[64], g[64], d[64];
        for (int i = 0; i < 3; i++) herd_loader_next(loader, 16, 4, 0, 4, t, g, d);
        herd_loader_get_state(loader, first_state, state_size);
        fwrite(first_state, 1, state_size, f);
        fclose(f);
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (herd_loader_set_state(loader, data, size) == 0) {
        int32_t tokens[64], targets[64], doc[64];
        herd_loader_next(loader, 16, 4, 0, 4, tokens, targets, doc);
        herd_loader_next(loader, 8, 8, 2, 4, tokens, targets, doc);
    }
    if (herd_loader_set_state(loader, first_state, state_size)) abort();
    return 0;
}

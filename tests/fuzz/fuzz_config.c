/* fuzz_config.c — the YAML run configuration (src/config/config.c, libyaml): a
 * config file, its validation and the YAML written back, and the same text as
 * the value of the list keys on the command line (--set batch.ramp=...,
 * --set data.sources=...). The written YAML must load again. */
#include "src/config/config.h"
#include "tests/fuzz/fuzz.h"

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init(argc, argv);
    devnull = fopen("/dev/null", "w");
    return 0;
}

/* herd_config_write's YAML of c loads into fresh defaults */
static void round_trip(const herd_config *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return;
    herd_config_write(c, f);
    fclose(f);
    herd_config back;
    herd_config_defaults(&back);
    if (herd_config_load_text(&back, "written", text, len)) abort();
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    herd_config c;
    herd_config_defaults(&c);
    if (herd_config_load_text(&c, "fuzz.yaml", (const char *)data, size) == 0) {
        herd_config_write(&c, devnull);
        if (herd_config_validate(&c, "fuzz.yaml") == 0) round_trip(&c);
    }
    if (size < 8192 && !memchr(data, 0, size)) {
        static const char *keys[] = {"batch.ramp=", "data.sources="};
        for (int i = 0; i < 2; i++) {
            size_t k = strlen(keys[i]);
            char *set = malloc(k + size + 1);
            memcpy(set, keys[i], k);
            memcpy(set + k, data, size);
            set[k + size] = '\0';
            herd_config_defaults(&c);
            herd_config_set(&c, set, "--set");
            free(set);
        }
    }
    return 0;
}

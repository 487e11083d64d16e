/* test_hf_export.c — the pieces of the Hugging Face export that a whole-model
 * test reaches only in part: --max-shard-size's units and refusals, and BF16
 * tensors in the safetensors writer (2 bytes each, offsets to match). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "checkpoint/hf_export.h"
#include "checkpoint/safetensors.h"
#include "src/base/safetensors.h"
#include "tests/unit/test.h"

TEST(shard_sizes_parse)
{
    CHECK(herd_hf_parse_size("5GB") == 5000000000LL);
    CHECK(herd_hf_parse_size("500MB") == 500000000LL);
    CHECK(herd_hf_parse_size("2GiB") == 2147483648LL);
    CHECK(herd_hf_parse_size("10kb") == 10000);
    CHECK(herd_hf_parse_size("1.5KiB") == 1536);
    CHECK(herd_hf_parse_size("123456") == 123456);
    CHECK(herd_hf_parse_size("0") == -1);
    CHECK(herd_hf_parse_size("-5GB") == -1);
    CHECK(herd_hf_parse_size("5XB") == -1);
    CHECK(herd_hf_parse_size("GB") == -1);
    CHECK(herd_hf_parse_size("5GBx") == -1);
    CHECK(herd_hf_parse_size("0.1") == -1); /* less than one byte */
}

TEST(bf16_tensors_write_two_bytes)
{
    char path[] = "/tmp/herd-test-hfexport-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    uint16_t a[3] = {0x3f80, 0x4000, 0xc040}; /* 1, 2, -3 */
    float b[2] = {4.0f, 5.0f};
    herd_st_tensor t[2] = {{"a", "BF16", 1, {3}, a}, {"b", "F32", 1, {2}, b}};
    CHECK(herd_safetensors_write(path, t, 2, NULL, 0) == 0);
    FILE *f = fopen(path, "rb");
    unsigned char buf[4096];
    size_t len = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    herd_st_header h;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | buf[i];
    CHECK(herd_st_header_parse(&h, path, buf, 8 + hl, len) == 0);
    const herd_st_entry *ea = herd_st_header_find(&h, "a"), *eb = herd_st_header_find(&h, "b");
    CHECK(ea && eb && ea->begin == 0 && eb->begin == 6);
    CHECK(len == 8 + hl + 6 + 8);
    CHECK(!memcmp(buf + 8 + hl, a, 6) && !memcmp(buf + 8 + hl + 6, b, 8));
    herd_st_header_free(&h);
    unlink(path);
}

int main(void)
{
    RUN(shard_sizes_parse);
    RUN(bf16_tensors_write_two_bytes);
    return test_summary();
}

/* test_safetensors.c — the safetensors header parser (src/base/safetensors_read.c):
 * what herd_safetensors_write writes reads back, and each way a header can lie
 * about its tensors is refused. */
#include <string.h>
#include <unistd.h>
#include "checkpoint/safetensors.h"
#include "src/base/safetensors.h"
#include "tests/unit/test.h"

/* a file: the 8-byte length, the header text, then `data` zero bytes */
static unsigned char *file_of(const char *header, size_t data, size_t *len)
{
    size_t h = strlen(header);
    *len = 8 + h + data;
    unsigned char *b = calloc(1, *len);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    return b;
}

static int parses(const char *header, size_t data)
{
    size_t len;
    unsigned char *b = file_of(header, data, &len);
    herd_st_header h;
    int rc = herd_st_header_parse(&h, "test.safetensors", b, len, len);
    if (rc == 0) herd_st_header_free(&h);
    free(b);
    return rc == 0;
}

TEST(written_file_reads_back)
{
    char dir[] = "/tmp/herd_st_XXXXXX", path[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    float a[6] = {1, 2, 3, 4, 5, 6}, n[3] = {7, 8, 9};
    herd_st_tensor t[2] = {{"lm_head.weight", "F32", 2, {2, 3}, a}, {"norm.weight", "F32", 1, {3}, n}};
    const char *meta[2] = {"format", "pt"};
    CHECK(herd_safetensors_write(path, t, 2, meta, 1) == 0);
    FILE *f = fopen(path, "rb");
    unsigned char buf[4096];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    unlink(path);
    rmdir(dir);
    herd_st_header h;
    CHECK(herd_st_header_parse(&h, path, buf, len, len) == 0);
    CHECK(h.n == 2);
    const herd_st_entry *e = herd_st_header_find(&h, "lm_head.weight");
    CHECK(e && !strcmp(e->dtype, "F32") && e->ndim == 2 && e->shape[0] == 2 && e->shape[1] == 3);
    CHECK(e && e->end - e->begin == 24 && !memcmp(buf + 8 + h.header_len + e->begin, a, 24));
    e = herd_st_header_find(&h, "norm.weight");
    CHECK(e && !memcmp(buf + 8 + h.header_len + e->begin, n, 12));
    CHECK(herd_st_header_find(&h, "__metadata__") == NULL);
    herd_st_header_free(&h);
}

TEST(lying_headers_are_refused)
{
    fprintf(stderr, "  (the messages below are expected)\n");
    CHECK(parses("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8));
    CHECK(parses("{}", 0));
    CHECK(!parses("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4));   /* past the end */
    CHECK(!parses("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8));   /* size */
    CHECK(!parses("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8));  /* negative */
    CHECK(!parses("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8));   /* reversed */
    CHECK(!parses("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8)); /* fraction */
    CHECK(!parses("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300,1e300],\"data_offsets\":[0,8]}}", 8));
    CHECK(!parses("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8));    /* dtype */
    CHECK(!parses("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8));      /* twice */
    CHECK(!parses("[1]", 0));
    size_t len;
    unsigned char *b = file_of("{}", 0, &len);
    herd_st_header h;
    CHECK(herd_st_header_parse(&h, "t", b, len, len - 1) == -1); /* the length says more than the file */
    CHECK(herd_st_header_parse(&h, "t", b, 7, 7) == -1);
    free(b);
}

int main(void)
{
    RUN(written_file_reads_back);
    RUN(lying_headers_are_refused);
    return test_summary();
}

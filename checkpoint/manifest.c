/* manifest.c — the MANIFEST of a checkpoint (written last: its presence is
 * what makes a step directory count) and the crash-safe file helpers.
 *
 * MANIFEST is line-oriented text, so that `cat` shows it and a few lines of
 * any language parse it (docs/checkpoint-format.md):
 *   herd-checkpoint 2
 *   step S
 *   world W
 *   shard R FILE SIZE XXH64HEX            (W lines)
 *   end XXH64HEX                          (of every byte before this line)
 * Its size grows with the ranks only, not with their slices: each shard
 * keeps its own slice index (index.c). Format 1 also had, after the shards,
 *   slice R KIND NDIM G0 G1 O0 O1 S0 S1 NAME   (one per slice of every rank)
 * which is still read. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint/internal.h"
#include "checkpoint/safe_file.h"
#include "checkpoint/sbuf.h"
#include "monitoring/clock.h"

void ckpt_shard_name(int rank, char *out, size_t n) { snprintf(out, n, "shard_%05d.h5", rank); }
void ckpt_step_name(int64_t step, char *out, size_t n) { snprintf(out, n, "step_%08" PRId64, step); }

int ckpt_fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "checkpoint: %s: cannot open to fsync: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = fsync(fd);
    if (rc) fprintf(stderr, "checkpoint: %s: fsync failed: %s\n", path, strerror(errno));
    close(fd);
    return rc ? -1 : 0;
}

int ckpt_mkdir_p(const char *path) { return herd_safe_mkdirs(path); }

int ckpt_parent_dir(const char *path, char *out, size_t n)
{
    snprintf(out, n, "%s", path);
    size_t l = strlen(out);
    while (l > 1 && out[l - 1] == '/') out[--l] = '\0';
    char *s = strrchr(out, '/');
    if (!s) snprintf(out, n, ".");
    else if (s == out) out[1] = '\0';
    else *s = '\0';
    return 0;
}

/* A MANIFEST that is a regular file (a link named MANIFEST does not commit
 * anything). */
int ckpt_dir_has_manifest(const char *step_dir)
{
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", step_dir, HERD_CKPT_MANIFEST);
    return lstat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* A real directory (not a link to one). */
int ckpt_is_real_dir(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}


int ckpt_manifest_write(const char *step_dir, const ckpt_manifest *m)
{
    herd_sbuf b = {0};
    herd_sbuf_printf(&b, "%s\nstep %" PRId64 "\nworld %d\n", HERD_CKPT_FORMAT, m->step, m->world);
    for (int r = 0; r < m->world; r++)
        herd_sbuf_printf(&b, "shard %d %s %" PRId64 " %016" PRIx64 "\n", r, m->shards[r].file,
               m->shards[r].size, m->shards[r].xxh64);
    herd_sbuf_printf(&b, "end %016" PRIx64 "\n", herd_xxh64(b.s, b.n, 0));

    char fin[4200];
    snprintf(fin, sizeof fin, "%s/%s", step_dir, HERD_CKPT_MANIFEST);
    int rc = herd_safe_write(fin, b.s, b.n);
    free(b.s);
    if (rc) return -1;
    /* the rename is durable only once the directory is; the step directory's
     * own entry is durable once its parent is */
    char parent[4200];
    ckpt_parent_dir(step_dir, parent, sizeof parent);
    return ckpt_fsync_path(parent);
}

void ckpt_manifest_free(ckpt_manifest *m)
{
    free(m->shards);
    free(m->ents);
    memset(m, 0, sizeof *m);
}

#define BAD(...) do { fprintf(stderr, "checkpoint: %s: ", path); fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr); goto fail; } while (0)

/* Limits that keep every later computation in range: element counts fit in
 * int64 and a byte count in size_t; a world larger than any job. */
#define MANIFEST_MAX_BYTES (1L << 30)
#define MANIFEST_MAX_WORLD (1 << 24)

/* Split a line at single spaces into at most max tokens; -1 if more. */
static int split_words(char *line, char **tok, int max)
{
    int n = 0;
    for (char *save = NULL, *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        if (n == max) return -1;
        tok[n++] = t;
    }
    return n;
}

int ckpt_parse_i64(const char *t, int64_t lo, int64_t hi, int64_t *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(t, &end, 10);
    if (errno || end == t || *end || x < lo || x > hi) return -1;
    *v = x;
    return 0;
}

/* Exactly 16 lowercase or uppercase hex digits. */
static int parse_hex64(const char *t, uint64_t *v)
{
    if (strlen(t) != 16 || strspn(t, "0123456789abcdefABCDEF") != 16) return -1;
    *v = strtoull(t, NULL, 16);
    return 0;
}

/* A name that is one path component: not empty, no '/', not "." or "..". */
int ckpt_plain_name(const char *t, size_t max)
{
    size_t l = strlen(t);
    return l > 0 && l < max && !strchr(t, '/') && strcmp(t, ".") && strcmp(t, "..");
}

/* Read the whole MANIFEST (a regular file, never through a link). */
static char *read_manifest_text(const char *path)
{
    int fd = herd_safe_open_read(path);
    if (fd < 0) {
        fprintf(stderr, "checkpoint: %s: missing or unreadable (checkpoint incomplete)\n", path);
        return NULL;
    }
    struct stat st;
    char *text = NULL;
    if (fstat(fd, &st) || st.st_size > MANIFEST_MAX_BYTES) {
        fprintf(stderr, "checkpoint: %s: larger than %ld bytes; not a MANIFEST\n", path, MANIFEST_MAX_BYTES);
    } else if ((text = malloc((size_t)st.st_size + 1))) {
        size_t got = 0;
        for (ssize_t k; got < (size_t)st.st_size; got += (size_t)k) {
            k = read(fd, text + got, (size_t)st.st_size - got);
            if (k < 0 && errno == EINTR) { k = 0; continue; }
            if (k <= 0) break;
        }
        text[got] = '\0';
        if (got != (size_t)st.st_size || memchr(text, '\0', got)) {
            fprintf(stderr, "checkpoint: %s: short read or a NUL byte\n", path);
            free(text);
            text = NULL;
        }
    }
    close(fd);
    return text;
}

/* The format is strict, so that a MANIFEST that contradicts itself is
 * refused here and no reader ever indexes with an unchecked count: the
 * header line (format 2, or 1); step; world W; exactly W shard lines, ranks
 * 0..W-1 in order, each naming its own file shard_RRRRR.h5; in format 1
 * only, slice lines whose ranks are below W and whose rectangles lie inside
 * their tensors; the sealing end line, last. */
int ckpt_manifest_read(const char *step_dir, ckpt_manifest *m)
{
    memset(m, 0, sizeof *m);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", step_dir, HERD_CKPT_MANIFEST);
    char *text = read_manifest_text(path);
    if (!text) return -1;
    int n_shards = 0;

    /* the last line seals everything before it */
    char *endl = NULL;
    for (char *p = strstr(text, "\nend "); p; p = strstr(p + 1, "\nend ")) endl = p;
    if (!endl) BAD("field 'end': missing (truncated manifest)");
    uint64_t want;
    char seal[17];
    snprintf(seal, sizeof seal, "%s", endl + 5);
    if (strlen(endl + 5) != 17 || endl[5 + 16] != '\n' || parse_hex64(seal, &want))
        BAD("field 'end': not 16 hex digits and a newline at the end of the file");
    uint64_t have = herd_xxh64(text, (size_t)(endl + 1 - text), 0);
    if (want != have)
        BAD("field 'end': checksum %016" PRIx64 " does not match the content (%016" PRIx64 ")",
            want, have);
    endl[1] = '\0';   /* the parse stops before the end line */

    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    if (line && !strcmp(line, HERD_CKPT_FORMAT)) m->version = 2;
    else if (line && !strcmp(line, HERD_CKPT_FORMAT_V1)) m->version = 1;
    else BAD("first line: not '%s' (nor '%s', still read)", HERD_CKPT_FORMAT, HERD_CKPT_FORMAT_V1);
    m->world = -1;
    m->step = -1;
    int lineno = 1;
    while ((line = strtok_r(NULL, "\n", &save))) {
        lineno++;
        char copy[512];
        snprintf(copy, sizeof copy, "%s", line);
        char *tok[12];
        int nt = split_words(line, tok, 12);
        if (nt < 1) BAD("line %d: empty or too many fields: '%.200s'", lineno, copy);
        if (!strcmp(tok[0], "step")) {
            int64_t v;
            if (m->step >= 0 || m->world > 0) BAD("field 'step': line %d: repeated or out of order", lineno);
            if (nt != 2 || ckpt_parse_i64(tok[1], 0, INT64_MAX, &v)) BAD("field 'step': bad line '%.200s'", copy);
            m->step = v;
        } else if (!strcmp(tok[0], "world")) {
            int64_t v;
            if (m->step < 0 || m->world > 0) BAD("field 'world': line %d: repeated or out of order", lineno);
            if (nt != 2 || ckpt_parse_i64(tok[1], 1, MANIFEST_MAX_WORLD, &v))
                BAD("field 'world': '%.200s' is not a count in [1, %d]", copy, MANIFEST_MAX_WORLD);
            m->world = (int)v;
            m->shards = calloc((size_t)m->world, sizeof *m->shards);
            if (!m->shards) BAD("field 'world': out of memory for %d shards", m->world);
        } else if (!strcmp(tok[0], "shard")) {
            int64_t r, size;
            if (m->world < 1 || n_shards >= m->world || m->n_ents)
                BAD("field 'shard': line %d: more shard lines than world %d, or out of order", lineno,
                    m->world);
            ckpt_shard *s = &m->shards[n_shards];
            char want_name[32];
            ckpt_shard_name(n_shards, want_name, sizeof want_name);
            if (nt != 5 || ckpt_parse_i64(tok[1], n_shards, n_shards, &r))
                BAD("field 'shard': line %d: '%.200s' is not the line of rank %d", lineno, copy, n_shards);
            if (strcmp(tok[2], want_name))
                BAD("field 'shard': rank %d: file '%.200s' is not '%s' (a shard is a file of its step "
                    "directory, named by its rank)", n_shards, tok[2], want_name);
            if (ckpt_parse_i64(tok[3], 0, INT64_MAX, &size) || parse_hex64(tok[4], &s->xxh64))
                BAD("field 'shard': rank %d: bad size or checksum in '%.200s'", n_shards, copy);
            snprintf(s->file, sizeof s->file, "%s", want_name);
            s->size = size;
            n_shards++;
        } else if (!strcmp(tok[0], "slice")) {
            if (m->version != 1)
                BAD("field 'slice': line %d: %s keeps the slice index in the shards, not here", lineno,
                    HERD_CKPT_FORMAT);
            if (m->world < 1 || n_shards != m->world)
                BAD("field 'slice': line %d: before the %d shard lines of world %d", lineno,
                    m->world > 0 ? m->world : 0, m->world);
            int64_t r;
            ckpt_entry e;
            const char *field = "rank";
            if (nt != 11 || ckpt_parse_i64(tok[1], 0, m->world - 1, &r) ||
                ckpt_slice_parse(tok + 2, (int)r, &e, &field))
                BAD("field 'slice' (%s): line %d: bad or contradictory '%.200s' (world %d)", field, lineno,
                    copy, m->world);
            if (ckpt_entries_push(m, &e)) BAD("field 'slice': out of memory or too many slices");
        } else {
            BAD("line %d: unknown record '%.200s'", lineno, copy);
        }
    }
    if (m->step < 0) BAD("field 'step': missing");
    if (m->world < 1) BAD("field 'world': missing");
    if (n_shards != m->world) BAD("field 'shard': %d shard lines for world %d", n_shards, m->world);
    if (ckpt_index_agree(path, m)) goto fail;
    m->index_loaded = m->version == 1;
    free(text);
    return 0;
fail:
    free(text);
    ckpt_manifest_free(m);
    return -1;
}

/* manifest.c — the MANIFEST of a checkpoint (written last: its presence is
 * what makes a step directory count) and the crash-safe file helpers.
 *
 * MANIFEST is line-oriented text, so that `cat` shows it and a few lines of
 * any language parse it (docs/checkpoint-format.md):
 *   herd-checkpoint 1
 *   step S
 *   world W
 *   shard R FILE SIZE XXH64HEX            (W lines)
 *   slice R KIND NDIM G0 G1 O0 O1 S0 S1 NAME   (one per slice)
 *   end XXH64HEX                          (of every byte before this line)
 */
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

double ckpt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

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

int ckpt_mkdir_p(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        fprintf(stderr, "checkpoint: %s: path too long\n", path);
        return -1;
    }
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0777) && errno != EEXIST) {
                fprintf(stderr, "checkpoint: %s: cannot create directory: %s\n", buf, strerror(errno));
                return -1;
            }
            *p = c;
            if (!c) break;
        }
    }
    return 0;
}

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

int ckpt_dir_has_manifest(const char *step_dir)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", step_dir, HERD_CKPT_MANIFEST);
    return access(p, F_OK) == 0;
}

typedef struct { char *s; size_t n, cap; } sbuf;
static void sb_put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void sb_put(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (b->s && b->n + (size_t)k < b->cap) { b->n += (size_t)k; return; }
        b->cap = (b->cap + (size_t)k + 1) * 2;
        b->s = realloc(b->s, b->cap);
    }
}

int ckpt_manifest_write(const char *step_dir, const ckpt_manifest *m)
{
    sbuf b = {0};
    sb_put(&b, "%s\nstep %" PRId64 "\nworld %d\n", HERD_CKPT_FORMAT, m->step, m->world);
    for (int r = 0; r < m->world; r++)
        sb_put(&b, "shard %d %s %" PRId64 " %016" PRIx64 "\n", r, m->shards[r].file,
               m->shards[r].size, m->shards[r].xxh64);
    for (int i = 0; i < m->n_ents; i++) {
        const ckpt_entry *e = &m->ents[i];
        sb_put(&b, "slice %d %s %d %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64
               " %" PRId64 " %s\n", e->rank, e->kind, e->ndim, e->global_shape[0],
               e->ndim > 1 ? e->global_shape[1] : 1, e->offset[0], e->ndim > 1 ? e->offset[1] : 0,
               e->shape[0], e->ndim > 1 ? e->shape[1] : 1, e->name);
    }
    sb_put(&b, "end %016" PRIx64 "\n", herd_xxh64(b.s, b.n, 0));

    char tmp[4200], fin[4200];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", step_dir, HERD_CKPT_MANIFEST);
    snprintf(fin, sizeof fin, "%s/%s", step_dir, HERD_CKPT_MANIFEST);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "checkpoint: %s: cannot create: %s\n", tmp, strerror(errno));
        free(b.s);
        return -1;
    }
    size_t off = 0;
    while (off < b.n) {
        ssize_t k = write(fd, b.s + off, b.n - off);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) break;
        off += (size_t)k;
    }
    free(b.s);
    if (off < b.n || fsync(fd)) {
        fprintf(stderr, "checkpoint: %s: write/fsync failed: %s\n", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, fin)) {
        fprintf(stderr, "checkpoint: %s: rename to MANIFEST failed: %s\n", tmp, strerror(errno));
        return -1;
    }
    /* the rename is durable only once the directory is; the step directory's
     * own entry is durable once its parent is */
    char parent[4200];
    ckpt_parent_dir(step_dir, parent, sizeof parent);
    return ckpt_fsync_path(step_dir) || ckpt_fsync_path(parent) ? -1 : 0;
}

void ckpt_manifest_free(ckpt_manifest *m)
{
    free(m->shards);
    free(m->ents);
    memset(m, 0, sizeof *m);
}

#define BAD(...) do { fprintf(stderr, "checkpoint: %s: ", path); fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr); goto fail; } while (0)

int ckpt_manifest_read(const char *step_dir, ckpt_manifest *m)
{
    memset(m, 0, sizeof *m);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", step_dir, HERD_CKPT_MANIFEST);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "checkpoint: %s: missing (checkpoint incomplete): %s\n", path, strerror(errno));
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)len + 1);
    size_t got = len > 0 ? fread(text, 1, (size_t)len, f) : 0;
    fclose(f);
    text[got] = '\0';
    int cap_e = 0;

    /* the last line seals everything before it */
    char *endl = NULL;
    for (char *p = strstr(text, "\nend "); p; p = strstr(p + 1, "\nend ")) endl = p;
    if (!endl) BAD("field 'end': missing (truncated manifest)");
    uint64_t want = strtoull(endl + 5, NULL, 16);
    uint64_t have = herd_xxh64(text, (size_t)(endl + 1 - text), 0);
    if (want != have)
        BAD("field 'end': checksum %016" PRIx64 " does not match the content (%016" PRIx64 ")",
            want, have);

    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    if (!line || strcmp(line, HERD_CKPT_FORMAT)) BAD("first line: not '%s'", HERD_CKPT_FORMAT);
    m->world = -1;
    m->step = -1;
    while ((line = strtok_r(NULL, "\n", &save))) {
        if (!strncmp(line, "step ", 5)) {
            m->step = strtoll(line + 5, NULL, 10);
        } else if (!strncmp(line, "world ", 6)) {
            m->world = atoi(line + 6);
            if (m->world < 1 || m->world > 1 << 24) BAD("field 'world': %d out of range", m->world);
            m->shards = calloc((size_t)m->world, sizeof *m->shards);
        } else if (!strncmp(line, "shard ", 6)) {
            int r;
            ckpt_shard s = {0};
            if (!m->shards || sscanf(line + 6, "%d %31s %" SCNd64 " %" SCNx64, &r, s.file, &s.size,
                                     &s.xxh64) != 4 || r < 0 || r >= m->world)
                BAD("field 'shard': bad line '%s'", line);
            m->shards[r] = s;
        } else if (!strncmp(line, "slice ", 6)) {
            if (m->n_ents == cap_e) {
                cap_e = cap_e ? 2 * cap_e : 64;
                m->ents = realloc(m->ents, (size_t)cap_e * sizeof *m->ents);
            }
            ckpt_entry *e = &m->ents[m->n_ents];
            memset(e, 0, sizeof *e);
            if (sscanf(line + 6, "%d %15s %d %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64
                       " %" SCNd64 " %95s", &e->rank, e->kind, &e->ndim, &e->global_shape[0],
                       &e->global_shape[1], &e->offset[0], &e->offset[1], &e->shape[0], &e->shape[1],
                       e->name) != 10 || e->rank < 0 || e->rank >= m->world || e->ndim < 1 || e->ndim > 2)
                BAD("field 'slice': bad line '%s'", line);
            m->n_ents++;
        } else if (!strncmp(line, "end ", 4)) {
            break;
        } else {
            BAD("unknown line '%s'", line);
        }
    }
    if (m->step < 0) BAD("field 'step': missing");
    if (m->world < 1) BAD("field 'world': missing");
    for (int r = 0; r < m->world; r++)
        if (!m->shards[r].file[0]) BAD("field 'shard': rank %d missing", r);
    free(text);
    return 0;
fail:
    free(text);
    ckpt_manifest_free(m);
    return -1;
}

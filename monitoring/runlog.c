/* runlog.c — a reader for flat JSON Lines metrics (see runlog.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "monitoring/runlog.h"

#define MAX_KEYS 64

typedef struct {
    char   key[48];
    char   str[64]; /* string values (only "event" is used) */
    double num;
    int    is_str;
} kv;

/* parse one flat object into kvs; NULL on success, else what is wrong */
static const char *parse_line(const char *p, kv *kvs, int *n)
{
    *n = 0;
    while (*p == ' ' || *p == '\t') p++;
    if (*p++ != '{') return "not a JSON object";
    for (;;) {
        while (*p == ' ') p++;
        if (*p == '}' && *n == 0) return NULL;
        if (*p++ != '"') return "expected a \"key\"";
        if (*n == MAX_KEYS) return "too many keys";
        kv *e = &kvs[(*n)++];
        size_t k = 0;
        while (*p && *p != '"') {
            if (k + 1 < sizeof e->key) e->key[k++] = *p;
            p++;
        }
        e->key[k] = '\0';
        if (*p++ != '"') return "unterminated key";
        while (*p == ' ') p++;
        if (*p++ != ':') return "expected ':'";
        while (*p == ' ') p++;
        e->is_str = 0;
        if (*p == '"') {
            size_t s = 0;
            p++;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1]) p++;
                if (s + 1 < sizeof e->str) e->str[s++] = *p;
                p++;
            }
            e->str[s] = '\0';
            if (*p++ != '"') return "unterminated string";
            e->is_str = 1;
        } else if (!strncmp(p, "true", 4) || !strncmp(p, "null", 4)) {
            e->num = *p == 't' ? 1 : NAN, p += 4;
        } else if (!strncmp(p, "false", 5)) {
            e->num = 0, p += 5;
        } else {
            char *end;
            errno = 0;
            e->num = strtod(p, &end);
            if (end == p) return "a value is not a number, string or literal";
            p = end;
        }
        while (*p == ' ') p++;
        if (*p == '}') break;
        if (*p++ != ',') return "expected ',' or '}'";
    }
    p++;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    return *p ? "text after the object" : NULL;
}

static const kv *find(const kv *kvs, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(kvs[i].key, key)) return &kvs[i];
    return NULL;
}

/* a numeric field; -1 (and `missing` names it) when absent or a string */
static int num(const kv *kvs, int n, const char *key, double *out, const char **missing)
{
    const kv *e = find(kvs, n, key);
    if (!e || e->is_str) {
        if (!*missing) *missing = key;
        return -1;
    }
    *out = e->num;
    return 0;
}

static int grow(void **a, int n, size_t elem)
{
    if (n & (n - 1) && n) return 0; /* capacity doubles at powers of two */
    void *b = realloc(*a, elem * (size_t)(n ? 2 * n : 16));
    if (!b) return -1;
    *a = b;
    return 0;
}

int herd_runlog_read(herd_runlog *log, const char *path)
{
    memset(log, 0, sizeof *log);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "herd: %s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    kv kvs[MAX_KEYS];
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        if (line[strspn(line, " \t\r\n")] == '\0') continue;
        int n;
        const char *why = parse_line(line, kvs, &n), *missing = NULL;
        if (why) {
            fprintf(stderr, "herd: %s:%d: %s\n", path, lineno, why);
            rc = -1;
            break;
        }
        const kv *ev = find(kvs, n, "event");
        double v = 0;
        if (ev) {
            herd_runlog_event e = {0};
            if (!ev->is_str || (strcmp(ev->str, "restart") && strcmp(ev->str, "checkpoint"))) {
                fprintf(stderr, "herd: %s:%d: field 'event': unknown event '%s'\n", path, lineno,
                        ev->is_str ? ev->str : "(a number)");
                rc = -1;
                break;
            }
            e.kind = !strcmp(ev->str, "restart") ? HERD_EVENT_RESTART : HERD_EVENT_CHECKPOINT;
            num(kvs, n, "step", &v, &missing), e.step = (int64_t)v;
            num(kvs, n, "time", &e.time, &missing);
            if (e.kind == HERD_EVENT_CHECKPOINT) {
                num(kvs, n, "stall_s", &e.stall_s, &missing);
                num(kvs, n, "write_s", &e.write_s, &missing);
            } else {
                num(kvs, n, "restarts", &v, &missing), e.restarts = (int64_t)v;
            }
            if (!missing && grow((void **)&log->events, log->n_events, sizeof e) == 0)
                log->events[log->n_events++] = e;
        } else if (find(kvs, n, "val_loss")) {
            herd_runlog_val e = {0};
            num(kvs, n, "step", &v, &missing), e.step = (int64_t)v;
            num(kvs, n, "val_loss", &e.val_loss, &missing);
            if (!missing && grow((void **)&log->vals, log->n_vals, sizeof e) == 0)
                log->vals[log->n_vals++] = e;
        } else {
            herd_runlog_step e = {0};
            num(kvs, n, "step", &v, &missing), e.step = (int64_t)v;
            num(kvs, n, "tokens_seen", &v, &missing), e.tokens_seen = (int64_t)v;
            num(kvs, n, "batch_tokens", &v, &missing), e.batch_tokens = (int64_t)v;
            num(kvs, n, "loss", &e.loss, &missing);
            num(kvs, n, "lr", &e.lr, &missing);
            num(kvs, n, "grad_norm", &e.grad_norm, &missing);
            num(kvs, n, "step_seconds", &e.step_seconds, &missing);
            num(kvs, n, "tokens_per_second", &e.tokens_per_second, &missing);
            num(kvs, n, "mfu", &e.mfu, &missing);
            const char *no_part = NULL;
            e.has_times = 1;
            for (int p = 0; p < HERD_T_COUNT; p++) {
                char key[32];
                snprintf(key, sizeof key, "%s_s", herd_timer_part_name(p));
                if (num(kvs, n, key, &e.parts[p], &no_part)) e.has_times = 0;
            }
            if (!missing && grow((void **)&log->steps, log->n_steps, sizeof e) == 0)
                log->steps[log->n_steps++] = e;
        }
        if (missing) {
            fprintf(stderr, "herd: %s:%d: field '%s': missing or not a number\n", path, lineno, missing);
            rc = -1;
            break;
        }
    }
    free(line);
    fclose(f);
    if (rc == 0 && log->n_steps == 0) {
        fprintf(stderr, "herd: %s: no step lines (is it a herd metrics.jsonl?)\n", path);
        rc = -1;
    }
    if (rc) herd_runlog_free(log);
    return rc;
}

void herd_runlog_free(herd_runlog *log)
{
    free(log->steps); free(log->vals); free(log->events);
    memset(log, 0, sizeof *log);
}

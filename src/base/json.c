/* json.c — recursive-descent JSON parser (see json.h). Depth is bounded so
 * that a hostile line cannot overflow the stack. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/base/json.h"

enum { MAX_DEPTH = 64 };

typedef struct {
    const char *s;
    size_t n, i;
    char *err;
    size_t errlen;
} parser;

static int fail(parser *p, const char *what)
{
    snprintf(p->err, p->errlen, "offset %zu: %s", p->i, what);
    return -1;
}

static void skip_ws(parser *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
                           p->s[p->i] == '\r'))
        p->i++;
}

static int hex4(parser *p, unsigned *out)
{
    if (p->i + 4 > p->n) return fail(p, "truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p->s[p->i++];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return fail(p, "bad hex digit in \\u escape");
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 63));
        o[2] = (char)(0x80 | (cp & 63)); return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 63));
    o[2] = (char)(0x80 | ((cp >> 6) & 63)); o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

/* p->s[p->i] == '"'. The decoded string is never longer than the source. */
static int parse_string(parser *p, char **out, size_t *len)
{
    p->i++;
    size_t start = p->i, end = start;
    while (end < p->n && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->n) return fail(p, "unterminated string");
    char *o = malloc(end - start + 1);
    size_t k = 0;
    while (p->i < end) {
        unsigned char c = (unsigned char)p->s[p->i++];
        if (c < 0x20) { free(o); p->i--; return fail(p, "control character in string"); }
        if (c != '\\') { o[k++] = (char)c; continue; }
        char e = p->s[p->i++];
        switch (e) {
        case '"': o[k++] = '"'; break;
        case '\\': o[k++] = '\\'; break;
        case '/': o[k++] = '/'; break;
        case 'b': o[k++] = '\b'; break;
        case 'f': o[k++] = '\f'; break;
        case 'n': o[k++] = '\n'; break;
        case 'r': o[k++] = '\r'; break;
        case 't': o[k++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (hex4(p, &cp)) { free(o); return -1; }
            if (cp >= 0xD800 && cp < 0xDC00 && p->i + 6 <= end && p->s[p->i] == '\\' &&
                p->s[p->i + 1] == 'u') {
                unsigned lo;
                p->i += 2;
                if (hex4(p, &lo)) { free(o); return -1; }
                if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                else { k += put_utf8(o + k, 0xFFFD); cp = lo; }
            }
            if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD; /* lone surrogate */
            k += put_utf8(o + k, cp);
            break;
        }
        default: free(o); return fail(p, "bad escape in string");
        }
    }
    p->i = end + 1;
    o[k] = 0;
    *out = o;
    *len = k;
    return 0;
}

static int parse_value(parser *p, herd_json *j, int depth);

static int push(herd_json *j, herd_json *child, char *key)
{
    if ((j->len & (j->len - 1)) == 0) { /* grow at powers of two */
        size_t cap = j->len ? 2 * j->len : 1;
        j->items = realloc(j->items, cap * sizeof *j->items);
        if (j->type == HERD_JSON_OBJ) j->keys = realloc(j->keys, cap * sizeof *j->keys);
    }
    j->items[j->len] = *child;
    if (j->type == HERD_JSON_OBJ) j->keys[j->len] = key;
    j->len++;
    return 0;
}

static int parse_container(parser *p, herd_json *j, int depth)
{
    int obj = p->s[p->i] == '{';
    char close = obj ? '}' : ']';
    j->type = obj ? HERD_JSON_OBJ : HERD_JSON_ARR;
    p->i++;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == close) { p->i++; return 0; }
    for (;;) {
        char *key = NULL;
        size_t klen;
        skip_ws(p);
        if (obj) {
            if (p->i >= p->n || p->s[p->i] != '"') return fail(p, "expected a string key");
            if (parse_string(p, &key, &klen)) return -1;
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') { free(key); return fail(p, "expected ':'"); }
            p->i++;
        }
        herd_json child;
        if (parse_value(p, &child, depth + 1)) { herd_json_free(&child); free(key); return -1; }
        push(j, &child, key);
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
        if (p->i < p->n && p->s[p->i] == close) { p->i++; return 0; }
        return fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int parse_value(parser *p, herd_json *j, int depth)
{
    memset(j, 0, sizeof *j);
    if (depth > MAX_DEPTH) return fail(p, "nesting too deep");
    skip_ws(p);
    if (p->i >= p->n) return fail(p, "unexpected end of input");
    char c = p->s[p->i];
    if (c == '{' || c == '[') return parse_container(p, j, depth);
    if (c == '"') { j->type = HERD_JSON_STR; return parse_string(p, &j->str, &j->len); }
    static const struct { const char *w; herd_json_type t; double v; } lit[] = {
        {"true", HERD_JSON_BOOL, 1}, {"false", HERD_JSON_BOOL, 0}, {"null", HERD_JSON_NULL, 0}};
    for (int k = 0; k < 3; k++) {
        size_t l = strlen(lit[k].w);
        if (p->n - p->i >= l && !memcmp(p->s + p->i, lit[k].w, l)) {
            j->type = lit[k].t;
            j->num = lit[k].v;
            p->i += l;
            return 0;
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        char buf[64];
        size_t k = 0;
        while (p->i < p->n && k < sizeof buf - 1 && strchr("+-.eE0123456789", p->s[p->i]))
            buf[k++] = p->s[p->i++];
        buf[k] = 0;
        char *endp;
        j->type = HERD_JSON_NUM;
        j->num = strtod(buf, &endp);
        if (*endp) return fail(p, "bad number");
        return 0;
    }
    return fail(p, "unexpected character");
}

int herd_json_parse(herd_json *out, const char *s, size_t n, char *err, size_t errlen)
{
    parser p = {s, n, 0, err, errlen};
    if (parse_value(&p, out, 0)) { herd_json_free(out); return -1; }
    skip_ws(&p);
    if (p.i != n) { herd_json_free(out); return fail(&p, "trailing characters after the value"); }
    return 0;
}

void herd_json_free(herd_json *j)
{
    if (!j) return;
    for (size_t k = 0; k < j->len && j->items; k++) {
        herd_json_free(&j->items[k]);
        if (j->keys) free(j->keys[k]);
    }
    free(j->items);
    free(j->keys);
    free(j->str);
    memset(j, 0, sizeof *j);
}

const herd_json *herd_json_get(const herd_json *j, const char *key)
{
    if (!j || j->type != HERD_JSON_OBJ) return NULL;
    for (size_t k = 0; k < j->len; k++)
        if (!strcmp(j->keys[k], key)) return &j->items[k];
    return NULL;
}

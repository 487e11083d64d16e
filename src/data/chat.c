/* chat.c — chat format, data files and packing (see chat.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "src/data/chat.h"

static const char *const role_names[HERD_N_ROLES] = {"system", "user", "assistant", "ipython"};

int herd_chat_role_parse(const char *name)
{
    for (int r = 0; r < HERD_N_ROLES; r++)
        if (!strcmp(name, role_names[r])) return r;
    return -1;
}

const char *herd_chat_role_name(herd_chat_role r)
{
    return r < HERD_N_ROLES ? role_names[r] : "?";
}

int herd_chat_from_json(herd_chat *c, const herd_json *msgs, const char *where, const char *field)
{
    memset(c, 0, sizeof *c);
    if (!msgs || msgs->type != HERD_JSON_ARR || msgs->len == 0) {
        fprintf(stderr, "herd: %s: %s: expected a non-empty array of messages\n", where, field);
        return -1;
    }
    c->msgs = calloc(msgs->len, sizeof *c->msgs);
    for (size_t i = 0; i < msgs->len; i++) {
        const herd_json *role = herd_json_get(&msgs->items[i], "role");
        const herd_json *content = herd_json_get(&msgs->items[i], "content");
        if (!role || role->type != HERD_JSON_STR) {
            fprintf(stderr, "herd: %s: %s[%zu].role: missing or not a string\n", where, field, i);
            herd_chat_free(c);
            return -1;
        }
        int r = herd_chat_role_parse(role->str);
        if (r < 0) {
            fprintf(stderr, "herd: %s: %s[%zu].role: unknown role '%s' (system, user, assistant, "
                    "ipython)\n", where, field, i, role->str);
            herd_chat_free(c);
            return -1;
        }
        if (!content || content->type != HERD_JSON_STR) {
            fprintf(stderr, "herd: %s: %s[%zu].content: missing or not a string\n", where, field, i);
            herd_chat_free(c);
            return -1;
        }
        herd_chat_msg *m = &c->msgs[c->n++];
        m->role = (herd_chat_role)r;
        m->len = content->len;
        m->content = malloc(m->len + 1);
        memcpy(m->content, content->str, m->len + 1);
    }
    return 0;
}

void herd_chat_free(herd_chat *c)
{
    for (int i = 0; i < c->n; i++) free(c->msgs[i].content);
    free(c->msgs);
    memset(c, 0, sizeof *c);
}

int herd_chat_tokens_push(herd_chat_tokens *o, uint32_t id, uint8_t mask)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 64;
        uint32_t *ids = realloc(o->ids, cap * sizeof *ids);
        if (!ids) return -1;
        o->ids = ids;
        uint8_t *mk = realloc(o->mask, cap);
        if (!mk) return -1;
        o->mask = mk;
        o->cap = cap;
    }
    o->ids[o->n] = id;
    o->mask[o->n++] = mask;
    return 0;
}

void herd_chat_tokens_free(herd_chat_tokens *o)
{
    free(o->ids);
    free(o->mask);
    memset(o, 0, sizeof *o);
}

/* Append the tokens of text (no special tokens: a message cannot forge a header). */
static int push_text(const herd_tokenizer *t, const char *s, size_t n, uint8_t mask,
                     herd_chat_tokens *o)
{
    herd_ids ids = {0};
    if (herd_tokenizer_encode(t, (const unsigned char *)s, n, 0, &ids)) return -1;
    int rc = 0;
    for (size_t i = 0; i < ids.n && rc == 0; i++) rc = herd_chat_tokens_push(o, ids.ids[i], mask);
    free(ids.ids);
    return rc;
}

static int push_header(const herd_tokenizer *t, const char *role, herd_chat_tokens *o)
{
    int n0 = herd_tokenizer_n_regular(t);
    return herd_chat_tokens_push(o, (uint32_t)(n0 + HERD_TOK_START_HEADER), 0) ||
           push_text(t, role, strlen(role), 0, o) ||
           herd_chat_tokens_push(o, (uint32_t)(n0 + HERD_TOK_END_HEADER), 0) ||
           push_text(t, "\n\n", 2, 0, o);
}

/* Length of the UTF-8 white-space character at s[0..n) as Python's str.isspace
 * has it (what Jinja's trim strips), 0 if s does not start with one. */
static size_t space_len(const unsigned char *s, size_t n)
{
    if (s[0] == ' ' || (s[0] >= 0x09 && s[0] <= 0x0d) || (s[0] >= 0x1c && s[0] <= 0x1f)) return 1;
    if (n >= 2 && s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0)) return 2;
    if (n < 3) return 0;
    unsigned c = (unsigned)(s[0] & 0x0f) << 12 | (unsigned)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
    if ((s[0] & 0xf0) != 0xe0 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) return 0;
    return c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
                   c == 0x202f || c == 0x205f || c == 0x3000 ? 3 : 0;
}

/* Jinja's trim: *s and the returned length without leading and trailing white space. */
static size_t trim(const char **s, size_t n)
{
    const unsigned char *p = (const unsigned char *)*s;
    size_t l;
    while (n && (l = space_len(p, n))) p += l, n -= l;
    for (;;) { /* the last character: step back over UTF-8 continuation bytes */
        size_t k = n;
        while (k && (p[k - 1] & 0xc0) == 0x80 && n - k < 3) k--;
        if (!k) break;
        k--;
        if (!(l = space_len(p + k, n - k)) || k + l != n) break;
        n = k;
    }
    *s = (const char *)p;
    return n;
}

int herd_chat_encode_response(const herd_tokenizer *t, const char *text, size_t len,
                              herd_chat_tokens *out)
{
    len = trim(&text, len);
    return push_text(t, text, len, HERD_MASK_CONTENT, out) ||
           herd_chat_tokens_push(out, (uint32_t)(herd_tokenizer_n_regular(t) + HERD_TOK_EOT_ID),
                                 HERD_MASK_EOT);
}

/* A growing byte string. */
typedef struct { char *b; size_t n, cap; } sbuf;

static int sbuf_put(sbuf *o, const char *s, size_t n)
{
    if (o->n + n + 1 > o->cap) {
        size_t cap = (o->n + n + 1) * 2;
        char *b = realloc(o->b, cap);
        if (!b) return -1;
        o->b = b, o->cap = cap;
    }
    memcpy(o->b + o->n, s, n);
    o->n += n;
    return 0;
}

/* s as a JSON string, as the template's tojson writes it (json.dumps,
 * ensure_ascii=False): quotes, \" \\ \n \r \t \b \f, other controls as \u00XX. */
static int sbuf_json(sbuf *o, const char *s, size_t n)
{
    if (sbuf_put(o, "\"", 1)) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *e = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                      : c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
        char u[8];
        if (!e && c < 0x20) snprintf(u, sizeof u, "\\u%04x", c), e = u;
        if (e ? sbuf_put(o, e, strlen(e)) : sbuf_put(o, s + i, 1)) return -1;
    }
    return sbuf_put(o, "\"", 1);
}

/* Llama 3.1's system turn: the date lines, then the first message's content
 * when it is a system message (*used = 1). One text, as the template renders it. */
static int push_system31(const herd_tokenizer *t, const herd_chat *c, int *used, herd_chat_tokens *o)
{
    static const char head[] = "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n";
    sbuf b = {0};
    int rc = sbuf_put(&b, head, sizeof head - 1);
    *used = c->n > 0 && c->msgs[0].role == HERD_ROLE_SYSTEM;
    if (*used && !rc) {
        const char *s = c->msgs[0].content;
        size_t n = trim(&s, c->msgs[0].len);
        rc = sbuf_put(&b, s, n);
    }
    rc = rc || push_header(t, "system", o) || push_text(t, b.b, b.n, 0, o) ||
         herd_chat_tokens_push(o, (uint32_t)(herd_tokenizer_n_regular(t) + HERD_TOK_EOT_ID), 0);
    free(b.b);
    return rc ? -1 : 0;
}

/* A message that is not the assistant's: its trimmed content (Llama 3.1's
 * ipython messages: the content as a JSON string, untrimmed), then <|eot_id|>. */
static int push_other(const herd_tokenizer *t, const herd_chat_msg *m, herd_chat_tokens *o)
{
    int rc;
    if (m->role == HERD_ROLE_IPYTHON && herd_tokenizer_chat_template(t) == HERD_CHAT_LLAMA31) {
        sbuf b = {0};
        rc = sbuf_json(&b, m->content, m->len) || push_text(t, b.b, b.n, 0, o);
        free(b.b);
    } else {
        const char *s = m->content;
        size_t n = trim(&s, m->len);
        rc = push_text(t, s, n, 0, o);
    }
    return rc || herd_chat_tokens_push(o, (uint32_t)(herd_tokenizer_n_regular(t) + HERD_TOK_EOT_ID), 0)
               ? -1 : 0;
}

int herd_chat_encode(const herd_tokenizer *t, const herd_chat *c, int bos, int gen_prompt,
                     herd_chat_tokens *out)
{
    int n0 = herd_tokenizer_n_regular(t), first = 0;
    if (bos && herd_chat_tokens_push(out, (uint32_t)(n0 + HERD_TOK_BOS), 0)) return -1;
    if (herd_tokenizer_chat_template(t) == HERD_CHAT_LLAMA31 && push_system31(t, c, &first, out))
        return -1;
    for (int i = first; i < c->n; i++) {
        const herd_chat_msg *m = &c->msgs[i];
        if (push_header(t, role_names[m->role], out)) return -1;
        if (m->role == HERD_ROLE_ASSISTANT ? herd_chat_encode_response(t, m->content, m->len, out)
                                           : push_other(t, m, out))
            return -1;
    }
    if (gen_prompt && push_header(t, "assistant", out)) return -1;
    return 0;
}

/* ---- files ---------------------------------------------------------------- */

/* Call fn on each non-blank line's JSON object. -1 on a read error, bad JSON
 * or when fn fails. */
static int each_line(const char *path, int (*fn)(void *, const herd_json *, const char *), void *arg)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        fprintf(stderr, "herd: %s: cannot open the data file\n", path);
        return -1;
    }
    char *line = NULL, where[4200], err[160];
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t k = 0;
        while (k < (size_t)len && strchr(" \t\r\n", line[k])) k++;
        if (k == (size_t)len) continue;
        snprintf(where, sizeof where, "%s:%ld", path, lineno);
        herd_json j;
        if (herd_json_parse(&j, line, (size_t)len, err, sizeof err)) {
            fprintf(stderr, "herd: %s: not a JSON object: %s\n", where, err);
            rc = -1;
            break;
        }
        if (j.type != HERD_JSON_OBJ) {
            fprintf(stderr, "herd: %s: expected a JSON object\n", where);
            rc = -1;
        } else {
            rc = fn(arg, &j, where);
        }
        herd_json_free(&j);
    }
    free(line);
    fclose(f);
    return rc;
}

typedef struct {
    const herd_tokenizer *t;
    int max_len;
    herd_sft_data *d;
} sft_ctx;

static int sft_line(void *arg, const herd_json *j, const char *where)
{
    sft_ctx *x = arg;
    herd_chat c;
    x->d->stats.lines++;
    if (herd_chat_from_json(&c, herd_json_get(j, "messages"), where, "messages")) return -1;
    herd_chat_tokens tk = {0};
    int rc = herd_chat_encode(x->t, &c, 1, 0, &tk);
    herd_chat_free(&c);
    if (rc) {
        herd_chat_tokens_free(&tk);
        return -1;
    }
    if ((int64_t)tk.n > x->max_len) {
        x->d->stats.skipped_long++;
        herd_chat_tokens_free(&tk);
        return 0;
    }
    x->d->convs = realloc(x->d->convs, sizeof *x->d->convs * (size_t)(x->d->n + 1));
    x->d->convs[x->d->n++] = tk;
    x->d->stats.kept++;
    return 0;
}

int herd_sft_data_load(herd_sft_data *d, const char *path, const herd_tokenizer *t, int max_len)
{
    memset(d, 0, sizeof *d);
    sft_ctx x = {t, max_len, d};
    if (each_line(path, sft_line, &x)) {
        herd_sft_data_free(d);
        return -1;
    }
    return 0;
}

void herd_sft_data_free(herd_sft_data *d)
{
    for (int i = 0; i < d->n; i++) herd_chat_tokens_free(&d->convs[i]);
    free(d->convs);
    memset(d, 0, sizeof *d);
}

typedef struct {
    herd_chat *c;
    int n;
} chats_ctx;

static int chats_line(void *arg, const herd_json *j, const char *where)
{
    chats_ctx *x = arg;
    herd_chat c;
    if (herd_chat_from_json(&c, herd_json_get(j, "messages"), where, "messages")) return -1;
    x->c = realloc(x->c, sizeof *x->c * (size_t)(x->n + 1));
    x->c[x->n++] = c;
    return 0;
}

int herd_chat_load_jsonl(const char *path, herd_chat **out, int *n)
{
    chats_ctx x = {NULL, 0};
    int rc = each_line(path, chats_line, &x);
    if (rc) {
        for (int i = 0; i < x.n; i++) herd_chat_free(&x.c[i]);
        free(x.c);
        x.c = NULL;
        x.n = 0;
    }
    *out = x.c;
    *n = x.n;
    return rc;
}

typedef struct {
    const herd_tokenizer *t;
    int max_len;
    herd_pref_data *d;
} pref_ctx;

static int str_field(const herd_json *j, const char *key, const char *where, const herd_json **out,
                     int required)
{
    *out = herd_json_get(j, key);
    if (!*out && !required) return 0;
    if (!*out || (*out)->type != HERD_JSON_STR) {
        fprintf(stderr, "herd: %s: %s: missing or not a string\n", where, key);
        return -1;
    }
    return 0;
}

static int pref_line(void *arg, const herd_json *j, const char *where)
{
    pref_ctx *x = arg;
    x->d->stats.lines++;
    const herd_json *texts[16];
    int n = 0;
    const herd_json *resps = herd_json_get(j, "responses");
    if (resps) {
        if (resps->type != HERD_JSON_ARR || resps->len < 2 || resps->len > 16) {
            fprintf(stderr, "herd: %s: responses: expected an array of 2 to 16 strings\n", where);
            return -1;
        }
        for (size_t i = 0; i < resps->len; i++) {
            if (resps->items[i].type != HERD_JSON_STR) {
                fprintf(stderr, "herd: %s: responses[%zu]: not a string\n", where, i);
                return -1;
            }
            texts[n++] = &resps->items[i];
        }
    } else {
        const herd_json *e, *c, *r;
        if (str_field(j, "edited", where, &e, 0) || str_field(j, "chosen", where, &c, 1) ||
            str_field(j, "rejected", where, &r, 1))
            return -1;
        if (e) texts[n++] = e;
        texts[n++] = c;
        texts[n++] = r;
    }
    /* drop a response identical to a better one: it carries no preference */
    int m = 0;
    for (int i = 0; i < n; i++) {
        int dup = 0;
        for (int k = 0; k < m; k++)
            dup |= texts[k]->len == texts[i]->len && !memcmp(texts[k]->str, texts[i]->str, texts[i]->len);
        if (!dup) texts[m++] = texts[i];
    }
    if (m < 2) {
        x->d->stats.skipped_same++;
        return 0;
    }
    herd_chat c;
    if (herd_chat_from_json(&c, herd_json_get(j, "prompt"), where, "prompt")) return -1;
    herd_pref p = {0};
    int rc = herd_chat_encode(x->t, &c, 1, 1, &p.prompt);
    herd_chat_free(&c);
    p.resp = calloc((size_t)m, sizeof *p.resp);
    p.n_resp = m;
    size_t longest = 0;
    for (int i = 0; i < m && rc == 0; i++) {
        rc = herd_chat_encode_response(x->t, texts[i]->str, texts[i]->len, &p.resp[i]);
        if (p.resp[i].n > longest) longest = p.resp[i].n;
    }
    if (rc == 0 && (int64_t)(p.prompt.n + longest) > x->max_len) {
        x->d->stats.skipped_long++;
        rc = 1;
    }
    if (rc) {
        herd_chat_tokens_free(&p.prompt);
        for (int i = 0; i < m; i++) herd_chat_tokens_free(&p.resp[i]);
        free(p.resp);
        return rc > 0 ? 0 : -1;
    }
    x->d->items = realloc(x->d->items, sizeof *x->d->items * (size_t)(x->d->n + 1));
    x->d->items[x->d->n++] = p;
    x->d->stats.kept++;
    return 0;
}

int herd_pref_data_load(herd_pref_data *d, const char *path, const herd_tokenizer *t, int max_len)
{
    memset(d, 0, sizeof *d);
    pref_ctx x = {t, max_len, d};
    if (each_line(path, pref_line, &x)) {
        herd_pref_data_free(d);
        return -1;
    }
    return 0;
}

void herd_pref_data_free(herd_pref_data *d)
{
    for (int i = 0; i < d->n; i++) {
        herd_chat_tokens_free(&d->items[i].prompt);
        for (int k = 0; k < d->items[i].n_resp; k++) herd_chat_tokens_free(&d->items[i].resp[k]);
        free(d->items[i].resp);
    }
    free(d->items);
    memset(d, 0, sizeof *d);
}

/* ---- batches -------------------------------------------------------------- */

int herd_chat_pack(const herd_chat_tokens *convs, int n, int *next, int B, int T, int max_mask,
                   int32_t *tokens, int32_t *targets, int32_t *doc)
{
    int placed = 0;
    for (int b = 0; b < B; b++) {
        int t = 0, d = 0;
        /* at least one conversation per row; every conversation fits (load skips longer ones) */
        while (n > 0 && placed < n && (int)convs[*next].n <= T - t) {
            const herd_chat_tokens *c = &convs[*next];
            for (size_t i = 0; i < c->n; i++, t++) {
                int j = b * T + t;
                tokens[j] = (int32_t)c->ids[i];
                targets[j] = i + 1 < c->n && c->mask[i + 1] && c->mask[i + 1] <= max_mask
                                 ? (int32_t)c->ids[i + 1] : -1;
                doc[j] = d;
            }
            d++;
            placed++;
            *next = (*next + 1) % n;
        }
        for (; t < T; t++) { /* padding: its own document, nothing to learn */
            tokens[b * T + t] = 0;
            targets[b * T + t] = -1;
            doc[b * T + t] = d;
        }
    }
    return placed;
}

int herd_chat_row(const herd_chat_tokens *prompt, const herd_chat_tokens *resp, int T, int max_mask,
                  int32_t *tokens, int32_t *targets, int32_t *doc)
{
    int n = (int)(prompt->n + resp->n);
    if (n > T) return -1;
    for (int t = 0; t < T; t++) {
        int real = t < n;
        uint32_t id = !real ? 0 : t < (int)prompt->n ? prompt->ids[t] : resp->ids[t - prompt->n];
        tokens[t] = (int32_t)id;
        doc[t] = real ? 0 : 1;
        targets[t] = -1;
        int u = t + 1 - (int)prompt->n; /* index of the next token inside the response */
        if (t + 1 < n && u >= 0 && resp->mask[u] && resp->mask[u] <= max_mask)
            targets[t] = (int32_t)resp->ids[u];
    }
    return n - 1;
}

/* slurm_topo.c — Slurm's view of the network: hostlists and topology.conf.
 *
 * topology.conf (topology/tree plugin) is a list of lines
 *     SwitchName=leaf1 Nodes=node[1-2]            (a leaf switch: nodes below)
 *     SwitchName=spine Switches=leaf[1-2]          (a switch above switches)
 * with optional LinkSpeed=N (ignored: bandwidths come from the links file,
 * because Slurm's LinkSpeed has no unit and is used only as a relative weight).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "topology/topo_internal.h"

typedef struct {
    char **v;
    int    n, cap;
} strvec;

static int strvec_push(strvec *s, const char *str, size_t len)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        char **v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v) {
            fprintf(stderr, "herd topo: out of memory expanding a hostlist\n");
            return -1;
        }
        s->v = v;
        s->cap = cap;
    }
    char *c = malloc(len + 1);
    if (!c) {
        fprintf(stderr, "herd topo: out of memory expanding a hostlist\n");
        return -1;
    }
    memcpy(c, str, len);
    c[len] = '\0';
    s->v[s->n++] = c;
    return 0;
}

void herd_topo_names_free(char **names, int n)
{
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* One number of a range: digits only, at most 18 of them (so that neither
 * the number nor one more overflows); *width = its digit count. */
static int parse_index(const char **p, const char *end, unsigned long long *v, int *width)
{
    const char *q = *p;
    unsigned long long x = 0;
    while (q < end && isdigit((unsigned char)*q)) {
        if (q - *p == 18) return -1;
        x = 10 * x + (unsigned long long)(*q - '0');
        q++;
    }
    if (q == *p) return -1;
    *width = (int)(q - *p);
    *v = x;
    *p = q;
    return 0;
}

/* The ranges "1-3,07" between '[' (lb) and ']' (rb): parsed one at a time
 * from *p; 1 with one range, 0 at the end, -1 if malformed. */
static int next_range(const char **p, const char *rb, unsigned long long *lo, unsigned long long *hi, int *width)
{
    if (*p >= rb) return 0;
    int w2;
    if (parse_index(p, rb, lo, width)) return -1;
    *hi = *lo;
    if (*p < rb && **p == '-') {
        (*p)++;
        if (parse_index(p, rb, hi, &w2)) return -1;
    }
    if (*hi < *lo || (*p < rb && **p != ',')) return -1;
    if (*p < rb) {
        (*p)++;
        if (*p == rb) return -1; /* a trailing comma */
    }
    return 1;
}

/* How many names a term gives (the product of its groups' sizes), capped at
 * max + 1; -1 if a group is malformed. */
static long long term_count(const char *term, size_t len, long long max)
{
    const char *p = term, *end = term + len;
    long long count = 1;
    const char *lb;
    while ((lb = memchr(p, '[', (size_t)(end - p)))) {
        const char *rb = memchr(lb, ']', (size_t)(end - lb));
        if (!rb || memchr(lb + 1, '[', (size_t)(rb - lb - 1))) return -1;
        const char *q = lb + 1;
        unsigned long long lo, hi, group = 0;
        int width, r;
        if (q == rb) return -1;
        while ((r = next_range(&q, rb, &lo, &hi, &width)) == 1) {
            group += hi - lo + 1;       /* < 2^60 per range: no overflow */
            if (group > (unsigned long long)max) group = (unsigned long long)max + 1;
        }
        if (r < 0) return -1;
        count = group > (unsigned long long)(max + 1) / (unsigned long long)count ? max + 1
                                                                                   : count * (long long)group;
        if (count > max) count = max + 1;
        p = rb + 1;
    }
    return memchr(p, ']', (size_t)(end - p)) ? -1 : count;
}

/* Expand one term (no top-level comma): the first [..] group, then recurse on
 * the rest, so that "r[1-2]n[1-2]" gives r1n1 r1n2 r2n1 r2n2 (Slurm's order).
 * term_count() has checked the syntax and the total. */
static int expand_term(const char *term, size_t len, const char *origin, strvec *out)
{
    const char *lb = memchr(term, '[', len);
    if (!lb) {
        if (len >= HERD_TOPO_NAME_MAX) {
            fprintf(stderr, "%s: host name '%.*s' longer than %d characters\n", origin, (int)len, term,
                    HERD_TOPO_NAME_MAX - 1);
            return -1;
        }
        return strvec_push(out, term, len);
    }
    const char *rb = memchr(lb, ']', len - (size_t)(lb - term));
    size_t pre = (size_t)(lb - term), post = len - (size_t)(rb + 1 - term);
    const char *p = lb + 1;
    unsigned long long lo, hi;
    int width;
    while (next_range(&p, rb, &lo, &hi, &width) == 1) {
        for (unsigned long long v = lo; v <= hi; v++) {
            char buf[2 * HERD_TOPO_NAME_MAX];
            int k = snprintf(buf, sizeof buf, "%.*s%0*llu%.*s", (int)pre, term, width, v, (int)post, rb + 1);
            if (k < 0 || (size_t)k >= sizeof buf) {
                fprintf(stderr, "%s: hostlist '%.*s': name longer than %d characters\n", origin, (int)len, term,
                        HERD_TOPO_NAME_MAX - 1);
                return -1;
            }
            if (expand_term(buf, (size_t)k, origin, out)) return -1;
        }
    }
    return 0;
}

/* Append the names of `list` to out, refusing to make out longer than `max`
 * (`scope`: what the limit counts, for the message). */
static int expand_list(const char *list, const char *origin, long long max, const char *scope, strvec *out)
{
    const char *p = list;
    while (*p) {
        const char *q = p;
        int depth = 0;
        while (*q && (depth || *q != ',')) {
            if (*q == '[') depth++;
            else if (*q == ']' && --depth < 0) break;
            q++;
        }
        if (depth) {
            fprintf(stderr, "%s: hostlist '%s': unbalanced '[' and ']'\n", origin, list);
            return -1;
        }
        if (q > p) {
            long long left = max - out->n, k = term_count(p, (size_t)(q - p), left);
            if (k < 0) {
                fprintf(stderr, "%s: hostlist '%s': bad range in [...] (expected [1-3,07])\n", origin, list);
                return -1;
            }
            if (k > left) {
                fprintf(stderr, "%s: hostlist '%s': more than %d names %s (herd's limit)\n", origin, list,
                        HERD_TOPO_MAX_NAMES, scope);
                return -1;
            }
            if (expand_term(p, (size_t)(q - p), origin, out)) return -1;
        }
        p = *q ? q + 1 : q;
    }
    return 0;
}

int herd_topo_hostlist_expand(const char *list, const char *origin, char ***names, int *n)
{
    strvec out = {0};
    if (expand_list(list, origin, HERD_TOPO_MAX_NAMES, "in one hostlist", &out)) {
        herd_topo_names_free(out.v, out.n);
        return -1;
    }
    *names = out.v;
    *n = out.n;
    return 0;
}

int herd_topo_host_match(const char *host, const char *name)
{
    size_t a = strcspn(host, "."), b = strcspn(name, ".");
    if (!strcmp(host, name)) return 1;
    return a == b && !strncmp(host, name, a);
}

/* Nodes= or Switches= of one line, within what the file may still name */
static int expand_field(const char *v, const char *origin, long long left, char ***names, int *n)
{
    strvec out = {0};
    if (expand_list(v, origin, left, "in one topology.conf (nodes and switches)", &out)) {
        herd_topo_names_free(out.v, out.n);
        return -1;
    }
    *names = out.v;
    *n = out.n;
    return 0;
}

void herd_topo_conf_free(herd_conf_switch *sw, int n)
{
    for (int i = 0; i < n; i++) {
        herd_topo_names_free(sw[i].nodes, sw[i].n_nodes);
        herd_topo_names_free(sw[i].switches, sw[i].n_switches);
    }
    free(sw);
}

typedef struct {
    const herd_conf_switch *sw;
    const char *name;
} name_ctx;

static int same_switch_name(int idx, const void *ctx)
{
    const name_ctx *c = ctx;
    return !strcmp(c->sw[idx].name, c->name);
}

int herd_topo_conf_parse(const char *path, herd_conf_switch **out, int *n_out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open topology file: %s\n", path, strerror(errno));
        return -1;
    }
    herd_conf_switch *sw = NULL;
    int n = 0, cap = 0, lineno = 0, rc = 0;
    long long total = 0; /* names in the file so far: bounded by HERD_TOPO_MAX_NAMES */
    herd_names seen = {0}; /* switch names so far */
    char *line = NULL;
    size_t linecap = 0;
    while (getline(&line, &linecap, f) > 0) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);
        if (!tok) continue;
        if (++total > HERD_TOPO_MAX_NAMES) {
            fprintf(stderr, "%s:%d: more than %d switches and nodes in one topology.conf (herd's limit)\n", path,
                    lineno, HERD_TOPO_MAX_NAMES);
            rc = -1;
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            herd_conf_switch *s = realloc(sw, (size_t)cap * sizeof *s);
            if (!s) {
                fprintf(stderr, "%s:%d: out of memory\n", path, lineno);
                rc = -1;
                break;
            }
            sw = s;
        }
        herd_conf_switch *s = &sw[n];
        memset(s, 0, sizeof *s);
        s->line = lineno;
        n++;
        for (; tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
            char *eq = strchr(tok, '=');
            char origin[320];
            snprintf(origin, sizeof origin, "%s:%d", path, lineno);
            if (!eq) {
                fprintf(stderr, "%s: '%s' is not KEY=VALUE\n", origin, tok);
                rc = -1;
                break;
            }
            *eq = '\0';
            const char *v = eq + 1;
            if (!strcasecmp(tok, "SwitchName")) {
                if (!*v || strlen(v) >= sizeof s->name) {
                    fprintf(stderr, "%s: SwitchName: empty or longer than %d characters\n", origin,
                            HERD_TOPO_NAME_MAX - 1);
                    rc = -1;
                    break;
                }
                snprintf(s->name, sizeof s->name, "%s", v);
            } else if (!strcasecmp(tok, "Nodes") || !strcasecmp(tok, "Switches")) {
                int is_nodes = !strcasecmp(tok, "Nodes");
                char **names;
                int k;
                snprintf(origin, sizeof origin, "%s:%d: %s", path, lineno, is_nodes ? "Nodes" : "Switches");
                if (expand_field(v, origin, HERD_TOPO_MAX_NAMES - total, &names, &k)) { rc = -1; break; }
                if (is_nodes ? s->nodes != NULL : s->switches != NULL) {
                    fprintf(stderr, "%s= given twice on one line\n", origin);
                    herd_topo_names_free(names, k);
                    rc = -1;
                    break;
                }
                if (is_nodes) { s->nodes = names; s->n_nodes = k; }
                else { s->switches = names; s->n_switches = k; }
                total += k;
            } else if (!strcasecmp(tok, "LinkSpeed")) {
                /* relative weight in Slurm; bandwidths come from the links file */
            } else {
                fprintf(stderr, "%s: unknown key '%s' (SwitchName, Switches, Nodes, LinkSpeed)\n", origin, tok);
                rc = -1;
                break;
            }
        }
        if (rc) break;
        if (!s->name[0]) {
            fprintf(stderr, "%s:%d: line without SwitchName=\n", path, lineno);
            rc = -1;
            break;
        }
        int first = herd_names_find(&seen, s->name, strlen(s->name), same_switch_name, &(name_ctx){sw, s->name});
        if (first >= 0) {
            fprintf(stderr, "%s:%d: SwitchName=%s defined twice (first at line %d)\n", path, lineno, s->name,
                    sw[first].line);
            rc = -1;
            break;
        }
        if (herd_names_add(&seen, s->name, strlen(s->name), n - 1)) {
            fprintf(stderr, "%s:%d: out of memory\n", path, lineno);
            rc = -1;
            break;
        }
    }
    free(line);
    fclose(f);
    herd_names_free(&seen);
    if (!rc && n == 0) {
        fprintf(stderr, "%s: no SwitchName= line\n", path);
        rc = -1;
    }
    if (rc) {
        herd_topo_conf_free(sw, n);
        return -1;
    }
    *out = sw;
    *n_out = n;
    return 0;
}

int herd_topo_conf_default(char *buf, size_t len)
{
    const char *conf = getenv("SLURM_CONF");
    if (conf && *conf) {
        const char *slash = strrchr(conf, '/');
        if (slash) snprintf(buf, len, "%.*s/topology.conf", (int)(slash - conf), conf);
        else snprintf(buf, len, "topology.conf");
    } else {
        snprintf(buf, len, "/etc/slurm/topology.conf");
    }
    return access(buf, R_OK) == 0 ? 0 : -1;
}

/* NodeName= names of a slurm.conf (NodeName=DEFAULT skipped) */
static int slurm_conf_nodes(const char *path, char ***names, int *n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open slurm.conf: %s\n", path, strerror(errno));
        return -1;
    }
    strvec all = {0};
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (!rc && getline(&line, &cap, f) > 0) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);
        if (!tok || strncasecmp(tok, "NodeName=", 9) || !strcasecmp(tok + 9, "DEFAULT")) continue;
        char origin[320];
        snprintf(origin, sizeof origin, "%s:%d: NodeName", path, lineno);
        rc = expand_list(tok + 9, origin, HERD_TOPO_MAX_NAMES, "in one slurm.conf", &all);
    }
    free(line);
    fclose(f);
    if (rc) {
        herd_topo_names_free(all.v, all.n);
        return -1;
    }
    *names = all.v;
    *n = all.n;
    return 0;
}

typedef struct {
    char *const *names;
    const char *name;
} names_ctx;

static int same_name(int idx, const void *ctx)
{
    const names_ctx *c = ctx;
    return !strcmp(c->names[idx], c->name);
}

int herd_topo_conf_check_nodes(const char *topology_conf, const char *slurm_conf)
{
    herd_conf_switch *sw;
    char **known;
    int n_sw, n_known, rc = 0;
    if (slurm_conf_nodes(slurm_conf, &known, &n_known)) return -1;
    if (herd_topo_conf_parse(topology_conf, &sw, &n_sw)) {
        herd_topo_names_free(known, n_known);
        return -1;
    }
    herd_names index = {0};
    for (int j = 0; j < n_known && !rc; j++)
        if (herd_names_add(&index, known[j], strlen(known[j]), j)) {
            fprintf(stderr, "%s: out of memory\n", slurm_conf);
            rc = -1;
        }
    for (int i = 0; i < n_sw && !rc; i++)
        for (int k = 0; k < sw[i].n_nodes && !rc; k++) {
            const char *node = sw[i].nodes[k];
            if (herd_names_find(&index, node, strlen(node), same_name, &(names_ctx){known, node}) < 0) {
                fprintf(stderr, "%s:%d: SwitchName=%s: Nodes= names unknown node '%s' (no NodeName= in %s)\n",
                        topology_conf, sw[i].line, sw[i].name, sw[i].nodes[k], slurm_conf);
                rc = -1;
            }
        }
    herd_names_free(&index);
    herd_topo_conf_free(sw, n_sw);
    herd_topo_names_free(known, n_known);
    return rc;
}

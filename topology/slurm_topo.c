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
        if (!v) return -1;
        s->v = v;
        s->cap = cap;
    }
    char *c = malloc(len + 1);
    if (!c) return -1;
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

/* Expand one term (no top-level comma): the first [..] group, then recurse on
 * the rest, so that "r[1-2]n[1-2]" gives r1n1 r1n2 r2n1 r2n2 (Slurm's order). */
static int expand_term(const char *term, size_t len, const char *origin, strvec *out)
{
    const char *lb = memchr(term, '[', len);
    if (!lb) return strvec_push(out, term, len);
    const char *rb = memchr(lb, ']', len - (size_t)(lb - term));
    if (!rb) {
        fprintf(stderr, "%s: hostlist '%.*s': '[' without ']'\n", origin, (int)len, term);
        return -1;
    }
    size_t pre = (size_t)(lb - term), post = len - (size_t)(rb + 1 - term);
    const char *p = lb + 1;
    while (p < rb) {
        const char *q = p;
        while (q < rb && *q != ',') q++;
        /* range lo[-hi]; the width of lo keeps leading zeros: [01-16] */
        char *end;
        if (!isdigit((unsigned char)*p)) goto bad;
        long lo = strtol(p, &end, 10), hi = lo;
        int width = (int)(end - p);
        if (end < q && *end == '-') {
            if (!isdigit((unsigned char)end[1])) goto bad;
            hi = strtol(end + 1, &end, 10);
        }
        if (end != q || hi < lo || hi - lo > 1000000) goto bad;
        for (long v = lo; v <= hi; v++) {
            char buf[512];
            int k = snprintf(buf, sizeof buf, "%.*s%0*ld%.*s", (int)pre, term, width, v, (int)post, rb + 1);
            if (k < 0 || (size_t)k >= sizeof buf) {
                fprintf(stderr, "%s: hostlist '%.*s': name too long\n", origin, (int)len, term);
                return -1;
            }
            if (expand_term(buf, (size_t)k, origin, out)) return -1;
        }
        p = q < rb ? q + 1 : q;
    }
    return 0;
bad:
    fprintf(stderr, "%s: hostlist '%.*s': bad range in [...]\n", origin, (int)len, term);
    return -1;
}

int herd_topo_hostlist_expand(const char *list, const char *origin, char ***names, int *n)
{
    strvec out = {0};
    const char *p = list;
    while (*p) {
        const char *q = p;
        int depth = 0;
        while (*q && (depth || *q != ',')) {
            if (*q == '[') depth++;
            else if (*q == ']') depth--;
            q++;
        }
        if (q > p && expand_term(p, (size_t)(q - p), origin, &out)) {
            herd_topo_names_free(out.v, out.n);
            return -1;
        }
        p = *q ? q + 1 : q;
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

void herd_topo_conf_free(herd_conf_switch *sw, int n)
{
    for (int i = 0; i < n; i++) {
        herd_topo_names_free(sw[i].nodes, sw[i].n_nodes);
        herd_topo_names_free(sw[i].switches, sw[i].n_switches);
    }
    free(sw);
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
    char *line = NULL;
    size_t linecap = 0;
    while (getline(&line, &linecap, f) > 0) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);
        if (!tok) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            herd_conf_switch *s = realloc(sw, (size_t)cap * sizeof *s);
            if (!s) { rc = -1; break; }
            sw = s;
        }
        herd_conf_switch *s = &sw[n];
        memset(s, 0, sizeof *s);
        s->line = lineno;
        n++;
        for (; tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
            char *eq = strchr(tok, '=');
            char origin[300];
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
            } else if (!strcasecmp(tok, "Nodes")) {
                if (herd_topo_hostlist_expand(v, origin, &s->nodes, &s->n_nodes)) { rc = -1; break; }
            } else if (!strcasecmp(tok, "Switches")) {
                if (herd_topo_hostlist_expand(v, origin, &s->switches, &s->n_switches)) { rc = -1; break; }
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
        for (int i = 0; i < n - 1; i++)
            if (!strcmp(sw[i].name, s->name)) {
                fprintf(stderr, "%s:%d: SwitchName=%s defined twice (first at line %d)\n", path, lineno,
                        s->name, sw[i].line);
                rc = -1;
                break;
            }
        if (rc) break;
    }
    free(line);
    fclose(f);
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
        char origin[300], **v;
        int k;
        snprintf(origin, sizeof origin, "%s:%d", path, lineno);
        if (herd_topo_hostlist_expand(tok + 9, origin, &v, &k)) { rc = -1; break; }
        for (int i = 0; i < k && !rc; i++) rc = strvec_push(&all, v[i], strlen(v[i]));
        herd_topo_names_free(v, k);
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
    for (int i = 0; i < n_sw && !rc; i++)
        for (int k = 0; k < sw[i].n_nodes && !rc; k++) {
            int found = 0;
            for (int j = 0; j < n_known && !found; j++) found = !strcmp(known[j], sw[i].nodes[k]);
            if (!found) {
                fprintf(stderr, "%s:%d: SwitchName=%s: Nodes= names unknown node '%s' (no NodeName= in %s)\n",
                        topology_conf, sw[i].line, sw[i].name, sw[i].nodes[k], slurm_conf);
                rc = -1;
            }
        }
    herd_topo_conf_free(sw, n_sw);
    herd_topo_names_free(known, n_known);
    return rc;
}

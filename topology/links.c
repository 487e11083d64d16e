/* links.c — bandwidth, latency and oversubscription per height of the tree.
 *
 * Defaults are for H100 SXM nodes: NVLink 4 inside a node, one 400 Gb/s NIC
 * per GPU (RoCE or InfiniBand) into a full-bisection Clos. Bandwidths are the
 * bus bandwidths that NCCL reaches (not the nominal figures): 360 of NVLink's
 * 450 GB/s per direction, 45 of the NIC's 50 GB/s. docs/topology.md.
 *
 * The file overrides them, one height per line:
 *     # height (or nvlink|leaf|spine|pod|core)  key=value...
 *     core bandwidth=45 latency=12 oversubscription=7
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "topology/topo.h"

void herd_topo_links_default(herd_topo *t, double top_oversub)
{
    static const char *names[] = {"", "nvlink", "leaf", "spine", "core"};
    for (int h = 0; h <= HERD_TOPO_MAX_HEIGHT; h++) {
        herd_topo_link *l = &t->link[h];
        l->bw_GBps = h <= 1 ? 360.0 : 45.0;
        /* latency grows by a switch hop (up and down) per height */
        l->latency_us = h <= 1 ? 3.0 : 3.0 + 2.0 * (h - 1);
        l->oversub = 1.0;
        if (h < 5) snprintf(l->name, sizeof l->name, "%s", names[h]);
        else snprintf(l->name, sizeof l->name, "level%d", h);
    }
    if (t->height >= 3) t->link[t->height].oversub = top_oversub;
}

static int level_of(const herd_topo *t, const char *w)
{
    if (!strcasecmp(w, "nvlink") || !strcasecmp(w, "node")) return 1;
    if (!strcasecmp(w, "leaf")) return 2;
    if (!strcasecmp(w, "spine") || !strcasecmp(w, "pod")) return 3;
    if (!strcasecmp(w, "core") || !strcasecmp(w, "top")) return t->height >= 4 ? t->height : 4;
    char *end;
    long h = strtol(w, &end, 10);
    if (*end || h < 1 || h > HERD_TOPO_MAX_HEIGHT) return -1;
    return (int)h;
}

int herd_topo_links_load(herd_topo *t, const char *path)
{
    if (!path) return 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open links file: %s\n", path, strerror(errno));
        return -1;
    }
    char line[512];
    int lineno = 0, rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);
        if (!tok) continue;
        int h = level_of(t, tok);
        if (h < 0) {
            fprintf(stderr, "%s:%d: level '%s': expected 1..%d or nvlink, leaf, spine, pod, core\n", path, lineno,
                    tok, HERD_TOPO_MAX_HEIGHT);
            rc = -1;
            break;
        }
        herd_topo_link *l = &t->link[h];
        if (h > 4 || !strcmp(tok, "pod")) snprintf(l->name, sizeof l->name, "%s", tok);
        while ((tok = strtok_r(NULL, " \t\r\n", &save))) {
            char *eq = strchr(tok, '='), *end;
            if (!eq) {
                fprintf(stderr, "%s:%d: '%s' is not key=value\n", path, lineno, tok);
                rc = -1;
                break;
            }
            *eq = '\0';
            double v = strtod(eq + 1, &end);
            if (end == eq + 1 || *end || !(v > 0)) {
                fprintf(stderr, "%s:%d: %s: '%s' is not a positive number\n", path, lineno, tok, eq + 1);
                rc = -1;
                break;
            }
            if (!strcmp(tok, "bandwidth")) l->bw_GBps = v;
            else if (!strcmp(tok, "latency")) l->latency_us = v;
            else if (!strcmp(tok, "oversubscription")) {
                if (v < 1) {
                    fprintf(stderr, "%s:%d: oversubscription: %g < 1 (7 means 1:7)\n", path, lineno, v);
                    rc = -1;
                    break;
                }
                l->oversub = v;
            } else {
                fprintf(stderr, "%s:%d: unknown key '%s' (bandwidth, latency, oversubscription)\n", path, lineno,
                        tok);
                rc = -1;
                break;
            }
        }
    }
    fclose(f);
    return rc;
}

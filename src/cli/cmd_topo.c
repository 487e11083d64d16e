/* cmd_topo.c — `herd topo`: what topology/ discovers and decides.
 *
 *   this node (hwloc): sockets, NUMA, cores, GPUs and NICs by PCI bus id,
 *     the NIC nearest each GPU, the cores each local rank would be bound to;
 *   the job's tree: nodes under Slurm's switches (topology.conf, or the
 *     SLURM_TOPOLOGY_ADDR of each rank);
 *   the placement of a layout: rank -> node, GPU, [tp, cp, pp, dp];
 *   the bandwidth each group gets when all groups of a kind talk at once;
 *   under a launcher, the GPU, cores and NIC of every rank (the start-up
 *   line of `herd train` with backend cuda, src/parallel/device.h).
 *
 * Under mpirun or srun (OMPI_COMM_WORLD_SIZE or PMIX_RANK set), every rank
 * sends its node name ($SLURMD_NODENAME, else its hostname) and
 * SLURM_TOPOLOGY_ADDR to rank 0, which prints. Alone,
 * the job is --hosts LIST x --ranks-per-node N, or this host.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "src/cli/commands.h"
#include "src/parallel/device.h"
#include "topology/topo.h"

#define HOST_LEN 64
#define ADDR_LEN 256
#define BIND_LEN 160
#define DEV_LEN  768

static int usage(FILE *f)
{
    fprintf(f,
            "usage: herd topo [--xml HWLOC.xml] [--conf topology.conf] [--links FILE]\n"
            "                 [--hosts HOSTLIST] [--ranks-per-node N] [--layout TP,CP,PP,DP] [--naive] [--json] [--bind]\n"
            "                 [--pmix]\n"
            "  prints this node (hwloc; --xml or HWLOC_XMLFILE replace the live machine), the job's tree\n"
            "  (topology.conf: --conf, else $SLURM_CONF's directory, else /etc/slurm; or SLURM_TOPOLOGY_ADDR),\n"
            "  the placement of the layout (default: TP = ranks per node, DP = the rest) and each group's bandwidth.\n"
            "  Under mpirun/srun the job is the ranks themselves (gathered over MPI, or with --pmix from PMIx\n"
            "  alone); --bind binds each rank (hwloc) and shows where.\n");
    return f == stdout ? 0 : 2;
}

static const char *dim_name[HERD_NDIM] = {"tp", "cp", "pp", "dp"};

static void print_machine(const herd_topo_machine *m, int local_size)
{
    printf("node %s (hwloc: %s): %d sockets, %d NUMA nodes, %d cores, %d PUs (%s)\n", m->hostname, m->source,
           m->n_packages, m->n_numa, m->n_cores, m->n_pus, m->cpus);
    static const char *dist[] = {"same PCIe switch", "same host bridge", "same socket", "other socket"};
    for (int g = 0; g < m->n_gpus; g++) {
        const herd_topo_pcidev *d = &m->gpu[g];
        char cpus[HERD_TOPO_CPUS_LEN] = "";
        herd_topo_machine_rank_cpus(m, g, local_size > m->n_gpus ? local_size : m->n_gpus, cpus, sizeof cpus);
        printf("  GPU %d %-8s %s socket %d NUMA %d  NIC %s (%s)  cores %s\n", g, d->name, d->busid, d->package, d->numa,
               d->nearest_nic >= 0 ? m->nic[d->nearest_nic].name : "none",
               d->nic_distance >= 0 && d->nic_distance <= 3 ? dist[d->nic_distance] : "-", cpus);
    }
    for (int k = 0; k < m->n_nics; k++)
        printf("  NIC %d %-8s %s socket %d NUMA %d\n", k, m->nic[k].name, m->nic[k].busid, m->nic[k].package,
               m->nic[k].numa);
    for (int r = 0; !m->n_gpus && r < local_size; r++) {
        char cpus[HERD_TOPO_CPUS_LEN] = "";
        herd_topo_machine_rank_cpus(m, r, local_size, cpus, sizeof cpus);
        printf("  no GPU: local rank %d of %d gets cores %s\n", r, local_size, cpus);
    }
}

/* children of every switch, as lists: switches first (index order), then
 * nodes (tree order), so that printing the tree is one pass over it */
typedef struct {
    int *first_sw, *next_sw;      /* [n_switches] */
    int *first_node, *next_node;  /* [n_switches], [n_nodes] */
} tree_lists;

static void tree_lists_free(tree_lists *l)
{
    free(l->first_sw);
    free(l->next_sw);
    free(l->first_node);
    free(l->next_node);
}

static int tree_lists_build(const herd_topo *t, tree_lists *l)
{
    int S = t->n_switches, N = t->n_nodes;
    l->first_sw = malloc((size_t)S * sizeof(int));
    l->next_sw = malloc((size_t)S * sizeof(int));
    l->first_node = malloc((size_t)S * sizeof(int));
    l->next_node = malloc((size_t)(N ? N : 1) * sizeof(int));
    if (!l->first_sw || !l->next_sw || !l->first_node || !l->next_node) {
        tree_lists_free(l);
        return -1;
    }
    for (int s = 0; s < S; s++) l->first_sw[s] = l->first_node[s] = -1;
    for (int c = S - 1; c >= 0; c--) {
        int p = t->sw[c].parent;
        if (p >= 0) {
            l->next_sw[c] = l->first_sw[p];
            l->first_sw[p] = c;
        }
    }
    for (int n = N - 1; n >= 0; n--) {
        l->next_node[n] = l->first_node[t->node[n].leaf];
        l->first_node[t->node[n].leaf] = n;
    }
    return 0;
}

static void print_tree(const herd_topo *t, const tree_lists *l, int s, int depth)
{
    if (t->sw[s].n_gpus == 0) return; /* switches without the job's GPUs */
    printf("%*s%s (height %d, %d GPUs)", 2 * depth + 2, "", t->sw[s].name, t->sw[s].height, t->sw[s].n_gpus);
    int first = 1, shown = 0, more = 0;
    for (int n = l->first_node[s]; n >= 0; n = l->next_node[n]) {
        if (!t->node[n].n_gpus) continue;
        if (shown < 8) {
            printf("%s%s[%d]", first ? ": " : " ", t->node[n].name, t->node[n].n_gpus);
            shown++;
        } else {
            more++;
        }
        first = 0;
    }
    if (more) printf(" ... and %d more nodes", more);
    printf("\n");
    for (int c = l->first_sw[s]; c >= 0; c = l->next_sw[c]) print_tree(t, l, c, depth + 1);
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') putchar('\\');
        if ((unsigned char)*s >= 0x20) putchar(*s);
    }
    putchar('"');
}

static void print_json(const herd_topo_machine *m, const herd_topo *t, const int l[4], const int *perm,
                       const herd_topo_groupstat *st)
{
    printf("{\"node\": {\"hostname\": ");
    json_str(m->hostname);
    printf(", \"source\": ");
    json_str(m->source);
    printf(", \"packages\": %d, \"numa\": %d, \"cores\": %d, \"pus\": %d, \"gpus\": [", m->n_packages, m->n_numa,
           m->n_cores, m->n_pus);
    for (int g = 0; g < m->n_gpus; g++)
        printf("%s{\"name\": \"%s\", \"busid\": \"%s\", \"package\": %d, \"numa\": %d, \"cpus\": \"%s\", "
               "\"nic\": \"%s\", \"nic_distance\": %d}",
               g ? ", " : "", m->gpu[g].name, m->gpu[g].busid, m->gpu[g].package, m->gpu[g].numa, m->gpu[g].cpus,
               m->gpu[g].nearest_nic >= 0 ? m->nic[m->gpu[g].nearest_nic].name : "", m->gpu[g].nic_distance);
    printf("], \"nics\": [");
    for (int k = 0; k < m->n_nics; k++)
        printf("%s{\"name\": \"%s\", \"busid\": \"%s\", \"package\": %d}", k ? ", " : "", m->nic[k].name,
               m->nic[k].busid, m->nic[k].package);
    printf("]},\n \"conf\": ");
    json_str(t->conf_path);
    printf(",\n \"switches\": [");
    int first = 1;
    for (int s = 0; s < t->n_switches; s++) {
        if (!t->sw[s].n_gpus) continue;
        printf("%s\n  {\"name\": ", first ? "" : ",");
        json_str(t->sw[s].name);
        printf(", \"height\": %d, \"parent\": ", t->sw[s].height);
        if (t->sw[s].parent >= 0) json_str(t->sw[t->sw[s].parent].name);
        else printf("null");
        printf(", \"gpus\": %d}", t->sw[s].n_gpus);
        first = 0;
    }
    printf("],\n \"links\": [");
    for (int h = 1; h <= t->height; h++)
        printf("%s{\"height\": %d, \"name\": \"%s\", \"bw_GBps\": %g, \"latency_us\": %g, \"oversubscription\": %g}",
               h > 1 ? ", " : "", h, t->link[h].name, t->link[h].bw_GBps, t->link[h].latency_us, t->link[h].oversub);
    printf("],\n \"layout\": {\"tp\": %d, \"cp\": %d, \"pp\": %d, \"dp\": %d},\n \"placement\": [", l[0], l[1], l[2],
           l[3]);
    for (int g = 0; g < t->n_ranks; g++) {
        int r = perm[g], nd = t->rank[r].node;
        printf("%s\n  {\"rank\": %d, \"node\": ", g ? "," : "", r);
        json_str(t->node[nd].name);
        printf(", \"leaf\": ");
        json_str(t->sw[t->node[nd].leaf].name);
        printf(", \"gpu\": %d, \"tp\": %d, \"cp\": %d, \"pp\": %d, \"dp\": %d}", t->rank[r].local, g % l[0],
               g / l[0] % l[1], g / (l[0] * l[1]) % l[2], g / (l[0] * l[1] * l[2]));
    }
    printf("],\n \"groups\": {");
    for (int d = 0; d < HERD_NDIM; d++)
        printf("%s\"%s\": {\"size\": %d, \"groups\": %d, \"max_height\": %d, \"spanning_nodes\": %d, "
               "\"oversubscribed\": %d, \"bw_GBps\": %.2f, \"latency_us\": %.1f}",
               d ? ", " : "", dim_name[d], st[d].size, st[d].n_groups, st[d].max_height, st[d].n_spanning,
               st[d].n_oversub, st[d].bw_GBps, st[d].latency_us);
    printf("}}\n");
}

typedef struct {
    const char *xml, *conf, *links, *hosts;
    int rpn, naive, json, bind, pmix, have_layout, l[HERD_NDIM];
} topo_args;

/* -1: go on; else the exit status (help, usage error) */
static int topo_parse_args(int argc, char **argv, topo_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) return usage(stdout);
        else if (!strcmp(s, "--xml") && v) { a->xml = v; i++; }
        else if (!strcmp(s, "--conf") && v) { a->conf = v; i++; }
        else if (!strcmp(s, "--links") && v) { a->links = v; i++; }
        else if (!strcmp(s, "--hosts") && v) { a->hosts = v; i++; }
        else if (!strcmp(s, "--ranks-per-node") && v) {
            char *end;
            a->rpn = (int)strtol(v, &end, 10);
            if (*end || a->rpn < 1 || a->rpn > HERD_TOPO_MAX_DEV) {
                fprintf(stderr, "herd topo: --ranks-per-node '%s': expected 1..%d\n", v, HERD_TOPO_MAX_DEV);
                return 2;
            }
            i++;
        } else if (!strcmp(s, "--layout") && v) {
            if (herd_topo_layout_parse("herd topo", v, a->l)) return 2;
            a->have_layout = 1;
            i++;
        } else if (!strcmp(s, "--naive")) a->naive = 1;
        else if (!strcmp(s, "--json")) a->json = 1;
        else if (!strcmp(s, "--bind")) a->bind = 1;
        else if (!strcmp(s, "--pmix")) a->pmix = 1;
        else {
            fprintf(stderr, "herd topo: unexpected argument '%s'\n", s);
            return usage(stderr);
        }
    }
    return -1;
}

/* The job as rank 0 sees it: every rank's node name and topology address. */
typedef struct {
    herd_topo_machine m;
    int use_mpi, rank, size, n_ranks, n_names;
    char host[HOST_LEN], addr[ADDR_LEN];
    const char *env_addr, *pattern;
    char *all_hosts, *all_addrs, **names, *binds, *devs;
    const char **hp, **ap;
    herd_topo_pmix_job pj;
} topo_job;

/* this process's node name and SLURM_TOPOLOGY_ADDR */
static void job_identify(topo_job *j)
{
    /* Slurm's name for the node when there is one: on an emulated cluster
     * (slurmd -N nodeK on one machine) every rank has the same hostname */
    const char *slurm_node = getenv("SLURMD_NODENAME");
    if (slurm_node && *slurm_node) snprintf(j->host, sizeof j->host, "%s", slurm_node);
    else if (gethostname(j->host, sizeof j->host)) snprintf(j->host, sizeof j->host, "localhost");
    j->host[HOST_LEN - 1] = '\0';
    j->env_addr = getenv("SLURM_TOPOLOGY_ADDR");
    j->pattern = getenv("SLURM_TOPOLOGY_ADDR_PATTERN");
    if (j->env_addr) snprintf(j->addr, sizeof j->addr, "%s", j->env_addr);
}

/* room for n ranks' names and addresses (what was there is dropped) */
static int job_alloc(topo_job *j, int n)
{
    free(j->all_hosts);
    free(j->all_addrs);
    j->n_ranks = n;
    j->all_hosts = calloc((size_t)(n > 0 ? n : 1), HOST_LEN);
    j->all_addrs = calloc((size_t)(n > 0 ? n : 1), ADDR_LEN);
    return j->all_hosts && j->all_addrs ? 0 : -1;
}

/* Under a launcher: every rank's name to all, addresses to rank 0, each rank
 * bound (--bind). 1: rank 0 goes on; 0: done with *rc set. */
static int job_gather_mpi(topo_job *j, int bind, int ok, int *rc)
{
    MPI_Allgather(j->host, HOST_LEN, MPI_CHAR, j->all_hosts, HOST_LEN, MPI_CHAR, MPI_COMM_WORLD);
    MPI_Gather(j->addr, ADDR_LEN, MPI_CHAR, j->all_addrs, ADDR_LEN, MPI_CHAR, 0, MPI_COMM_WORLD);
    int all_ok;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    ok = all_ok;
    /* the GPU each rank would use (two on one GPU shown, not refused) */
    herd_device_info d;
    char line[DEV_LEN] = "";
    if (herd_device_select(0, 1, 0, &d) == 0) herd_device_format(&d, line, sizeof line);
    else snprintf(line, sizeof line, "rank %d: no device chosen (see stderr)", j->rank);
    j->devs = calloc((size_t)j->size, DEV_LEN);
    if (!j->devs) return 0;
    MPI_Gather(line, DEV_LEN, MPI_CHAR, j->devs, DEV_LEN, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (ok && bind) {
        /* local rank: earlier ranks on the same node; every rank binds itself */
        int local = 0, local_size = 0;
        for (int r = 0; r < j->size; r++)
            if (herd_topo_host_match(j->all_hosts + (size_t)r * HOST_LEN, j->host)) {
                local += r < j->rank;
                local_size++;
            }
        char desc[BIND_LEN];
        if (herd_topo_bind_rank(&j->m, local, local_size, desc, sizeof desc))
            snprintf(desc, sizeof desc, "not bound (see stderr)");
        j->binds = calloc((size_t)j->size, BIND_LEN);
        if (!j->binds) return 0;
        MPI_Gather(desc, BIND_LEN, MPI_CHAR, j->binds, BIND_LEN, MPI_CHAR, 0, MPI_COMM_WORLD);
    }
    if (j->rank != 0) {
        *rc = ok ? 0 : 1;
        return 0;
    }
    return ok;
}

/* PMIx alone: every rank learns every rank's host; rank 0 prints. 1: go on;
 * 0: done with *rc set. */
static int job_gather_pmix(topo_job *j, int *rc)
{
    if (herd_topo_pmix_ranks(&j->pj)) return 0;
    if (j->pj.my_rank != 0) {
        *rc = 0;
        return 0;
    }
    if (job_alloc(j, j->pj.n_ranks)) return 0;
    for (int r = 0; r < j->n_ranks; r++)
        snprintf(j->all_hosts + (size_t)r * HOST_LEN, HOST_LEN, "%s", j->pj.hostnames[r]);
    snprintf(j->all_addrs, ADDR_LEN, "%s", j->addr);
    return 1;
}

/* Alone: --hosts LIST x --ranks-per-node N, or this host. */
static int job_from_args(topo_job *j, const topo_args *a)
{
    if (a->hosts) {
        if (herd_topo_hostlist_expand(a->hosts, "--hosts", &j->names, &j->n_names)) return -1;
    } else {
        j->names = malloc(sizeof *j->names);
        j->names[0] = strdup(j->host);
        j->n_names = 1;
    }
    int per = a->rpn ? a->rpn : a->hosts ? (j->m.n_gpus ? j->m.n_gpus : 1) : 1;
    if (job_alloc(j, j->n_names * per)) return -1;
    for (int r = 0; r < j->n_ranks; r++) {
        snprintf(j->all_hosts + (size_t)r * HOST_LEN, HOST_LEN, "%s", j->names[r / per]);
        /* our own address is known only for our host */
        if (herd_topo_host_match(j->names[r / per], j->host))
            snprintf(j->all_addrs + (size_t)r * ADDR_LEN, ADDR_LEN, "%s", j->addr);
    }
    return 0;
}

/* The tree of the job's nodes (topology.conf, else the ranks' addresses,
 * else one switch), its links, and the default layout. a->conf becomes the
 * topology.conf used, if any; *have_addrs: the tree came from the addresses. */
static int job_tree(topo_job *j, topo_args *a, herd_topo **t, int *have_addrs)
{
    j->hp = malloc((size_t)j->n_ranks * sizeof *j->hp);
    j->ap = malloc((size_t)j->n_ranks * sizeof *j->ap);
    if (!j->hp || !j->ap) return -1;
    *have_addrs = j->pattern != NULL;
    for (int r = 0; r < j->n_ranks; r++) {
        j->hp[r] = j->all_hosts + (size_t)r * HOST_LEN;
        j->ap[r] = j->all_addrs + (size_t)r * ADDR_LEN;
        if (!j->ap[r][0]) *have_addrs = 0;
    }
    static char def[512];
    if (!a->conf && herd_topo_conf_default(def, sizeof def) == 0) a->conf = def;
    if (a->conf) {
        /* the slurm.conf beside it, when there is one, must know every node */
        char slurm_conf[600];
        const char *slash = strrchr(a->conf, '/');
        snprintf(slurm_conf, sizeof slurm_conf, "%.*sslurm.conf", slash ? (int)(slash + 1 - a->conf) : 0, a->conf);
        if (access(slurm_conf, R_OK) == 0 && herd_topo_conf_check_nodes(a->conf, slurm_conf)) return -1;
        if (herd_topo_from_hosts(t, j->n_ranks, j->hp, a->conf)) return -1;
    } else if (*have_addrs) {
        if (herd_topo_from_addrs(t, j->n_ranks, j->hp, j->ap, j->pattern)) return -1;
    } else if (herd_topo_from_hosts(t, j->n_ranks, j->hp, NULL)) {
        return -1;
    }
    if (herd_topo_links_load(*t, a->links)) return -1;
    if (!a->have_layout) {
        /* TP = the ranks of the first node (at most 8), DP the rest */
        int *l = a->l;
        l[0] = (*t)->node[(*t)->rank[0].node].n_gpus;
        while (l[0] > 1 && (l[0] > 8 || j->n_ranks % l[0])) l[0]--;
        l[1] = l[2] = 1;
        l[3] = j->n_ranks / l[0];
    }
    return 0;
}

/* the switches above the job's nodes, their leaf switches and the links */
static int print_tree_links(const herd_topo *t)
{
    tree_lists lists;
    char *leaf_shown = calloc((size_t)t->n_switches, 1);
    if (!leaf_shown || tree_lists_build(t, &lists)) {
        free(leaf_shown);
        fprintf(stderr, "herd topo: out of memory\n");
        return -1;
    }
    for (int s = 0; s < t->n_switches; s++)
        if (t->sw[s].parent < 0) print_tree(t, &lists, s, 0);
    tree_lists_free(&lists);
    printf("leaf switches of the job's nodes:");
    for (int n = 0, shown = 0; n < t->n_nodes && shown < 32; n++) {
        if (!t->node[n].n_gpus || leaf_shown[t->node[n].leaf]) continue;
        leaf_shown[t->node[n].leaf] = 1;
        printf(" %s", t->sw[t->node[n].leaf].name);
        shown++;
    }
    free(leaf_shown);
    printf("\nlinks:");
    for (int h = 1; h <= t->height; h++)
        printf(" %d:%s %.0f GB/s %.0f us 1:%g%s", h, t->link[h].name, t->link[h].bw_GBps, t->link[h].latency_us,
               t->link[h].oversub, h < t->height ? "," : "");
    return 0;
}

/* the placement table, the binding and the groups' bandwidth */
static void print_placement(const topo_job *j, const herd_topo *t, const topo_args *a, const int *perm,
                            const herd_topo_groupstat *st)
{
    const int *l = a->l;
    printf("\n\nplacement (%s) of tp=%d cp=%d pp=%d dp=%d:\n", a->naive ? "naive, DP innermost" : "network-aware",
           l[0], l[1], l[2], l[3]);
    int show = j->n_ranks <= 64 ? j->n_ranks : 16;
    printf("  %6s  %-20s %-16s %4s  %4s %4s %4s %4s\n", "rank", "node", "leaf", "gpu", "tp", "cp", "pp", "dp");
    for (int g = 0; g < show; g++) {
        int r = perm[g], nd = t->rank[r].node;
        printf("  %6d  %-20s %-16s %4d  %4d %4d %4d %4d\n", r, t->node[nd].name, t->sw[t->node[nd].leaf].name,
               t->rank[r].local, g % l[0], g / l[0] % l[1], g / (l[0] * l[1]) % l[2], g / (l[0] * l[1] * l[2]));
    }
    if (show < j->n_ranks) printf("  ... %d more ranks (--json prints all)\n", j->n_ranks - show);
    if (j->devs) {
        printf("\ndevices (backend cuda: each rank's GPU, as `herd train` chooses it):\n");
        for (int r = 0; r < j->n_ranks; r++) printf("device: %s\n", j->devs + (size_t)r * DEV_LEN);
    }
    if (j->binds) {
        printf("\nbinding (hwloc, each rank itself):\n");
        for (int r = 0; r < j->n_ranks; r++)
            printf("  rank %d on %s: %s\n", r, j->hp[r], j->binds + (size_t)r * BIND_LEN);
    }
    printf("\ngroups (all groups of a kind talking at once):\n");
    printf("  %-3s %6s %7s  %-8s %9s %9s %9s %8s\n", "dim", "size", "groups", "link", "off-node", "oversub", "GB/s",
           "alpha_us");
    for (int d = 0; d < HERD_NDIM; d++)
        printf("  %-3s %6d %7d  %-8s %9d %9d %9.1f %8.1f\n", dim_name[d], st[d].size, st[d].n_groups,
               st[d].size > 1 ? t->link[st[d].max_height].name : "-", st[d].n_spanning, st[d].n_oversub,
               st[d].size > 1 ? st[d].bw_GBps : 0.0, st[d].latency_us);
}

static int print_text(const topo_job *j, const herd_topo *t, const topo_args *a, int have_addrs, const int *perm,
                      const herd_topo_groupstat *st)
{
    print_machine(&j->m, t->node[t->rank[0].node].n_gpus);
    printf("\njob: %d ranks on %d nodes; tree from %s\n", j->n_ranks, t->n_nodes,
           a->conf ? a->conf : have_addrs ? "SLURM_TOPOLOGY_ADDR" : "hostnames (no topology.conf: one switch)");
    if (j->env_addr)
        printf("this process: SLURM_TOPOLOGY_ADDR=%s SLURM_TOPOLOGY_ADDR_PATTERN=%s\n", j->env_addr,
               j->pattern ? j->pattern : "");
    if (print_tree_links(t)) return -1;
    print_placement(j, t, a, perm, st);
    return 0;
}

static void job_free(topo_job *j)
{
    if (j->names) herd_topo_names_free(j->names, j->n_names);
    free(j->all_hosts);
    free(j->all_addrs);
    free(j->hp);
    free(j->ap);
    free(j->binds);
    free(j->devs);
    herd_topo_pmix_free(&j->pj);
}

/* 0: rank 0 has the job; else *rc says how this rank ends */
static int job_gather(topo_job *j, const topo_args *a, int *rc)
{
    int ok = herd_topo_machine_load(&j->m, a->xml) == 0;
    job_identify(j);
    if (job_alloc(j, j->size)) return -1;
    if (j->use_mpi && !job_gather_mpi(j, a->bind, ok, rc)) return -1;
    if (!ok) return -1;
    if (a->pmix) return job_gather_pmix(j, rc) ? 0 : -1;
    if (!j->use_mpi) return job_from_args(j, a);
    return 0;
}

int herd_cmd_topo(int argc, char **argv)
{
    topo_args a = {0};
    int rc = topo_parse_args(argc, argv, &a);
    if (rc >= 0) return rc;
    rc = 1;
    topo_job j = {0};
    /* under a launcher: the ranks themselves are the job */
    j.use_mpi = !a.hosts && !a.pmix && (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK"));
    j.size = 1;
    if (j.use_mpi) {
        MPI_Init(NULL, NULL);
        MPI_Comm_rank(MPI_COMM_WORLD, &j.rank);
        MPI_Comm_size(MPI_COMM_WORLD, &j.size);
    }
    herd_topo *t = NULL;
    int *perm = NULL, have_addrs = 0;
    herd_topo_groupstat st[HERD_NDIM];
    if (job_gather(&j, &a, &rc) || job_tree(&j, &a, &t, &have_addrs)) goto out;
    perm = malloc((size_t)j.n_ranks * sizeof *perm);
    if (!perm) goto out;
    if ((a.naive ? herd_topo_place_naive : herd_topo_place)(t, a.l[0], a.l[1], a.l[2], a.l[3], perm)) goto out;
    if (herd_topo_group_stats(t, a.l, perm, st)) goto out;
    if (a.json) print_json(&j.m, t, a.l, perm, st);
    else if (print_text(&j, t, &a, have_addrs, perm, st)) goto out;
    rc = 0;
out:
    job_free(&j);
    free(perm);
    herd_topo_free(t);
    if (j.use_mpi) {
        MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
        MPI_Finalize();
    }
    return rc;
}

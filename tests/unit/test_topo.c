/* test_topo.c — topology/: hostlists, topology.conf, SLURM_TOPOLOGY_ADDR,
 * hwloc discovery on the DGX-H100-like fixture, binding, placement and the
 * bandwidth each group gets. Fixtures: tests/fixtures/topology/. */
#include <fcntl.h>
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "tests/unit/test.h"
#include "topology/topo.h"

#define FIX "tests/fixtures/topology/"

static char tmpdir[] = "/tmp/herd_topo_XXXXXX";

static const char *write_tmp(const char *name, const char *text)
{
    static char path[4][256];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 256, "%s/%s", tmpdir, name);
    if (!text) return p; /* the path only */
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    return p;
}

TEST(hostlist_expands_ranges_padding_and_products)
{
    char **n;
    int k;
    CHECK(herd_topo_hostlist_expand("node[1-3,7],gpu[08-10],x", "test", &n, &k) == 0);
    CHECK(k == 8);
    if (k == 8) {
        CHECK(!strcmp(n[0], "node1") && !strcmp(n[2], "node3") && !strcmp(n[3], "node7"));
        CHECK(!strcmp(n[4], "gpu08") && !strcmp(n[6], "gpu10") && !strcmp(n[7], "x"));
    }
    herd_topo_names_free(n, k);
    CHECK(herd_topo_hostlist_expand("r[1-2]n[1-2]", "test", &n, &k) == 0);
    CHECK(k == 4 && !strcmp(n[0], "r1n1") && !strcmp(n[1], "r1n2") && !strcmp(n[2], "r2n1"));
    herd_topo_names_free(n, k);
    CHECK(herd_topo_hostlist_expand("node[1-", "test", &n, &k) == -1);
    CHECK(herd_topo_hostlist_expand("node[3-1]", "test", &n, &k) == -1);
    CHECK(herd_topo_host_match("node1.cluster", "node1") && !herd_topo_host_match("node10", "node1"));
}

/* ---- stderr of a call, to check what a refusal says ---- */

static int saved_stderr = -1;
static char captured[8192];

static void capture_stderr(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/stderr.txt", tmpdir);
    fflush(stderr);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    saved_stderr = dup(2);
    dup2(fd, 2);
    close(fd);
}

/* what was printed since capture_stderr(); also shown, for the log */
static const char *captured_stderr(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/stderr.txt", tmpdir);
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(captured, 1, sizeof captured - 1, f) : 0;
    if (f) fclose(f);
    captured[n] = '\0';
    fprintf(stderr, "%s", captured);
    return captured;
}

TEST(hostlist_numbers_checked_and_names_bounded)
{
    char **n;
    int k;
    fprintf(stderr, "  (hostlist errors are expected here)\n");
    /* 2^63 - 1 once wrapped around to negative and looped forever */
    CHECK(herd_topo_hostlist_expand("n[9223372036854775807]", "test", &n, &k) == -1);
    CHECK(herd_topo_hostlist_expand("n[18446744073709551616]", "test", &n, &k) == -1);
    CHECK(herd_topo_hostlist_expand("n[1-99999999999999999999]", "test", &n, &k) == -1);
    /* 10^12 names: refused before any is made */
    capture_stderr();
    CHECK(herd_topo_hostlist_expand("a[1-1000000]b[1-1000000]", "t.conf:3: Nodes", &n, &k) == -1);
    CHECK(strstr(captured_stderr(), "t.conf:3: Nodes: hostlist 'a[1-1000000]b[1-1000000]': more than 262144 names"));
    /* the limit itself is allowed, one more is not */
    CHECK(herd_topo_hostlist_expand("n[1-262144]", "test", &n, &k) == 0);
    CHECK(k == 262144 && !strcmp(n[k - 1], "n262144"));
    herd_topo_names_free(n, k);
    CHECK(herd_topo_hostlist_expand("n[0-262144]", "test", &n, &k) == -1);
    CHECK(herd_topo_hostlist_expand("n[1-131072],m[1-131073]", "test", &n, &k) == -1);
    /* malformed: a trailing comma, an empty group, unbalanced brackets, nesting */
    CHECK(herd_topo_hostlist_expand("n[1-2,]", "test", &n, &k) == -1);
    CHECK(herd_topo_hostlist_expand("n[]", "test", &n, &k) == -1);
    CHECK(herd_topo_hostlist_expand("n]1,m", "test", &n, &k) == -1);
    CHECK(herd_topo_hostlist_expand("n[1[2]]", "test", &n, &k) == -1);
    CHECK(herd_topo_hostlist_expand("n[-3]", "test", &n, &k) == -1);
    /* names must fit the 63 characters every table of names holds */
    char name[80];
    memset(name, 'x', 63);
    name[63] = '\0';
    CHECK(herd_topo_hostlist_expand(name, "test", &n, &k) == 0 && k == 1);
    herd_topo_names_free(n, k);
    strcat(name, "y");
    CHECK(herd_topo_hostlist_expand(name, "test", &n, &k) == -1);
    /* a whole file is bounded too: two lines of 200,000 nodes */
    herd_topo *t;
    capture_stderr();
    CHECK(herd_topo_from_conf(&t, write_tmp("many.conf", "SwitchName=s1 Nodes=n[1-200000]\n"
                                                         "SwitchName=s2 Nodes=m[1-200000]\n"),
                              8, 0) == -1);
    CHECK(strstr(captured_stderr(), "many.conf:2: Nodes"));
}

TEST(conf_cycles_named_any_length)
{
    herd_topo *t;
    capture_stderr();
    CHECK(herd_topo_from_conf(&t, write_tmp("c2.conf", "SwitchName=a Switches=b Nodes=n1\n"
                                                       "SwitchName=b Switches=a Nodes=n2\n"
                                                       "SwitchName=c Nodes=n3\n"),
                              8, 0) == -1);
    CHECK(strstr(captured_stderr(), "c2.conf:1: Switches= form a cycle: a -> b -> a"));
    capture_stderr();
    CHECK(herd_topo_from_conf(&t, write_tmp("c1.conf", "SwitchName=a Switches=a Nodes=n1\n"), 8, 0) == -1);
    CHECK(strstr(captured_stderr(), "c1.conf:1: Switches= form a cycle: a -> a"));
    /* a long cycle beside a valid tree, and a second cycle: both named */
    char conf[4096] = "SwitchName=leaf Nodes=n[1-4]\nSwitchName=top Switches=leaf\n";
    for (int i = 0; i < 20; i++)
        snprintf(conf + strlen(conf), sizeof conf - strlen(conf), "SwitchName=r%d Switches=r%d\n", i, (i + 1) % 20);
    strcat(conf, "SwitchName=p Switches=q\nSwitchName=q Switches=p\n");
    capture_stderr();
    const char *hosts[1] = {"n1"};
    CHECK(herd_topo_from_hosts(&t, 1, hosts, write_tmp("c20.conf", conf)) == -1);
    const char *err = captured_stderr();
    CHECK(strstr(err, "c20.conf:3: Switches= form a cycle: r0 -> r1 -> r2 -> r3 -> r4 -> r5 -> r6 -> r7 -> r8"));
    CHECK(strstr(err, "(20 switches in the cycle)"));
    CHECK(strstr(err, "c20.conf:23: Switches= form a cycle: p -> q -> p"));
}

TEST(big_conf_names_matched_by_hash)
{
    /* 20,000 nodes: every node found once, a duplicate found, hosts matched up to a '.' */
    FILE *f = fopen(write_tmp("big.conf", ""), "w");
    for (int l = 0; l < 1250; l++) fprintf(f, "SwitchName=l%d Nodes=n[%d-%d]\n", l, 16 * l + 1, 16 * l + 16);
    fprintf(f, "SwitchName=top Switches=l[0-1249]\n");
    fclose(f);
    herd_topo *t;
    CHECK(herd_topo_from_conf(&t, write_tmp("big.conf", NULL), 8, 0) == 0);
    if (t) {
        CHECK(t->n_nodes == 20000 && t->n_ranks == 160000 && t->height == 3);
        herd_topo_free(t);
    }
    const char *hosts[3] = {"n19999.cluster", "n5", "n19999"};
    CHECK(herd_topo_from_hosts(&t, 3, hosts, write_tmp("big.conf", NULL)) == 0);
    if (t) {
        CHECK(t->rank[0].node == t->rank[2].node && t->rank[2].local == 1);
        CHECK(!strcmp(t->node[t->rank[0].node].name, "n19999") && !strcmp(t->node[t->rank[1].node].name, "n5"));
        herd_topo_free(t);
    }
    f = fopen(write_tmp("big.conf", NULL), "a");
    fprintf(f, "SwitchName=extra Nodes=n17\n");
    fclose(f);
    capture_stderr();
    CHECK(herd_topo_from_conf(&t, write_tmp("big.conf", NULL), 8, 0) == -1);
    CHECK(strstr(captured_stderr(), "node 'n17' is below both 'l1' and 'extra'"));
}

TEST(machine_xml_dgx_h100)
{
    herd_topo_machine m;
    CHECK(herd_topo_machine_load(&m, FIX "dgx_h100.xml") == 0);
    CHECK(m.n_packages == 2 && m.n_numa == 2 && m.n_cores == 32 && m.n_pus == 32);
    CHECK(m.n_gpus == 8 && m.n_nics == 8);
    CHECK(!strcmp(m.gpu[0].busid, "0000:11:00.0") && !strcmp(m.gpu[0].name, "cuda0"));
    for (int g = 0; g < m.n_gpus; g++) {
        CHECK(m.gpu[g].package == (g < 4 ? 0 : 1));
        CHECK(m.gpu[g].numa == (g < 4 ? 0 : 1));
        /* each GPU shares a PCIe switch with its own NIC (the DGX H100 layout) */
        CHECK(m.gpu[g].nearest_nic == g);
        CHECK(m.gpu[g].nic_distance == 0);
    }
    CHECK(!strcmp(m.gpu[5].cpus, "16-31") && !strcmp(m.nic[7].name, "mlx5_7"));
    CHECK(!strcmp(herd_topo_machine_rank_nic(&m, 6), "mlx5_6"));
}

TEST(machine_gpus_by_pci_class_without_cuda_plugin)
{
    /* the fixture without its cuda<i> OS devices: what hwloc without the
     * CUDA/NVML plugins shows of a real H100 node */
    FILE *in = fopen(FIX "dgx_h100.xml", "r");
    char path[300], line[1024];
    snprintf(path, sizeof path, "%s/nocuda.xml", tmpdir);
    FILE *out = fopen(path, "w");
    if (!in || !out) { CHECK(0); return; }
    while (fgets(line, sizeof line, in))
        if (!strstr(line, "name=\"cuda")) fputs(line, out);
    fclose(in);
    fclose(out);
    herd_topo_machine m;
    CHECK(herd_topo_machine_load(&m, path) == 0);
    CHECK(m.n_gpus == 8 && m.n_nics == 8);
    CHECK(!strcmp(m.gpu[0].name, "pci:0000:11:00.0") && m.gpu[7].nearest_nic == 7 && m.gpu[7].package == 1);
}

TEST(machine_env_hwloc_xmlfile_and_bad_xml)
{
    herd_topo_machine m;
    setenv("HWLOC_XMLFILE", FIX "dgx_h100.xml", 1);
    CHECK(herd_topo_machine_load(&m, NULL) == 0);
    CHECK(m.n_gpus == 8 && strstr(m.source, "dgx_h100.xml"));
    unsetenv("HWLOC_XMLFILE");
    const char *bad = write_tmp("bad.xml", "<?xml version=\"1.0\"?>\n<topology><object type=\"Mach");
    fprintf(stderr, "  (an hwloc parse error is expected here)\n");
    CHECK(herd_topo_machine_load(&m, bad) == -1);
    CHECK(herd_topo_machine_load(&m, "/nonexistent/x.xml") == -1);
}

TEST(machine_xml_newer_format_and_truncated)
{
    herd_topo_machine m;
    capture_stderr();
    CHECK(herd_topo_machine_load(&m, FIX "hwloc_v3.xml") == -1);
    const char *err = captured_stderr();
    CHECK(strstr(err, "hwloc_v3.xml: hwloc XML format 3.0 is newer than this hwloc"));
    CHECK(!strstr(err, "not an hwloc XML file"));
    capture_stderr();
    CHECK(herd_topo_machine_load(&m, FIX "truncated.xml") == -1);
    err = captured_stderr();
    /* hwloc's own parser detail (libxml2's, or hwloc's minimal parser's), then ours */
    CHECK(strstr(err, "parser error") || strstr(err, "minimalistic parser"));
    CHECK(strstr(err, "truncated.xml: hwloc cannot read this XML file"));
}

TEST(machine_vga_chip_is_not_a_gpu)
{
    herd_topo_machine m;
    CHECK(herd_topo_machine_load(&m, FIX "gpu_vga.xml") == 0);
    CHECK(m.n_gpus == 8);
    for (int g = 0; g < m.n_gpus; g++) CHECK(strcmp(m.gpu[g].busid, "0000:03:00.0"));
    CHECK(!strcmp(m.gpu[0].name, "cuda0") && !strcmp(m.gpu[0].busid, "0000:18:00.0"));
    /* 8 ranks: 4 on each socket's cores (with the VGA chip as GPU 0: 5 and 3) */
    int per_pkg[2] = {0, 0};
    char buf[256];
    for (int r = 0; r < 8; r++) {
        CHECK(herd_topo_machine_rank_cpus(&m, r, 8, buf, sizeof buf) == 0);
        per_pkg[atoi(buf) >= 16]++;
    }
    CHECK(per_pkg[0] == 4 && per_pkg[1] == 4);
    /* the same without the CUDA OS devices: GPUs by PCI class, not the VGA chip */
    FILE *in = fopen(FIX "gpu_vga.xml", "r");
    char path[300], line[1024];
    snprintf(path, sizeof path, "%s/vga_nocuda.xml", tmpdir);
    FILE *out = fopen(path, "w");
    if (!in || !out) { CHECK(0); return; }
    while (fgets(line, sizeof line, in))
        if (!strstr(line, "name=\"cuda")) fputs(line, out);
    fclose(in);
    fclose(out);
    CHECK(herd_topo_machine_load(&m, path) == 0);
    CHECK(m.n_gpus == 8 && !strcmp(m.gpu[0].busid, "0000:18:00.0"));
    for (int g = 0; g < m.n_gpus; g++) CHECK(strcmp(m.gpu[g].busid, "0000:03:00.0"));
}

/* every rank's cpus: inside its GPU's package, disjoint from the others'
 * while there are cores enough, whole cores; per_core[c] = ranks on core c */
static int check_binding(const char *xml, int local_size, int *per_core, int n_cores)
{
    herd_topo_machine m;
    hwloc_topology_t topo;
    int ok = herd_topo_machine_load(&m, xml) == 0;
    if (!ok || hwloc_topology_init(&topo)) return 0;
    hwloc_topology_set_xml(topo, xml);
    if (hwloc_topology_load(topo)) return 0;
    hwloc_bitmap_t set = hwloc_bitmap_alloc(), seen = hwloc_bitmap_alloc(), pkg = hwloc_bitmap_alloc();
    for (int c = 0; c < n_cores; c++) per_core[c] = 0;
    int overlap = 0;
    for (int r = 0; r < local_size && ok; r++) {
        char buf[640];
        ok &= herd_topo_machine_rank_cpus(&m, r, local_size, buf, sizeof buf) == 0;
        ok &= hwloc_bitmap_list_sscanf(set, buf) == 0 && !hwloc_bitmap_iszero(set);
        ok &= hwloc_bitmap_list_sscanf(pkg, m.gpu[r % m.n_gpus].cpus) == 0;
        hwloc_obj_t p = hwloc_get_next_obj_covering_cpuset_by_type(topo, pkg, HWLOC_OBJ_PACKAGE, NULL);
        ok &= p && hwloc_bitmap_isincluded(set, p->cpuset); /* on its GPU's package */
        overlap |= hwloc_bitmap_intersects(set, seen);
        hwloc_bitmap_or(seen, seen, set);
        for (int c = 0; c < n_cores; c++) {
            hwloc_obj_t core = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, (unsigned)c);
            if (hwloc_bitmap_intersects(core->cpuset, set)) {
                ok &= hwloc_bitmap_isincluded(core->cpuset, set); /* whole cores */
                per_core[c]++;
            }
        }
    }
    if (local_size <= n_cores) ok &= !overlap;
    hwloc_bitmap_free(set);
    hwloc_bitmap_free(seen);
    hwloc_bitmap_free(pkg);
    hwloc_topology_destroy(topo);
    return ok;
}

TEST(bind_gpu_ranks_by_package)
{
    int per_core[32];
    herd_topo_machine m;
    char buf[256];
    /* DGX H100: 8 ranks, 4 cores each; 16 ranks (2 per GPU), 2 cores each,
     * a GPU's two ranks side by side, never both on the same 4 */
    CHECK(check_binding(FIX "dgx_h100.xml", 8, per_core, 32));
    CHECK(check_binding(FIX "dgx_h100.xml", 16, per_core, 32));
    for (int c = 0; c < 32; c++) CHECK(per_core[c] == 1);
    CHECK(herd_topo_machine_load(&m, FIX "dgx_h100.xml") == 0);
    CHECK(herd_topo_machine_rank_cpus(&m, 0, 16, buf, sizeof buf) == 0 && !strcmp(buf, "0-1"));
    CHECK(herd_topo_machine_rank_cpus(&m, 8, 16, buf, sizeof buf) == 0 && !strcmp(buf, "2-3"));
    CHECK(herd_topo_machine_rank_cpus(&m, 4, 16, buf, sizeof buf) == 0 && !strcmp(buf, "16-17"));
    CHECK(herd_topo_machine_rank_cpus(&m, 12, 16, buf, sizeof buf) == 0 && !strcmp(buf, "18-19"));
    /* bus ids that do not follow the sockets, 2 hyperthreads a core: GPU 0 sits
     * on socket 1; each rank gets 2 whole cores (both hyperthreads) there */
    CHECK(check_binding(FIX "gpu_swapped.xml", 8, per_core, 16));
    for (int c = 0; c < 16; c++) CHECK(per_core[c] == 1);
    CHECK(herd_topo_machine_load(&m, FIX "gpu_swapped.xml") == 0);
    CHECK(herd_topo_machine_rank_cpus(&m, 0, 8, buf, sizeof buf) == 0 && !strcmp(buf, "8-9,24-25"));
    CHECK(herd_topo_machine_rank_cpus(&m, 4, 8, buf, sizeof buf) == 0 && !strcmp(buf, "0-1,16-17"));
    /* uneven, more GPUs than cores: 5 GPUs on socket 0's 2 cores, 3 on socket
     * 1's 2 cores; 16 ranks: 10 and 6, shared 5 + 5 and 3 + 3 */
    CHECK(check_binding(FIX "gpu_uneven.xml", 16, per_core, 4));
    CHECK(per_core[0] == 5 && per_core[1] == 5 && per_core[2] == 3 && per_core[3] == 3);
    CHECK(check_binding(FIX "gpu_uneven.xml", 8, per_core, 4));
    CHECK(per_core[0] == 3 && per_core[1] == 2 && per_core[2] == 2 && per_core[3] == 1);
}

TEST(rank_cpus_near_gpu_or_share)
{
    herd_topo_machine m;
    char buf[128];
    CHECK(herd_topo_machine_load(&m, FIX "dgx_h100.xml") == 0);
    /* socket 0's 16 cores shared by its 4 GPUs: 4 each, in GPU order */
    CHECK(herd_topo_machine_rank_cpus(&m, 0, 8, buf, sizeof buf) == 0 && !strcmp(buf, "0-3"));
    CHECK(herd_topo_machine_rank_cpus(&m, 5, 8, buf, sizeof buf) == 0 && !strcmp(buf, "20-23"));
    CHECK(herd_topo_machine_rank_cpus(&m, 8, 8, buf, sizeof buf) == -1);
    m.n_gpus = 0; /* the same machine without GPUs: a quarter of all cores */
    CHECK(herd_topo_machine_rank_cpus(&m, 1, 4, buf, sizeof buf) == 0 && !strcmp(buf, "8-15"));
}

TEST(bind_rank_live)
{
    herd_topo_machine m;
    if (herd_topo_machine_load(&m, NULL)) SKIP("hwloc cannot load the live machine");
    herd_topo_machine xm;
    CHECK(herd_topo_machine_load(&xm, FIX "dgx_h100.xml") == 0);
    CHECK(herd_topo_bind_rank(&xm, 0, 1, NULL, 0) == -1); /* XML is not this machine */
    int local_size = m.n_gpus ? m.n_gpus : 2;
    char want[128];
    CHECK(herd_topo_machine_rank_cpus(&m, local_size - 1, local_size, want, sizeof want) == 0);
    pid_t pid = fork(); /* bind a child, not the test */
    if (pid == 0) {
        char desc[256];
        if (herd_topo_bind_rank(&m, local_size - 1, local_size, desc, sizeof desc)) _exit(2);
        hwloc_topology_t topo;
        hwloc_topology_init(&topo);
        hwloc_topology_load(topo);
        hwloc_bitmap_t got = hwloc_bitmap_alloc(), exp = hwloc_bitmap_alloc();
        hwloc_get_cpubind(topo, got, HWLOC_CPUBIND_PROCESS);
        hwloc_bitmap_list_sscanf(exp, want);
        _exit(hwloc_bitmap_isequal(got, exp) && strstr(desc, "cores") ? 0 : 3);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(small_conf_tree_and_distances)
{
    herd_topo *t;
    CHECK(herd_topo_from_conf(&t, FIX "small.conf", 8, 0) == 0);
    if (!t) return;
    CHECK(t->n_nodes == 8 && t->n_ranks == 64 && t->height == 4);
    CHECK(herd_topo_rank_distance(t, 0, 0) == 0);
    CHECK(herd_topo_rank_distance(t, 0, 7) == 1);   /* node1 */
    CHECK(herd_topo_rank_distance(t, 0, 8) == 2);   /* node1 - node2: leaf1 */
    CHECK(herd_topo_rank_distance(t, 0, 16) == 3);  /* node1 - node3: pod1 */
    CHECK(herd_topo_rank_distance(t, 0, 32) == 4);  /* node1 - node5: core */
    CHECK(!strcmp(herd_topo_rank_switch(t, 40, 2), "leaf3"));
    CHECK(!strcmp(herd_topo_rank_switch(t, 40, 3), "pod2"));
    herd_topo_free(t);
}

TEST(llama3_conf_tree)
{
    herd_topo *t;
    CHECK(herd_topo_from_conf(&t, FIX "llama3.conf", 8, 0) == 0);
    if (!t) return;
    CHECK(t->n_nodes == 3072 && t->n_ranks == 24576 && t->height == 4);
    int leaves = 0, pods = 0;
    for (int s = 0; s < t->n_switches; s++) {
        leaves += t->sw[s].height == 2;
        if (t->sw[s].height == 3) {
            pods++;
            CHECK(t->sw[s].n_gpus == 3072);
        }
        if (t->sw[s].height == 2) CHECK(t->sw[s].n_gpus == 128);
    }
    CHECK(leaves == 192 && pods == 8);
    CHECK(herd_topo_links_load(t, FIX "llama3.links") == 0);
    CHECK(t->link[4].oversub == 7 && t->link[1].bw_GBps == 360 && t->link[3].oversub == 1);
    herd_topo_free(t);
}

static int is_perm(const int *perm, int n)
{
    char *seen = calloc((size_t)n, 1);
    int ok = 1;
    for (int i = 0; i < n; i++) {
        if (perm[i] < 0 || perm[i] >= n || seen[perm[i]]) ok = 0;
        else seen[perm[i]] = 1;
    }
    free(seen);
    return ok;
}

/* every group of dimension d has all members under one switch of `height`
 * (height 1: one node) */
static int groups_within(const herd_topo *t, const int l[4], const int *perm, int d, int height)
{
    int stride[4] = {1, l[0], l[0] * l[1], l[0] * l[1] * l[2]};
    for (int g = 0; g < t->n_ranks; g++) {
        if ((g / stride[d]) % l[d]) continue;
        for (int k = 1; k < l[d]; k++)
            if (herd_topo_rank_distance(t, perm[g], perm[g + k * stride[d]]) > height) return 0;
    }
    return 1;
}

TEST(place_llama3_table4_layouts)
{
    static const int layouts[3][4] = {{8, 1, 16, 64}, {8, 1, 16, 128}, {8, 16, 16, 8}};
    for (int k = 0; k < 3; k++) {
        const int *l = layouts[k];
        int n = l[0] * l[1] * l[2] * l[3];
        herd_topo *t;
        CHECK(herd_topo_from_conf(&t, FIX "llama3.conf", 8, n) == 0);
        if (!t) return;
        CHECK(herd_topo_links_load(t, FIX "llama3.links") == 0);
        int *perm = malloc((size_t)n * sizeof *perm);
        CHECK(herd_topo_place(t, l[0], l[1], l[2], l[3], perm) == 0);
        CHECK(is_perm(perm, n));
        CHECK(groups_within(t, l, perm, 0, 1)); /* every TP group inside one node */
        CHECK(groups_within(t, l, perm, 1, 2)); /* CP groups (128 GPUs) under one leaf */
        if (k < 2) CHECK(groups_within(t, l, perm, 2, 3)); /* PP groups inside one pod */
        herd_topo_groupstat st[HERD_NDIM];
        CHECK(herd_topo_group_stats(t, l, perm, st) == 0);
        CHECK(st[0].max_height == 1 && st[0].bw_GBps == 360 && st[0].n_spanning == 0);
        if (k < 2) CHECK(st[2].n_oversub == 0 && st[2].bw_GBps == 45);
        CHECK(st[3].max_height == 4 && st[3].n_oversub > 0); /* DP crosses the pods: outermost */
        /* the naive order puts TP across nodes */
        CHECK(herd_topo_place_naive(t, l[0], l[1], l[2], l[3], perm) == 0 && is_perm(perm, n));
        CHECK(!groups_within(t, l, perm, 0, 1));
        CHECK(herd_topo_group_stats(t, l, perm, st) == 0 && st[0].max_height >= 2 && st[0].bw_GBps < 45.001);
        free(perm);
        herd_topo_free(t);
    }
}

TEST(place_row3_spread_over_8_pods_keeps_pp_in_pods)
{
    /* 16,384 GPUs as 2,048 per pod: each replica (TP8 x CP16 x PP16 = 2,048) fits in a pod */
    char conf[65536] = "";
    size_t off = 0;
    for (int p = 0; p < 8; p++) {
        for (int r = 0; r < 16; r++)
            off += (size_t)snprintf(conf + off, sizeof conf - off, "SwitchName=p%dr%d Nodes=p%dn[%d-%d]\n", p, r, p,
                                    r * 16, r * 16 + 15);
        off += (size_t)snprintf(conf + off, sizeof conf - off, "SwitchName=pod%d Switches=p%dr[0-15]\n", p, p);
    }
    snprintf(conf + off, sizeof conf - off, "SwitchName=core Switches=pod[0-7]\n");
    herd_topo *t;
    CHECK(herd_topo_from_conf(&t, write_tmp("spread.conf", conf), 8, 16384) == 0);
    if (!t) return;
    int l[4] = {8, 16, 16, 8}, *perm = malloc(16384 * sizeof *perm);
    CHECK(herd_topo_place(t, 8, 16, 16, 8, perm) == 0 && is_perm(perm, 16384));
    CHECK(groups_within(t, l, perm, 0, 1) && groups_within(t, l, perm, 1, 2) && groups_within(t, l, perm, 2, 3));
    free(perm);
    herd_topo_free(t);
}

TEST(place_row3_on_llama3_spread_keeps_pp_in_pods)
{
    /* packed onto the first 2,048 nodes, 3 of 8 replicas straddle two pods;
     * spread (2,048 GPUs per pod) every replica sits in one pod */
    int l[4] = {8, 16, 16, 8}, *perm = malloc(16384 * sizeof *perm);
    herd_topo *t;
    CHECK(herd_topo_from_conf_alloc(&t, FIX "llama3.conf", 8, 16384, 0) == 0);
    if (!t) { free(perm); return; }
    CHECK(herd_topo_place(t, 8, 16, 16, 8, perm) == 0 && !groups_within(t, l, perm, 2, 3));
    herd_topo_free(t);
    CHECK(herd_topo_from_conf_alloc(&t, FIX "llama3.conf", 8, 16384, 1) == 0);
    if (!t) { free(perm); return; }
    for (int s = 0; s < t->n_switches; s++)
        if (t->sw[s].height == 3) {
            int n = 0;
            for (int r = 0; r < t->n_ranks; r++) n += !strcmp(herd_topo_rank_switch(t, r, 3), t->sw[s].name);
            CHECK(n == 2048);
        }
    CHECK(herd_topo_place(t, 8, 16, 16, 8, perm) == 0 && is_perm(perm, 16384));
    CHECK(groups_within(t, l, perm, 0, 1) && groups_within(t, l, perm, 1, 2) && groups_within(t, l, perm, 2, 3));
    herd_topo_free(t);
    free(perm);
}

TEST(place_best_fit_avoids_a_crossing_that_linear_order_makes)
{
    /* pods of 1, 2 and 1 nodes; TP8 x PP2 replicas of 2 nodes, DP 2. In tree
     * order both replicas straddle two pods; best fit puts one inside podB. */
    const char *conf = write_tmp("uneven.conf", "SwitchName=la Nodes=a1\nSwitchName=lb Nodes=b[1-2]\n"
                                                "SwitchName=lc Nodes=c1\nSwitchName=podA Switches=la\n"
                                                "SwitchName=podB Switches=lb\nSwitchName=podC Switches=lc\n"
                                                "SwitchName=core Switches=podA,podB,podC\n");
    herd_topo *t;
    CHECK(herd_topo_from_conf(&t, conf, 8, 0) == 0);
    if (!t) return;
    CHECK(herd_topo_links_load(t, FIX "llama3.links") == 0);
    int l[4] = {8, 1, 2, 2}, perm[32];
    herd_topo_groupstat best[HERD_NDIM], lin[HERD_NDIM];
    CHECK(herd_topo_place(t, 8, 1, 2, 2, perm) == 0 && is_perm(perm, 32));
    CHECK(herd_topo_group_stats(t, l, perm, best) == 0);
    CHECK(herd_topo_place_linear(t, 8, 1, 2, 2, perm) == 0);
    CHECK(herd_topo_group_stats(t, l, perm, lin) == 0);
    CHECK(lin[2].n_oversub == 16); /* every PP group crosses the core */
    CHECK(best[2].n_oversub == 8); /* only the second replica's (a1 + c1: no choice) */
    herd_topo_free(t);
}

TEST(hosts_with_conf_and_unknown_host)
{
    const char *hosts[6] = {"node3", "node3", "node4.cluster", "node4", "node7", "node7"};
    herd_topo *t;
    CHECK(herd_topo_from_hosts(&t, 6, hosts, FIX "small.conf") == 0);
    if (!t) return;
    CHECK(t->n_ranks == 6 && t->rank[1].local == 1 && t->rank[3].local == 1);
    CHECK(herd_topo_rank_distance(t, 0, 1) == 1 && herd_topo_rank_distance(t, 0, 2) == 2);
    CHECK(herd_topo_rank_distance(t, 0, 4) == 4);
    herd_topo_free(t);
    const char *bad[2] = {"node1", "nodeX"};
    fprintf(stderr, "  (an unknown-host error is expected here)\n");
    CHECK(herd_topo_from_hosts(&t, 2, bad, FIX "small.conf") == -1);
    /* no conf: one switch above every host */
    CHECK(herd_topo_from_hosts(&t, 2, bad, NULL) == 0 && t->n_nodes == 2 && t->height == 2);
    herd_topo_free(t);
}

TEST(conf_errors)
{
    herd_topo *t;
    fprintf(stderr, "  (conf errors are expected here)\n");
    CHECK(herd_topo_from_conf(&t, write_tmp("u1.conf", "SwitchName=s1 Nodes=n1\nSwitchName=top Switches=s[1-2]\n"),
                              8, 0) == -1);
    CHECK(herd_topo_from_conf(&t, write_tmp("u2.conf", "SwitchName=s1 Nodes=n1 Speed=3\n"), 8, 0) == -1);
    CHECK(herd_topo_from_conf(&t, write_tmp("u3.conf", "SwitchName=s1 Nodes=n1\nSwitchName=s2 Nodes=n1\n"), 8, 0) ==
          -1);
    CHECK(herd_topo_from_conf(&t, write_tmp("u4.conf", "SwitchName=a Switches=b\nSwitchName=b Switches=a\n"), 8, 0) ==
          -1);
    CHECK(herd_topo_from_conf(&t, "/nonexistent/topology.conf", 8, 0) == -1);
    CHECK(herd_topo_from_conf(&t, FIX "small.conf", 8, 65) == -1); /* 65 GPUs > 8 nodes x 8 */
    CHECK(herd_topo_from_conf(&t, FIX "small.conf", 8, 16) == 0);
    int perm[16];
    CHECK(herd_topo_place(t, 8, 1, 1, 4, perm) == -1); /* 32 ranks != 16 */
    CHECK(herd_topo_links_load(t, write_tmp("l.links", "leaf bandwidth=45 speed=3\n")) == -1);
    CHECK(herd_topo_links_load(t, write_tmp("l2.links", "core oversubscription=0.5\n")) == -1);
    CHECK(herd_topo_links_load(t, write_tmp("l3.links", "attic bandwidth=1\n")) == -1);
    herd_topo_free(t);
}

TEST(slurm_topology_addr)
{
    const char *hosts[4] = {"h1", "h1", "h2", "h3"};
    const char *addrs[4] = {"s0.l1.h1", "s0.l1.h1", "s0.l2.h2", "s0.l2.h3"};
    herd_topo *t;
    CHECK(herd_topo_from_addrs(&t, 4, hosts, addrs, "switch.switch.node") == 0);
    if (!t) return;
    CHECK(t->height == 3);
    CHECK(herd_topo_rank_distance(t, 0, 1) == 1 && herd_topo_rank_distance(t, 0, 2) == 3);
    CHECK(herd_topo_rank_distance(t, 2, 3) == 2);
    CHECK(!strcmp(herd_topo_rank_switch(t, 3, 2), "l2"));
    herd_topo_free(t);
    const char *bad[4] = {"s0.l1.h1", "s0.l1.h1", "l2.h2", "s0.l2.h3"};
    fprintf(stderr, "  (an address error is expected here)\n");
    CHECK(herd_topo_from_addrs(&t, 4, hosts, bad, "switch.switch.node") == -1);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) return 1;
    if (chdir(getenv("HERD_ROOT") ? getenv("HERD_ROOT") : ".")) return 1;
    if (access(FIX "dgx_h100.xml", R_OK)) {
        /* run from build/tests: find the repository root */
        if (chdir("../..") || access(FIX "dgx_h100.xml", R_OK)) {
            printf("FAIL fixtures: %s not found (run from the repository root)\n", FIX);
            return 1;
        }
    }
    RUN(hostlist_expands_ranges_padding_and_products);
    RUN(hostlist_numbers_checked_and_names_bounded);
    RUN(conf_cycles_named_any_length);
    RUN(big_conf_names_matched_by_hash);
    RUN(machine_xml_dgx_h100);
    RUN(machine_xml_newer_format_and_truncated);
    RUN(machine_vga_chip_is_not_a_gpu);
    RUN(bind_gpu_ranks_by_package);
    RUN(machine_gpus_by_pci_class_without_cuda_plugin);
    RUN(machine_env_hwloc_xmlfile_and_bad_xml);
    RUN(rank_cpus_near_gpu_or_share);
    RUN(bind_rank_live);
    RUN(small_conf_tree_and_distances);
    RUN(llama3_conf_tree);
    RUN(place_llama3_table4_layouts);
    RUN(place_row3_spread_over_8_pods_keeps_pp_in_pods);
    RUN(place_row3_on_llama3_spread_keeps_pp_in_pods);
    RUN(place_best_fit_avoids_a_crossing_that_linear_order_makes);
    RUN(hosts_with_conf_and_unknown_host);
    RUN(conf_errors);
    RUN(slurm_topology_addr);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) return 1;
    return test_summary();
}

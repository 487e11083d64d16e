/* test_topo_device.c — topology/device.c: which GPU each local rank uses, on
 * the hwloc XML fixtures of tests/fixtures/topology (CUDA's bus ids matched to
 * hwloc's, CUDA_VISIBLE_DEVICES orders, ranks bound or not, shared devices). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tests/unit/test.h"
#include "topology/topo.h"

#define FIX "tests/fixtures/topology/"

/* the DGX fixture's GPU bus ids as CUDA writes them (upper case) */
static const char dgx_bus[8][16] = {"0000:11:00.0", "0000:21:00.0", "0000:51:00.0", "0000:61:00.0",
                                    "0000:91:00.0", "0000:A1:00.0", "0000:D1:00.0", "0000:E1:00.0"};

/* 1 if every pick's gpu is the hwloc GPU of its visible device's bus id */
static int gpus_match_bus(const herd_topo_machine *m, const char (*vis)[16], const herd_topo_pick *p, int n)
{
    for (int r = 0; r < n; r++) {
        char want[16];
        if (p[r].gpu < 0 || herd_topo_busid_norm(vis[p[r].device], want) || strcmp(m->gpu[p[r].gpu].busid, want))
            return 0;
    }
    return 1;
}

/* 1 if no two picks share a device */
static int distinct(const herd_topo_pick *p, int n)
{
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++)
            if (p[a].device == p[b].device) return 0;
    return 1;
}

TEST(busid_forms_of_cuda_nvml_hwloc)
{
    char b[16];
    CHECK(herd_topo_busid_norm("0000:1B:00.0", b) == 0 && !strcmp(b, "0000:1b:00.0"));
    CHECK(herd_topo_busid_norm("00000000:1B:00.0", b) == 0 && !strcmp(b, "0000:1b:00.0"));
    CHECK(herd_topo_busid_norm("0000:e1:1f.7", b) == 0 && !strcmp(b, "0000:e1:1f.7"));
    CHECK(herd_topo_busid_norm("0000:1b:00", b) == -1);
    CHECK(herd_topo_busid_norm("0000:1b:00.0x", b) == -1);
    CHECK(herd_topo_busid_norm("0000:100:00.0", b) == -1);
    CHECK(herd_topo_busid_norm("mlx5_0", b) == -1);
    CHECK(herd_topo_busid_norm(NULL, b) == -1);
}

TEST(gpu2_fixture_matches_the_emulator)
{
    herd_topo_machine m;
    CHECK(herd_topo_machine_load(&m, FIX "gpu2.xml") == 0);
    CHECK(m.n_gpus == 2 && m.n_nics == 2 && m.n_packages == 2);
    CHECK(!strcmp(m.gpu[0].busid, "0000:11:00.0") && !strcmp(m.gpu[1].busid, "0000:91:00.0"));
    CHECK(!strcmp(m.gpu[0].cpus, "0-1") && !strcmp(m.gpu[1].cpus, "2-3"));
    CHECK(m.gpu[0].nearest_nic == 0 && m.gpu[1].nearest_nic == 1);
    CHECK(!strcmp(m.nic[1].name, "mlx5_1"));
}

TEST(all_visible_unbound_by_local_rank)
{
    herd_topo_machine m;
    herd_topo_pick p[8];
    CHECK(herd_topo_machine_load(&m, FIX "dgx_h100.xml") == 0);
    CHECK(herd_topo_pick_devices(&m, dgx_bus, 8, 8, NULL, p) == 0);
    for (int r = 0; r < 8; r++) {
        CHECK(p[r].device == r && p[r].gpu == r && p[r].nic == r);
        CHECK(!strcmp(p[r].how, "by local rank"));
    }
    CHECK(gpus_match_bus(&m, dgx_bus, p, 8));
    /* rank r's cores (herd_topo_machine_rank_cpus assumes GPU r % n) are the
     * ones herd_topo_machine_gpu_rank_cpus gives for these picks */
    int gpu_of[8];
    for (int r = 0; r < 8; r++) gpu_of[r] = p[r].gpu;
    for (int r = 0; r < 8; r++) {
        char a[HERD_TOPO_CPUS_LEN], b[HERD_TOPO_CPUS_LEN];
        CHECK(herd_topo_machine_rank_cpus(&m, r, 8, a, sizeof a) == 0);
        CHECK(herd_topo_machine_gpu_rank_cpus(&m, gpu_of, r, 8, b, sizeof b) == 0 && !strcmp(a, b));
    }
}

TEST(visible_order_renumbers_devices)
{
    /* CUDA_VISIBLE_DEVICES=7,6,...,0: CUDA's device 0 is the last GPU by bus id */
    herd_topo_machine m;
    herd_topo_pick p[8];
    char vis[8][16];
    for (int d = 0; d < 8; d++) memcpy(vis[d], dgx_bus[7 - d], 16);
    CHECK(herd_topo_machine_load(&m, FIX "dgx_h100.xml") == 0);
    CHECK(herd_topo_pick_devices(&m, (const char (*)[16])vis, 8, 8, NULL, p) == 0);
    for (int r = 0; r < 8; r++) CHECK(p[r].device == r && p[r].gpu == 7 - r && p[r].nic == 7 - r);
    CHECK(gpus_match_bus(&m, (const char (*)[16])vis, p, 8));
}

TEST(bound_ranks_take_the_gpu_nearest_their_cores)
{
    /* gpu_swapped: the 4 GPUs of the low bus ids hang off socket 1. Rank r is
     * bound to cores 2r and 2r+1 (PUs c and c + 16): ranks 0-3 on socket 0 */
    herd_topo_machine m;
    herd_topo_pick p[8];
    CHECK(herd_topo_machine_load(&m, FIX "gpu_swapped.xml") == 0);
    char vis[8][16], cpus[8][64];
    const char *bound[8];
    for (int d = 0; d < 8; d++) memcpy(vis[d], m.gpu[d].busid, 16);
    for (int r = 0; r < 8; r++) {
        snprintf(cpus[r], sizeof cpus[r], "%d-%d,%d-%d", 2 * r, 2 * r + 1, 2 * r + 16, 2 * r + 17);
        bound[r] = cpus[r];
    }
    CHECK(herd_topo_pick_devices(&m, (const char (*)[16])vis, 8, 8, bound, p) == 0);
    CHECK(distinct(p, 8));
    for (int r = 0; r < 8; r++) {
        CHECK(p[r].gpu == (r < 4 ? 4 + r : r - 4)); /* its own socket's GPUs */
        CHECK(!strcmp(p[r].how, "nearest its cores"));
    }
    /* unbound, the same machine: by local rank, across the sockets */
    CHECK(herd_topo_pick_devices(&m, (const char (*)[16])vis, 8, 8, NULL, p) == 0);
    for (int r = 0; r < 8; r++) CHECK(p[r].gpu == r);
}

TEST(one_visible_device_is_taken)
{
    /* --gpus-per-task=1: each rank sees only its own GPU (CUDA device 0) */
    herd_topo_machine m;
    herd_topo_pick p[2];
    static const char one[1][16] = {"0000:91:00.0"};
    CHECK(herd_topo_machine_load(&m, FIX "gpu2.xml") == 0);
    const char *bound[2] = {"0-1", "2-3"};
    CHECK(herd_topo_pick_devices(&m, one, 1, 2, bound, p) == 0);
    for (int r = 0; r < 2; r++) {
        CHECK(p[r].device == 0 && p[r].gpu == 1 && p[r].nic == 1);
        CHECK(!strcmp(p[r].how, "the only visible device"));
    }
}

TEST(more_ranks_than_devices_share_evenly)
{
    herd_topo_machine m;
    herd_topo_pick p[5];
    static const char two[2][16] = {"0000:11:00.0", "0000:91:00.0"};
    CHECK(herd_topo_machine_load(&m, FIX "gpu2.xml") == 0);
    CHECK(herd_topo_pick_devices(&m, two, 2, 5, NULL, p) == 0);
    int want[5] = {0, 1, 0, 1, 0};
    for (int r = 0; r < 5; r++) CHECK(p[r].device == want[r]);
    /* bound all to socket 1's cores: the first rank takes socket 1's GPU, the next the other */
    const char *bound[2] = {"2-3", "2-3"};
    CHECK(herd_topo_pick_devices(&m, two, 2, 2, bound, p) == 0);
    CHECK(p[0].device == 1 && p[1].device == 0);
}

TEST(unknown_devices_and_errors)
{
    herd_topo_machine m;
    herd_topo_pick p[2];
    CHECK(herd_topo_machine_load(&m, FIX "gpu2.xml") == 0);
    /* a device hwloc does not list: still picked, without locality */
    static const char other[2][16] = {"0000:05:00.0", "0000:91:00.0"};
    CHECK(herd_topo_pick_devices(&m, other, 2, 2, NULL, p) == 0);
    CHECK(p[0].device == 0 && p[0].gpu == -1 && p[0].nic == -1);
    CHECK(p[1].device == 1 && p[1].gpu == 1 && p[1].nic == 1);
    /* a machine without GPUs (the CPU part only) */
    herd_topo_machine none = m;
    none.n_gpus = 0;
    CHECK(herd_topo_pick_devices(&none, other, 2, 2, NULL, p) == 0 && p[1].device == 1 && p[1].gpu == -1);
    /* no device at all */
    fflush(stderr);
    CHECK(herd_topo_pick_devices(&m, other, 0, 2, NULL, p) == -1);
    CHECK(herd_topo_pick_devices(&m, other, 2, 0, NULL, p) == -1);
}

TEST(cores_follow_the_picked_gpu)
{
    /* two ranks, CUDA_VISIBLE_DEVICES=1,0: rank 0 drives socket 1's GPU and
     * runs on socket 1's cores */
    herd_topo_machine m;
    herd_topo_pick p[2];
    static const char rev[2][16] = {"0000:91:00.0", "0000:11:00.0"};
    CHECK(herd_topo_machine_load(&m, FIX "gpu2.xml") == 0);
    CHECK(herd_topo_pick_devices(&m, rev, 2, 2, NULL, p) == 0);
    int gpu_of[2] = {p[0].gpu, p[1].gpu};
    char buf[64];
    CHECK(gpu_of[0] == 1 && gpu_of[1] == 0);
    CHECK(herd_topo_machine_gpu_rank_cpus(&m, gpu_of, 0, 2, buf, sizeof buf) == 0 && !strcmp(buf, "2-3"));
    CHECK(herd_topo_machine_gpu_rank_cpus(&m, gpu_of, 1, 2, buf, sizeof buf) == 0 && !strcmp(buf, "0-1"));
    /* two ranks on one GPU split its package's cores; an unknown GPU: a share of all */
    int same[2] = {1, 1}, unknown[2] = {-1, -1};
    CHECK(herd_topo_machine_gpu_rank_cpus(&m, same, 0, 2, buf, sizeof buf) == 0 && !strcmp(buf, "2"));
    CHECK(herd_topo_machine_gpu_rank_cpus(&m, same, 1, 2, buf, sizeof buf) == 0 && !strcmp(buf, "3"));
    CHECK(herd_topo_machine_gpu_rank_cpus(&m, unknown, 1, 2, buf, sizeof buf) == 0 && !strcmp(buf, "2-3"));
}

TEST(current_cpus_of_this_process)
{
    char buf[HERD_TOPO_CPUS_LEN];
    int bound = herd_topo_current_cpus(buf, sizeof buf);
    CHECK(bound == 0 || bound == 1);
    CHECK(buf[0] >= '0' && buf[0] <= '9');
    char tiny[1];
    CHECK(herd_topo_current_cpus(tiny, sizeof tiny) == -1);
}

int main(void)
{
    if (chdir(getenv("HERD_ROOT") ? getenv("HERD_ROOT") : ".")) return 1;
    if (access(FIX "gpu2.xml", R_OK) && (chdir("../..") || access(FIX "gpu2.xml", R_OK))) {
        printf("FAIL fixtures: %s not found (run from the repository root)\n", FIX);
        return 1;
    }
    RUN(busid_forms_of_cuda_nvml_hwloc);
    RUN(gpu2_fixture_matches_the_emulator);
    RUN(all_visible_unbound_by_local_rank);
    RUN(visible_order_renumbers_devices);
    RUN(bound_ranks_take_the_gpu_nearest_their_cores);
    RUN(one_visible_device_is_taken);
    RUN(more_ranks_than_devices_share_evenly);
    RUN(unknown_devices_and_errors);
    RUN(cores_follow_the_picked_gpu);
    RUN(current_cpus_of_this_process);
    return test_summary();
}

/* test_nccl.c — comm.h over NCCL (kernels/cuda/comm_nccl.cu), one rank: the
 * NCCL twin of the MPI world on device buffers and on host buffers (staged),
 * results read back right after kernels that wrote the inputs (the group's
 * stream must wait for the default stream's compute), and a split through
 * the MPI twin. Skips without a GPU; multi-rank NCCL needs one GPU per rank
 * (NCCL refuses two ranks on one device), which the GPU machine lent to this
 * project does not have. */
#include <mpi.h>
#include <string.h>
#include "kernels/backend.h"
#include "kernels/comm.h"
#include "tests/unit/test.h"

static const herd_backend *gpu;
static herd_comm *world;

TEST(nccl_one_rank_device_and_host_buffers)
{
    if (!gpu) SKIP("no CUDA device");
    herd_comm *nc = herd_comm_nccl_from_mpi(world, "world-nccl");
    CHECK(nc != NULL);
    if (!nc) return;
    CHECK(nc->host == world && nc->size == 1 && nc->rank == 0);
    enum { N = 1 << 20 };
    float *h = malloc(sizeof(float) * N), *back = malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++) h[i] = (float)(i % 1000) * 0.5f;
    float *d = gpu->alloc(gpu, sizeof(float) * N), *d2 = gpu->alloc(gpu, sizeof(float) * N);
    /* device: a kernel writes the buffer (zero, then an add queued on the
     * default stream) and the all-reduce must see its result */
    gpu->copy_h2d(gpu, d2, h, sizeof(float) * N);
    gpu->zero(gpu, d, N);
    gpu->add_inplace(gpu, d, d2, N);
    CHECK(herd_comm_all_reduce(nc, d, N, HERD_F32, HERD_SUM) == 0);
    gpu->copy_d2h(gpu, back, d, sizeof(float) * N);
    CHECK(!memcmp(back, h, sizeof(float) * N));
    /* host scalars go through the staging buffer */
    double x = 2.5;
    CHECK(herd_comm_all_reduce(nc, &x, 1, HERD_F64, HERD_SUM) == 0 && x == 2.5);
    CHECK(herd_comm_broadcast(nc, &x, 1, HERD_F64, 0) == 0 && x == 2.5);
    int64_t k = 7;
    herd_comm_request *req = NULL;
    CHECK(herd_comm_iall_reduce(nc, &k, 1, HERD_I64, HERD_MAX, &req) == 0);
    CHECK(req && herd_comm_wait(nc, req) == 0 && k == 7);
    /* reduce-scatter and all-gather, device to device and host to host */
    size_t counts[1] = {N};
    gpu->zero(gpu, d2, N);
    CHECK(herd_comm_reduce_scatter(nc, d, d2, counts, HERD_F32) == 0);
    gpu->copy_d2h(gpu, back, d2, sizeof(float) * N);
    CHECK(!memcmp(back, h, sizeof(float) * N));
    memset(back, 0, sizeof(float) * N);
    CHECK(herd_comm_all_gather(nc, h, back, counts, HERD_F32) == 0);
    CHECK(!memcmp(back, h, sizeof(float) * N));
    /* a split of the NCCL group is an NCCL group over the split MPI twin */
    herd_comm *sub = herd_comm_mpi_split(nc, 0, 0, "sub");
    CHECK(sub && sub->host && sub->owns_host && !strcmp(sub->ops->name, "nccl"));
    if (sub) {
        double y = 1.25;
        CHECK(herd_comm_all_reduce(sub, &y, 1, HERD_F64, HERD_SUM) == 0 && y == 1.25);
        herd_comm_destroy(sub);
    }
    herd_comm_destroy(nc);
    gpu->free(gpu, d);
    gpu->free(gpu, d2);
    free(h);
    free(back);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    gpu = herd_backend_cuda();
    world = herd_comm_mpi_world();
    RUN(nccl_one_rank_device_and_host_buffers);
    herd_comm_destroy(world);
    MPI_Finalize();
    return test_summary();
}

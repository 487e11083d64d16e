// nccl.cpp — TEST TOOLING: the NCCL calls of kernels/cuda/comm_nccl.cu on the
// CPU emulation (include/nccl.h), carried out with MPI on host copies of the
// emulated device buffers.
//
// A communicator is an MPI communicator of exactly its ranks: the unique id
// names its creator (world rank) and a serial number; in ncclCommInitRank
// every member tells the creator its world rank, the creator answers with the
// member list, and MPI_Comm_create_group (collective over the members only)
// makes the communicator. Every operation completes before its call returns
// (the emulator's streams are synchronous), with two differences from NCCL:
// a send never waits for its receive (MPI_Isend of a copy, completed later),
// and a receive outside a group waits for its data. Inside
// ncclGroupStart/End the operations run at ncclGroupEnd: the point-to-point
// ones posted first, then the collectives in call order, then the receives
// completed. Each buffer must be memory of the current device.
// the C API only (Open MPI would pull in its C++ bindings, which are not linked)
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <nccl.h>
#include <functional>
#include <memory>
#include <vector>

struct emu_nccl_comm {
    MPI_Comm mc;
    int rank, size;
    std::vector<MPI_Request> sends;              // sends not known to be complete
    std::vector<std::vector<char> *> send_bufs;  // their host copies
};

namespace {
struct emu_id { unsigned magic, serial; int creator; };
const unsigned ID_MAGIC = 0x6e63636cu;  // "nccl"

int group_depth;
std::vector<std::function<void()>> group_post, group_run, group_finish;

size_t esize(ncclDataType_t t) { return t == ncclInt32 || t == ncclFloat32 ? 4 : 8; }
MPI_Datatype mtype(ncclDataType_t t)
{
    switch (t) {
    case ncclInt32: return MPI_INT32_T;
    case ncclInt64: return MPI_INT64_T;
    case ncclFloat32: return MPI_FLOAT;
    default: return MPI_DOUBLE;
    }
}
MPI_Op mop(ncclRedOp_t op)
{
    switch (op) {
    case ncclSum: return MPI_SUM;
    case ncclProd: return MPI_PROD;
    case ncclMax: return MPI_MAX;
    default: return MPI_MIN;
    }
}

// device -> host and back, through the emulator's checked copies
void d2h(std::vector<char> &v, const void *p, size_t n, const char *call)
{
    v.resize(n ? n : 1);
    if (!n) return;
    emu::check_current(p, call, "send buffer");
    if (cudaMemcpy(v.data(), p, n, cudaMemcpyDeviceToHost) != cudaSuccess) emu::fail("%s: copy out failed", call);
}
void h2d(void *p, const std::vector<char> &v, size_t n, const char *call)
{
    if (!n) return;
    emu::check_current(p, call, "receive buffer");
    if (cudaMemcpy(p, v.data(), n, cudaMemcpyHostToDevice) != cudaSuccess) emu::fail("%s: copy in failed", call);
}

void mpi_ok(int rc, const char *what)
{
    if (rc != MPI_SUCCESS) emu::fail("emulated NCCL: %s failed (MPI error %d)", what, rc);
}

// drop the host copies of the sends that completed
void reap(ncclComm_t c, int all)
{
    for (size_t i = 0; i < c->sends.size();) {
        int done = 0;
        if (all) mpi_ok(MPI_Wait(&c->sends[i], MPI_STATUS_IGNORE), "MPI_Wait");
        else mpi_ok(MPI_Test(&c->sends[i], &done, MPI_STATUS_IGNORE), "MPI_Test");
        if (all || done) {
            delete c->send_bufs[i];
            c->sends.erase(c->sends.begin() + (long)i);
            c->send_bufs.erase(c->send_bufs.begin() + (long)i);
        } else {
            i++;
        }
    }
}

// a collective: now, or at ncclGroupEnd
ncclResult_t collective(std::function<void()> run)
{
    if (group_depth) group_run.push_back(run);
    else run();
    return ncclSuccess;
}
}  // namespace

ncclResult_t ncclGetUniqueId(ncclUniqueId *id)
{
    static unsigned serial;
    emu_id e = {ID_MAGIC, serial++, 0};
    MPI_Comm_rank(MPI_COMM_WORLD, &e.creator);
    memset(id, 0, sizeof *id);
    memcpy(id->internal, &e, sizeof e);
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank)
{
    emu_id e;
    memcpy(&e, id.internal, sizeof e);
    if (e.magic != ID_MAGIC || nranks < 1 || rank < 0 || rank >= nranks) return ncclInvalidArgument;
    int me, *tag_ub = nullptr, flag = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &tag_ub, &flag);
    // its messages on MPI_COMM_WORLD: tags from the top of the range down
    // (MPI_TAG_UB: 2^23-1 under UCX, at least 32767 anywhere), far from herd's
    int tag = (flag ? *tag_ub : 32767) - (int)(e.serial % 4096);
    std::vector<int> members((size_t)nranks, -1);
    if (rank == 0) {
        if (e.creator != me) return ncclInvalidUsage;  // rank 0 made the id
        members[0] = me;
        for (int i = 1; i < nranks; i++) {
            int pair[2];
            mpi_ok(MPI_Recv(pair, 2, MPI_INT, MPI_ANY_SOURCE, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
            if (pair[1] < 1 || pair[1] >= nranks || members[(size_t)pair[1]] >= 0)
                emu::fail("emulated NCCL: ncclCommInitRank: rank %d given twice or out of 0..%d", pair[1], nranks - 1);
            members[(size_t)pair[1]] = pair[0];
        }
        for (int i = 1; i < nranks; i++)
            mpi_ok(MPI_Send(members.data(), nranks, MPI_INT, members[(size_t)i], tag, MPI_COMM_WORLD), "MPI_Send");
    } else {
        int pair[2] = {me, rank};
        mpi_ok(MPI_Send(pair, 2, MPI_INT, e.creator, tag, MPI_COMM_WORLD), "MPI_Send");
        mpi_ok(MPI_Recv(members.data(), nranks, MPI_INT, e.creator, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
    }
    MPI_Group world, g;
    MPI_Comm_group(MPI_COMM_WORLD, &world);
    mpi_ok(MPI_Group_incl(world, nranks, members.data(), &g), "MPI_Group_incl");
    ncclComm_t c = new emu_nccl_comm();
    mpi_ok(MPI_Comm_create_group(MPI_COMM_WORLD, g, tag, &c->mc), "MPI_Comm_create_group");
    MPI_Group_free(&g);
    MPI_Group_free(&world);
    MPI_Comm_rank(c->mc, &c->rank);
    MPI_Comm_size(c->mc, &c->size);
    if (c->rank != rank || c->size != nranks) emu::fail("emulated NCCL: communicator rank %d of %d, not %d of %d",
                                                         c->rank, c->size, rank, nranks);
    *comm = c;
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t c)
{
    if (!c) return ncclSuccess;
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) {
        reap(c, 1);
        MPI_Comm_free(&c->mc);
    }
    delete c;
    return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t r)
{
    switch (r) {
    case ncclSuccess: return "no error";
    case ncclInvalidArgument: return "invalid argument";
    case ncclInvalidUsage: return "invalid usage";
    default: return "emulated NCCL error";
    }
}

ncclResult_t ncclGroupStart(void) { group_depth++; return ncclSuccess; }

ncclResult_t ncclGroupEnd(void)
{
    if (group_depth == 0) return ncclInvalidUsage;
    if (--group_depth) return ncclSuccess;
    std::vector<std::function<void()>> post, run, finish;
    post.swap(group_post);
    run.swap(group_run);
    finish.swap(group_finish);
    for (auto &f : post) f();
    for (auto &f : run) f();
    for (auto &f : finish) f();
    return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t t, ncclRedOp_t op,
                           ncclComm_t c, cudaStream_t)
{
    return collective([=] {
        std::vector<char> v;
        d2h(v, send, count * esize(t), "ncclAllReduce");
        mpi_ok(MPI_Allreduce(MPI_IN_PLACE, v.data(), (int)count, mtype(t), mop(op), c->mc), "MPI_Allreduce");
        h2d(recv, v, count * esize(t), "ncclAllReduce");
    });
}

ncclResult_t ncclReduceScatter(const void *send, void *recv, size_t recvcount, ncclDataType_t t,
                               ncclRedOp_t op, ncclComm_t c, cudaStream_t)
{
    return collective([=] {
        std::vector<char> v, out(recvcount * esize(t) + 1);
        d2h(v, send, recvcount * c->size * esize(t), "ncclReduceScatter");
        mpi_ok(MPI_Reduce_scatter_block(v.data(), out.data(), (int)recvcount, mtype(t), mop(op), c->mc),
               "MPI_Reduce_scatter_block");
        h2d(recv, out, recvcount * esize(t), "ncclReduceScatter");
    });
}

ncclResult_t ncclAllGather(const void *send, void *recv, size_t sendcount, ncclDataType_t t, ncclComm_t c,
                           cudaStream_t)
{
    return collective([=] {
        std::vector<char> v, out(sendcount * c->size * esize(t) + 1);
        d2h(v, send, sendcount * esize(t), "ncclAllGather");
        mpi_ok(MPI_Allgather(v.data(), (int)sendcount, mtype(t), out.data(), (int)sendcount, mtype(t), c->mc),
               "MPI_Allgather");
        h2d(recv, out, sendcount * c->size * esize(t), "ncclAllGather");
    });
}

ncclResult_t ncclReduce(const void *send, void *recv, size_t count, ncclDataType_t t, ncclRedOp_t op,
                        int root, ncclComm_t c, cudaStream_t)
{
    return collective([=] {
        std::vector<char> v, out(count * esize(t) + 1);
        d2h(v, send, count * esize(t), "ncclReduce");
        mpi_ok(MPI_Reduce(v.data(), out.data(), (int)count, mtype(t), mop(op), root, c->mc), "MPI_Reduce");
        if (c->rank == root) h2d(recv, out, count * esize(t), "ncclReduce");
    });
}

ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, ncclDataType_t t, int root,
                           ncclComm_t c, cudaStream_t)
{
    return collective([=] {
        std::vector<char> v(count * esize(t) + 1);
        if (c->rank == root) d2h(v, send, count * esize(t), "ncclBroadcast");
        mpi_ok(MPI_Bcast(v.data(), (int)count, mtype(t), root, c->mc), "MPI_Bcast");
        h2d(recv, v, count * esize(t), "ncclBroadcast");
    });
}

ncclResult_t ncclSend(const void *send, size_t count, ncclDataType_t t, int peer, ncclComm_t c, cudaStream_t)
{
    auto post = [=] {
        auto *v = new std::vector<char>();
        d2h(*v, send, count * esize(t), "ncclSend");
        MPI_Request r;
        mpi_ok(MPI_Isend(v->data(), (int)count, mtype(t), peer, 0, c->mc, &r), "MPI_Isend");
        c->sends.push_back(r);
        c->send_bufs.push_back(v);
        reap(c, 0);
    };
    if (group_depth) group_post.push_back(post);
    else post();
    return ncclSuccess;
}

ncclResult_t ncclRecv(void *recv, size_t count, ncclDataType_t t, int peer, ncclComm_t c, cudaStream_t)
{
    size_t n = count * esize(t);
    if (!group_depth) {
        std::vector<char> v(n + 1);
        mpi_ok(MPI_Recv(v.data(), (int)count, mtype(t), peer, 0, c->mc, MPI_STATUS_IGNORE), "MPI_Recv");
        h2d(recv, v, n, "ncclRecv");
        return ncclSuccess;
    }
    auto v = std::make_shared<std::vector<char>>(n + 1);
    auto r = std::make_shared<MPI_Request>();
    group_post.push_back([=] {
        mpi_ok(MPI_Irecv(v->data(), (int)count, mtype(t), peer, 0, c->mc, r.get()), "MPI_Irecv");
    });
    group_finish.push_back([=] {
        mpi_ok(MPI_Wait(r.get(), MPI_STATUS_IGNORE), "MPI_Wait");
        h2d(recv, *v, n, "ncclRecv");
    });
    return ncclSuccess;
}

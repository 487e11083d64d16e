/* comm.c — the timed, checked entry points of comm.h, over either implementation. */
#include <stdio.h>
#include "kernels/comm.h"
#include "monitoring/watchdog.h"
#include "monitoring/clock.h"

size_t herd_dtype_size(herd_dtype t)
{
    return t == HERD_F64 || t == HERD_I64 ? 8 : 4;
}

size_t herd_split_counts(size_t n, int parts, size_t *counts, int i)
{
    size_t off = 0, at = 0;
    for (int r = 0; r < parts; r++) {
        size_t c = n / (size_t)parts + ((size_t)r < n % (size_t)parts);
        if (counts) counts[r] = c;
        if (r == i) at = off;
        off += c;
    }
    return at;
}

/* Each wrapper: time the call, and on failure name the group and the call. */
#define TIMED(c, what, call)                                                              \
    do {                                                                                  \
        double t0_ = herd_now_s();                                                             \
        herd_watchdog_enter("%s on group '%s' (%d ranks)", what, (c)->name, (c)->size);   \
        int rc_ = (call);                                                                 \
        herd_watchdog_leave();                                                            \
        (c)->seconds += herd_now_s() - t0_;                                                    \
        if (rc_) {                                                                        \
            fprintf(stderr, "herd: rank %d of group '%s' (%s): %s failed\n", (c)->rank,   \
                    (c)->name, (c)->ops->name, what);                                     \
            return -1;                                                                    \
        }                                                                                 \
        return 0;                                                                         \
    } while (0)

int herd_comm_all_reduce(herd_comm *c, void *buf, size_t n, herd_dtype t, herd_redop op)
{
    if (c->size == 1) return 0;
    TIMED(c, "all_reduce", c->ops->all_reduce(c, buf, n, t, op));
}

int herd_comm_reduce_scatter(herd_comm *c, const void *send, void *recv, const size_t *counts,
                             herd_dtype t)
{
    TIMED(c, "reduce_scatter", c->ops->reduce_scatter(c, send, recv, counts, t));
}

int herd_comm_all_gather(herd_comm *c, const void *send, void *recv, const size_t *counts,
                         herd_dtype t)
{
    TIMED(c, "all_gather", c->ops->all_gather(c, send, recv, counts, t));
}

int herd_comm_broadcast(herd_comm *c, void *buf, size_t n, herd_dtype t, int root)
{
    if (c->size == 1) return 0;
    TIMED(c, "broadcast", c->ops->broadcast(c, buf, n, t, root));
}

int herd_comm_send(herd_comm *c, const void *buf, size_t n, herd_dtype t, int peer, int tag)
{
    TIMED(c, "send", c->ops->send(c, buf, n, t, peer, tag));
}

int herd_comm_recv(herd_comm *c, void *buf, size_t n, herd_dtype t, int peer, int tag)
{
    TIMED(c, "recv", c->ops->recv(c, buf, n, t, peer, tag));
}

int herd_comm_isend(herd_comm *c, const void *buf, size_t n, herd_dtype t, int peer, int tag,
                    herd_comm_request **req)
{
    TIMED(c, "isend", c->ops->isend(c, buf, n, t, peer, tag, req));
}

int herd_comm_irecv(herd_comm *c, void *buf, size_t n, herd_dtype t, int peer, int tag,
                    herd_comm_request **req)
{
    TIMED(c, "irecv", c->ops->irecv(c, buf, n, t, peer, tag, req));
}

int herd_comm_iall_reduce(herd_comm *c, void *buf, size_t n, herd_dtype t, herd_redop op,
                          herd_comm_request **req)
{
    TIMED(c, "iall_reduce", c->ops->iall_reduce(c, buf, n, t, op, req));
}

int herd_comm_ireduce_scatter(herd_comm *c, const void *send, void *recv, const size_t *counts,
                              herd_dtype t, herd_comm_request **req)
{
    TIMED(c, "ireduce_scatter", c->ops->ireduce_scatter(c, send, recv, counts, t, req));
}

int herd_comm_wait(herd_comm *c, herd_comm_request *req)
{
    TIMED(c, "wait", c->ops->wait(c, req));
}

int herd_comm_barrier(herd_comm *c)
{
    TIMED(c, "barrier", c->ops->barrier(c));
}

void herd_comm_destroy(herd_comm *c)
{
    if (c) c->ops->destroy(c);
}

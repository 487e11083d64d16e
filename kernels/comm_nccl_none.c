/* comm_nccl_none.c — herd_comm_nccl_from_mpi when built without CUDA/NCCL. */
#include <stdio.h>
#include "kernels/comm.h"

#ifndef HERD_HAVE_CUDA
herd_comm *herd_comm_nccl_from_mpi(herd_comm *mpi_group, const char *name)
{
    fprintf(stderr, "herd: group '%s': NCCL is not available (herd was built without nvcc)\n",
            name);
    return NULL;
}
#endif

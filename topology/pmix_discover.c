/* pmix_discover.c — the job's ranks from PMIx: hostname, node id and local
 * rank of every rank, without MPI. Works under any PMIx launcher (srun
 * --mpi=pmix, mpirun/prterun); the caller gives the result to
 * herd_topo_from_hosts. */
#include <pmix.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "topology/topo.h"

static int get_u32(const pmix_proc_t *p, const char *key, uint32_t *out)
{
    pmix_value_t *v = NULL;
    if (PMIx_Get(p, key, NULL, 0, &v) != PMIX_SUCCESS || !v) return -1;
    int rc = 0;
    if (v->type == PMIX_UINT32) *out = v->data.uint32;
    else if (v->type == PMIX_UINT16) *out = v->data.uint16;
    else if (v->type == PMIX_INT) *out = (uint32_t)v->data.integer;
    else rc = -1;
    PMIX_VALUE_RELEASE(v);
    return rc;
}

int herd_topo_pmix_ranks(herd_topo_pmix_job *job)
{
    memset(job, 0, sizeof *job);
    pmix_proc_t me;
    pmix_status_t st = PMIx_Init(&me, NULL, 0);
    if (st != PMIX_SUCCESS) {
        fprintf(stderr, "herd topo: PMIx_Init: %s (not started by a PMIx launcher: srun --mpi=pmix or mpirun)\n",
                PMIx_Error_string(st));
        return -1;
    }
    int rc = -1;
    pmix_proc_t wild;
    PMIX_LOAD_PROCID(&wild, me.nspace, PMIX_RANK_WILDCARD);
    uint32_t size = 0;
    if (get_u32(&wild, PMIX_JOB_SIZE, &size) || size == 0) {
        fprintf(stderr, "herd topo: PMIx: no %s for namespace %s\n", PMIX_JOB_SIZE, me.nspace);
        goto out;
    }
    job->n_ranks = (int)size;
    job->my_rank = (int)me.rank;
    job->hostnames = calloc(size, sizeof *job->hostnames);
    job->node_id = calloc(size, sizeof *job->node_id);
    job->local_rank = calloc(size, sizeof *job->local_rank);
    if (!job->hostnames || !job->node_id || !job->local_rank) goto out;
    for (uint32_t r = 0; r < size; r++) {
        pmix_proc_t p;
        PMIX_LOAD_PROCID(&p, me.nspace, r);
        pmix_value_t *v = NULL;
        if (PMIx_Get(&p, PMIX_HOSTNAME, NULL, 0, &v) != PMIX_SUCCESS || !v || v->type != PMIX_STRING) {
            fprintf(stderr, "herd topo: PMIx: no %s for rank %u\n", PMIX_HOSTNAME, r);
            if (v) PMIX_VALUE_RELEASE(v);
            goto out;
        }
        job->hostnames[r] = strdup(v->data.string);
        PMIX_VALUE_RELEASE(v);
        uint32_t x;
        job->node_id[r] = get_u32(&p, PMIX_NODEID, &x) ? -1 : (int)x;
        job->local_rank[r] = get_u32(&p, PMIX_LOCAL_RANK, &x) ? -1 : (int)x;
    }
    rc = 0;
out:
    PMIx_Finalize(NULL, 0);
    if (rc) herd_topo_pmix_free(job);
    return rc;
}

void herd_topo_pmix_free(herd_topo_pmix_job *job)
{
    if (job->hostnames)
        for (int r = 0; r < job->n_ranks; r++) free(job->hostnames[r]);
    free(job->hostnames);
    free(job->node_id);
    free(job->local_rank);
    memset(job, 0, sizeof *job);
}

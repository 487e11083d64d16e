/* placement.c — see placement.h. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "src/parallel/placement.h"
#include "topology/topo.h"

enum { NAME_LEN = 64 };

static void identity(int *perm, int n)
{
    for (int i = 0; i < n; i++) perm[i] = i;
}

/* parallel.links into the tree (a stand-in when there is none, so that a bad
 * file is refused either way); every rank must agree, or the ranks that read
 * it would go on into the grid's collectives without the others */
static int load_links(herd_topo *t, const char *path)
{
    herd_topo none;
    memset(&none, 0, sizeof none);
    int bad = path[0] ? herd_topo_links_load(t ? t : &none, path) != 0 : 0, any = bad;
    if (MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS) return -1;
    if (any && !bad) fprintf(stderr, "herd: placement: key 'parallel.links': %s could not be read on another rank\n",
                             path);
    return any ? -1 : 0;
}

int herd_placement_perm(const herd_config_parallel *p, int world_size, int *perm, char *desc, size_t n)
{
    identity(perm, world_size);
    int inner = p->tp * p->cp * p->pp;
    int dp = p->dp ? p->dp : (world_size % inner ? 0 : world_size / inner);
    if (dp == 0 || inner * dp != world_size) {
        snprintf(desc, n, "identity (the layout does not divide the world)");
        return 0;
    }
    char me[NAME_LEN] = {0};
    const char *node = getenv("SLURMD_NODENAME");
    if (node && *node) snprintf(me, sizeof me, "%s", node);
    else gethostname(me, sizeof me - 1);
    char *all = calloc((size_t)world_size, NAME_LEN);
    const char **names = calloc((size_t)world_size, sizeof *names);
    if (!all || !names ||
        MPI_Allgather(me, NAME_LEN, MPI_CHAR, all, NAME_LEN, MPI_CHAR, MPI_COMM_WORLD) != MPI_SUCCESS) {
        free(all);
        free(names);
        fprintf(stderr, "herd: placement: gathering the node names failed\n");
        return -1;
    }
    for (int r = 0; r < world_size; r++) names[r] = all + (size_t)r * NAME_LEN;
    char conf[1024];
    int have_conf = herd_topo_conf_default(conf, sizeof conf) == 0;
    herd_topo *t = NULL;
    /* the topology library prints why it cannot build a tree; keep it to rank 0's log */
    int built = herd_topo_from_hosts(&t, world_size, names, have_conf ? conf : NULL) == 0;
    if (load_links(built ? t : NULL, p->links)) {
        herd_topo_free(t);
        free(all);
        free(names);
        return -1;
    }
    if (built && herd_topo_place(t, p->tp, p->cp, p->pp, dp, perm) == 0) {
        snprintf(desc, n, "network-aware (topology/%s%s%s)", have_conf ? conf : "host names only",
                 p->links[0] ? ", links " : "", p->links);
    } else {
        identity(perm, world_size);
        snprintf(desc, n, "identity (no usable topology)");
    }
    herd_topo_free(t);
    free(all);
    free(names);
    return 0;
}

int herd_placement_bind(char *desc, size_t n)
{
    const char *lr = getenv("OMPI_COMM_WORLD_LOCAL_RANK"), *ls = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (!lr) lr = getenv("SLURM_LOCALID");
    if (!ls) ls = getenv("SLURM_NTASKS_PER_NODE");
    if (!lr || !ls) {
        snprintf(desc, n, "not bound (no local rank from the launcher)");
        return 0;
    }
    herd_topo_machine m;
    if (herd_topo_machine_load(&m, NULL)) return -1;
    return herd_topo_bind_rank(&m, atoi(lr), atoi(ls), desc, n);
}

int herd_placement_prepare(const herd_config_parallel *p, int cuda, int world_size, int *perm,
                           herd_device_info *dev, char *place, size_t place_len, char *bind, size_t bind_len)
{
    memset(dev, 0, sizeof *dev);
    dev->device = -1;
    if (p->placement) {
        if (herd_placement_perm(p, world_size, perm, place, place_len)) return -1;
    } else {
        identity(perm, world_size);
        snprintf(place, place_len, "rank order");
    }
    if (cuda) {
        int rc = herd_device_select(p->bind_cores, p->share_gpu, 1, dev);
        if (rc) return rc;
        snprintf(bind, bind_len, "cores %s (%s), GPU %s", dev->cores, dev->binding, dev->busid);
    } else if (p->bind_cores && herd_placement_bind(bind, bind_len)) {
        snprintf(bind, bind_len, "binding failed (see above)");
    }
    return 0;
}

/* bench_ckpt_layout.c — one HDF5 file per rank vs one shared file (parallel
 * HDF5 over MPI-IO), the checkpoint library's layout choice, measured on this
 * machine.
 *
 *   mpirun -np N build/benchmarks/bench_ckpt_layout [MB_PER_RANK [DIR]]   (default 128 MB)
 *
 * Every rank holds 8 tensors' row blocks. (a) per rank: each rank writes its
 * own file with the default driver; (b) shared, collective: one file through
 * the MPI-IO driver, every rank writes its hyperslab of each global dataset
 * with collective transfers; (c) shared, independent transfers. Each write
 * ends with the data on disk (fsync), and its time is the slowest rank's.
 * 3 interleaved rounds, medians. One JSON line. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <hdf5.h>
#include <mpi.h>
#include "monitoring/clock.h"

static void fsync_file(const char *p)
{
    int fd = open(p, O_RDONLY);
    if (fd >= 0) { if (fsync(fd)) perror(p); close(fd); }
}

enum { NT = 8 };
static int rank, world;
static hsize_t rows, cols = 4096;
static float *data[NT];

static double per_rank(const char *dir)
{
    char p[600];
    snprintf(p, sizeof p, "%s/shard_%05d.h5", dir, rank);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = herd_now_s();
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    for (int t = 0; t < NT; t++) {
        char name[32];
        snprintf(name, sizeof name, "t%d", t);
        hsize_t d[2] = {rows, cols};
        hid_t sp = H5Screate_simple(2, d, NULL);
        hid_t ds = H5Dcreate2(f, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data[t]);
        H5Dclose(ds);
        H5Sclose(sp);
    }
    H5Fclose(f);
    fsync_file(p);
    double t = herd_now_s() - t0;
    MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    unlink(p);
    return t;
}

static double shared(const char *dir, int collective)
{
    char p[600];
    snprintf(p, sizeof p, "%s/shared.h5", dir);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = herd_now_s();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL);
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(dxpl, collective ? H5FD_MPIO_COLLECTIVE : H5FD_MPIO_INDEPENDENT);
    for (int t = 0; t < NT; t++) {
        char name[32];
        snprintf(name, sizeof name, "t%d", t);
        hsize_t g[2] = {rows * (hsize_t)world, cols}, off[2] = {rows * (hsize_t)rank, 0}, cnt[2] = {rows, cols};
        hid_t fsp = H5Screate_simple(2, g, NULL);
        hid_t ds = H5Dcreate2(f, name, H5T_IEEE_F32LE, fsp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hid_t msp = H5Screate_simple(2, cnt, NULL);
        H5Sselect_hyperslab(fsp, H5S_SELECT_SET, off, NULL, cnt, NULL);
        H5Dwrite(ds, H5T_NATIVE_FLOAT, msp, fsp, dxpl, data[t]);
        H5Sclose(msp);
        H5Dclose(ds);
        H5Sclose(fsp);
    }
    H5Pclose(dxpl);
    H5Fclose(f);
    if (rank == 0) fsync_file(p);   /* one node: one page cache, one fsync covers every rank's writes */
    double t = herd_now_s() - t0;
    MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) unlink(p);
    return t;
}

static double med3(double *v)
{
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (v[j] < v[i]) { double x = v[i]; v[i] = v[j]; v[j] = x; }
    return v[1];
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    double mb = argc > 1 ? atof(argv[1]) : 128.0;
    const char *dir = argc > 2 ? argv[2] : "build/bench/ckpt_layout";
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (rank == 0 && system(cmd)) { fprintf(stderr, "cannot create %s\n", dir); MPI_Abort(MPI_COMM_WORLD, 1); }
    MPI_Barrier(MPI_COMM_WORLD);
    rows = (hsize_t)(mb * 1e6 / 4 / (double)cols / NT);
    for (int t = 0; t < NT; t++) {
        data[t] = malloc(rows * cols * sizeof(float));
        for (hsize_t i = 0; i < rows * cols; i++) data[t][i] = (float)(i % 977) + (float)rank;
    }
    double a[3], b[3], c[3];
    for (int r = 0; r < 3; r++) {
        a[r] = per_rank(dir);
        b[r] = shared(dir, 1);
        c[r] = shared(dir, 0);
    }
    double total = (double)rows * (double)cols * 4 * NT * world / 1e6;
    double ma = med3(a), mb_ = med3(b), mc = med3(c);
    if (rank == 0) {
        printf("%d ranks x %.0f MB, median of 3, slowest rank, to disk:\n", world, total / world);
        printf("  one file per rank:           %.3f s  %.0f MB/s\n", ma, total / ma);
        printf("  one shared file, collective: %.3f s  %.0f MB/s\n", mb_, total / mb_);
        printf("  one shared file, independent:%.3f s  %.0f MB/s\n", mc, total / mc);
        printf("{\"bench\":\"ckpt_layout\",\"ranks\":%d,\"mb_per_rank\":%.1f,\"per_rank_s\":%.4f,"
               "\"shared_collective_s\":%.4f,\"shared_independent_s\":%.4f}\n", world, total / world, ma, mb_, mc);
    }
    for (int t = 0; t < NT; t++) free(data[t]);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (rank == 0 && system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
    MPI_Finalize();
    return 0;
}

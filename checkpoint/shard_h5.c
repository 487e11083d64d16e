/* shard_h5.c — the HDF5 side of writing: one rank's shard file, and rank 0's
 * global-view file model.h5 of virtual datasets. Runs on the writer's
 * background thread (shards) or on rank 0's main thread once every shard is
 * done (global view), never both at once: HDF5 is not thread-safe. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hdf5.h>
#include "checkpoint/internal.h"
#include "checkpoint/safe_file.h"
#include "monitoring/clock.h"

void ckpt_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

void ckpt_slice_path(const ckpt_entry *e, char *out, size_t n)
{
    snprintf(out, n, "/%s/%s/%" PRId64 "_%" PRId64, e->kind, e->name, e->offset[0],
             e->ndim > 1 ? e->offset[1] : 0);
}

/* Fault injection for the kill tests: HERD_CKPT_PAUSE_AT=POINT makes this
 * process create the file HERD_CKPT_PAUSE_MARK and sleep at POINT, so that a
 * test can SIGKILL it there (the file holds the pid; HERD_CKPT_PAUSE_RANK
 * limits it to one rank of an MPI job). Points: shard_open, shard_written, shard_synced,
 * shard_renamed, before_manifest. */
void ckpt_fault_point(const char *point)
{
    const char *at = getenv("HERD_CKPT_PAUSE_AT");
    if (!at || strcmp(at, point)) return;
    /* HERD_CKPT_PAUSE_RANK=R: only that rank of the job (as the launcher numbers it) */
    const char *only = getenv("HERD_CKPT_PAUSE_RANK");
    const char *me = getenv("OMPI_COMM_WORLD_RANK");
    if (!me) me = getenv("PMIX_RANK");
    if (only && (!me || strcmp(only, me))) return;
    const char *mark = getenv("HERD_CKPT_PAUSE_MARK");
    if (mark) {   /* written under a temp name: the test reads a whole pid or nothing */
        char tmp[4200], pid[32];
        snprintf(tmp, sizeof tmp, "%s.tmp", mark);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            int k = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
            if (write(fd, pid, (size_t)k) != k) fprintf(stderr, "checkpoint: %s: short write\n", tmp);
            close(fd);
            rename(tmp, mark);
        }
    }
    fprintf(stderr, "checkpoint: paused at %s (HERD_CKPT_PAUSE_AT)\n", point);
    for (int i = 0; i < 600; i++) sleep(1);
}

static int attr_i64(hid_t loc, const char *name, const int64_t *v, int n)
{
    hsize_t d = (hsize_t)n;
    hid_t sp = H5Screate_simple(1, &d, NULL);
    hid_t a = H5Acreate2(loc, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = (a < 0 || H5Awrite(a, H5T_NATIVE_INT64, v) < 0) ? -1 : 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return rc;
}

static int attr_str(hid_t loc, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = (a < 0 || H5Awrite(a, t, v) < 0) ? -1 : 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return rc;
}

/* Open group /a or /a/b, creating it when missing. */
static hid_t group_get(hid_t loc, const char *name)
{
    if (H5Lexists(loc, name, H5P_DEFAULT) > 0) return H5Gopen2(loc, name, H5P_DEFAULT);
    return H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
}

static int write_slices(hid_t fid, const ckpt_entry *ents, const float *const *data, int n,
                        const char *path)
{
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);   /* every byte is written by us */
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        const ckpt_entry *e = &ents[i];
        char dname[64];
        snprintf(dname, sizeof dname, "%" PRId64 "_%" PRId64, e->offset[0], e->ndim > 1 ? e->offset[1] : 0);
        hid_t gk = group_get(fid, e->kind);
        hid_t gt = gk >= 0 ? group_get(gk, e->name) : -1;
        hsize_t dims[2] = {(hsize_t)e->shape[0], (hsize_t)e->shape[1]};
        hid_t sp = H5Screate_simple(e->ndim, dims, NULL);
        hid_t d = gt >= 0 ? H5Dcreate2(gt, dname, H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT) : -1;
        if (d < 0 || H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data[i]) < 0 ||
            attr_i64(d, "global_shape", e->global_shape, e->ndim) ||
            attr_i64(d, "offset", e->offset, e->ndim)) {
            fprintf(stderr, "checkpoint: %s: cannot write dataset /%s/%s/%s (duplicate slice?)\n",
                    path, e->kind, e->name, dname);
            rc = -1;
        }
        if (d >= 0) H5Dclose(d);
        H5Sclose(sp);
        if (gt >= 0) H5Gclose(gt);
        if (gk >= 0) H5Gclose(gk);
    }
    H5Pclose(dcpl);
    return rc;
}

int ckpt_shard_write(const char *step_dir, int rank, int world, int64_t step,
                     const ckpt_entry *ents, const float *const *data, int n,
                     const void *meta, size_t meta_len, ckpt_shard_result *res)
{
    ckpt_h5_quiet();
    char name[32], fin[4200];
    ckpt_shard_name(rank, name, sizeof name);
    snprintf(fin, sizeof fin, "%s/%s", step_dir, name);
    ckpt_fault_point("shard_open");
    double t0 = herd_now_s();

    /* created here, exclusively and 0640, then opened by HDF5 by name
     * (HDF5 cannot take a descriptor); the commit renames it only if the
     * name is still this file */
    herd_safe_file sf;
    if (herd_safe_file_begin(&sf, fin)) return -1;
    const char *tmp = sf.tmp_path;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_sec2(fapl);
    hid_t fid = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (fid < 0) {
        fprintf(stderr, "checkpoint: %s: cannot create HDF5 file\n", tmp);
        herd_safe_file_abort(&sf);
        return -1;
    }
    int64_t hdr[4] = {step, rank, world, (int64_t)meta_len};
    int rc = attr_str(fid, "format", HERD_CKPT_FORMAT) || attr_i64(fid, "step", &hdr[0], 1) ||
             attr_i64(fid, "rank", &hdr[1], 1) || attr_i64(fid, "world", &hdr[2], 1) ||
             attr_i64(fid, "meta_bytes", &hdr[3], 1) ? -1 : 0;
    if (!rc && meta_len) {
        hsize_t d = meta_len;
        hid_t sp = H5Screate_simple(1, &d, NULL);
        hid_t ds = H5Dcreate2(fid, "meta", H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, meta) < 0) rc = -1;
        if (ds >= 0) H5Dclose(ds);
        H5Sclose(sp);
    }
    if (rc) fprintf(stderr, "checkpoint: %s: cannot write header attributes or /meta\n", tmp);
    if (!rc) rc = write_slices(fid, ents, data, n, tmp);
    /* the shard's own slice index: readers find the slices without opening
     * every dataset, and the MANIFEST need not list them */
    if (!rc && ckpt_index_write_h5(fid, ents, n)) {
        fprintf(stderr, "checkpoint: %s: cannot write dataset /index\n", tmp);
        rc = -1;
    }
    if (H5Fclose(fid) < 0) {
        fprintf(stderr, "checkpoint: %s: closing the HDF5 file failed\n", tmp);
        rc = -1;
    }
    if (rc) { herd_safe_file_abort(&sf); return -1; }
    ckpt_fault_point("shard_written");
    double t1 = herd_now_s();

    /* Start the kernel's writeback now and checksum the file while it runs
     * (the pages are still in the page cache), then wait for it with fsync. */
    sync_file_range(sf.fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    if (ckpt_xxh64_fd(sf.fd, tmp, &res->xxh64, &res->size)) { herd_safe_file_abort(&sf); return -1; }
    double t2 = herd_now_s();
    if (fsync(sf.fd)) {
        fprintf(stderr, "checkpoint: %s: fsync failed: %s\n", tmp, strerror(errno));
        herd_safe_file_abort(&sf);
        return -1;
    }
    double t3 = herd_now_s();
    if (getenv("HERD_CKPT_TRACE"))   /* where the background time goes */
        fprintf(stderr, "checkpoint: rank %d shard %.1f MB: hdf5 write %.3f s, xxh64 read-back %.3f s, fsync %.3f s\n",
                rank, (double)res->size / 1e6, t1 - t0, t2 - t1, t3 - t2);
    ckpt_fault_point("shard_synced");
    if (herd_safe_file_commit(&sf)) return -1;   /* rename, fsync of the step directory */
    ckpt_fault_point("shard_renamed");
    return 0;
}

static int ent_cmp(const void *a, const void *b)
{
    const ckpt_entry *x = a, *y = b;
    int c = strcmp(x->kind, y->kind);
    return c ? c : strcmp(x->name, y->name);
}

int ckpt_global_view_write(const char *step_dir, const ckpt_manifest *m)
{
    ckpt_h5_quiet();
    char fin[4200];
    snprintf(fin, sizeof fin, "%s/model.h5", step_dir);
    herd_safe_file sf;
    if (herd_safe_file_begin(&sf, fin)) return -1;
    const char *tmp = sf.tmp_path;
    ckpt_entry *e = malloc((size_t)(m->n_ents ? m->n_ents : 1) * sizeof *e);
    if (m->n_ents) memcpy(e, m->ents, (size_t)m->n_ents * sizeof *e);   /* ents is NULL when empty */
    qsort(e, (size_t)m->n_ents, sizeof *e, ent_cmp);

    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST); /* VDS needs the 1.10 format */
    hid_t fid = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (fid < 0) {
        fprintf(stderr, "checkpoint: %s: cannot create HDF5 file\n", tmp);
        free(e);
        herd_safe_file_abort(&sf);
        return -1;
    }
    int64_t hdr[2] = {m->step, m->world};
    int rc = attr_str(fid, "format", HERD_CKPT_FORMAT) || attr_i64(fid, "step", &hdr[0], 1) ||
             attr_i64(fid, "world", &hdr[1], 1) ? -1 : 0;
    float nan = 0.0f / 0.0f;  /* a region no shard holds reads as NaN, never as a plausible 0 */
    for (int i = 0; i < m->n_ents && !rc;) {
        int j = i;
        while (j < m->n_ents && !ent_cmp(&e[i], &e[j])) j++;
        hsize_t gd[2] = {(hsize_t)e[i].global_shape[0], (hsize_t)e[i].global_shape[1]};
        hid_t vsp = H5Screate_simple(e[i].ndim, gd, NULL);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_fill_value(dcpl, H5T_NATIVE_FLOAT, &nan);
        for (int k = i; k < j && !rc; k++) {
            hsize_t off[2] = {(hsize_t)e[k].offset[0], (hsize_t)e[k].offset[1]};
            hsize_t cnt[2] = {(hsize_t)e[k].shape[0], (hsize_t)e[k].shape[1]};
            hid_t ssp = H5Screate_simple(e[k].ndim, cnt, NULL);
            char src[256], sfile[32];
            ckpt_slice_path(&e[k], src, sizeof src);
            ckpt_shard_name(e[k].rank, sfile, sizeof sfile);
            if (H5Sselect_hyperslab(vsp, H5S_SELECT_SET, off, NULL, cnt, NULL) < 0 ||
                H5Pset_virtual(dcpl, vsp, sfile, src, ssp) < 0)
                rc = -1;
            H5Sclose(ssp);
        }
        H5Sselect_all(vsp);
        hid_t gk = rc ? -1 : group_get(fid, e[i].kind);
        hid_t d = gk >= 0 ? H5Dcreate2(gk, e[i].name, H5T_IEEE_F32LE, vsp, H5P_DEFAULT, dcpl, H5P_DEFAULT) : -1;
        if (d < 0 || attr_i64(d, "global_shape", e[i].global_shape, e[i].ndim)) {
            fprintf(stderr, "checkpoint: %s: cannot create virtual dataset /%s/%s\n", tmp, e[i].kind, e[i].name);
            rc = -1;
        }
        if (d >= 0) H5Dclose(d);
        if (gk >= 0) H5Gclose(gk);
        H5Pclose(dcpl);
        H5Sclose(vsp);
        i = j;
    }
    free(e);
    if (H5Fclose(fid) < 0) rc = -1;
    if (rc) { herd_safe_file_abort(&sf); return -1; }
    return herd_safe_file_commit(&sf);
}

/* export.c — a checkpoint as one single-file model: safetensors (Hugging Face
 * tools) or HDF5, every tensor whole under its Llama name. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hdf5.h>
#include "checkpoint/internal.h"
#include "checkpoint/safe_file.h"
#include "checkpoint/safetensors.h"

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static int write_h5(const char *out_path, herd_ckpt *c, const herd_st_tensor *t, int n)
{
    herd_safe_file sf;
    if (herd_safe_file_begin(&sf, out_path)) return -1;
    const char *tmp = sf.tmp_path;
    ckpt_h5_quiet();
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "checkpoint: export: %s: cannot create HDF5 file\n", tmp);
        herd_safe_file_abort(&sf);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        hsize_t d[2] = {(hsize_t)t[i].shape[0], (hsize_t)t[i].shape[1]};
        hid_t sp = H5Screate_simple(t[i].ndim, d, NULL);
        hid_t ds = H5Dcreate2(f, t[i].name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t[i].data) < 0) {
            fprintf(stderr, "checkpoint: export: %s: cannot write dataset %s\n", tmp, t[i].name);
            rc = -1;
        }
        if (ds >= 0) H5Dclose(ds);
        H5Sclose(sp);
    }
    hsize_t one = 1;
    int64_t step = herd_ckpt_step(c);
    hid_t sp = H5Screate_simple(1, &one, NULL);
    hid_t a = H5Acreate2(f, "step", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, H5T_NATIVE_INT64, &step) < 0) rc = -1;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    if (H5Fclose(f) < 0) rc = -1;
    if (rc) {
        herd_safe_file_abort(&sf);
        return -1;
    }
    return herd_safe_file_commit(&sf);
}

int ckpt_export_gather(herd_ckpt *c, const char *step_dir, const char *kind, herd_st_tensor **out,
                       int *n_out)
{
    int nt = herd_ckpt_n_tensors(c), n = 0, rc = 0;
    herd_st_tensor *t = calloc((size_t)(nt ? nt : 1), sizeof *t);
    for (int i = 0; i < nt && !rc && t; i++) {
        const char *k, *name;
        int nd;
        int64_t g[2];
        herd_ckpt_tensor(c, i, &k, &name, &nd, g);
        if (strcmp(k, kind)) continue;
        int64_t cnt = g[0] * (nd > 1 ? g[1] : 1);
        float *buf = malloc((size_t)cnt * sizeof *buf);
        if (!buf) {
            fprintf(stderr, "checkpoint: export: %s: tensor %s/%s: out of memory for %" PRId64
                    " floats\n", step_dir, k, name, cnt);
            rc = -1;
            break;
        }
        int64_t off[2] = {0, 0};
        if (herd_ckpt_read(c, k, name, nd, off, g, buf)) { free(buf); rc = -1; break; }
        t[n].name = name;
        t[n].dtype = "F32";
        t[n].ndim = nd;
        t[n].shape[0] = g[0];
        t[n].shape[1] = nd > 1 ? g[1] : 0;
        t[n].data = buf;
        n++;
    }
    if (!t) rc = -1;
    if (!rc && !n) {
        fprintf(stderr, "checkpoint: export: %s: no tensor of kind '%s'\n", step_dir, kind);
        rc = -1;
    }
    if (rc) {
        ckpt_export_free(t, n);
        return -1;
    }
    *out = t;
    *n_out = n;
    return 0;
}

void ckpt_export_free(herd_st_tensor *t, int n)
{
    for (int i = 0; t && i < n; i++) free((void *)t[i].data);
    free(t);
}

int herd_ckpt_export(const char *step_dir, const char *out_path, const char *kind)
{
    if (!kind) kind = "param";
    int st = ends_with(out_path, ".safetensors");
    int h5 = ends_with(out_path, ".h5") || ends_with(out_path, ".hdf5");
    if (!st && !h5) {
        fprintf(stderr, "checkpoint: export: %s: the name must end in .safetensors, .h5 or .hdf5\n", out_path);
        return -1;
    }
    herd_ckpt *c;
    if (herd_ckpt_open(&c, step_dir)) return -1;
    herd_st_tensor *t = NULL;
    int n = 0;
    int rc = ckpt_export_gather(c, step_dir, kind, &t, &n);
    if (!rc && st) {
        char stepbuf[32];
        snprintf(stepbuf, sizeof stepbuf, "%" PRId64, herd_ckpt_step(c));
        const char *meta[4] = {"format", "pt", "herd_step", stepbuf};
        rc = herd_safetensors_write(out_path, t, n, meta, 2);
    } else if (!rc) {
        rc = write_h5(out_path, c, t, n);
    }
    if (t) ckpt_export_free(t, n);
    herd_ckpt_close(c);
    return rc;
}

/* retention.c — keep the newest K complete checkpoints and every M-th one;
 * never the newest complete one; drop incomplete leftovers older than it
 * (a crash's debris). The MANIFEST goes first, so that a crash halfway
 * through a deletion leaves a directory that is recognisably incomplete. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "checkpoint/internal.h"

static int remove_step_dir(const char *p)
{
    char f[8300];
    snprintf(f, sizeof f, "%s/%s", p, HERD_CKPT_MANIFEST);
    if (unlink(f) && errno != ENOENT) {
        fprintf(stderr, "checkpoint: %s: cannot delete: %s\n", f, strerror(errno));
        return -1;
    }
    ckpt_fsync_path(p);
    DIR *d = opendir(p);
    if (!d) return -1;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        snprintf(f, sizeof f, "%s/%s", p, de->d_name);
        if (unlink(f)) { fprintf(stderr, "checkpoint: %s: cannot delete: %s\n", f, strerror(errno)); rc = -1; }
    }
    closedir(d);
    if (!rc && rmdir(p)) { fprintf(stderr, "checkpoint: %s: cannot remove: %s\n", p, strerror(errno)); rc = -1; }
    return rc;
}

int herd_ckpt_retain(const char *dir, int keep_last, int keep_every)
{
    int64_t *steps;
    int n;
    if (ckpt_list_steps(dir, &steps, &n)) return -1;
    int rc = 0, complete_seen = 0;
    int64_t newest_complete = -1;
    for (int i = 0; i < n; i++) {
        char name[32], p[4200];
        ckpt_step_name(steps[i], name, sizeof name);
        snprintf(p, sizeof p, "%s/%s", dir, name);
        int complete = ckpt_dir_has_manifest(p);
        int keep;
        if (!complete) {
            /* newer than every complete one: may be in flight right now */
            keep = newest_complete < 0;
        } else {
            if (newest_complete < 0) newest_complete = steps[i];
            complete_seen++;
            keep = complete_seen == 1 || (keep_last <= 0 && keep_every <= 0) ||
                   (keep_last > 0 && complete_seen <= keep_last) ||
                   (keep_every > 0 && steps[i] % keep_every == 0);
        }
        if (!keep && remove_step_dir(p)) rc = -1;
    }
    free(steps);
    if (ckpt_fsync_path(dir)) rc = -1;
    return rc;
}

/* Before a commit, every shard of this save is in place: any temp file is a
 * killed save's debris, and a shard of a rank >= world is a larger earlier
 * run's. Remove them so that the directory holds exactly what MANIFEST lists. */
int ckpt_step_dir_clean(const char *step_dir, int world)
{
    DIR *d = opendir(step_dir);
    if (!d) {
        fprintf(stderr, "checkpoint: %s: cannot open directory: %s\n", step_dir, strerror(errno));
        return -1;
    }
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        int r;
        char tail[8];
        int stale = (de->d_name[0] == '.' && strstr(de->d_name, ".tmp")) ||
                    (sscanf(de->d_name, "shard_%d.h%7s", &r, tail) == 2 && !strcmp(tail, "5") && r >= world);
        if (!stale) continue;
        char f[8300];
        snprintf(f, sizeof f, "%s/%s", step_dir, de->d_name);
        if (unlink(f)) { fprintf(stderr, "checkpoint: %s: cannot delete: %s\n", f, strerror(errno)); rc = -1; }
    }
    closedir(d);
    return rc;
}

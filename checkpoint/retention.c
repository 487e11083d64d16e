/* retention.c — keep the newest K complete checkpoints and every M-th one;
 * never the newest one that verifies; drop incomplete leftovers older than it
 * (a crash's debris). The MANIFEST goes first, so that a crash halfway
 * through a deletion leaves a directory that is recognisably incomplete.
 *
 * Everything here works through directory descriptors and never follows a
 * link: only real directories named step_NNNNNNNN (ckpt_list_steps) are
 * candidates, each is opened O_NOFOLLOW | O_DIRECTORY relative to the
 * checkpoints directory, and its entries are unlinked relative to it (a link
 * inside is removed, its target untouched). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "checkpoint/internal.h"
#include "checkpoint/safe_file.h"

static int remove_step_dir(int dfd, const char *dir, const char *name)
{
    int sfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sfd < 0) {
        fprintf(stderr, "checkpoint: %s/%s: not deleted: cannot open as a directory: %s\n", dir, name,
                strerror(errno));
        return -1;
    }
    if (unlinkat(sfd, HERD_CKPT_MANIFEST, 0) && errno != ENOENT) {
        fprintf(stderr, "checkpoint: %s/%s/%s: cannot delete: %s\n", dir, name, HERD_CKPT_MANIFEST,
                strerror(errno));
        close(sfd);
        return -1;
    }
    fsync(sfd);
    int lfd = dup(sfd);
    DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
    if (!d) {
        if (lfd >= 0) close(lfd);
        close(sfd);
        return -1;
    }
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        /* flag 0: a sub-directory is not ours to recurse into; it stays, and so does the step */
        if (unlinkat(sfd, de->d_name, 0)) {
            fprintf(stderr, "checkpoint: %s/%s/%s: cannot delete: %s\n", dir, name, de->d_name, strerror(errno));
            rc = -1;
        }
    }
    closedir(d);
    close(sfd);
    if (!rc && unlinkat(dfd, name, AT_REMOVEDIR)) {
        fprintf(stderr, "checkpoint: %s/%s: cannot remove: %s\n", dir, name, strerror(errno));
        rc = -1;
    }
    return rc;
}

/* The newest complete checkpoint that verifies (-1: none). */
static int64_t newest_verified(const char *dir, const int64_t *steps, int n)
{
    for (int i = 0; i < n; i++) {
        char name[32], p[4200];
        ckpt_step_name(steps[i], name, sizeof name);
        snprintf(p, sizeof p, "%s/%s", dir, name);
        if (ckpt_dir_has_manifest(p) && herd_ckpt_verify(p) == 0) return steps[i];
    }
    return -1;
}

int ckpt_retain(const char *dir, int keep_last, int keep_every, int64_t newest_good)
{
    int64_t *steps;
    int n;
    if (ckpt_list_steps(dir, &steps, &n)) return -1;
    if (newest_good < 0) newest_good = newest_verified(dir, steps, n);
    if (newest_good < 0) {   /* nothing known good: deleting anything could lose the last copy */
        free(steps);
        return 0;
    }
    int dfd = herd_safe_dir_open(dir);
    if (dfd < 0) {
        free(steps);
        return -1;
    }
    int rc = 0, counted = 0;
    for (int i = 0; i < n; i++) {
        char name[32], p[4200];
        ckpt_step_name(steps[i], name, sizeof name);
        snprintf(p, sizeof p, "%s/%s", dir, name);
        int keep;
        if (steps[i] > newest_good) {
            keep = 1;   /* in flight, or complete but not known to verify: not counted, not deleted */
        } else if (steps[i] == newest_good) {
            keep = 1;
            counted++;
        } else if (!ckpt_dir_has_manifest(p)) {
            keep = 0;   /* a killed save's debris */
        } else {
            counted++;
            keep = (keep_last <= 0 && keep_every <= 0) || (keep_last > 0 && counted <= keep_last) ||
                   (keep_every > 0 && steps[i] % keep_every == 0);
        }
        if (!keep && remove_step_dir(dfd, dir, name)) rc = -1;
    }
    free(steps);
    if (fsync(dfd)) rc = -1;
    close(dfd);
    return rc;
}

int herd_ckpt_retain(const char *dir, int keep_last, int keep_every)
{
    return ckpt_retain(dir, keep_last, keep_every, -1);
}

/* Before a commit, every shard of this save is in place: any temp file is a
 * killed save's debris, and a shard of a rank >= world is a larger earlier
 * run's. Remove them so that the directory holds exactly what MANIFEST lists
 * (unlinkat: a link is removed, never followed). */
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
        if (unlinkat(dirfd(d), de->d_name, 0)) {
            fprintf(stderr, "checkpoint: %s/%s: cannot delete: %s\n", step_dir, de->d_name, strerror(errno));
            rc = -1;
        }
    }
    closedir(d);
    return rc;
}

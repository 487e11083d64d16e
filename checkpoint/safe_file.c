/* safe_file.c — see safe_file.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "checkpoint/safe_file.h"

void herd_safe_split(const char *path, char *dir, size_t dn, char *base, size_t bn)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    size_t l = strlen(buf);
    while (l > 1 && buf[l - 1] == '/') buf[--l] = '\0';
    char *s = strrchr(buf, '/');
    if (!s) {
        snprintf(dir, dn, ".");
        snprintf(base, bn, "%s", buf);
    } else {
        snprintf(base, bn, "%s", s + 1);
        if (s == buf) snprintf(dir, dn, "/");
        else { *s = '\0'; snprintf(dir, dn, "%s", buf); }
    }
}

int herd_safe_dir_open(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) fprintf(stderr, "herd: %s: cannot open directory: %s\n", path, strerror(errno));
    return fd;
}

int herd_safe_mkdirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        fprintf(stderr, "herd: %s: path too long\n", path);
        return -1;
    }
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, HERD_DIR_MODE) && errno != EEXIST) {
            fprintf(stderr, "herd: %s: cannot create directory: %s\n", buf, strerror(errno));
            return -1;
        }
        *p = c;
        if (!c) break;
    }
    return 0;
}

int herd_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

int herd_safe_file_begin(herd_safe_file *s, const char *path)
{
    return herd_safe_file_begin_mode(s, path, HERD_FILE_MODE);
}

int herd_safe_file_begin_mode(herd_safe_file *s, const char *path, mode_t mode)
{
    memset(s, 0, sizeof *s);
    s->dir_fd = s->fd = -1;
    char dir[4096];
    snprintf(s->path, sizeof s->path, "%s", path);
    herd_safe_split(path, dir, sizeof dir, s->name, sizeof s->name);
    if (strlen(path) >= sizeof s->path - 1 || strlen(s->name) + 20 >= sizeof s->tmp || !s->name[0] ||
        !strcmp(s->name, ".") || !strcmp(s->name, "..")) {
        fprintf(stderr, "herd: %s: not a usable file name\n", path);
        return -1;
    }
    /* one writer per process and target: two processes that write the same
     * file (a shared Prometheus textfile) never share a temporary */
    snprintf(s->tmp, sizeof s->tmp, ".%s.tmp.%d", s->name, (int)getpid());
    snprintf(s->tmp_path, sizeof s->tmp_path, "%s/%s", dir, s->tmp);
    s->dir_fd = herd_safe_dir_open(dir);
    if (s->dir_fd < 0) return -1;
    /* a killed writer's temporary, or a link planted under its name: the
     * name is ours to reuse; unlinking a link leaves its target alone */
    if (unlinkat(s->dir_fd, s->tmp, 0) && errno != ENOENT) {
        fprintf(stderr, "herd: %s: cannot remove the stale temporary: %s\n", s->tmp_path, strerror(errno));
        close(s->dir_fd);
        return -1;
    }
    s->fd = openat(s->dir_fd, s->tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (s->fd < 0) {
        fprintf(stderr, "herd: %s: cannot create: %s\n", s->tmp_path, strerror(errno));
        close(s->dir_fd);
        return -1;
    }
    return 0;
}

FILE *herd_safe_file_begin_stream(herd_safe_file *s, const char *path, mode_t mode)
{
    if (herd_safe_file_begin_mode(s, path, mode)) return NULL;
    int fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "wb");
    if (!f) {
        fprintf(stderr, "herd: %s: cannot open a stream: %s\n", s->tmp_path, strerror(errno));
        if (fd >= 0) close(fd);
        herd_safe_file_abort(s);
    }
    return f;
}

int herd_safe_file_stream_commit(herd_safe_file *s, FILE *f)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "herd: %s: write failed: %s\n", s->tmp_path, strerror(errno));
        herd_safe_file_abort(s);
        return -1;
    }
    return herd_safe_file_commit(s);
}

void herd_safe_file_abort(herd_safe_file *s)
{
    if (s->fd >= 0) {
        /* only our own file goes, never whatever replaced it */
        struct stat a, b;
        if (!fstat(s->fd, &a) && !fstatat(s->dir_fd, s->tmp, &b, AT_SYMLINK_NOFOLLOW) &&
            a.st_dev == b.st_dev && a.st_ino == b.st_ino)
            unlinkat(s->dir_fd, s->tmp, 0);
        close(s->fd);
    }
    if (s->dir_fd >= 0) close(s->dir_fd);
    s->fd = s->dir_fd = -1;
}

int herd_safe_file_commit(herd_safe_file *s)
{
    struct stat a, b;
    if (fsync(s->fd)) {
        fprintf(stderr, "herd: %s: fsync failed: %s\n", s->tmp_path, strerror(errno));
        herd_safe_file_abort(s);
        return -1;
    }
    if (fstat(s->fd, &a) || fstatat(s->dir_fd, s->tmp, &b, AT_SYMLINK_NOFOLLOW) || !S_ISREG(b.st_mode) ||
        a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
        fprintf(stderr, "herd: %s: is no longer the file this process created; not renamed into place\n",
                s->tmp_path);
        herd_safe_file_abort(s);
        return -1;
    }
    if (renameat(s->dir_fd, s->tmp, s->dir_fd, s->name)) {
        fprintf(stderr, "herd: %s: rename to %s failed: %s\n", s->tmp_path, s->name, strerror(errno));
        herd_safe_file_abort(s);
        return -1;
    }
    close(s->fd);
    s->fd = -1;
    int rc = fsync(s->dir_fd);
    if (rc) fprintf(stderr, "herd: %s: fsync of its directory failed: %s\n", s->path, strerror(errno));
    close(s->dir_fd);
    s->dir_fd = -1;
    return rc ? -1 : 0;
}

int herd_safe_write(const char *path, const void *buf, size_t len)
{
    herd_safe_file s;
    if (herd_safe_file_begin(&s, path)) return -1;
    if (herd_write_all(s.fd, buf, len)) {
        fprintf(stderr, "herd: %s: write failed: %s\n", s.tmp_path, strerror(errno));
        herd_safe_file_abort(&s);
        return -1;
    }
    return herd_safe_file_commit(&s);
}

/* a regular file, or a message saying what the name is instead */
static int check_regular(int fd, const char *path)
{
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "herd: %s: not a regular file; refused\n", path);
        return -1;
    }
    return 0;
}

static int open_error(const char *path, const char *what)
{
    if (errno == ELOOP)
        fprintf(stderr, "herd: %s: is a symbolic link; refused (herd never %s through a link)\n", path, what);
    else
        fprintf(stderr, "herd: %s: cannot open: %s\n", path, strerror(errno));
    return -1;
}

int herd_safe_open_append(const char *path, int fresh)
{
    char dir[4096], base[256];
    herd_safe_split(path, dir, sizeof dir, base, sizeof base);
    int dfd = herd_safe_dir_open(dir);
    if (dfd < 0) return -1;
    if (fresh && unlinkat(dfd, base, 0) && errno != ENOENT) {
        fprintf(stderr, "herd: %s: cannot remove the previous file: %s\n", path, strerror(errno));
        close(dfd);
        return -1;
    }
    /* O_NONBLOCK: a planted FIFO must not block the open; it is refused below */
    int flags = O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (fresh ? O_EXCL : 0);
    int fd = openat(dfd, base, flags, HERD_FILE_MODE);
    close(dfd);
    if (fd < 0) return open_error(path, "writes");
    if (check_regular(fd, path)) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, O_APPEND);
    return fd;
}

int herd_safe_open_read(const char *path)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return open_error(path, "reads a run's file");
    if (check_regular(fd, path)) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, 0);
    return fd;
}

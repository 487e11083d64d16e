/* safe_file.h — creating a run's files without following planted links and
 * without depending on the umask; the one crash-safe write of the project.
 *
 * A run directory (OUT_DIR, OUT_DIR/checkpoints, a step directory) is named by
 * the config, which herd trusts; what lies inside it is not trusted: any name
 * there may have been replaced by a symbolic link to a file outside the run.
 * So every file is opened relative to its directory's descriptor with
 * O_NOFOLLOW, temporaries are created with O_EXCL (never an existing file or
 * link), and a temporary is renamed into place only while its name still
 * refers to the file this process created. Directories are created 0750,
 * files 0640 unless begin_mode names another mode (the umask may only lower
 * these, never raise them).
 *
 * Used by the checkpoint library (shards, model.h5, MANIFEST, exports), the
 * monitoring files (Prometheus textfile, metrics.jsonl), the trainer
 * (config.yaml, safetensors) and the data tools (token shards, rank files,
 * cleaned documents). Includes nothing from src/.
 *
 * Functions return 0 (or a descriptor) or -1 with a message on stderr naming
 * the file.
 */
#ifndef HERD_SAFE_FILE_H
#define HERD_SAFE_FILE_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define HERD_DIR_MODE  0750
#define HERD_FILE_MODE 0640

/* A file being written under a temporary name in the target's directory. */
typedef struct {
    int  dir_fd;           /* the target's directory */
    int  fd;               /* the temporary, created O_EXCL | O_NOFOLLOW, mode 0640 */
    char name[256];        /* the target's name in dir_fd */
    char tmp[280];         /* the temporary's name: ".NAME.tmp.PID" */
    char path[4096];       /* the target's path (messages) */
    char tmp_path[4400];   /* the temporary's path, for libraries that open by name (HDF5) */
} herd_safe_file;

/* Create path's temporary ".NAME.tmp.PID" next to it (a stale temporary of
 * a killed writer with the same pid, or a link planted in its place, is
 * removed first: unlinking a link never touches its target). */
int herd_safe_file_begin(herd_safe_file *s, const char *path);
/* The same with the temporary created with `mode` (the umask applies): the
 * data tools' outputs (shards, rank files, cleaned documents) are meant to be
 * shared and keep the modes open(2) and fopen(3) give. */
int herd_safe_file_begin_mode(herd_safe_file *s, const char *path, mode_t mode);
/* begin_mode, and a stdio stream on the temporary (over its own descriptor);
 * NULL with a message (nothing left to abort). herd_safe_file_stream_commit
 * closes the stream and commits, or aborts with a message when a write to it
 * failed. */
FILE *herd_safe_file_begin_stream(herd_safe_file *s, const char *path, mode_t mode);
int herd_safe_file_stream_commit(herd_safe_file *s, FILE *f);
/* fsync the temporary, check that its name is still the file created by
 * begin (a regular file, same device and inode), rename it over the target
 * (a link there is replaced, never followed), fsync the directory. Closes. */
int herd_safe_file_commit(herd_safe_file *s);
/* Remove the temporary and close (after a failure). */
void herd_safe_file_abort(herd_safe_file *s);

/* The whole crash-safe write of a buffer: begin, write, commit. */
int herd_safe_write(const char *path, const void *buf, size_t len);
/* write(2) until done (EINTR retried). */
int herd_write_all(int fd, const void *buf, size_t len);

/* Open path for appending (fresh: remove what is there and create it empty,
 * O_EXCL). Never through a link: a link or anything but a regular file is
 * refused with a message. Returns the descriptor. */
int herd_safe_open_append(const char *path, int fresh);
/* Open path read-only, never through a link, regular files only. */
int herd_safe_open_read(const char *path);

/* mkdir -p with mode 0750 for every directory it creates. */
int herd_safe_mkdirs(const char *path);
/* Open a directory for the *at calls (the path is trusted: links in it are
 * followed). */
int herd_safe_dir_open(const char *path);
/* Split path into its directory and its last component. */
void herd_safe_split(const char *path, char *dir, size_t dn, char *base, size_t bn);

#endif

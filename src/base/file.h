/* file.h — reading a whole input file (documents, text) into memory.
 * Includes nothing from src/. */
#ifndef HERD_FILE_H
#define HERD_FILE_H

#include <stddef.h>

/* The whole file in memory, NUL-terminated (the NUL not counted in *len);
 * NULL with a message "herd: PATH: file: ..." on stderr. A directory is
 * refused (fopen opens it, the read fails with EISDIR). */
unsigned char *herd_file_slurp(const char *path, size_t *len);

#endif

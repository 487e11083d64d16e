/* sbuf.h — a growing string: text built piece by piece (a checkpoint
 * MANIFEST, a safetensors JSON header). Includes nothing from src/.
 *
 *   herd_sbuf b = {0};
 *   herd_sbuf_printf(&b, "step %d\n", step);
 *   ... b.s, b.n ...
 *   free(b.s);
 */
#ifndef HERD_SBUF_H
#define HERD_SBUF_H

#include <stddef.h>

typedef struct {
    char  *s;   /* NUL-terminated once anything was added; NULL before */
    size_t n;   /* bytes, the NUL not counted */
    size_t cap;
} herd_sbuf;

/* Formatted text at the end. Out of memory aborts: meant for a few kB of
 * text, where failing is not recoverable anyway. */
void herd_sbuf_printf(herd_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

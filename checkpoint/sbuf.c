/* sbuf.c — see sbuf.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "checkpoint/sbuf.h"

/* room for `more` bytes and a NUL after n; -1 when out of memory */
static int reserve(herd_sbuf *b, size_t more)
{
    if (b->s && b->n + more < b->cap) return 0;
    size_t cap = (b->cap + more + 1) * 2;
    char *s = realloc(b->s, cap);
    if (!s) return -1;
    b->s = s;
    b->cap = cap;
    return 0;
}

void herd_sbuf_printf(herd_sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return;
        if (b->s && b->n + (size_t)k < b->cap) { b->n += (size_t)k; return; }
        if (reserve(b, (size_t)k)) abort();
    }
}

/* sbuf.c — a growing string for the text the checkpoint library writes
 * (MANIFEST, the safetensors JSON header). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "checkpoint/internal.h"

void ckpt_sbuf_printf(ckpt_sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return;
        if (b->s && b->n + (size_t)k < b->cap) { b->n += (size_t)k; return; }
        size_t cap = (b->cap + (size_t)k + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) abort(); /* a few kB of text: out of memory here is not recoverable */
        b->s = s;
        b->cap = cap;
    }
}

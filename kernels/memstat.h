/* memstat.h — the bytes a backend has allocated: now, and the most at once
 * since the last reset (torch.cuda.memory_allocated / max_memory_allocated).
 * Each backend instance keeps one ledger and records every alloc and free in it, so the
 * trainer can report the peak memory of a step on any backend. */
#ifndef HERD_MEMSTAT_H
#define HERD_MEMSTAT_H

#include <stddef.h>

typedef struct herd_memstat herd_memstat;

/* A ledger; NULL when out of memory. */
herd_memstat *herd_memstat_create(void);
/* NULL: nothing */
void herd_memstat_free(herd_memstat *s);
/* Record an allocation of `bytes` at p (p != NULL). -1 when out of memory
 * (the allocation is then not counted). */
int    herd_memstat_add(herd_memstat *s, const void *p, size_t bytes);
/* Forget p (NULL or unknown: nothing); returns the bytes it had. */
size_t herd_memstat_remove(herd_memstat *s, const void *p);
size_t herd_memstat_current(const herd_memstat *s);
/* The most bytes allocated at once since the last reset; with reset != 0 the
 * peak starts again from the current bytes (after the value is read). */
size_t herd_memstat_peak(herd_memstat *s, int reset);

#endif

/* The tracking allocator behind include/aellm/memory.h. Buffers are 64-byte
 * aligned and zeroed; each carries its size and kind in a 64-byte header
 * just before it, so aellm_mem_free needs only the pointer. */
#ifndef AELLM_CORE_ALLOC_H
#define AELLM_CORE_ALLOC_H

#include <stddef.h>

#include "aellm/memory.h"

/* NULL on failure (no message set: the caller names what it allocates). */
void *aellm_mem_alloc(size_t bytes, aellm_mem_kind kind);
void aellm_mem_free(void *p); /* accepts NULL */
/* Bytes aellm_mem_alloc gave for p (0 for NULL). */
size_t aellm_mem_size(const void *p);
/* Counts memory obtained elsewhere (a file mapping): +bytes when taken,
 * -bytes when given back. */
void aellm_mem_account(aellm_mem_kind kind, long long delta);

/* Test hook (fault injection): the n-th call of aellm_mem_alloc from now
 * fails as if memory had run out (n <= 0: none). Each such failure is
 * counted, so a test knows whether its operation reached the n-th. */
void aellm_mem_fail_at(long n);
long aellm_mem_failures_injected(void);

#endif

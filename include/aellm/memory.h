/* What aellm holds in memory. Every large buffer (model weights, the KV
 * cache, activations, scratch) comes from one tracking allocator, so the
 * bytes in use and their high-water mark are known per kind; memory-mapped
 * model files are counted as weights for as long as they are mapped. The
 * process high-water mark (the kernel's VmHWM) is read beside it. */
#ifndef AELLM_MEMORY_H
#define AELLM_MEMORY_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    AELLM_MEM_WEIGHTS = 0,
    AELLM_MEM_KV,
    AELLM_MEM_ACTIVATIONS,
    AELLM_MEM_SCRATCH,
    AELLM_MEM_GRADIENTS, /* training: gradients of the trainable parameters */
    AELLM_MEM_OPTIMIZER, /* training: the optimiser's state (AdamW's moments) */
    AELLM_MEM_KINDS
} aellm_mem_kind;

const char *aellm_mem_kind_name(aellm_mem_kind k); /* "weights", "kv", ... */

typedef struct {
    size_t current[AELLM_MEM_KINDS]; /* bytes in use now, per kind */
    size_t peak[AELLM_MEM_KINDS];    /* high-water mark of each kind since the last reset */
    size_t current_total;
    size_t peak_total; /* high-water mark of the sum (not the sum of the peaks) */
    size_t n_live;     /* allocations not yet freed (mappings not counted) */
} aellm_mem_stats;

void aellm_mem_stats_get(aellm_mem_stats *out);
/* Sets every high-water mark to the current use, and the process's too
 * where the kernel allows (/proc/self/clear_refs), so that a phase of work
 * is measured on its own. */
void aellm_mem_reset_peak(void);
/* The process's resident high-water mark and current resident set (bytes,
 * from one read of /proc/self/status, so that peak >= current even while
 * memory grows); 0 where unavailable. */
void aellm_mem_process_marks(size_t *peak, size_t *current);
size_t aellm_mem_process_peak(void);

#ifdef __cplusplus
}
#endif
#endif

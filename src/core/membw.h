/* Memory read bandwidth of this machine, measured (bytes per second). */
#ifndef AELLM_CORE_MEMBW_H
#define AELLM_CORE_MEMBW_H

#include <stddef.h>

/* A buffer for repeated measurements, allocated and touched once, so that
 * they can be interleaved with the runs they judge (a VM's bandwidth moves
 * by tens of percent over minutes). Owned by the caller: aellm_membw_free. */
typedef struct aellm_membw aellm_membw;

/* `bytes` should be several times the last-level cache. NULL if the buffer
 * cannot be allocated. */
aellm_membw *aellm_membw_new(size_t bytes, int threads);
/* Streams the buffer `passes` times with the threads given to new; the best
 * pass, in bytes per second. */
double aellm_membw_measure(aellm_membw *b, int passes);
void aellm_membw_free(aellm_membw *b);

/* One measurement: new, best of 5 passes, free. 0 if no buffer. */
double aellm_memory_bandwidth(size_t bytes, int threads);

#endif

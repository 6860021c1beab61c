/* Memory read bandwidth of this machine, measured (bytes per second). */
#ifndef AELLM_CORE_MEMBW_H
#define AELLM_CORE_MEMBW_H

#include <stddef.h>

/* Streams `bytes` (use several times the last-level cache) with `threads`
 * threads; best of 5 passes. Returns 0 if the buffer cannot be allocated. */
double aellm_memory_bandwidth(size_t bytes, int threads);

#endif

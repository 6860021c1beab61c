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
/* One reading: the buffer streamed pass after pass for at least `seconds`
 * (two passes at least). A run's tokens/s is its tokens over its whole
 * time, so the roofline that judges it takes the bandwidth the same way
 * (sustained); the best single pass is kept beside it. On a shared VM single
 * passes of 1 GiB spread over 17-77 GB/s within seconds, and a best-of-N
 * reading stood 2-17 % above the sustained one in probes (bench/README.md). */
typedef struct {
    double sustained; /* bytes read / time taken, over all passes (bytes/s) */
    double best;      /* the fastest single pass (bytes/s) */
    int passes;
} aellm_membw_reading;

void aellm_membw_read_for(aellm_membw *b, double seconds, aellm_membw_reading *out);
void aellm_membw_free(aellm_membw *b);

/* One measurement: new, best of 5 passes, free. 0 if no buffer. */
double aellm_memory_bandwidth(size_t bytes, int threads);

#endif

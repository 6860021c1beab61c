/* Shared by the architecture transforms (src/techniques/arch): a tensor's
 * rows as f32 to work on, and new rows stored back in a type. */
#ifndef AELLM_TECHNIQUES_ARCH_INTERNAL_H
#define AELLM_TECHNIQUES_ARCH_INTERNAL_H

#include <stdint.h>

#include "model/model.h"

/* All of t as ne[1] rows of ne[0] floats (malloc'd, the caller frees);
 * NULL with the error set when out of memory. */
float *aellm_arch_f32(const aellm_tensor *t);

/* rows x n floats stored in `type` (one with a from_float) into a block the
 * model owns, t pointed at them. AELLM_ENOMEM when out of memory. */
int aellm_arch_store(aellm_model *m, aellm_tensor *t, int type, const float *f, int64_t n,
                     int64_t rows);

#endif

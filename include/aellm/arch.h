/* Architecture transforms applied to a loaded model, without training: for
 * now post-hoc key/value head sharing (MHA -> GQA -> MQA by mean-pooling
 * heads, as in the GQA paper's uptraining start point, Ainslie et al. 2023).
 * Each transform changes the model in place; new weights live as long as it. */
#ifndef AELLM_ARCH_H
#define AELLM_ARCH_H

#include "aellm/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Mean-pools groups of consecutive key and value heads of every layer into
 * n_kv_heads heads (which must divide the model's current count; 1 = MQA).
 * Query head h keeps reading KV head h / (n_heads / n_kv_heads): groups are
 * consecutive, so it reads the pool of the heads it was spread over.
 * Quantized wk / wv are dequantized, pooled and re-quantized to their type;
 * the pooled matrices are owned by the model. Asking for the current count
 * changes nothing. AELLM_EINVAL for a count that does not divide or a weight
 * type without conversions; after AELLM_ENOMEM the model is unusable. */
int aellm_model_share_kv_heads(aellm_model *m, int n_kv_heads);

#ifdef __cplusplus
}
#endif
#endif

/* SmoothQuant (Xiao et al., 2023): for W8A8, where activations are rounded
 * per token at run time, a few input channels with huge activations ruin
 * every token's int8 scale. Dividing channel j of the activations by s_j and
 * multiplying the weights' column j by s_j moves that difficulty into the
 * weights, which are quantized per output channel and tolerate it:
 * s_j = max|x_j|^alpha / max|W_:j|^(1 - alpha). Only the scales are here;
 * folding 1/s into the preceding op and the rounding are quantize.c's. */
#include <math.h>

#include "techniques/quant/quant_internal.h"

void aellm_smoothquant_scales(float *s, const aellm_scale_group *g, float alpha)
{
    /* s holds max |W_:j| first, row by row for memory order */
    for (int64_t j = 0; j < g->n; j++) s[j] = 0.0f;
    for (int m = 0; m < g->n_mats; m++)
        for (int64_t r = 0; r < g->rows[m]; r++) {
            const float *w = g->W[m] + r * g->n;
            for (int64_t j = 0; j < g->n; j++) s[j] = fmaxf(s[j], fabsf(w[j]));
        }
    /* the clamps keep a dead channel (x or W all zero) from giving 0 or inf */
    for (int64_t j = 0; j < g->n; j++) {
        float xa = powf(fmaxf(g->max_abs[j], 1e-5f), alpha);
        float wa = powf(fmaxf(s[j], 1e-5f), 1.0f - alpha);
        s[j] = fmaxf(xa / wa, 1e-5f);
    }
}

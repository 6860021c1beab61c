/* Mixture-of-experts routing as llama.cpp computes it for Llama-MoE models
 * (softmax gating, normalised weights): the router's E logits go through a
 * softmax, the k most probable experts are chosen, and their probabilities
 * are renormalised to sum to 1. The engine, the converters and training all
 * route through this one function so that they agree with each other and
 * with llama.cpp. */
#ifndef AELLM_KERNELS_MOE_ROUTE_H
#define AELLM_KERNELS_MOE_ROUTE_H

/* p: E router logits in, softmax probabilities out. Writes the k chosen
 * experts to sel[0..k) (most probable first; ties go to the lower index)
 * and their renormalised weights to w[0..k). 1 <= k <= E. */
void aellm_moe_route(float *p, int E, int k, int *sel, float *w);

#endif

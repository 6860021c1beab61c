/* The operations of the Llama block for training, each as a forward that
 * keeps what its backward needs and the backward beside it (llm.c's habit).
 * Shapes: B sequences of T tokens, C channels, row-major, (B*T, C) written
 * BT x C; a weight W of a linear map is (OC, C), row r the output r (GGUF's
 * layout: y = W x). Backward functions ADD into their gradients (so a tied
 * embedding collects both of its uses); zeroing is the caller's. Any gradient
 * pointer may be NULL when it is not wanted (a frozen weight). All F32; the
 * products go through OpenBLAS, the rest through OpenMP loops. Not a public
 * interface: the training model (model.c) strings these together. */
#ifndef AELLM_TECHNIQUES_FINETUNE_OPS_H
#define AELLM_TECHNIQUES_FINETUNE_OPS_H

#include <stdint.h>

/* out (BT, C) = wte[tok] */
void train_embed_forward(float *out, const int32_t *tok, const float *wte, int BT, int C);
void train_embed_backward(float *dwte, const float *dout, const int32_t *tok, int BT, int C);

/* out = x * rstd * w, rstd (BT) = 1/sqrt(mean(x^2) + eps), kept for backward */
void train_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int BT, int C,
                           float eps);
void train_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                            const float *rstd, int BT, int C);

/* out (BT, OC) = x (BT, C) . W^T (W: OC x C); backward dx += dout . W,
 * dw += dout^T . x */
void train_matmul_forward(float *out, const float *x, const float *w, int BT, int C, int OC);
void train_matmul_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                           int BT, int C, int OC);

/* Rotary position: pairs (2i, 2i+1) of every head of x (B, T, H, hd) turned
 * by angle t * freq_i, t the position in its sequence; cos/sin (T, hd/2) as
 * the inference engine makes them (train_rope_tables). In place; backward
 * turns the gradient back (the transpose of a rotation is its inverse). */
void train_rope_tables(float *cos_t, float *sin_t, int T, int hd, float base);
void train_rope_forward(float *x, const float *cos_t, const float *sin_t, int B, int T, int H,
                        int hd);
void train_rope_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T, int H,
                         int hd);

/* Causal grouped-query attention: q (B, T, NH, hd), k and v (B, T, NKV, hd),
 * query head h reads key/value head h / (NH/NKV) (NKV = NH: MHA, 1: MQA).
 * out (B, T, NH, hd); att (B, NH, T, T) keeps the softmax probabilities (the
 * upper triangle stays 0). Backward adds into dq, dk, dv; scratch holds
 * train_attention_scratch floats. */
void train_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                             int B, int T, int NH, int NKV, int hd);
int64_t train_attention_scratch(int T, int threads);
void train_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att,
                              const float *q, const float *k, const float *v, int B, int T, int NH,
                              int NKV, int hd, float *scratch);

/* out (N) = silu(gate) * up; backward adds into dgate, dup */
void train_swiglu_forward(float *out, const float *gate, const float *up, int64_t N);
void train_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                           const float *up, int64_t N);

/* x (N) += y */
void train_residual_forward(float *x, const float *y, int64_t N);

/* Softmax cross-entropy over V classes, fused: logits (BT, V) become the
 * probabilities in place; losses (BT) the per-position -log p(target). weight
 * (BT, may be NULL = all 1) scales each position (0 for prompt tokens of
 * instruction data). Returns the weighted mean loss, sum(weight*loss) /
 * sum(weight) (0 when the weights are all 0). The backward turns probs into
 * dlogits = (p - onehot(target)) * weight / sum(weight), in place. */
double train_crossentropy_forward(float *logits, float *losses, const int32_t *targets,
                                  const float *weight, int BT, int V);
void train_crossentropy_backward(float *probs, const int32_t *targets, const float *weight, int BT,
                                 int V);

/* ---- latent attention (mla_ops.c) ---- */

/* Rotates the first 2 * pairs values of each of the H vectors of `stride`
 * floats per token of x (B, T, H, stride): pair j of head h by the
 * frequency of original pair idx[(h / per) * pairs + j], tables as
 * train_rope_tables makes them (T, hd/2). Backward turns gradients back. */
void train_mla_rope_forward(float *x, const float *cos_t, const float *sin_t, const int *idx, int B,
                            int T, int H, int stride, int per, int pairs, int half);
void train_mla_rope_backward(float *dx, const float *cos_t, const float *sin_t, const int *idx,
                             int B, int T, int H, int stride, int per, int pairs, int half);

/* Keys of NKV heads of hd from their rotary parts kr (BT, NKV, dr) and
 * position-free parts kn (BT, NKV, hd - dr): k (BT, NKV, hd) = [kr ; kn]
 * per head; the backward splits dk the same way. */
void train_mla_keys_forward(float *k, const float *kr, const float *kn, int BT, int NKV, int hd,
                            int dr);
void train_mla_keys_backward(float *dkr, float *dkn, const float *dk, int BT, int NKV, int hd,
                             int dr);

/* ---- mixture of experts (moe_ops.c) ----
 * Training holds an MoE layer's FFN densely: all E experts' hidden units
 * side by side (H = E * h, expert e's at e * h), every expert computed, and
 * each token's hidden units scaled by its routing weight for their expert
 * (0 for experts it is not routed to), so the down projection sums exactly
 * the top-k experts as the engine does. Routing is src/kernels/moe_route.h's
 * (softmax, top-k, renormalised); the choice of experts has no gradient,
 * the weights of the chosen ones do. */

/* logits (BT, E) -> probs (BT, E) softmax, wts (BT, E) renormalised top-k
 * weights and 0 elsewhere. */
void train_moe_route_forward(float *probs, float *wts, const float *logits, int BT, int E, int K);
/* The Switch/GShard load-balancing loss of one layer, E * sum_e f_e * P_e
 * (f_e: share of the BT * K routed slots that went to e; P_e: mean
 * probability of e), 1 when perfectly balanced; frac (E) gets f. */
double train_moe_balance_forward(float *frac, const float *probs, const float *wts, int BT, int E);
/* dlogits (BT, E) = the gradient through routing of dwts (BT, E), plus
 * `balance` times the balance loss's (the choice of experts is held fixed). */
void train_moe_route_backward(float *dlogits, const float *dwts, const float *probs,
                              const float *wts, const float *frac, float balance, int BT, int E);

/* out (BT, E*h) = glu scaled by each token's weight of each expert; the
 * backward turns d (dL/dout) into dL/dglu in place and writes dwts (BT, E). */
void train_moe_scale_forward(float *out, const float *glu, const float *wts, int BT, int E, int h);
void train_moe_scale_backward(float *d, float *dwts, const float *glu, const float *wts, int BT,
                              int E, int h);

#endif

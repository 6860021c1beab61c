/* Forward and backward of the mixture-of-experts pieces of the trainable
 * model (ops.h says how an MoE layer is held). */
#include <string.h>

#include "kernels/moe_route.h"
#include "techniques/finetune/ops.h"

void train_moe_route_forward(float *probs, float *wts, const float *logits, int BT, int E, int K)
{
#pragma omp parallel for schedule(static)
    for (int t = 0; t < BT; t++) {
        float *p = probs + (size_t)t * E, *w = wts + (size_t)t * E, ws[256];
        int sel[256];
        memcpy(p, logits + (size_t)t * E, (size_t)E * sizeof(float));
        aellm_moe_route(p, E, K, sel, ws);
        memset(w, 0, (size_t)E * sizeof(float));
        for (int s = 0; s < K; s++) w[sel[s]] = ws[s];
    }
}

double train_moe_balance_forward(float *frac, const float *probs, const float *wts, int BT, int E)
{
    double slots = 0, loss = 0;
    for (int e = 0; e < E; e++) frac[e] = 0;
    for (int t = 0; t < BT; t++)
        for (int e = 0; e < E; e++)
            if (wts[(size_t)t * E + e] > 0) frac[e] += 1, slots += 1;
    for (int e = 0; e < E; e++) {
        frac[e] = slots > 0 ? (float)(frac[e] / slots) : 0.0f;
        double mean_p = 0;
        for (int t = 0; t < BT; t++) mean_p += probs[(size_t)t * E + e];
        loss += frac[e] * (mean_p / BT);
    }
    return E * loss;
}

/* w_s = p_s / S over the chosen s (S their sum): dp_s = (dw_s - sum_r dw_r w_r) / S;
 * the balance loss adds balance * E * f_e / BT to every dp_e; then the
 * softmax: dlogit = p * (dp - <p, dp>). */
void train_moe_route_backward(float *dlogits, const float *dwts, const float *probs,
                              const float *wts, const float *frac, float balance, int BT, int E)
{
#pragma omp parallel for schedule(static)
    for (int t = 0; t < BT; t++) {
        const float *p = probs + (size_t)t * E, *w = wts + (size_t)t * E,
                    *dw = dwts + (size_t)t * E;
        float *dl = dlogits + (size_t)t * E, S = 0, dot = 0, pdp = 0;
        for (int e = 0; e < E; e++)
            if (w[e] > 0) S += p[e], dot += dw[e] * w[e];
        for (int e = 0; e < E; e++) {
            dl[e] = w[e] > 0 ? (dw[e] - dot) / S : 0.0f;
            dl[e] += balance * (float)E * frac[e] / (float)BT;
            pdp += p[e] * dl[e];
        }
        for (int e = 0; e < E; e++) dl[e] = p[e] * (dl[e] - pdp);
    }
}

void train_moe_scale_forward(float *out, const float *glu, const float *wts, int BT, int E, int h)
{
#pragma omp parallel for schedule(static)
    for (int t = 0; t < BT; t++)
        for (int e = 0; e < E; e++) {
            float w = wts[(size_t)t * E + e];
            size_t at = ((size_t)t * E + e) * h;
            for (int j = 0; j < h; j++) out[at + j] = w * glu[at + j];
        }
}

void train_moe_scale_backward(float *d, float *dwts, const float *glu, const float *wts, int BT,
                              int E, int h)
{
#pragma omp parallel for schedule(static)
    for (int t = 0; t < BT; t++)
        for (int e = 0; e < E; e++) {
            float w = wts[(size_t)t * E + e], dw = 0;
            size_t at = ((size_t)t * E + e) * h;
            for (int j = 0; j < h; j++) dw += d[at + j] * glu[at + j], d[at + j] *= w;
            dwts[(size_t)t * E + e] = dw;
        }
}

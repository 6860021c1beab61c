/* Forward and backward of each operation of the Llama block, side by side.
 * Shapes and conventions in ops.h. Not the inference forward (src/engine),
 * which keeps no activations and runs quantized weights; these run F32 and
 * keep what the backward needs. */
#include "techniques/finetune/ops.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels/softmax.h"

/* ---- token embedding ---- */

void train_embed_forward(float *out, const int32_t *tok, const float *wte, int BT, int C)
{
#pragma omp parallel for
    for (int i = 0; i < BT; i++)
        memcpy(out + (size_t)i * C, wte + (size_t)tok[i] * C, (size_t)C * sizeof(float));
}

void train_embed_backward(float *dwte, const float *dout, const int32_t *tok, int BT, int C)
{
    /* split by channel: a token repeated in the batch adds into one row */
#pragma omp parallel for
    for (int c = 0; c < C; c++)
        for (int i = 0; i < BT; i++) dwte[(size_t)tok[i] * C + c] += dout[(size_t)i * C + c];
}

/* ---- RMSNorm ---- */

void train_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int BT, int C,
                           float eps)
{
#pragma omp parallel for
    for (int i = 0; i < BT; i++) {
        const float *xi = x + (size_t)i * C;
        float *oi = out + (size_t)i * C;
        float ss = 0.0f; /* as the inference engine sums, so the two agree */
        for (int c = 0; c < C; c++) ss += xi[c] * xi[c];
        float r = 1.0f / sqrtf(ss / (float)C + eps);
        rstd[i] = r;
        for (int c = 0; c < C; c++) oi[c] = w[c] * (r * xi[c]);
    }
}

/* y_c = w_c x_c r with r = (mean(x^2) + eps)^(-1/2), dr/dx_j = -r^3 x_j / C:
 * dx_j = r w_j dy_j - (r^3 / C) x_j sum_c w_c dy_c x_c;  dw_c = sum_rows dy_c x_c r. */
void train_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                            const float *rstd, int BT, int C)
{
    if (dx) {
#pragma omp parallel for
        for (int i = 0; i < BT; i++) {
            const float *xi = x + (size_t)i * C, *gi = dout + (size_t)i * C;
            float *di = dx + (size_t)i * C, r = rstd[i];
            float s = 0.0f;
            for (int c = 0; c < C; c++) s += w[c] * gi[c] * xi[c];
            float k = r * r * r * s / (float)C;
            for (int c = 0; c < C; c++) di[c] += r * w[c] * gi[c] - k * xi[c];
        }
    }
    if (dw) {
#pragma omp parallel for
        for (int c = 0; c < C; c++) {
            float s = 0.0f;
            for (int i = 0; i < BT; i++)
                s += dout[(size_t)i * C + c] * x[(size_t)i * C + c] * rstd[i];
            dw[c] += s;
        }
    }
}

/* ---- linear ---- */

void train_matmul_forward(float *out, const float *x, const float *w, int BT, int C, int OC)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, BT, OC, C, 1.0f, x, C, w, C, 0.0f, out,
                OC);
}

void train_matmul_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                           int BT, int C, int OC)
{
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, BT, C, OC, 1.0f, dout, OC, w, C,
                    1.0f, dx, C);
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, BT, 1.0f, dout, OC, x, C, 1.0f,
                    dw, C);
}

/* ---- RoPE ---- */

void train_rope_tables(float *cos_t, float *sin_t, int T, int hd, float base)
{
    int half = hd / 2;
    for (int p = 0; p < T; p++)
        for (int i = 0; i < half; i++) {
            /* the inference engine's float formula (llama2.c's), to the bit */
            float freq = 1.0f / powf(base, (float)(2 * i) / (float)hd);
            float val = (float)p * freq;
            cos_t[(size_t)p * half + i] = cosf(val);
            sin_t[(size_t)p * half + i] = sinf(val);
        }
}

/* sign = +1 turns forward, -1 back */
static void rope_apply(float *x, const float *cos_t, const float *sin_t, int B, int T, int H,
                       int hd, float sign)
{
    int half = hd / 2;
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *cs = cos_t + (size_t)t * half, *sn = sin_t + (size_t)t * half;
            float *row = x + ((size_t)b * T + t) * (size_t)H * hd;
            for (int h = 0; h < H; h++) {
                float *p = row + (size_t)h * hd;
                for (int i = 0; i < half; i++) {
                    float a = p[2 * i], c = p[2 * i + 1], s = sign * sn[i];
                    p[2 * i] = a * cs[i] - c * s;
                    p[2 * i + 1] = a * s + c * cs[i];
                }
            }
        }
}

void train_rope_forward(float *x, const float *cos_t, const float *sin_t, int B, int T, int H,
                        int hd)
{
    rope_apply(x, cos_t, sin_t, B, T, H, hd, 1.0f);
}

void train_rope_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T, int H,
                         int hd)
{
    rope_apply(dx, cos_t, sin_t, B, T, H, hd, -1.0f);
}

/* ---- causal grouped-query attention ----
 * Per (sequence, query head) through SGEMMs on strided head views: S = Q K^T
 * (the full T x T: the masked half costs less than scalar loops save), the
 * causal softmax row by row, O = P V. Backward: dP = dO V^T, the softmax's
 * dS = P (dP - rowsum(P dP)), dQ = dS K, dK = dS^T Q, dV = P^T dO. */

static inline float *head_ptr(const float *x, int b, int T, int H, int h, int hd)
{
    return (float *)x + ((size_t)b * T * H + (size_t)h) * hd;
}

static void causal_softmax_rows(float *a, int T)
{
    for (int t = 0; t < T; t++) {
        float *row = a + (size_t)t * T;
        aellm_kernel_softmax(row, t + 1);
        memset(row + t + 1, 0, (size_t)(T - t - 1) * sizeof(float));
    }
}

void train_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                             int B, int T, int NH, int NKV, int hd)
{
    int group = NH / NKV, ldq = NH * hd, ldk = NKV * hd;
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *qh = head_ptr(q, b, T, NH, h, hd);
            const float *kh = head_ptr(k, b, T, NKV, h / group, hd);
            const float *vh = head_ptr(v, b, T, NKV, h / group, hd);
            float *a = att + ((size_t)b * NH + h) * T * T;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, qh, ldq, kh, ldk,
                        0.0f, a, T);
            causal_softmax_rows(a, T);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, a, T, vh, ldk,
                        0.0f, head_ptr(out, b, T, NH, h, hd), ldq);
        }
}

int64_t train_attention_scratch(int T, int threads)
{
    return (int64_t)T * T * (threads > 0 ? threads : 1);
}

/* One query head: dP (T x T, scratch) = dO V^T, turned into dS in place. */
static void attention_head_backward(float *dq, float *dk, float *dv, const float *dout,
                                    const float *att, const float *q, const float *k,
                                    const float *v, int b, int h, int kvh, int T, int NH, int NKV,
                                    int hd, float scale, float *dp)
{
    int ldq = NH * hd, ldk = NKV * hd;
    const float *a = att + ((size_t)b * NH + h) * T * T;
    const float *go = head_ptr(dout, b, T, NH, h, hd), *qh = head_ptr(q, b, T, NH, h, hd);
    const float *kh = head_ptr(k, b, T, NKV, kvh, hd), *vh = head_ptr(v, b, T, NKV, kvh, hd);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, go, ldq, vh, ldk, 0.0f, dp,
                T);
    for (int t = 0; t < T; t++) {
        float *row = dp + (size_t)t * T;
        aellm_kernel_softmax_grad(row, a + (size_t)t * T, t + 1, scale);
        memset(row + t + 1, 0, (size_t)(T - t - 1) * sizeof(float));
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, dp, T, kh, ldk, 1.0f,
                head_ptr(dq, b, T, NH, h, hd), ldq);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, dp, T, qh, ldq, 1.0f,
                head_ptr(dk, b, T, NKV, kvh, hd), ldk);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, a, T, go, ldq, 1.0f,
                head_ptr(dv, b, T, NKV, kvh, hd), ldk);
}

void train_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att,
                              const float *q, const float *k, const float *v, int B, int T, int NH,
                              int NKV, int hd, float *scratch)
{
    int group = NH / NKV;
    float scale = 1.0f / sqrtf((float)hd);
    /* by key/value head: the query heads of a group add into the same dk, dv */
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int b = 0; b < B; b++)
        for (int kvh = 0; kvh < NKV; kvh++) {
            float *dp = scratch + (size_t)omp_get_thread_num() * T * T;
            for (int h = kvh * group; h < (kvh + 1) * group; h++)
                attention_head_backward(dq, dk, dv, dout, att, q, k, v, b, h, kvh, T, NH, NKV, hd,
                                        scale, dp);
        }
}

/* ---- SwiGLU ---- */

void train_swiglu_forward(float *out, const float *gate, const float *up, int64_t N)
{
#pragma omp parallel for simd
    for (int64_t i = 0; i < N; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/* silu(g) = g s(g), s the logistic; silu'(g) = s(g) (1 + g (1 - s(g))) */
void train_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                           const float *up, int64_t N)
{
#pragma omp parallel for simd
    for (int64_t i = 0; i < N; i++) {
        float g = gate[i], s = 1.0f / (1.0f + expf(-g));
        dgate[i] += dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
        dup[i] += dout[i] * g * s;
    }
}

void train_residual_forward(float *x, const float *y, int64_t N)
{
#pragma omp parallel for simd
    for (int64_t i = 0; i < N; i++) x[i] += y[i];
}

/* ---- softmax cross-entropy ---- */

static double weight_sum(const float *weight, int BT)
{
    if (!weight) return (double)BT;
    double s = 0.0;
    for (int i = 0; i < BT; i++) s += weight[i];
    return s;
}

double train_crossentropy_forward(float *logits, float *losses, const int32_t *targets,
                                  const float *weight, int BT, int V)
{
    double total = 0.0;
#pragma omp parallel for reduction(+ : total)
    for (int i = 0; i < BT; i++) {
        float *z = logits + (size_t)i * V, max = aellm_kernel_max(z, V), zt = z[targets[i]];
        float sum = aellm_kernel_exp_sum(z, z, V, max);
        double loss = log((double)sum) - (double)(zt - max);
        losses[i] = (float)loss;
        aellm_kernel_scale(z, V, 1.0f / sum);
        total += (weight ? weight[i] : 1.0) * loss;
    }
    double w = weight_sum(weight, BT);
    return w > 0 ? total / w : 0.0;
}

void train_crossentropy_backward(float *probs, const int32_t *targets, const float *weight, int BT,
                                 int V)
{
    double w = weight_sum(weight, BT);
    float inv = w > 0 ? (float)(1.0 / w) : 0.0f;
#pragma omp parallel for
    for (int i = 0; i < BT; i++) {
        float *p = probs + (size_t)i * V, g = (weight ? weight[i] : 1.0f) * inv;
        p[targets[i]] -= 1.0f;
        for (int c = 0; c < V; c++) p[c] *= g;
    }
}

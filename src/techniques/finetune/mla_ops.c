/* Forward and backward of the latent-attention pieces of the trainable
 * model: RoPE on the rotary pairs each KV head kept, and keys put together
 * from their rotary and position-free parts. */
#include <string.h>

#include "techniques/finetune/ops.h"

static void mla_rope(float *x, const float *cos_t, const float *sin_t, const int *idx, int B, int T,
                     int H, int stride, int per, int pairs, int half, float dir)
{
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *cs = cos_t + (size_t)t * half, *sn = sin_t + (size_t)t * half;
            for (int h = 0; h < H; h++) {
                float *p = x + (((size_t)b * T + t) * H + h) * stride;
                const int *pi = idx + (size_t)(h / per) * pairs;
                for (int j = 0; j < pairs; j++) {
                    float c = cs[pi[j]], s = dir * sn[pi[j]], a = p[2 * j], v = p[2 * j + 1];
                    p[2 * j] = a * c - v * s;
                    p[2 * j + 1] = a * s + v * c;
                }
            }
        }
}

void train_mla_rope_forward(float *x, const float *cos_t, const float *sin_t, const int *idx, int B,
                            int T, int H, int stride, int per, int pairs, int half)
{
    mla_rope(x, cos_t, sin_t, idx, B, T, H, stride, per, pairs, half, 1.0f);
}

void train_mla_rope_backward(float *dx, const float *cos_t, const float *sin_t, const int *idx,
                             int B, int T, int H, int stride, int per, int pairs, int half)
{
    mla_rope(dx, cos_t, sin_t, idx, B, T, H, stride, per, pairs, half, -1.0f);
}

void train_mla_keys_forward(float *k, const float *kr, const float *kn, int BT, int NKV, int hd,
                            int dr)
{
    int dn = hd - dr;
    for (size_t i = 0; i < (size_t)BT * NKV; i++) {
        memcpy(k + i * hd, kr + i * dr, (size_t)dr * sizeof(float));
        memcpy(k + i * hd + dr, kn + i * dn, (size_t)dn * sizeof(float));
    }
}

void train_mla_keys_backward(float *dkr, float *dkn, const float *dk, int BT, int NKV, int hd,
                             int dr)
{
    int dn = hd - dr;
    for (size_t i = 0; i < (size_t)BT * NKV; i++) {
        memcpy(dkr + i * dr, dk + i * hd, (size_t)dr * sizeof(float));
        memcpy(dkn + i * dn, dk + i * hd + dr, (size_t)dn * sizeof(float));
    }
}

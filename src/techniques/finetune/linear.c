/* A linear map with its base (dense F32, or quantized and dequantized a tile
 * at a time) and its adapter, forward and backward side by side (linear.h
 * has the maths). */
#include "techniques/finetune/linear.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "aellm/dtype.h"
#include "core/rng.h"

/* ---- the base ---- */

static int tile_rows(const train_linear *lin, int o0)
{
    return lin->OC - o0 < TRAIN_TILE_ROWS ? lin->OC - o0 : TRAIN_TILE_ROWS;
}

static void dequant_tile(const train_linear *lin, int o0, int rows, float *tile)
{
    aellm_to_float_fn to_float = aellm_dtype_traits_get(lin->wq_type)->to_float;
    for (int r = 0; r < rows; r++)
        to_float((const char *)lin->wq + (size_t)(o0 + r) * lin->wq_row_bytes,
                 tile + (size_t)r * lin->C, lin->C);
}

/* y = x W^T (beta 0: overwrites y) */
static void base_forward(const train_linear *lin, float *y, const float *x, int BT, float *tile)
{
    int C = lin->C, OC = lin->OC;
    if (lin->w) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, BT, OC, C, 1.0f, x, C, lin->w, C, 0.0f,
                    y, OC);
        return;
    }
    for (int o0 = 0; o0 < OC; o0 += TRAIN_TILE_ROWS) {
        int rows = tile_rows(lin, o0);
        dequant_tile(lin, o0, rows, tile);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, BT, rows, C, 1.0f, x, C, tile, C, 0.0f,
                    y + o0, OC);
    }
}

/* dx += g W, dW += g^T x (g: (BT, OC)) */
static void base_backward(const train_linear *lin, float *dx, const float *g, const float *x,
                          int BT, float *tile)
{
    int C = lin->C, OC = lin->OC;
    if (lin->dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, BT, 1.0f, g, OC, x, C, 1.0f,
                    lin->dw, C);
    if (!dx) return;
    if (lin->w) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, BT, C, OC, 1.0f, g, OC, lin->w, C,
                    1.0f, dx, C);
        return;
    }
    for (int o0 = 0; o0 < OC; o0 += TRAIN_TILE_ROWS) {
        int rows = tile_rows(lin, o0);
        dequant_tile(lin, o0, rows, tile);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, BT, C, rows, 1.0f, g + o0, OC, tile,
                    C, 1.0f, dx, C);
    }
}

/* ---- DoRA's direction V = W + s B A and its row norms ---- */

static void dora_direction(const train_linear *lin)
{
    const train_adapter *a = &lin->ad;
    int C = lin->C, OC = lin->OC;
    if (lin->w)
        memcpy(a->V, lin->w, (size_t)OC * C * sizeof(float));
    else
        for (int o0 = 0; o0 < OC; o0 += TRAIN_TILE_ROWS)
            dequant_tile(lin, o0, tile_rows(lin, o0), a->V + (size_t)o0 * C);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, C, a->r, a->scale, a->B, a->r, a->A,
                C, 1.0f, a->V, C);
    for (int o = 0; o < OC; o++) {
        double ss = 0.0;
        for (int c = 0; c < C; c++) ss += (double)a->V[(size_t)o * C + c] * a->V[(size_t)o * C + c];
        a->norm[o] = (float)sqrt(ss);
    }
}

size_t train_linear_scratch(const train_linear *lin, int BT)
{
    size_t tile = (size_t)TRAIN_TILE_ROWS * lin->C, need = tile;
    if (lin->ad.kind == TRAIN_ADAPTER_LORA)
        need += (size_t)BT * lin->ad.r + (lin->ad.dropout > 0 ? (size_t)BT * lin->C : 0);
    if (lin->ad.kind == TRAIN_ADAPTER_DORA) need += (size_t)BT * lin->OC + (size_t)lin->OC * lin->C;
    return need;
}

/* The mask (0 or 1/(1-p)) from the adapter's seed, and x through it. */
static void apply_dropout(train_adapter *a, const float *x, size_t n)
{
    aellm_rng rng;
    aellm_rng_seed(&rng, a->drop_seed);
    float keep = 1.0f / (1.0f - a->dropout);
    for (size_t i = 0; i < n; i++) {
        a->drop[i] = aellm_rng_f32(&rng) < a->dropout ? 0.0f : keep;
        a->xd[i] = x[i] * a->drop[i];
    }
}

void train_linear_forward(train_linear *lin, float *y, const float *x, int BT, float *scratch)
{
    train_adapter *a = &lin->ad;
    int C = lin->C, OC = lin->OC;
    if (a->kind == TRAIN_ADAPTER_DORA) {
        dora_direction(lin);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, BT, OC, C, 1.0f, x, C, a->V, C, 0.0f,
                    a->y0, OC);
#pragma omp parallel for
        for (int t = 0; t < BT; t++)
            for (int o = 0; o < OC; o++)
                y[(size_t)t * OC + o] = a->y0[(size_t)t * OC + o] * (a->m[o] / a->norm[o]);
        return;
    }
    base_forward(lin, y, x, BT, scratch);
    if (a->kind != TRAIN_ADAPTER_LORA) return;
    a->dropped = a->dropout > 0 && a->training;
    if (a->dropped) apply_dropout(a, x, (size_t)BT * C);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, BT, a->r, C, 1.0f, a->dropped ? a->xd : x,
                C, a->A, C, 0.0f, a->xa, a->r);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, BT, OC, a->r, a->scale, a->xa, a->r, a->B,
                a->r, 1.0f, y, OC);
}

/* LoRA: dxa = s dy B, dB += s dy^T xa, dA += dxa^T xd, dx += (dxa A) * drop
 * (xd = x and drop = 1 without dropout). */
static void lora_backward(train_linear *lin, float *dx, const float *dy, const float *x, int BT,
                          float *dxa)
{
    train_adapter *a = &lin->ad;
    int C = lin->C, OC = lin->OC, r = a->r;
    const float *in = a->dropped ? a->xd : x;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, BT, r, OC, a->scale, dy, OC, a->B, r,
                0.0f, dxa, r);
    if (a->dB)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, r, BT, a->scale, dy, OC, a->xa, r,
                    1.0f, a->dB, r);
    if (a->dA)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, C, BT, 1.0f, dxa, r, in, C, 1.0f,
                    a->dA, C);
    if (!dx) return;
    if (!a->dropped) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, BT, C, r, 1.0f, dxa, r, a->A, C,
                    1.0f, dx, C);
        return;
    }
    float *t = dxa + (size_t)BT * r; /* (BT, C) of the scratch */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, BT, C, r, 1.0f, dxa, r, a->A, C, 0.0f, t,
                C);
    for (size_t i = 0; i < (size_t)BT * C; i++) dx[i] += t[i] * a->drop[i];
}

/* DoRA with the norm detached (the DoRA paper's section 4.3: ||V|| is treated
 * as a constant in the backward pass, which saves its gradient's memory and
 * changes the result little): with g = dy * m / ||V||,
 * dm += sum_t dy * y0 / ||V||, dx += g V, dV = g^T x, dB += s dV A^T,
 * dA += s B^T dV. */
static void dora_backward(train_linear *lin, float *dx, const float *dy, const float *x, int BT,
                          float *g, float *dV)
{
    train_adapter *a = &lin->ad;
    int C = lin->C, OC = lin->OC, r = a->r;
#pragma omp parallel for
    for (int t = 0; t < BT; t++)
        for (int o = 0; o < OC; o++)
            g[(size_t)t * OC + o] = dy[(size_t)t * OC + o] * (a->m[o] / a->norm[o]);
    if (a->dm) {
#pragma omp parallel for
        for (int o = 0; o < OC; o++) {
            double s = 0.0;
            for (int t = 0; t < BT; t++)
                s += (double)dy[(size_t)t * OC + o] * a->y0[(size_t)t * OC + o];
            a->dm[o] += (float)(s / a->norm[o]);
        }
    }
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, BT, C, OC, 1.0f, g, OC, a->V, C,
                    1.0f, dx, C);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, BT, 1.0f, g, OC, x, C, 0.0f, dV, C);
    if (lin->dw) /* a trainable base would see dV too (DoRA keeps it frozen) */
        for (size_t i = 0; i < (size_t)OC * C; i++) lin->dw[i] += dV[i];
    if (a->dB)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, r, C, a->scale, dV, C, a->A, C,
                    1.0f, a->dB, r);
    if (a->dA)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, C, OC, a->scale, a->B, r, dV, C,
                    1.0f, a->dA, C);
}

void train_linear_backward(train_linear *lin, float *dx, const float *dy, const float *x, int BT,
                           float *scratch)
{
    float *tile = scratch, *rest = scratch + (size_t)TRAIN_TILE_ROWS * lin->C;
    if (lin->ad.kind == TRAIN_ADAPTER_DORA) {
        dora_backward(lin, dx, dy, x, BT, rest, rest + (size_t)BT * lin->OC);
        return;
    }
    base_backward(lin, dx, dy, x, BT, tile);
    if (lin->ad.kind == TRAIN_ADAPTER_LORA) lora_backward(lin, dx, dy, x, BT, rest);
}

void train_linear_effective(const train_linear *lin, float *out)
{
    const train_adapter *a = &lin->ad;
    int C = lin->C, OC = lin->OC;
    if (lin->w)
        memcpy(out, lin->w, (size_t)OC * C * sizeof(float));
    else
        for (int o0 = 0; o0 < OC; o0 += TRAIN_TILE_ROWS)
            dequant_tile(lin, o0, tile_rows(lin, o0), out + (size_t)o0 * C);
    if (a->kind == TRAIN_ADAPTER_NONE) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, C, a->r, a->scale, a->B, a->r, a->A,
                C, 1.0f, out, C);
    if (a->kind != TRAIN_ADAPTER_DORA) return;
    for (int o = 0; o < OC; o++) {
        double ss = 0.0;
        for (int c = 0; c < C; c++) ss += (double)out[(size_t)o * C + c] * out[(size_t)o * C + c];
        float k = a->m[o] / (float)sqrt(ss);
        for (int c = 0; c < C; c++) out[(size_t)o * C + c] *= k;
    }
}

/* One linear map of the trainable model, y (BT, OC) = x (BT, C) . W'^T, where
 * W' is the base W (F32, trainable or frozen; or frozen in a quantized type,
 * dequantized a tile of rows at a time and never expanded whole: QLoRA) with
 * at most one adapter:
 *   LoRA / RSLoRA / QLoRA  W' = W + s B A,  A (r, C), B (OC, r), s = alpha/r or alpha/sqrt(r)
 *   DoRA                   W' = m * V / ||V||,  V = W + s B A, ||.|| per output row
 * The adapters' parameters live in the model's adapter block (lora.c,
 * dora.c); this file runs them. Backward adds into every gradient that is
 * not NULL. */
#ifndef AELLM_TECHNIQUES_FINETUNE_LINEAR_H
#define AELLM_TECHNIQUES_FINETUNE_LINEAR_H

#include <stddef.h>
#include <stdint.h>

typedef enum { TRAIN_ADAPTER_NONE = 0, TRAIN_ADAPTER_LORA, TRAIN_ADAPTER_DORA } train_adapter_kind;

#define TRAIN_TILE_ROWS 64 /* rows of a quantized base dequantized at once */

typedef struct {
    train_adapter_kind kind;
    int r;
    float scale;
    float *A, *B, *dA, *dB; /* (r, C), (OC, r) and their gradients */
    float *m, *dm;          /* DoRA: magnitude (OC) */
    /* LoRA dropout on the adapter's input (not DoRA): in a training forward each
     * input element is kept with probability 1 - dropout and scaled by
     * 1 / (1 - dropout); the mask comes from drop_seed */
    float dropout;
    int training;
    uint64_t drop_seed;
    /* kept by forward for backward (in the model's activation block) */
    float *xa;   /* (BT, r) x . A^T */
    float *V;    /* DoRA: (OC, C) W + s B A */
    float *norm; /* DoRA: (OC) ||V|| per row, detached from the gradient */
    float *y0;   /* DoRA: (BT, OC) x . V^T before the magnitude */
    float *drop; /* dropout: (BT, C) 0 or 1/(1-p) per input element of the last forward */
    float *xd;   /* dropout: (BT, C) x * drop */
    int dropped; /* the last forward applied dropout */
} train_adapter;

typedef struct {
    int C, OC;
    const float *w; /* F32 base (OC, C), or NULL when quantized */
    float *dw;      /* its gradient, NULL when frozen */
    const void *wq; /* quantized frozen base: OC rows of wq_row_bytes in wq_type */
    int wq_type;
    size_t wq_row_bytes;
    train_adapter ad;
} train_linear;

/* Floats of scratch that forward and backward need for BT rows. */
size_t train_linear_scratch(const train_linear *lin, int BT);

void train_linear_forward(train_linear *lin, float *y, const float *x, int BT, float *scratch);
/* dx (may be NULL: the input needs no gradient) += dL/dx; parameter
 * gradients added where their pointers are set. */
void train_linear_backward(train_linear *lin, float *dx, const float *dy, const float *x, int BT,
                           float *scratch);

/* The effective dense weight W' (OC, C) into out (for merging and tests). */
void train_linear_effective(const train_linear *lin, float *out);

#endif

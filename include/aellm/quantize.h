/* Post-training weight quantization of a model: round-to-nearest, and the
 * calibrated methods GPTQ, AWQ and SmoothQuant, each writing a new model in
 * any weight type that has a quantization grid (include/aellm/dtype.h).
 * Calibrated methods run the model layer by layer over a calibration text,
 * so every layer is fitted to the outputs of the already-quantized ones. */
#ifndef AELLM_QUANTIZE_H
#define AELLM_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>

#include "aellm/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    AELLM_QUANT_RTN,         /* round to nearest, per group */
    AELLM_QUANT_GPTQ,        /* second-order error feedback (Frantar et al. 2022) */
    AELLM_QUANT_AWQ,         /* activation-aware channel scales (Lin et al. 2023) */
    AELLM_QUANT_SMOOTHQUANT, /* migrates activation outliers into weights, for W8A8 */
    AELLM_QUANT_COUNT
} aellm_quant_method;

/* "rtn", "gptq", "awq", "smoothquant"; NULL for an unknown method. */
const char *aellm_quant_method_name(int method);
/* The method of that name, or -1. */
int aellm_quant_method_from_name(const char *name);

/* The weight type a user names: "int4" with group 32 (default), 64 or 128
 * and asym (32 gives llama.cpp's q4_0 / q4_1), "fp8" (e4m3), or a dtype
 * name (int8, nf4, f16, bf16, q8_0, int4a_g64, ...). The dtype, or
 * AELLM_EINVAL with a message naming what is wrong. */
int aellm_quant_type_resolve(const char *name, int group, int asym);

/* Reads bytes [skip, skip + bytes) of a calibration text file (bytes 0 =
 * to its end) into *out, NUL-terminated (caller frees). Errors name the file;
 * a skip at or past its end is AELLM_EINVAL. */
int aellm_quant_read_calib(char **out, size_t *len, const char *path, int64_t skip, int64_t bytes);

/* Called after layer `layer` (0-based) of n_layers is done. */
typedef void (*aellm_quant_progress_fn)(int layer, int n_layers, void *user);

typedef struct {
    int type;   /* target aellm_dtype of the layers' matrices (q4_0, int4s_g128, int8, ...) */
    int method; /* aellm_quant_method */
    /* Calibration text: calib_text (calib_len bytes) when set, else the file
     * calib_path. Required by GPTQ, AWQ and SmoothQuant; optional for RTN
     * (then only the report's errors use it). */
    const char *calib_path;
    const char *calib_text;
    size_t calib_len;
    int64_t calib_tokens; /* tokens used (default 4096) */
    int calib_ctx;        /* tokens per calibration sequence, BOS first (default 256) */
    int act_order;        /* GPTQ: columns by descending Hessian diagonal, static groups */
    float damp;           /* GPTQ: damping, a fraction of the mean Hessian diagonal (0.01) */
    int block;            /* GPTQ: columns per lazy-update block (128) */
    float alpha;          /* SmoothQuant migration strength (0.5) */
    int awq_grid;         /* AWQ: points of the exponent grid in [0, 1) (20) */
    /* AWQ: after the scales, clip each group's range where that lowers the
     * group's output error (the paper's auto_clip; q and k are not clipped,
     * as there) (1) */
    int awq_clip;
    /* GPTQ: fit each group's range by the reference quantizer's "mse" shrink
     * search instead of its min/max (0, as in the reference's scripts: on
     * stories260K it moved perplexity by less than the noise) */
    int gptq_mse;
    int fp8_per_tensor;  /* per-row types (fp8, int8): one scale for the whole tensor */
    int quantize_output; /* 0: token embedding and output keep their type; 1: RTN them */
    int n_threads;       /* 0 = cores */
    aellm_quant_progress_fn progress;
    void *progress_user;
} aellm_quantize_params;

void aellm_quantize_params_default(aellm_quantize_params *p);

typedef struct {
    char name[64]; /* GGUF name, e.g. blk.0.attn_q.weight */
    int type;      /* type written */
    /* ||X W^T - X What^T|| / ||X W^T|| on calibration rows X, W the input
     * model's weights (in their original basis when scales were folded);
     * -1 where no calibration was run. */
    double rel_err;
    char note[160]; /* e.g. why the type differs from the target; may be empty */
} aellm_quant_tensor_report;

typedef struct {
    aellm_quant_tensor_report *tensors; /* n_tensors, owned */
    int n_tensors;
    int64_t calib_tokens; /* tokens run through the model (0 without calibration) */
    int n_sequences;
    double seconds;
} aellm_quantize_report;

void aellm_quantize_report_free(aellm_quantize_report *r); /* frees the contents; accepts NULL */

/* Quantizes `in` into a new model *out (owned by the caller; it owns its
 * tensors and a copy of the vocabulary) and sets out's quantize_json. `rep`
 * may be NULL. Layer matrices whose rows are not whole blocks of a llama.cpp
 * type (q4_0, q4_1, q8_0) are stored in aellm's partial-group equivalent
 * (int4s_g32, int4a_g32, int8_g32), or f16 where that type is not available;
 * the report notes it. Norms stay f32. */
int aellm_quantize_model(aellm_model **out, const aellm_model *in, const aellm_quantize_params *p,
                         aellm_quantize_report *rep);

#ifdef __cplusplus
}
#endif
#endif

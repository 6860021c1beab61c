/* Hardware profiles: this machine detected (and measured), or a platform
 * that is not here read from a JSON file (hardware/NAME.json, with the vendor
 * data sheets cited). Used for memory and power limits, energy estimates
 * and, later, predictions. */
#ifndef AELLM_HARDWARE_H
#define AELLM_HARDWARE_H

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Dtype ids below this may carry measured kernel rates (dtype.h's ids). */
#define AELLM_HW_RATED_TYPES 128

/* What one kind of kernel achieves: bytes read per second in decode (one
 * token: a matrix-vector product, or attention over the cache) and FLOP/s
 * in prefill (a batch). */
typedef struct {
    double decode_bytes_per_s, prefill_flop_per_s;
    /* A whole model's time over the sum of its kernels at these rates,
     * measured on a held-in shape (aellm predict --calibrate); 0: not
     * fitted (1). Weight types only. */
    double decode_scale, prefill_scale;
} aellm_hw_rate;

typedef struct {
    char name[128];   /* "AMD EPYC 7B13" (detected) or the file's name */
    char kind[8];     /* "cpu" or "gpu" */
    char isa[64];     /* "avx2 fma f16c", "avx512 vnni", "sm_90", ... */
    int cores;        /* physical cores (CPU) or SMs (GPU) */
    int threads;      /* hardware threads (CPU); 0 for a GPU */
    double mem_bytes; /* RAM, or GPU memory */
    double mem_bw;    /* bytes/s: measured here, data-sheet value in a file */
    /* Peak dense FLOP/s (OP/s for integers) per precision; 0 = not supported. */
    double peak_f32, peak_f16, peak_bf16, peak_fp8, peak_int8, peak_int4;
    double power_limit_w;     /* TDP / board power */
    double idle_w;            /* power model: idle draw of the device */
    double active_w_per_core; /* power model: added draw per busy core (CPU), or per
                                 busy device (GPU, cores = 1 for this purpose) */
    /* Achieved fractions a prediction uses (aellm_predict), optional in a
     * file (0: unknown, the ideal roofline is used): of peak bandwidth in
     * decode by weight width (16 bits and wider, 8, 4), of the dense peak in
     * prefill, and a fixed cost per kernel; eff_source cites them. */
    double eff_bw_16, eff_bw_8, eff_bw_4, eff_compute, kernel_overhead_s;
    char eff_source[320];
    /* Rates measured per kernel kind on the machine itself (aellm predict
     * --calibrate), indexed by dtype id; 0 where not measured, and then the
     * fractions above apply. A file holds them as
     * "kernel_rates": {"q4_0": {"decode_bytes_per_s": .., "prefill_flop_per_s": ..}}
     * and "attention_rates" the same by KV cache type. */
    aellm_hw_rate kernel_rates[AELLM_HW_RATED_TYPES];
    aellm_hw_rate attention_rates[AELLM_HW_RATED_TYPES];
    int detected;     /* 1: this machine, detected and measured */
    char source[512]; /* where the numbers come from (citations or "detected: ...") */
} aellm_hw_profile;

/* Detects this machine: CPU model, cores, ISA flags (what the kernels use),
 * memory size; when `measure` the memory bandwidth (streaming read, the
 * threads given, 0 = cores) and the f32 FMA peak (a timed register-only
 * loop); other precisions estimated from the ISA, the formula in `source`. */
int aellm_hw_detect(aellm_hw_profile *out, int measure, int threads);

/* Reads a profile from a JSON file, or by name ("h100-sxm") from `dir`
 * (the repository's hardware/ folder when NULL: $AELLM_HARDWARE_DIR, else
 * the compiled-in path). A missing key or wrong type names the file and key. */
int aellm_hw_load(aellm_hw_profile *out, const char *path_or_name, const char *dir);

/* A new JSON object with every field (caller deletes). */
cJSON *aellm_hw_to_json(const aellm_hw_profile *p);
/* The fields that identify the platform, as canonical JSON (name, kind,
 * isa, cores, threads, mem_bytes; not the measured bandwidth, which
 * drifts). Caller frees. */
char *aellm_hw_identity_json(const aellm_hw_profile *p);

#ifdef __cplusplus
}
#endif
#endif

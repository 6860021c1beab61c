/* Pieces shared inside src/measure (hardware detection and the energy
 * meter) and reached by the tests: the register-only FMA loops behind the
 * measured f32 peak, and the RAPL counter helpers. Not a public API. */
#ifndef AELLM_MEASURE_INTERNAL_H
#define AELLM_MEASURE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "aellm/hardware.h"

/* ---- FMA peak loops (flops_avx2.c, flops_avx512.c, hardware.c) ----
 * Each runs `iters` iterations of FLOPS_CHAINS independent fused
 * multiply-add chains on full vectors, all in registers, and returns a value
 * depending on every chain (so that nothing is optimised away). `m` close to
 * 1 and `a` small keep the chains bounded and free of denormals. */
#define AELLM_FLOPS_CHAINS 12
/* FLOP per iteration: chains x lanes x 2 (a multiply and an add). */
#define AELLM_FLOPS_PER_ITER_AVX2   (AELLM_FLOPS_CHAINS * 8 * 2)
#define AELLM_FLOPS_PER_ITER_AVX512 (AELLM_FLOPS_CHAINS * 16 * 2)
#define AELLM_FLOPS_PER_ITER_SCALAR (AELLM_FLOPS_CHAINS * 2)
float aellm_flops_loop_avx2(long iters, float m, float a);
float aellm_flops_loop_avx512(long iters, float m, float a);

/* ---- RAPL (energy.c) ----
 * The powercap root: $AELLM_POWERCAP_DIR (a hook for tests, which build a
 * fake tree), else /sys/class/powercap. */
const char *aellm_rapl_root(void);
/* Package-level domains (root/intel-rapl:N, not psys, not sub-zones) whose
 * energy_uj reads; writes up to `max` directory paths. Returns the count. */
int aellm_rapl_packages(char (*paths)[256], int max);
/* Energy between two readings of a counter that runs from 0 to `range`
 * (max_energy_range_uj) and then starts again at 0: at most one wrap is
 * assumed between the readings. */
uint64_t aellm_rapl_delta(uint64_t start, uint64_t end, uint64_t range);

/* ---- EfficientLLM's metrics of one request (efficiency.c) ---- */
typedef struct {
    double weight_bytes_per_token; /* active weights a decoded token reads */
    double kv_bytes_per_position;  /* KV cache bytes per position, all layers */
    double flops_per_token;        /* 2 x active parameters */
    double attn_flops_per_pair;    /* per (query, key) position pair: 4 x layers x q width */
    int n_prompt, n_gen;
    double total_s, joules; /* the request's figures, as the record gives them */
    double weight_bytes, default_weight_bytes;
    double mem_bw, peak_flops; /* this machine's (bytes/s, FLOP/s) */
    const char *peaks_source;
} aellm_effllm_inputs;

/* The record's "efficientllm" object (caller frees; NULL when out of memory). */
cJSON *aellm_effllm_json(const aellm_effllm_inputs *in);

/* hw->mem_bw and hw->peak_f32 of this machine: read from cache_dir's
 * machine-<hw_hash>.json, else measured (about 3 s) and kept there;
 * cache_dir may be NULL (measured each time). source gets where they came
 * from. */
int aellm_machine_peaks(aellm_hw_profile *hw, const char *cache_dir, const char *hw_hash,
                        int threads, char *source, size_t cap);

#endif

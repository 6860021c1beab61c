/* EfficientLLM's six metrics of a measured request (Yuan et al. 2025,
 * arXiv 2505.13840, §3): average memory utilisation (bytes moved per second
 * over the machine's memory bandwidth), peak compute utilisation (FLOP/s
 * over its peak), latency, throughput, energy, and the model compression
 * rate; and this machine's bandwidth and peak they are measured against,
 * measured once and kept in the cache folder. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic.h"
#include "core/error.h"
#include "core/json.h"
#include "measure/measure_internal.h"

/* What a request moved and computed, from the shape of the work: the prompt
 * reads the weights once (one batch) and writes its KV rows; each generated
 * token reads the active weights and the cache so far (the mean position
 * over the generation). FLOPs: 2 per active parameter per token, and 4 per
 * (query, key) pair per head-dim for q.k and a.v, causal. */
static void request_work(const aellm_effllm_inputs *in, double *bytes, double *flops)
{
    double P = in->n_prompt, G = in->n_gen, mean_ctx = P + (G - 1) / 2.0;
    *bytes = in->weight_bytes_per_token + P * in->kv_bytes_per_position +
             G * (in->weight_bytes_per_token + (mean_ctx + 1) * in->kv_bytes_per_position);
    double pairs = P * (P + 1) / 2 + G * (mean_ctx + 1);
    *flops = (P + G) * in->flops_per_token + pairs * in->attn_flops_per_pair;
}

cJSON *aellm_effllm_json(const aellm_effllm_inputs *in)
{
    double bytes, flops;
    request_work(in, &bytes, &flops);
    double t = in->total_s;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "definitions",
                            "EfficientLLM (arXiv 2505.13840): amu = bytes moved per second / "
                            "memory bandwidth; pcu = FLOP/s / peak f32 FLOP/s; over the timed "
                            "request (prompt reads the weights once; each generated token the "
                            "active weights and the cache so far; 2 FLOP per active parameter "
                            "per token plus attention); compression_rate = the unmodified "
                            "model's weight bytes / this configuration's");
    cJSON_AddItemToObject(o, "amu",
                          in->mem_bw > 0 && t > 0 ? cJSON_CreateNumber(bytes / t / in->mem_bw)
                                                  : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "pcu",
                          in->peak_flops > 0 && t > 0
                              ? cJSON_CreateNumber(flops / t / in->peak_flops)
                              : cJSON_CreateNull());
    cJSON_AddNumberToObject(o, "latency_s", t);
    cJSON_AddNumberToObject(o, "throughput_tokens_per_s",
                            t > 0 ? (in->n_prompt + in->n_gen) / t : 0);
    cJSON_AddNumberToObject(o, "energy_j", in->joules);
    cJSON_AddNumberToObject(o, "compression_rate",
                            in->weight_bytes > 0 ? in->default_weight_bytes / in->weight_bytes : 0);
    cJSON_AddNumberToObject(o, "bytes_moved", bytes);
    cJSON_AddNumberToObject(o, "flops", flops);
    cJSON_AddNumberToObject(o, "mem_bw", in->mem_bw);
    cJSON_AddNumberToObject(o, "peak_flops", in->peak_flops);
    cJSON_AddStringToObject(o, "peaks_source", in->peaks_source);
    return o;
}

/* ---- this machine's bandwidth and peak, measured once ---- */

static int read_peaks(const char *path, aellm_hw_profile *hw)
{
    cJSON *j = NULL;
    if (aellm_json_load(&j, path)) return -1;
    const cJSON *bw = cJSON_GetObjectItem(j, "mem_bw"), *pk = cJSON_GetObjectItem(j, "peak_f32");
    int ok = cJSON_IsNumber(bw) && cJSON_IsNumber(pk) && bw->valuedouble > 0 && pk->valuedouble > 0;
    if (ok) hw->mem_bw = bw->valuedouble, hw->peak_f32 = pk->valuedouble;
    cJSON_Delete(j);
    return ok ? 0 : -1;
}

static void write_peaks(const char *path, const aellm_hw_profile *hw)
{
    char text[256];
    int n = snprintf(text, sizeof(text), "{\"mem_bw\": %.6g, \"peak_f32\": %.6g}\n", hw->mem_bw,
                     hw->peak_f32);
    aellm_atomic a;
    if (aellm_atomic_open(&a, path)) return; /* not kept: measured again next time */
    aellm_atomic_write(&a, text, (size_t)n);
    aellm_atomic_commit(&a);
}

int aellm_machine_peaks(aellm_hw_profile *hw, const char *cache_dir, const char *hw_hash,
                        int threads, char *source, size_t cap)
{
    char path[4096];
    if (cache_dir) snprintf(path, sizeof(path), "%s/machine-%.32s.json", cache_dir, hw_hash);
    if (cache_dir && read_peaks(path, hw) == 0) {
        snprintf(source, cap, "measured on this machine earlier (%s)", path);
        return 0;
    }
    aellm_hw_profile m;
    int rc = aellm_hw_detect(&m, 1, threads);
    if (rc) return rc;
    hw->mem_bw = m.mem_bw, hw->peak_f32 = m.peak_f32;
    snprintf(source, cap, "measured on this machine now (streaming read, FMA loop)");
    if (cache_dir) write_peaks(path, hw);
    return 0;
}

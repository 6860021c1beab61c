/* The roofline prediction of include/aellm/predict.h: the configuration's
 * bytes and FLOPs per token from the shape it gives the model, then time at
 * the achieved fractions of the profile's peaks. */
#include "aellm/predict.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "aellm/dtype.h"
#include "aellm/engine.h"
#include "core/error.h"
#include "model/model.h"

void aellm_predict_params_default(aellm_predict_params *p)
{
    *p = (aellm_predict_params){.n_prompt = 512, .n_gen = 128, .base_type = AELLM_DTYPE_F16};
}

/* Bytes of `rows` rows of n values in `type`; rows that are not whole blocks
 * are padded, as the quantizer's zero-padded twins store them. */
static double mat(int type, double rows, int64_t n)
{
    int64_t bs = aellm_dtype_traits_get(type)->block_size;
    int64_t padded = bs > 1 ? (n + bs - 1) / bs * bs : n;
    return rows * (double)aellm_dtype_row_size(type, padded);
}

/* The work of one token, split by what reads it: the layers' matrices (the
 * configuration's weight type), the output matrix (the base type), and the
 * small f32 rest (norms, router, the embedding row). */
typedef struct {
    double bytes, active_bytes, active_params, kv_per_pos, kernels;
    double out_bytes, out_params, f32_bytes;
} work;

/* Attention of one layer: bytes, parameters, kernels. */
static void attention_work(const aellm_model_config *t, int W, int kvh, work *w)
{
    double d = t->dim, q = (double)t->n_heads * t->head_dim, b, n;
    if (t->mla_rank) {
        double r = t->mla_rank, dr = t->mla_rope_dim, dn = t->head_dim - dr;
        b = mat(W, q, t->dim) + mat(W, kvh * dr, t->dim) + mat(W, r, t->dim) +
            mat(W, kvh * dn, t->mla_rank) + mat(W, (double)kvh * t->head_dim, t->mla_rank) +
            mat(W, d, (int64_t)q);
        n = 2 * q * d + kvh * dr * d + r * d + kvh * (dn + t->head_dim) * r;
    } else {
        double kv = (double)kvh * t->head_dim;
        b = mat(W, q, t->dim) + 2 * mat(W, kv, t->dim) + mat(W, d, (int64_t)q);
        n = 2 * q * d + 2 * kv * d;
    }
    w->bytes += b, w->active_bytes += b, w->active_params += n;
    w->kernels += 5; /* four products and the attention */
}

static void ffn_work(const aellm_model_config *t, int W, work *w)
{
    double d = t->dim, h = t->hidden_dim;
    int E = t->n_experts > 1 ? t->n_experts : 1, k = t->n_experts > 1 ? t->n_experts_used : 1;
    double b = 2 * mat(W, E * h, t->dim) + mat(W, E * d, t->hidden_dim), share = (double)k / E;
    w->bytes += b, w->active_bytes += share * b, w->active_params += 3 * d * h * k;
    if (E > 1) w->bytes += 4 * E * d, w->active_bytes += 4 * E * d, w->kernels += 1;
    w->kernels += 3 * k;
}

static int kv_heads_after(const aellm_config *c, const aellm_model_config *t)
{
    if (t->mla_rank) return t->n_kv_heads; /* nothing to pool */
    int to = aellm_config_inference_kv_heads(c, t->n_kv_heads);
    return to == 0 ? t->n_kv_heads : to;
}

static int shape_work(const aellm_model_config *shape, const aellm_config *c, int base, work *w,
                      aellm_model_config *t)
{
    aellm_model *m = NULL;
    int rc = aellm_model_alloc(&m, shape);
    if (rc) return rc;
    aellm_config_arch_shape(c, m, t);
    int arch_kv = aellm_config_arch_kv_heads(c, m);
    aellm_model_free(m);
    int kvh = kv_heads_after(c, t);
    if (arch_kv < 0 || kvh < 1 || t->n_kv_heads % kvh)
        return aellm_error_set(AELLM_EINVAL, "the configuration's KV heads do not fit %d heads",
                               shape->n_kv_heads);
    int W = c->weight_type >= 0 ? c->weight_type : base;
    memset(w, 0, sizeof(*w));
    for (int l = 0; l < t->n_layers; l++) {
        attention_work(t, W, kvh, w);
        ffn_work(t, W, w);
    }
    double norms = 4.0 * (2 * t->n_layers + 1) * t->dim, emb = mat(base, t->vocab_size, t->dim);
    double out = t->tied_output ? 0 : emb;
    w->bytes += norms + emb + out;
    w->out_bytes = emb, w->out_params = (double)t->vocab_size * t->dim;
    w->f32_bytes = norms + emb / t->vocab_size +
                   (t->n_experts > 1 ? 4.0 * t->n_layers * t->n_experts * t->dim : 0);
    w->active_bytes += norms + emb / t->vocab_size + (t->tied_output ? emb : out);
    w->kernels += 2.0 * t->n_layers + 1; /* norms, and the output product */
    double kv_elem = (double)aellm_dtype_row_size(c->kv_type, t->head_dim) / t->head_dim;
    w->kv_per_pos = t->mla_rank ? 4.0 * t->n_layers * (t->mla_rank + kvh * t->mla_rope_dim)
                                : 2.0 * t->n_layers * kvh * t->head_dim * kv_elem;
    return 0;
}

/* The achieved fraction of peak bandwidth for weights of `bits` per value. */
static double bw_fraction(const aellm_hw_profile *hw, double bits)
{
    double f = bits >= 15 ? hw->eff_bw_16 : bits >= 7.5 ? hw->eff_bw_8 : hw->eff_bw_4;
    return f > 0 ? f : 1.0;
}

static double compute_peak(const aellm_hw_profile *hw, const aellm_config *c, int W)
{
    if (!strcmp(hw->kind, "cpu") || W == AELLM_DTYPE_F32) return hw->peak_f32;
    if (c->method == AELLM_QUANT_SMOOTHQUANT && hw->peak_int8 > 0) return hw->peak_int8;
    return hw->peak_f16 > 0 ? hw->peak_f16 : hw->peak_bf16 > 0 ? hw->peak_bf16 : hw->peak_f32;
}

/* The rates measured here for kernels of `type`, or NULL where the profile
 * has none (a GPU's, or a type not calibrated). */
static const aellm_hw_rate *rated(const aellm_hw_rate *table, int type)
{
    const aellm_hw_rate *r = type >= 0 && type < AELLM_HW_RATED_TYPES ? &table[type] : NULL;
    return r && r->decode_bytes_per_s > 0 && r->prefill_flop_per_s > 0 ? r : NULL;
}

/* Whether every kernel a token runs has a measured rate (f32 stands in for
 * attention over a cache type that was not calibrated). */
static int calibrated(const aellm_hw_profile *hw, int W, int base)
{
    return rated(hw->kernel_rates, W) && rated(hw->kernel_rates, base) &&
           rated(hw->kernel_rates, AELLM_DTYPE_F32);
}

/* Decode and prefill from the rates measured here per kernel kind: each
 * part of the work at the rate of the kernel that does it, times the weight
 * type's whole-model scale where the calibration fitted one. */
static void time_calibrated(const aellm_hw_profile *hw, const work *w, int W, int base, int kv,
                            double P, double G, aellm_prediction *out)
{
    const aellm_hw_rate *wr = rated(hw->kernel_rates, W), *br = rated(hw->kernel_rates, base);
    const aellm_hw_rate *fr = rated(hw->kernel_rates, AELLM_DTYPE_F32);
    const aellm_hw_rate *ar = rated(hw->attention_rates, kv);
    if (!ar) ar = fr;
    double layer_bytes = w->active_bytes - w->out_bytes - w->f32_bytes;
    double layer_params = w->active_params;
    /* the output matrix and the small f32 rest are read as in decode */
    double reads = w->out_bytes / br->decode_bytes_per_s + w->f32_bytes / fr->decode_bytes_per_s;
    double ovh = hw->kernel_overhead_s;
    /* prefill: every layer over the prompt; the output matrix for its last token only */
    double pscale = wr->prefill_scale > 0 ? wr->prefill_scale : 1;
    double dscale = wr->decode_scale > 0 ? wr->decode_scale : 1;
    out->prefill_s = pscale * (2 * P * layer_params / wr->prefill_flop_per_s + reads +
                               P * (P + 1) / 2 * out->attn_flops_per_pair / ar->prefill_flop_per_s +
                               w->kernels * ovh);
    double ctx = P + (G + 1) / 2;
    double token = dscale * (layer_bytes / wr->decode_bytes_per_s + reads +
                             ctx * w->kv_per_pos / ar->decode_bytes_per_s + w->kernels * ovh);
    out->decode_s = G * token;
    out->eff_bw = (w->active_bytes + ctx * w->kv_per_pos) / token / hw->mem_bw;
    out->eff_compute = hw->peak_f32 > 0 ? 2 * P * layer_params / out->prefill_s / hw->peak_f32 : 0;
}

/* The roofline from the profile's peaks and cited fractions (GPUs, and any
 * profile without measured rates). */
static void time_roofline(const aellm_hw_profile *hw, const aellm_config *c, const work *w, int W,
                          double P, double G, aellm_prediction *out)
{
    double bits = 8.0 * (double)aellm_dtype_row_size(W, 256 * 32) / (256 * 32);
    double bw = hw->mem_bw * bw_fraction(hw, bits);
    double ce = hw->eff_compute > 0 ? hw->eff_compute : 1.0, peak = compute_peak(hw, c, W) * ce;
    double ovh = hw->kernel_overhead_s;
    out->eff_bw = bw / hw->mem_bw, out->eff_compute = ce;
    /* prefill: the prompt in one pass, the weights read once */
    double pf = P * out->flops_per_token + P * (P + 1) / 2 * out->attn_flops_per_pair;
    double pb = w->bytes + P * w->kv_per_pos;
    double tc = peak > 0 ? pf / peak : 0, tb = pb / bw;
    out->prefill_compute_bound = tc > tb;
    out->prefill_s = (tc > tb ? tc : tb) + w->kernels * ovh;
    /* decode: each token reads the active weights and the cache so far */
    double ctx = P + (G + 1) / 2;
    double db = w->active_bytes + ctx * w->kv_per_pos;
    double dfl = out->flops_per_token + ctx * out->attn_flops_per_pair;
    double dc = peak > 0 ? dfl / peak : 0, dm = db / bw;
    out->decode_compute_bound = dc > dm;
    out->decode_s = G * ((dc > dm ? dc : dm) + w->kernels * ovh);
}

/* Weights, then the engine's own buffers (KV cache, activations, scratch)
 * sized exactly as it would allocate them for this shape. */
static int predict_memory(const aellm_model_config *t, const work *w, int W, int base,
                          const aellm_config *c, const aellm_hw_profile *hw,
                          const aellm_predict_params *p, aellm_prediction *out)
{
    aellm_model *m = NULL;
    int rc = aellm_model_shape_only(&m, t, W, base);
    if (rc) return rc;
    aellm_engine_params ep;
    aellm_engine_params_default(&ep);
    ep.n_ctx = p->n_ctx > 0 ? p->n_ctx : p->n_prompt + p->n_gen;
    ep.n_batch = p->n_batch > 0 ? p->n_batch : 512;
    ep.n_threads = p->n_threads > 0           ? p->n_threads
                   : !strcmp(hw->kind, "gpu") ? 1
                   : hw->threads > 0          ? hw->threads
                                              : hw->cores;
    ep.kv_type = t->mla_rank ? AELLM_DTYPE_F32 : c->kv_type;
    out->engine_bytes = (double)aellm_engine_plan_bytes(m, &ep);
    aellm_model_free(m);
    out->memory_bytes = w->bytes + out->engine_bytes;
    return 0;
}

int aellm_predict(const aellm_model_config *shape, const aellm_config *c,
                  const aellm_hw_profile *hw, const aellm_predict_params *p, aellm_prediction *out)
{
    memset(out, 0, sizeof(*out));
    if (p->n_prompt < 1 || p->n_gen < 1)
        return aellm_error_set(AELLM_EINVAL, "predict: the request needs a prompt and a token");
    if (!(hw->mem_bw > 0))
        return aellm_error_set(AELLM_EINVAL, "predict: %s has no memory bandwidth", hw->name);
    work w = {0};
    aellm_model_config t = {0};
    int rc = shape_work(shape, c, p->base_type, &w, &t);
    if (rc) return rc;
    int W = c->weight_type >= 0 ? c->weight_type : p->base_type;
    out->weight_bytes = w.bytes, out->active_weight_bytes = w.active_bytes;
    out->kv_bytes_per_position = w.kv_per_pos;
    out->flops_per_token = 2 * (w.active_params + w.out_params);
    out->attn_flops_per_pair = 4.0 * t.n_layers * t.n_heads * t.head_dim;
    out->kernels_per_token = w.kernels;
    double P = p->n_prompt, G = p->n_gen;
    int kv = t.mla_rank ? AELLM_DTYPE_F32 : c->kv_type;
    int measured = calibrated(hw, W, p->base_type);
    if (measured)
        time_calibrated(hw, &w, W, p->base_type, kv, P, G, out);
    else
        time_roofline(hw, c, &w, W, P, G, out);
    out->total_s = out->prefill_s + out->decode_s;
    if ((rc = predict_memory(&t, &w, W, p->base_type, c, hw, p, out))) return rc;
    double busy = !strcmp(hw->kind, "gpu") ? 1 : (hw->threads > 0 ? hw->threads : hw->cores);
    out->energy_j = (hw->idle_w + hw->active_w_per_core * busy) * out->total_s;
    if (measured)
        snprintf(out->source, sizeof(out->source),
                 "predicted: %s's kernel rates measured by aellm predict --calibrate (%s %.1f "
                 "GB/s in decode, %.1f GFLOP/s in prefill; %.2f us per kernel); energy from its "
                 "power model",
                 hw->name, aellm_dtype_traits_get(W)->name,
                 hw->kernel_rates[W].decode_bytes_per_s / 1e9,
                 hw->kernel_rates[W].prefill_flop_per_s / 1e9, 1e6 * hw->kernel_overhead_s);
    else
        snprintf(out->source, sizeof(out->source),
                 "predicted: roofline on %s (bandwidth %.0f GB/s at %.0f %%, peak %.1f TFLOP/s at "
                 "%.0f %%, %.1f us per kernel; %s); energy from its power model",
                 hw->name, hw->mem_bw / 1e9, 100 * out->eff_bw, compute_peak(hw, c, W) / 1e12,
                 100 * out->eff_compute, 1e6 * hw->kernel_overhead_s,
                 hw->eff_source[0] ? hw->eff_source
                                   : "no achieved fractions in the profile: ideal");
    return 0;
}

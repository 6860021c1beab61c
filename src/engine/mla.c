/* Multi-head latent attention (model.h: cfg.mla_rank): what the engine
 * caches per token and layer is the latent c (r values) and the rotary part
 * of each KV head's key (d_rope values), nothing else.
 *
 * Decode never expands the cache: for query head h of KV head g, with its
 * rotary part q_r and position-free part q_n, a key is [k_r ; W_uk,g c], so
 *   q.k = q_r.k_r + (W_uk,g^T q_n).c
 * and the output sum_t a_t W_uv,g c_t = W_uv,g (sum_t a_t c_t): the query is
 * taken into latent space once per head and the attention-weighted latent
 * out of it once per head. Prefill, whose matrix products want whole keys,
 * expands one KV head's keys and values for the positions it needs. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "kernels/softmax.h"

/* Rotates the first d_rope values of each of `heads` vectors of `stride`
 * floats by the frequencies of KV head g's rotary pairs (g = head / per). */
void aellm_mla_rope(const aellm_engine *e, int l, float *v, int heads, int stride, int per, int pos)
{
    const aellm_model_config *c = &e->m->cfg;
    int half = e->head_dim / 2, pairs = c->mla_rope_dim / 2;
    const float *idx = e->m->layers[l].rope_pairs.data;
    const float *cs = e->rope_cos + (size_t)pos * half, *sn = e->rope_sin + (size_t)pos * half;
    for (int h = 0; h < heads; h++) {
        const float *pi = idx + (size_t)(h / per) * pairs;
        float *p = v + (size_t)h * stride;
        for (int j = 0; j < pairs; j++) {
            int i = (int)pi[j];
            float a = p[2 * j], b = p[2 * j + 1];
            p[2 * j] = a * cs[i] - b * sn[i];
            p[2 * j + 1] = a * sn[i] + b * cs[i];
        }
    }
}

float *aellm_mla_latent_at(const aellm_engine *e, int l, int pos)
{
    return e->lat_cache + ((size_t)l * e->n_ctx + (size_t)pos) * e->m->cfg.mla_rank;
}

float *aellm_mla_krope_at(const aellm_engine *e, int l, int g, int pos)
{
    const aellm_model_config *c = &e->m->cfg;
    size_t head = (size_t)l * c->n_kv_heads + (size_t)g;
    return e->kr_cache + (head * e->n_ctx + (size_t)pos) * c->mla_rope_dim;
}

/* Row i of c_new / kr_new (roped) to position pos. */
void aellm_mla_store(aellm_engine *e, int l, int i, int pos)
{
    const aellm_model_config *c = &e->m->cfg;
    int r = c->mla_rank, dr = c->mla_rope_dim;
    memcpy(aellm_mla_latent_at(e, l, pos), e->c_new + (size_t)i * r, (size_t)r * sizeof(float));
    for (int g = 0; g < c->n_kv_heads; g++)
        memcpy(aellm_mla_krope_at(e, l, g, pos), e->kr_new + ((size_t)i * c->n_kv_heads + g) * dr,
               (size_t)dr * sizeof(float));
}

/* Decode: query head h (e->q, roped) over positions 0..pos into out
 * (head_dim); att and ql/cl (r each) are this thread's scratch. */
void aellm_mla_attend_head(aellm_engine *e, int l, int h, int pos, float *att, float *ql, float *cl,
                           float *out)
{
    const aellm_model_config *c = &e->m->cfg;
    const aellm_layer *L = &e->m->layers[l];
    int hd = e->head_dim, dr = c->mla_rope_dim, dn = hd - dr, r = c->mla_rank;
    int g = h / (c->n_heads / c->n_kv_heads);
    const float *q = e->q + (size_t)h * hd;
    const float *Wuk = (const float *)L->w_uk.data + (size_t)g * dn * r;
    const float *Wuv = (const float *)L->w_uv.data + (size_t)g * hd * r;
    /* ql = W_uk,g^T q_n */
    cblas_sgemv(CblasRowMajor, CblasTrans, dn, r, 1.0f, Wuk, r, q + dr, 1, 0.0f, ql, 1);
    float scale = 1.0f / sqrtf((float)hd);
    const float *lat = aellm_mla_latent_at(e, l, 0), *kr = aellm_mla_krope_at(e, l, g, 0);
    for (int t = 0; t <= pos; t++) {
        float s = cblas_sdot(r, ql, 1, lat + (size_t)t * r, 1);
        s += cblas_sdot(dr, q, 1, kr + (size_t)t * dr, 1);
        att[t] = s * scale;
    }
    aellm_kernel_softmax(att, pos + 1);
    /* cl = sum_t a_t c_t, out = W_uv,g cl */
    cblas_sgemv(CblasRowMajor, CblasTrans, pos + 1, r, 1.0f, lat, r, att, 1, 0.0f, cl, 1);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, hd, r, 1.0f, Wuv, r, cl, 1, 0.0f, out, 1);
}

/* Prefill: KV head g's keys and values for positions 0..len-1 as f32 rows
 * of head_dim (rotary part first, as the queries are laid out). */
void aellm_mla_expand(const aellm_engine *e, int l, int g, int len, float *K, float *V)
{
    const aellm_model_config *c = &e->m->cfg;
    const aellm_layer *L = &e->m->layers[l];
    int hd = e->head_dim, dr = c->mla_rope_dim, dn = hd - dr, r = c->mla_rank;
    const float *lat = aellm_mla_latent_at(e, l, 0), *kr = aellm_mla_krope_at(e, l, g, 0);
    if (dn > 0) /* K[:, dr:] = C W_uk,g^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, dn, r, 1.0f, lat, r,
                    (const float *)L->w_uk.data + (size_t)g * dn * r, r, 0.0f, K + dr, hd);
    for (int t = 0; t < len; t++)
        memcpy(K + (size_t)t * hd, kr + (size_t)t * dr, (size_t)dr * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, hd, r, 1.0f, lat, r,
                (const float *)L->w_uv.data + (size_t)g * hd * r, r, 0.0f, V, hd);
}

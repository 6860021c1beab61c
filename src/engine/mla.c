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
#include "kernels/kernels.h"
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

int aellm_mla_up_quantized(const aellm_model *m)
{
    for (int l = 0; m->cfg.mla_rank && l < m->cfg.n_layers; l++)
        if (m->layers[l].w_uk.type != AELLM_DTYPE_F32 || m->layers[l].w_uv.type != AELLM_DTYPE_F32)
            return 1;
    return 0;
}

float *aellm_mla_up_buf(const aellm_engine *e, int thread)
{
    const aellm_model_config *c = &e->m->cfg;
    size_t per = (2 * (size_t)e->head_dim - (size_t)c->mla_rope_dim) * (size_t)c->mla_rank;
    return e->mla_up ? e->mla_up + (size_t)thread * per : NULL;
}

/* KV head g's `rows` rows of up-projection w as f32: the tensor itself when
 * it is f32, else dequantized into buf. The quantized rows are what is read
 * from memory; the f32 copy (a few hundred KiB at most) stays in cache for
 * the heads that share it. */
static const float *up_rows(const aellm_tensor *w, int g, int rows, float *buf)
{
    const char *src = (const char *)w->data + (size_t)g * rows * w->row_bytes;
    if (w->type == AELLM_DTYPE_F32) return (const float *)src;
    aellm_to_float_fn to_float = aellm_kernel_to_float(w->type);
    for (int i = 0; i < rows; i++)
        to_float(src + (size_t)i * w->row_bytes, buf + (size_t)i * w->ne[0], w->ne[0]);
    return buf;
}

/* Decode: query heads h0..h1-1 (e->q, roped) over positions 0..pos into
 * e->xb, head by head: the query into latent space, matrix-vector products
 * over the cached latent and rotary keys, the attention-weighted latent out
 * through the value up-projection. (Batching the heads' latent products
 * into one matrix product, which reads the cache once, ran slower here:
 * 0.71x against 0.79x of MHA's decode speed at 110M, OpenBLAS packing the
 * cache on every call.) scratch: pos + 1 scores, then 2 r latents; up:
 * (2 head_dim - d_rope) r floats for the up-projections when they are stored
 * quantized (NULL when f32). */
void aellm_mla_attend_heads(aellm_engine *e, int l, int h0, int h1, int pos, float *scratch,
                            float *up)
{
    const aellm_model_config *c = &e->m->cfg;
    const aellm_layer *L = &e->m->layers[l];
    int hd = e->head_dim, dr = c->mla_rope_dim, dn = hd - dr, r = c->mla_rank;
    int len = pos + 1, per = c->n_heads / c->n_kv_heads;
    const float *lat = aellm_mla_latent_at(e, l, 0);
    float *att = scratch, *ql = att + len, *cl = ql + r, scale = 1.0f / sqrtf((float)hd);
    const float *uk = NULL, *uv = NULL;
    for (int h = h0; h < h1; h++) {
        int g = h / per;
        const float *q = e->q + (size_t)h * hd;
        if (h == h0 || g != (h - 1) / per) { /* the heads of a KV head run back to back */
            uk = dn > 0 ? up_rows(&L->w_uk, g, dn, up) : NULL;
            uv = up_rows(&L->w_uv, g, hd, up ? up + (size_t)dn * r : NULL);
        }
        if (dn > 0) /* ql = W_uk,g^T q_n / sqrt(hd) */
            cblas_sgemv(CblasRowMajor, CblasTrans, dn, r, scale, uk, r, q + dr, 1, 0.0f, ql, 1);
        else
            memset(ql, 0, (size_t)r * sizeof(float));
        cblas_sgemv(CblasRowMajor, CblasNoTrans, len, r, 1.0f, lat, r, ql, 1, 0.0f, att, 1);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, len, dr, scale, aellm_mla_krope_at(e, l, g, 0), dr,
                    q, 1, 1.0f, att, 1);
        aellm_kernel_softmax(att, len);
        cblas_sgemv(CblasRowMajor, CblasTrans, len, r, 1.0f, lat, r, att, 1, 0.0f, cl, 1);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, hd, r, 1.0f, uv, r, cl, 1, 0.0f,
                    e->xb + (size_t)h * hd, 1);
    }
}

/* Prefill: KV head g's keys and values for positions 0..len-1 as f32 rows
 * of head_dim (rotary part first, as the queries are laid out). */
void aellm_mla_expand(const aellm_engine *e, int l, int g, int len, float *K, float *V)
{
    const aellm_model_config *c = &e->m->cfg;
    const aellm_layer *L = &e->m->layers[l];
    int hd = e->head_dim, dr = c->mla_rope_dim, dn = hd - dr, r = c->mla_rank;
    const float *lat = aellm_mla_latent_at(e, l, 0), *kr = aellm_mla_krope_at(e, l, g, 0);
    float *up = aellm_mla_up_buf(e, omp_get_thread_num());
    if (dn > 0) /* K[:, dr:] = C W_uk,g^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, dn, r, 1.0f, lat, r,
                    up_rows(&L->w_uk, g, dn, up), r, 0.0f, K + dr, hd);
    for (int t = 0; t < len; t++)
        memcpy(K + (size_t)t * hd, kr + (size_t)t * dr, (size_t)dr * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, hd, r, 1.0f, lat, r,
                up_rows(&L->w_uv, g, hd, up ? up + (size_t)dn * r : NULL), r, 0.0f, V, hd);
}

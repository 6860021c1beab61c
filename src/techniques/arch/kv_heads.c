/* Post-hoc key/value head sharing: wk and wv of every layer have their head
 * row-blocks (head h = rows h*head_dim .. (h+1)*head_dim - 1) averaged in
 * consecutive groups. Load-time only; not the uptraining that usually
 * follows (that belongs with fine-tuning). */
#include <stdlib.h>

#include "aellm/arch.h"
#include "core/error.h"
#include "model/model.h"

static int poolable(const aellm_tensor *t)
{
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(t->type);
    if (tr && tr->to_float && tr->from_float) return 0;
    return aellm_error_set(AELLM_EINVAL, "cannot pool KV heads stored as %s",
                           tr ? tr->name : "an unknown type");
}

/* Pools `t` ((n_kv * hd) rows) into (n_kv / r) * hd rows: new row g*hd + i =
 * mean_j old row (g*r + j)*hd + i. Quantized rows go through the type's
 * reference to_float and from_float (llama.cpp's rounding for its types), so
 * the result is exactly what quantizing the pooled f32 matrix gives; rows
 * keep their width, so the row layout stays valid for the type. */
static int pool_rows(aellm_model *m, aellm_tensor *t, int hd, int r)
{
    const aellm_dtype_traits *tr = aellm_dtype_traits_get(t->type);
    int64_t n = t->ne[0], rows = t->ne[1] / r, padded = aellm_dtype_padded(t->type, n);
    char *dst = aellm_model_own(m, t->row_bytes * (size_t)rows);
    /* padded: a partial last block is converted whole; its tail stays 0 */
    float *acc = calloc((size_t)padded, sizeof(float)),
          *row = calloc((size_t)padded, sizeof(float));
    int rc = dst && acc && row ? 0 : aellm_error_oom("KV head pooling", t->row_bytes * rows);
    const char *src = t->data;
    for (int64_t o = 0; o < rows && !rc; o++) {
        int64_t g = o / hd, i = o % hd;
        for (int64_t k = 0; k < n; k++) acc[k] = 0.0f;
        for (int j = 0; j < r; j++) {
            tr->to_float(src + (size_t)((g * r + j) * hd + i) * t->row_bytes, row, n);
            for (int64_t k = 0; k < n; k++) acc[k] += row[k];
        }
        for (int64_t k = 0; k < n; k++) acc[k] /= (float)r;
        tr->from_float(acc, dst + (size_t)o * t->row_bytes, n);
    }
    if (!rc) t->ne[1] = rows, t->data = dst;
    free(acc);
    free(row);
    return rc;
}

int aellm_model_share_kv_heads(aellm_model *m, int n_kv_heads)
{
    aellm_model_config *c = &m->cfg;
    if (n_kv_heads < 1 || c->n_kv_heads % n_kv_heads != 0)
        return aellm_error_set(AELLM_EINVAL, "%d KV heads do not divide the model's %d", n_kv_heads,
                               c->n_kv_heads);
    int r = c->n_kv_heads / n_kv_heads, rc = 0;
    if (r == 1) return 0; /* groups of one: each mean is the head itself */
    if (c->mla_rank)
        return aellm_error_set(AELLM_EINVAL, "cannot pool the KV heads of latent attention");
    for (int l = 0; l < c->n_layers && !rc; l++)
        if (!(rc = poolable(&m->layers[l].wk))) rc = poolable(&m->layers[l].wv);
    for (int l = 0; l < c->n_layers && !rc; l++) {
        rc = pool_rows(m, &m->layers[l].wk, c->head_dim, r);
        if (!rc) rc = pool_rows(m, &m->layers[l].wv, c->head_dim, r);
    }
    if (!rc) c->n_kv_heads = n_kv_heads;
    return rc;
}

/* The trained model as an aellm_model: every tensor F32, the adapters merged
 * into their matrices (W' of linear.h), the base's configuration and a copy
 * of its tokenizer. What the engine runs and GGUF stores; not the unmerged
 * adapter file. */
#include <string.h>

#include "core/error.h"
#include "model/model.h"
#include "techniques/finetune/train_model.h"

int train_model_export(const train_model *tm, const aellm_model *base, aellm_model **out);

static float *own(aellm_model *m, size_t n)
{
    return aellm_model_own(m, n * sizeof(float));
}

static int copy_into(aellm_model *m, aellm_tensor *t, const float *src, int64_t ne0, int64_t ne1)
{
    float *dst = own(m, (size_t)ne0 * ne1);
    if (!dst) return AELLM_ENOMEM;
    memcpy(dst, src, (size_t)ne0 * ne1 * sizeof(float));
    aellm_tensor_set(t, AELLM_DTYPE_F32, ne0, ne1, dst);
    return 0;
}

/* Training's (C, E*h) w_down back into the model's E stacked (C, h) experts. */
static int restack_down(aellm_model *m, aellm_tensor *t, const float *w, const train_shape *s)
{
    float *dst = own(m, (size_t)s->C * s->H);
    if (!dst) return AELLM_ENOMEM;
    for (int e = 0; e < s->E; e++)
        for (int r = 0; r < s->C; r++)
            memcpy(dst + ((size_t)e * s->C + r) * s->h, w + (size_t)r * s->H + (size_t)e * s->h,
                   (size_t)s->h * sizeof(float));
    aellm_tensor_set(t, AELLM_DTYPE_F32, s->h, (int64_t)s->E * s->C, dst);
    return 0;
}

/* Latent attention's up-projections and rotary pairs (wv stays unset). */
static int export_latent(const train_model *tm, aellm_model *m, int l)
{
    const train_shape *s = &tm->s;
    aellm_layer *ly = &m->layers[l];
    int dn = s->hd - s->DR, pairs = s->DR / 2;
    int rc = dn == 0 ? 0 /* every pair rotary: no position-free keys */
                     : copy_into(m, &ly->w_uk, tm->p.t[TP_W_UK] + (size_t)l * s->NKV * dn * s->R,
                                 s->R, (int64_t)s->NKV * dn);
    if (!rc)
        rc = copy_into(m, &ly->w_uv, tm->p.t[TP_W_UV] + (size_t)l * s->NKV * s->hd * s->R, s->R,
                       (int64_t)s->NKV * s->hd);
    float *p = rc ? NULL : own(m, (size_t)s->NKV * pairs);
    if (!rc && !p) rc = AELLM_ENOMEM;
    for (int i = 0; !rc && i < s->NKV * pairs; i++)
        p[i] = (float)tm->rope_idx[(size_t)l * s->NKV * pairs + i];
    if (!rc) aellm_tensor_set(&ly->rope_pairs, AELLM_DTYPE_F32, pairs, s->NKV, p);
    return rc;
}

static int export_layer(const train_model *tm, aellm_model *m, int l)
{
    const train_shape *s = &tm->s;
    aellm_layer *ly = &m->layers[l];
    int rc = copy_into(m, &ly->attn_norm, tm->p.t[TP_ATTN_NORM] + (size_t)l * s->C, s->C, 1);
    if (!rc) rc = copy_into(m, &ly->ffn_norm, tm->p.t[TP_FFN_NORM] + (size_t)l * s->C, s->C, 1);
    for (int i = 0; !rc && i < AELLM_LINEAR_COUNT; i++) {
        const train_linear *lin = &tm->lin[l * AELLM_LINEAR_COUNT + i];
        float *w = own(m, (size_t)lin->C * lin->OC);
        if (!w) return AELLM_ENOMEM;
        train_model_merged_matrix(tm, l, i, w);
        aellm_tensor *t = s->R && i == AELLM_LINEAR_WV ? &ly->w_dkv : aellm_layer_linear(ly, i);
        aellm_tensor_set(t, AELLM_DTYPE_F32, lin->C, lin->OC, w);
        if (s->E && i == AELLM_LINEAR_W_DOWN) rc = restack_down(m, &ly->w_down, w, s);
    }
    if (!rc && s->R) rc = export_latent(tm, m, l);
    if (!rc && s->E)
        rc = copy_into(m, &ly->ffn_gate_inp, tm->p.t[TP_ROUTER] + (size_t)l * s->E * s->C, s->C,
                       s->E);
    return rc;
}

int train_model_export(const train_model *tm, const aellm_model *base, aellm_model **out)
{
    *out = NULL;
    const train_shape *s = &tm->s;
    aellm_model *m = NULL;
    int rc = aellm_model_alloc(&m, &base->cfg);
    if (rc) return rc;
    rc = copy_into(m, &m->tok_embd, tm->p.t[TP_WTE], s->C, s->V);
    if (!rc && s->tied)
        m->output = m->tok_embd;
    else if (!rc)
        rc = copy_into(m, &m->output, tm->p.t[TP_OUT], s->C, s->V);
    if (!rc) rc = copy_into(m, &m->output_norm, tm->p.t[TP_NORM_F], s->C, 1);
    for (int l = 0; !rc && l < s->L; l++) rc = export_layer(tm, m, l);
    aellm_tokenizer *tok = NULL;
    if (!rc && aellm_model_tokenizer(base)) {
        rc = aellm_tokenizer_copy(&tok, aellm_model_tokenizer(base));
        if (!rc) aellm_model_set_tokenizer(m, tok);
    }
    if (rc) {
        aellm_model_free(m);
        return rc == AELLM_ENOMEM ? aellm_error_oom("the trained model", 0) : rc;
    }
    *out = m;
    return 0;
}

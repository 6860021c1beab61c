/* Dense FFN -> mixture of experts. MoEfication (Zhang et al. 2021) splits
 * the H hidden neurons of each layer's SwiGLU FFN into E groups by balanced
 * k-means on the neurons' gate vectors, so that neurons that fire together
 * land in one expert; each expert keeps its neurons' gate and up rows and
 * down columns, and the whole split is exact when every expert runs.
 * Sparse upcycling copies the FFN into every expert instead. The router
 * (llama.cpp's softmax / top-k / renormalise) starts at the clusters'
 * centroids, and can be fitted on calibration text: a softmax regression
 * from the FFN input to the expert whose output is largest. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aellm/arch.h"
#include "core/error.h"
#include "core/rng.h"
#include "engine/engine_internal.h"
#include "kernels/moe_route.h"
#include "model/model.h"
#include "techniques/arch/arch_internal.h"

void aellm_moe_params_default(aellm_moe_params *p)
{
    memset(p, 0, sizeof(*p));
    p->n_experts = 8;
    p->top_k = 1;
    p->method = AELLM_MOE_SPLIT;
    p->kmeans_iters = 25;
    p->seed = 1;
}

/* The type an expert matrix with rows of n is stored in: the source's when
 * its block fits, else f16 for a quantized source (llama.cpp's fallback),
 * f32 for an f32 one. */
static int expert_type(int src, int64_t n)
{
    if (src == AELLM_DTYPE_F32) return src;
    return aellm_dtype_row_size(src, n) ? src : AELLM_DTYPE_F16;
}

/* ---- balanced k-means on the neurons' gate vectors ---- */

typedef struct {
    float sim;
    int neuron, cluster;
} pair;

static int by_sim_desc(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->sim != y->sim) return x->sim > y->sim ? -1 : 1;
    if (x->neuron != y->neuron) return x->neuron - y->neuron;
    return x->cluster - y->cluster;
}

/* Greedy balanced assignment: the most similar (neuron, centroid) pairs
 * first, each cluster taking at most `cap` neurons. */
static void assign_balanced(pair *pairs, int H, int E, int cap, int *of, int *count)
{
    qsort(pairs, (size_t)H * E, sizeof(*pairs), by_sim_desc);
    for (int i = 0; i < H; i++) of[i] = -1;
    memset(count, 0, (size_t)E * sizeof(int));
    for (size_t i = 0, left = (size_t)H; i < (size_t)H * E && left; i++) {
        pair *p = &pairs[i];
        if (of[p->neuron] >= 0 || count[p->cluster] >= cap) continue;
        of[p->neuron] = p->cluster;
        count[p->cluster]++;
        left--;
    }
}

/* Whether v equals one of the first n centroids. */
static int taken(const float *C, int n, const float *v, int d)
{
    for (int f = 0; f < n; f++)
        if (memcmp(C + (size_t)f * d, v, (size_t)d * sizeof(float)) == 0) return 1;
    return 0;
}

/* Clusters the H unit-normalised rows V (H x d) into E groups of at most
 * ceil(H / E): of[n] is neuron n's cluster, C (E x d) the centroids. */
static int balanced_kmeans(const float *V, int H, int d, int E, int iters, uint64_t seed, int *of,
                           float *C)
{
    int cap = (H + E - 1) / E, *count = malloc((size_t)E * sizeof(int));
    pair *pairs = malloc((size_t)H * E * sizeof(pair));
    float *S = malloc((size_t)H * E * sizeof(float));
    if (!count || !pairs || !S) {
        free(count), free(pairs), free(S);
        return aellm_error_oom("k-means", (size_t)H * E * sizeof(pair));
    }
    aellm_rng r;
    aellm_rng_seed(&r, seed);
    /* start from E distinct neurons drawn at random */
    for (int e = 0; e < E; e++) {
        int pick = (int)(aellm_rng_u64(&r) % (uint64_t)H);
        /* the next neuron unlike the centroids so far; with fewer distinct
           vectors than experts (zero rows) a repeat is kept, and the balanced
           assignment still fills every expert */
        for (int tries = 0; tries < H && taken(C, e, V + (size_t)pick * d, d); tries++)
            pick = (pick + 1) % H;
        memcpy(C + (size_t)e * d, V + (size_t)pick * d, (size_t)d * sizeof(float));
    }
    for (int it = 0; it < iters; it++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, H, E, d, 1.0f, V, d, C, d, 0.0f, S, E);
        for (int n = 0; n < H; n++)
            for (int e = 0; e < E; e++)
                pairs[(size_t)n * E + e] = (pair){S[(size_t)n * E + e], n, e};
        assign_balanced(pairs, H, E, cap, of, count);
        memset(C, 0, (size_t)E * d * sizeof(float));
        for (int n = 0; n < H; n++)
            cblas_saxpy(d, 1.0f, V + (size_t)n * d, 1, C + (size_t)of[n] * d, 1);
        for (int e = 0; e < E; e++) {
            float norm = cblas_snrm2(d, C + (size_t)e * d, 1);
            if (norm > 0) cblas_sscal(d, 1.0f / norm, C + (size_t)e * d, 1);
        }
    }
    free(count), free(pairs), free(S);
    return 0;
}

/* ---- one layer ---- */

int aellm_moe_expert_width(int hidden, int n_experts, int method)
{
    if (method == AELLM_MOE_UPCYCLE) return hidden;
    int h = (hidden + n_experts - 1) / n_experts, up = (h + 31) / 32 * 32;
    return (up - h) * 8 <= h ? up : h;
}

/* Expert e's slot j holds neuron slot[e * h + j] (-1: padding, all zero). */
static int split_layer(aellm_model *m, aellm_layer *y, const aellm_moe_params *p, int l)
{
    const aellm_model_config *c = &m->cfg;
    int H = c->hidden_dim, d = c->dim, E = p->n_experts, up = p->method == AELLM_MOE_UPCYCLE;
    int h = aellm_moe_expert_width(H, E, p->method);
    float *G = aellm_arch_f32(&y->w_gate), *U = aellm_arch_f32(&y->w_up),
          *D = aellm_arch_f32(&y->w_down);
    float *V = malloc((size_t)H * d * sizeof(float)), *C = calloc((size_t)E * d, sizeof(float));
    int *of = malloc((size_t)H * sizeof(int)), *slot = malloc((size_t)E * h * sizeof(int));
    float *g = calloc((size_t)E * h * d, sizeof(float)), *u = calloc((size_t)E * h * d, 4);
    float *dn = calloc((size_t)E * d * h, sizeof(float));
    int rc = G && U && D && V && C && of && slot && g && u && dn
                 ? 0
                 : aellm_error_oom("an FFN split", (size_t)E * h * d * 12);
    if (!rc && up) { /* every expert is the whole FFN */
        for (int e = 0; e < E; e++)
            for (int j = 0; j < h; j++) slot[e * h + j] = j;
    } else if (!rc) {
        for (int n = 0; n < H; n++) {
            float norm = cblas_snrm2(d, G + (size_t)n * d, 1);
            for (int k = 0; k < d; k++)
                V[(size_t)n * d + k] = G[(size_t)n * d + k] / (norm + 1e-12f);
        }
        rc = balanced_kmeans(V, H, d, E, p->kmeans_iters, p->seed + (uint64_t)l, of, C);
        int *fill = calloc((size_t)E, sizeof(int));
        if (!rc && !fill) rc = aellm_error_oom("an FFN split", (size_t)E * 4);
        for (int i = 0; !rc && i < E * h; i++) slot[i] = -1;
        for (int n = 0; !rc && n < H; n++) slot[of[n] * h + fill[of[n]]++] = n;
        free(fill);
    }
    /* top-k weights sum to 1 over k experts: k times each expert's output
       restores the dense sum when all k are equal (and exactly when k = E) */
    float scale = up ? 1.0f : (float)p->top_k;
    for (int e = 0; !rc && e < E; e++)
        for (int j = 0; j < h; j++) {
            int n = slot[e * h + j];
            if (n < 0) continue;
            memcpy(g + ((size_t)e * h + j) * d, G + (size_t)n * d, (size_t)d * 4);
            memcpy(u + ((size_t)e * h + j) * d, U + (size_t)n * d, (size_t)d * 4);
            for (int r = 0; r < d; r++)
                dn[((size_t)e * d + r) * h + j] = scale * D[(size_t)r * H + n];
        }
    float *R = up ? NULL : C;
    float *rand_router = up ? calloc((size_t)E * d, sizeof(float)) : NULL;
    if (!rc && up && !rand_router) rc = aellm_error_oom("a router", (size_t)E * d * 4);
    if (!rc && up) { /* identical experts: any router starts equal; break the tie */
        aellm_rng r;
        aellm_rng_seed(&r, p->seed * 7919 + (uint64_t)l);
        for (size_t i = 0; i < (size_t)E * d; i++) rand_router[i] = 0.02f * aellm_rng_normal(&r);
        R = rand_router;
    }
    if (!rc)
        rc = aellm_arch_store(m, &y->w_gate, expert_type(y->w_gate.type, d), g, d, (int64_t)E * h);
    if (!rc) rc = aellm_arch_store(m, &y->w_up, expert_type(y->w_up.type, d), u, d, (int64_t)E * h);
    if (!rc)
        rc = aellm_arch_store(m, &y->w_down, expert_type(y->w_down.type, h), dn, h, (int64_t)E * d);
    if (!rc) rc = aellm_arch_store(m, &y->ffn_gate_inp, AELLM_DTYPE_F32, R, d, E);
    free(G), free(U), free(D), free(V), free(C), free(of), free(slot), free(g), free(u), free(dn);
    free(rand_router);
    return rc;
}

int aellm_model_to_moe(aellm_model *m, const aellm_moe_params *p)
{
    aellm_model_config *c = &m->cfg;
    if (c->n_experts)
        return aellm_error_set(AELLM_EINVAL, "the model already has %d experts", c->n_experts);
    if (p->n_experts < 2 || p->n_experts > 256 || p->top_k < 1 || p->top_k > p->n_experts)
        return aellm_error_set(AELLM_EINVAL,
                               "%d experts with top-%d: want 2..256 experts, top-k "
                               "between 1 and the expert count",
                               p->n_experts, p->top_k);
    if (p->method != AELLM_MOE_UPCYCLE && c->hidden_dim < p->n_experts)
        return aellm_error_set(AELLM_EINVAL, "%d hidden neurons cannot make %d experts",
                               c->hidden_dim, p->n_experts);
    for (int l = 0; l < c->n_layers; l++) {
        const aellm_layer *y = &m->layers[l];
        const aellm_tensor *ts[] = {&y->w_gate, &y->w_up, &y->w_down};
        for (int i = 0; i < 3; i++) {
            const aellm_dtype_traits *tr = aellm_dtype_traits_get(ts[i]->type);
            if (!tr || !tr->to_float || !tr->from_float)
                return aellm_error_set(AELLM_EINVAL, "cannot split an FFN stored as %s",
                                       tr ? tr->name : "an unknown type");
        }
    }
    for (int l = 0; l < c->n_layers; l++) {
        int rc = split_layer(m, &m->layers[l], p, l);
        if (rc) return rc;
    }
    c->hidden_dim = aellm_moe_expert_width(c->hidden_dim, p->n_experts, p->method);
    c->n_experts = p->n_experts;
    c->n_experts_used = p->top_k;
    return 0;
}

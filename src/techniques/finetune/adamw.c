/* AdamW, clipping and the warm-up + cosine schedule (adamw.h). The update is
 * PyTorch's AdamW: theta -= lr * (mhat / (sqrt(vhat) + eps) + wd * theta),
 * mhat = m / (1 - beta1^t), vhat = v / (1 - beta2^t). */
#include "techniques/finetune/adamw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

struct train_adamw {
    train_optim_params p;
    train_optim_group *groups;
    int n_groups;
    float *state; /* per group: m (n), then v (n) */
    size_t n_state;
};

void train_optim_params_default(train_optim_params *p)
{
    *p = (train_optim_params){.lr = 1e-3f,
                              .lr_min_ratio = 0.1f,
                              .warmup = 0,
                              .total_steps = 1,
                              .beta1 = 0.9f,
                              .beta2 = 0.999f,
                              .eps = 1e-8f,
                              .weight_decay = 0.0f,
                              .clip = 1.0f};
}

int train_adamw_new(train_adamw **out, const train_optim_group *groups, int n_groups,
                    const train_optim_params *p)
{
    *out = NULL;
    train_adamw *o = calloc(1, sizeof(*o));
    if (o) o->groups = malloc((size_t)(n_groups > 0 ? n_groups : 1) * sizeof(*groups));
    if (!o || !o->groups) {
        free(o);
        return aellm_error_oom("an optimizer", sizeof(*o));
    }
    memcpy(o->groups, groups, (size_t)n_groups * sizeof(*groups));
    o->n_groups = n_groups;
    o->p = *p;
    for (int i = 0; i < n_groups; i++) o->n_state += 2 * groups[i].n;
    o->state = aellm_mem_alloc((o->n_state ? o->n_state : 1) * sizeof(float), AELLM_MEM_OPTIMIZER);
    if (!o->state) {
        int rc = aellm_error_oom("AdamW moments", o->n_state * sizeof(float));
        train_adamw_free(o);
        return rc;
    }
    *out = o;
    return 0;
}

void train_adamw_free(train_adamw *o)
{
    if (!o) return;
    aellm_mem_free(o->state);
    free(o->groups);
    free(o);
}

float train_lr_at(const train_optim_params *p, int step)
{
    if (p->warmup > 0 && step <= p->warmup) return p->lr * (float)step / (float)p->warmup;
    int decay = p->total_steps - p->warmup;
    double progress = decay > 0 ? (double)(step - p->warmup) / decay : 1.0;
    if (progress > 1.0) progress = 1.0;
    double floor = (double)p->lr * p->lr_min_ratio;
    return (float)(floor + 0.5 * ((double)p->lr - floor) * (1.0 + cos(M_PI * progress)));
}

double train_grad_norm(const train_optim_group *groups, int n_groups)
{
    double ss = 0.0;
    for (int i = 0; i < n_groups; i++) {
        const float *g = groups[i].grad;
        size_t n = groups[i].n;
#pragma omp parallel for reduction(+ : ss)
        for (size_t j = 0; j < n; j++) ss += (double)g[j] * g[j];
    }
    return sqrt(ss);
}

static void update_group(const train_optim_group *g, float *m, float *v, float lr, float scale,
                         float c1, float c2, const train_optim_params *p)
{
    float wd = g->decay ? p->weight_decay : 0.0f;
#pragma omp parallel for
    for (size_t j = 0; j < g->n; j++) {
        float grad = g->grad[j] * scale;
        m[j] = p->beta1 * m[j] + (1.0f - p->beta1) * grad;
        v[j] = p->beta2 * v[j] + (1.0f - p->beta2) * grad * grad;
        float mhat = m[j] / c1, vhat = v[j] / c2;
        g->param[j] -= lr * (mhat / (sqrtf(vhat) + p->eps) + wd * g->param[j]);
    }
}

void train_adamw_step(train_adamw *o, int step, double *grad_norm, float *lr_out)
{
    const train_optim_params *p = &o->p;
    double norm = train_grad_norm(o->groups, o->n_groups);
    float scale = p->clip > 0 && norm > p->clip ? (float)(p->clip / norm) : 1.0f;
    float lr = train_lr_at(p, step);
    float c1 = 1.0f - powf(p->beta1, (float)step), c2 = 1.0f - powf(p->beta2, (float)step);
    float *state = o->state;
    for (int i = 0; i < o->n_groups; i++) {
        size_t n = o->groups[i].n;
        update_group(&o->groups[i], state, state + n, lr, scale, c1, c2, p);
        state += 2 * n;
    }
    if (grad_norm) *grad_norm = norm;
    if (lr_out) *lr_out = lr;
}

size_t train_adamw_state_floats(const train_adamw *o)
{
    return o->n_state;
}

float *train_adamw_state(train_adamw *o)
{
    return o->state;
}

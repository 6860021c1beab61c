/* aellm_train: the training loop. Reads the data, builds the trainable
 * model for the method, evaluates the held-out loss, runs optimiser steps
 * (micro-batches accumulated, clipped, AdamW on the schedule), evaluates
 * again and hands back the merged model. Checkpoints and the CLI are
 * elsewhere; this is the loop. */
#include "aellm/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aellm/memory.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/timer.h"
#include "model/model.h"
#include "techniques/finetune/adamw.h"
#include "techniques/finetune/checkpoint.h"
#include "techniques/finetune/data.h"
#include "techniques/finetune/train_model.h"

int train_model_export(const train_model *tm, const aellm_model *base, aellm_model **out);
int train_model_save_lora(const train_model *tm, const char *path);

void aellm_train_params_default(aellm_train_params *p)
{
    memset(p, 0, sizeof(*p));
    p->method = "lora";
    p->rank = 8;
    p->targets = "q,k,v,o";
    p->batch = 8;
    p->accum = 1;
    p->epochs = 1.0;
    p->lr_min_ratio = 0.1f;
    p->clip = 1.0f;
    p->heldout = 0.1;
    p->seed = 1;
    p->moe_balance = 0.01f;
}

cJSON *aellm_train_result_json(const aellm_train_result *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", r->method);
    cJSON_AddNumberToObject(o, "steps", r->steps);
    cJSON_AddNumberToObject(o, "resumed_from_step", r->resumed_from);
    cJSON_AddNumberToObject(o, "tokens", (double)r->tokens);
    cJSON_AddNumberToObject(o, "train_loss", r->train_loss);
    if (!isnan(r->heldout_loss)) {
        cJSON_AddNumberToObject(o, "heldout_loss_before", r->heldout_loss_before);
        cJSON_AddNumberToObject(o, "heldout_loss", r->heldout_loss);
        cJSON_AddNumberToObject(o, "heldout_ppl", r->heldout_ppl);
    }
    cJSON_AddNumberToObject(o, "tokens_per_s", r->tokens_per_s);
    cJSON_AddNumberToObject(o, "wall_s", r->seconds);
    cJSON_AddNumberToObject(o, "trainable_params", (double)r->trainable);
    cJSON_AddNumberToObject(o, "optimizer_bytes", (double)r->optimizer_bytes);
    cJSON_AddNumberToObject(o, "peak_bytes", (double)r->peak_bytes);
    return o;
}

/* ---- the method from its names ---- */
static int parse_method(const aellm_train_params *p, train_method *m)
{
    static const char *const names[TRAIN_METHOD_COUNT] = {"full", "lora", "rslora", "dora",
                                                          "qlora"};
    m->kind = TRAIN_METHOD_COUNT;
    for (int k = 0; k < TRAIN_METHOD_COUNT; k++)
        if (p->method && !strcmp(p->method, names[k])) m->kind = (train_method_kind)k;
    if (m->kind == TRAIN_METHOD_COUNT)
        return aellm_error_set(AELLM_EINVAL,
                               "unknown fine-tuning method '%s' (full, lora, rslora, dora, qlora)",
                               p->method ? p->method : "");
    m->rank = p->rank;
    m->alpha = p->alpha > 0 ? p->alpha : 2.0f * (float)p->rank;
    m->freeze_embeddings = p->freeze_embeddings;
    m->seed = p->seed;
    m->dropout = p->dropout;
    m->balance = p->moe_balance;
    return 0;
}

static int parse_targets(const char *list, unsigned *out)
{
    static const char *const names[AELLM_LINEAR_COUNT] = {"q", "k", "v", "o", "gate", "up", "down"};
    *out = 0;
    if (!list || !strcmp(list, "all")) {
        *out = list ? (1u << AELLM_LINEAR_COUNT) - 1 : 0xf;
        return 0;
    }
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int i = 0; i < AELLM_LINEAR_COUNT; i++)
            if (!strcmp(t, names[i])) found = i;
        if (found < 0)
            return aellm_error_set(AELLM_EINVAL,
                                   "unknown target '%s' (q, k, v, o, gate, up, down, or all)", t);
        *out |= 1u << found;
    }
    if (!*out) return aellm_error_set(AELLM_EINVAL, "no target matrices given");
    return 0;
}

int aellm_train_check_shape(const aellm_model_config *shape, const aellm_train_params *p)
{
    train_method method;
    int rc = parse_method(p, &method);
    if (!rc) rc = parse_targets(p->targets, &method.targets);
    if (!rc) rc = train_model_check(shape, &method);
    return rc;
}

int aellm_train_check(const aellm_model *m, const aellm_train_params *p)
{
    return aellm_train_check_shape(aellm_model_config_get(m), p);
}

/* ---- one run ---- */
typedef struct {
    const aellm_train_params *p;
    train_model *tm;
    train_data *data;
    train_adamw *opt;
    train_optim_group groups[TP_COUNT];
    int n_groups, B, T, steps;
    int32_t *in, *tg;
    float *w;
} run;

/* Mean held-out loss over up to eval_max sequences, batch by batch (a short
 * last batch padded with weight 0). */
static double heldout_loss(run *r)
{
    int64_t n = train_data_n_heldout(r->data);
    if (r->p->eval_max > 0 && n > r->p->eval_max) n = r->p->eval_max;
    if (n == 0) return NAN;
    double sum = 0.0, wsum = 0.0;
    for (int64_t i = 0; i < n; i += r->B) {
        for (int b = 0; b < r->B; b++) {
            int64_t k = i + b < n ? i + b : n - 1;
            size_t at = (size_t)b * r->T;
            train_data_heldout(r->data, k, r->in + at, r->tg + at, r->w + at);
            if (i + b >= n) memset(r->w + at, 0, (size_t)r->T * sizeof(float));
        }
        double bw = 0.0;
        for (int j = 0; j < r->B * r->T; j++) bw += r->w[j];
        if (bw > 0) sum += train_model_forward(r->tm, r->in, r->tg, r->w) * bw, wsum += bw;
    }
    return wsum > 0 ? sum / wsum : NAN;
}

static void scale_grads(run *r, float k)
{
    for (int i = 0; i < r->n_groups; i++)
        for (size_t j = 0; j < r->groups[i].n; j++) r->groups[i].grad[j] *= k;
}

/* One optimiser step: `accum` micro-batches, their mean gradient, AdamW. */
static int train_step(run *r, int step, double *loss, float *lr, int *epoch)
{
    int rc = train_model_zero_grad(r->tm), accum = r->p->accum > 0 ? r->p->accum : 1;
    if (rc) return rc;
    double sum = 0.0;
    for (int a = 0; a < accum; a++) {
        train_data_next(r->data, r->B, r->in, r->tg, r->w, epoch);
        r->tm->training = 1;
        r->tm->drop_tick = (uint64_t)step * 4096 + (uint64_t)a;
        double l = train_model_forward(r->tm, r->in, r->tg, r->w);
        r->tm->training = 0;
        if (!isfinite(l))
            return aellm_error_set(AELLM_ERROR,
                                   "training diverged: loss %g at step %d (lower the "
                                   "learning rate)",
                                   l, step);
        sum += l;
        train_model_backward(r->tm, r->in);
    }
    if (accum > 1) scale_grads(r, 1.0f / (float)accum);
    double norm;
    train_adamw_step(r->opt, step, &norm, lr);
    if (!isfinite(norm))
        return aellm_error_set(AELLM_ERROR, "training diverged: gradient norm %g at step %d", norm,
                               step);
    *loss = sum / accum;
    return 0;
}

static void report(run *r, int step, int epoch, double loss, double heldout, float lr, double t0,
                   int64_t tokens)
{
    if (!r->p->progress) return;
    double dt = aellm_time_s() - t0;
    aellm_train_progress pr = {.step = step,
                               .steps = r->steps,
                               .epoch = epoch,
                               .loss = loss,
                               .heldout = heldout,
                               .lr = lr,
                               .tokens_per_s = dt > 0 ? (double)tokens / dt : 0,
                               .eta_s = step > 0 ? dt / step * (r->steps - step) : 0};
    r->p->progress(&pr, r->p->progress_user);
}

static int setup(run *r, const aellm_model *base, const char *data_path)
{
    const aellm_train_params *p = r->p;
    train_method method;
    int rc = parse_method(p, &method);
    if (!rc) rc = parse_targets(p->targets, &method.targets);
    if (rc) return rc;
    if (!aellm_model_tokenizer(base))
        return aellm_error_set(AELLM_EINVAL, "training: the model has no tokenizer (give one)");
    int ctx = base->cfg.seq_len;
    r->T = p->seq_len > 0 ? p->seq_len : ctx < 256 ? ctx : 256;
    r->B = p->batch > 0 ? p->batch : 8;
    if (r->T > ctx)
        return aellm_error_set(AELLM_EINVAL,
                               "training: sequences of %d tokens exceed the model's "
                               "context of %d",
                               r->T, ctx);
    rc = train_data_load(&r->data, data_path, aellm_model_tokenizer(base), r->T, p->heldout,
                         p->seed);
    if (rc) return rc;
    int per_step = r->B * (p->accum > 0 ? p->accum : 1);
    r->steps = p->steps > 0 ? p->steps
                            : (int)ceil((p->epochs > 0 ? p->epochs : 1.0) *
                                        (double)train_data_n_train(r->data) / per_step);
    if (r->steps < 1) r->steps = 1;
    if ((rc = train_model_new(&r->tm, base, r->B, r->T, &method))) return rc;
    if ((rc = train_model_zero_grad(r->tm))) return rc;
    r->n_groups = train_model_groups(r->tm, r->groups, TP_COUNT);
    train_optim_params op;
    train_optim_params_default(&op);
    op.lr = p->lr > 0 ? p->lr : method.kind == TRAIN_FULL ? 3e-4f : 1e-3f;
    op.lr_min_ratio = p->lr_min_ratio;
    op.total_steps = r->steps;
    op.warmup = p->warmup > 0 ? p->warmup : r->steps / 20;
    op.weight_decay = p->weight_decay;
    op.clip = p->clip;
    if ((rc = train_adamw_new(&r->opt, r->groups, r->n_groups, &op))) return rc;
    size_t n = (size_t)r->B * r->T;
    r->in = malloc(n * sizeof(int32_t));
    r->tg = malloc(n * sizeof(int32_t));
    r->w = malloc(n * sizeof(float));
    if (!r->in || !r->tg || !r->w) return aellm_error_oom("a batch", n * 12);
    return 0;
}

static train_ckpt checkpoint_of(run *r, int step, double heldout_before, double loss)
{
    return (train_ckpt){.method = r->tm->method.kind,
                        .rank = r->tm->method.rank,
                        .B = r->B,
                        .T = r->T,
                        .steps = r->steps,
                        .groups = r->groups,
                        .n_groups = r->n_groups,
                        .state = train_adamw_state(r->opt),
                        .n_state = train_adamw_state_floats(r->opt),
                        .step = step,
                        .pos = train_data_position(r->data),
                        .heldout_before = heldout_before,
                        .loss = loss};
}

/* Continues from the checkpoint when asked and it exists; *first is the
 * next step. */
static int maybe_resume(run *r, int *first, double *heldout_before, double *loss)
{
    const aellm_train_params *p = r->p;
    *first = 1;
    if (!p->resume || !p->checkpoint) return 0;
    train_ckpt c = checkpoint_of(r, 0, 0, 0);
    int rc = train_checkpoint_load(p->checkpoint, &c);
    if (rc == AELLM_ENOTFOUND) return 0; /* nothing yet: from the start */
    if (rc) return rc;
    train_data_seek(r->data, c.pos);
    *first = c.step + 1;
    *heldout_before = c.heldout_before;
    *loss = c.loss;
    return 0;
}

static void teardown(run *r)
{
    free(r->in);
    free(r->tg);
    free(r->w);
    train_adamw_free(r->opt);
    train_model_free(r->tm);
    train_data_free(r->data);
}

int aellm_train(aellm_model **out, const aellm_model *base, const char *data,
                const aellm_train_params *p, aellm_train_result *res)
{
    *out = NULL;
    memset(res, 0, sizeof(*res));
    aellm_mem_reset_peak();
    run r = {.p = p};
    int rc = setup(&r, base, data);
    if (!rc) {
        snprintf(res->method, sizeof(res->method), "%s", train_method_name(r.tm->method.kind));
        res->trainable = train_model_n_trainable(r.tm);
        res->optimizer_bytes = train_adamw_state_floats(r.opt) * sizeof(float);
        res->heldout_loss_before = heldout_loss(&r);
    }
    double t0 = aellm_time_s(), loss = NAN;
    int epoch = 0, first = 1;
    if (!rc) rc = maybe_resume(&r, &first, &res->heldout_loss_before, &loss);
    res->resumed_from = first - 1;
    int per_step = r.B * r.T * (p->accum > 0 ? p->accum : 1);
    for (int step = first; !rc && step <= r.steps; step++) {
        float lr;
        rc = train_step(&r, step, &loss, &lr, &epoch);
        res->tokens += per_step;
        int eval = p->eval_every > 0 && step % p->eval_every == 0 && step < r.steps;
        if (!rc) report(&r, step, epoch, loss, eval ? heldout_loss(&r) : NAN, lr, t0, res->tokens);
        if (!rc && p->checkpoint && p->checkpoint_every > 0 &&
            (step % p->checkpoint_every == 0 || step == r.steps)) {
            train_ckpt c = checkpoint_of(&r, step, res->heldout_loss_before, loss);
            rc = train_checkpoint_save(p->checkpoint, &c);
        }
    }
    if (!rc) {
        res->seconds = aellm_time_s() - t0;
        res->steps = r.steps;
        res->train_loss = loss;
        res->tokens_per_s = res->seconds > 0 ? (double)res->tokens / res->seconds : 0;
        res->heldout_loss = heldout_loss(&r);
        res->heldout_ppl = exp(res->heldout_loss);
        aellm_mem_stats st;
        aellm_mem_stats_get(&st);
        res->peak_bytes = st.peak_total;
        if (p->adapter_out) rc = train_model_save_lora(r.tm, p->adapter_out);
        if (!rc) rc = train_model_export(r.tm, base, out);
    }
    teardown(&r);
    return rc;
}

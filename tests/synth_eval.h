/* A synthetic evaluator over the default space for the optimizer's tests:
 * smooth, structured objectives that follow the inference knobs (bits per
 * weight, method, group, KV cache precision and sharing), and a check that
 * no configuration is evaluated twice and none is invalid. Include after
 * cmocka.h. */
#ifndef AELLM_TEST_SYNTH_EVAL_H
#define AELLM_TEST_SYNTH_EVAL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aellm/error.h"
#include "aellm/objectives.h"
#include "aellm/space.h"

/* The bundled space as a search on a task without training data sees it:
 * the stages that train held at their defaults (468 points; this evaluator
 * models the inference stage). */
static aellm_space *inference_space(void)
{
    aellm_space *all = NULL, *arch = NULL, *held = NULL;
    if (aellm_space_load(&all, AELLM_SOURCE_DIR "/space/default.json") ||
        aellm_space_hold_stage(all, "architecture", &arch) ||
        aellm_space_hold_stage(arch, "finetuning", &held))
        fail_msg("%s", aellm_error_last());
    aellm_space_free(all);
    aellm_space_free(arch);
    return held;
}

/* The bundled space whole, every stage applying (as a search on a task with
 * training text sees it). */
static inline aellm_space *full_space(void)
{
    aellm_space *all = NULL;
    if (aellm_space_load(&all, AELLM_SOURCE_DIR "/space/default.json"))
        fail_msg("%s", aellm_error_last());
    return all;
}

typedef struct {
    const aellm_space *space;
    int calls;
    int model_b; /* another model: slower, half the memory, a little less accurate */
    char seen[600][65];
} synth;

static const char *opt(const aellm_space *s, const double *g, const char *knob)
{
    int k = aellm_space_find(s, knob);
    const cJSON *v = aellm_space_option(s, k, (int)g[k]);
    static char buf[4][32];
    static int r;
    r = (r + 1) % 4;
    if (cJSON_IsString(v)) return v->valuestring;
    snprintf(buf[r], sizeof(buf[r]), "%g",
             cJSON_IsBool(v) ? (double)cJSON_IsTrue(v) : v->valuedouble);
    return buf[r];
}

/* A smooth, structured stand-in for a real evaluation. */
static void objectives_of(const aellm_space *s, const double *g, aellm_objectives *o)
{
    const char *w = opt(s, g, "inference.weights"), *m = opt(s, g, "inference.method");
    const char *kv = opt(s, g, "inference.kv_cache");
    double group = atof(opt(s, g, "inference.group")), asym = atof(opt(s, g, "inference.asym"));
    double share = atof(opt(s, g, "inference.kv_share"));
    double act = atof(opt(s, g, "inference.act_order"));
    double bits = !strcmp(w, "f32")                         ? 32
                  : !strcmp(w, "bf16") || !strcmp(w, "f16") ? 16
                  : !strcmp(w, "fp8") || !strcmp(w, "int8") ? 8
                  : !strcmp(w, "q8_0")                      ? 8.5
                                                            : 4.5;
    if (!strcmp(w, "int4")) bits = 4 + (16.0 + 16 * asym) / group;
    double err = 0.3 * pow(2, -bits / 2);
    if (!strcmp(w, "int4") || !strcmp(w, "nf4")) {
        if (!strcmp(m, "gptq")) err *= act ? 0.55 : 0.65;
        if (!strcmp(m, "awq")) err *= 0.7;
        if (asym) err *= 0.85;
        err *= 1 + (group - 32) / 256.0;
    }
    double kvb = !strcmp(kv, "f32") ? 32 : !strcmp(kv, "f16") ? 16 : 8.5;
    err += 0.002 * (32 / kvb - 1) * 0.1 + 0.01 * log2(share);
    /* the stages that train (at their defaults in a held space: no effect):
       fewer KV values cost a little accuracy, experts cut the FFN's time,
       fine-tuning gains accuracy */
    const char *att = opt(s, g, "architecture.attention"), *ft = opt(s, g, "finetuning.method");
    double experts = atof(opt(s, g, "architecture.moe_experts"));
    double top_k = atof(opt(s, g, "architecture.moe_top_k"));
    double kv_keep = !strcmp(att, "gqa")   ? 0.5
                     : !strcmp(att, "mqa") ? 0.25
                     : !strcmp(att, "mla") ? 0.375
                                           : 1;
    err += !strcmp(att, "mha") ? 0 : !strcmp(att, "mla") ? 0.004 : 0.01 / kv_keep / 4;
    err += experts > 1 ? 0.005 * log2(experts) : 0;
    err -= !strcmp(ft, "none") ? 0 : !strcmp(ft, "full") ? 0.02 : 0.015;
    double ffn = experts > 1 ? 0.5 + 0.5 * top_k / experts : 1;
    double kv_bytes = 4e6 * kvb / 32 / share * kv_keep;
    o->v[AELLM_OBJ_ACC] = 0.6 - err;
    o->v[AELLM_OBJ_MEM] = 1e8 * bits / 32 + kv_bytes;
    o->v[AELLM_OBJ_LAT] = 0.02 + 0.1 * bits / 32 * ffn + 0.01 * kvb / 32 / share * kv_keep +
                          (!strcmp(m, "smoothquant") ? -0.003 : 0);
    o->v[AELLM_OBJ_ENERGY] = 30 * o->v[AELLM_OBJ_LAT];
    /* making the model: a conversion uptrains, fine-tuning trains (full
       costs most), calibrated quantization takes a moment */
    o->v[AELLM_OBJ_TUNE] = (!strcmp(att, "mha") && experts <= 1 ? 0 : 20) +
                           (!strcmp(ft, "none")   ? 0
                            : !strcmp(ft, "full") ? 60
                                                  : 30) +
                           (!strcmp(m, "rtn") ? 0 : 2);
    o->power_w = 30;
}

static int synth_eval(void *user, const double *genes, aellm_objectives *out)
{
    synth *y = user;
    char h[65];
    aellm_space_hash(y->space, genes, h);
    for (int i = 0; i < y->calls; i++)
        if (!strcmp(y->seen[i], h)) fail_msg("configuration evaluated twice");
    if (aellm_space_violates(y->space, genes, NULL, 0)) fail_msg("an invalid point was evaluated");
    memcpy(y->seen[y->calls++], h, 65);
    objectives_of(y->space, genes, out);
    if (y->model_b) {
        out->v[AELLM_OBJ_LAT] = 1.3 * out->v[AELLM_OBJ_LAT] + 0.01;
        out->v[AELLM_OBJ_MEM] *= 0.5;
        out->v[AELLM_OBJ_ACC] -= 0.05;
        out->v[AELLM_OBJ_ENERGY] = 30 * out->v[AELLM_OBJ_LAT];
    }
    return 0;
}

#endif

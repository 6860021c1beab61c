/* Configurations: parsing with errors that name the key, the canonical form
 * that identifies one in the store, and applying the inference stage. */
#include "aellm/config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aellm/arch.h"
#include "aellm/dtype.h"
#include "core/error.h"
#include "core/file.h"
#include "core/hash.h"
#include "core/json.h"
#include "model/model.h"

void aellm_config_default(aellm_config *out)
{
    memset(out, 0, sizeof(*out));
    out->weight_type = -1;
    out->method = AELLM_QUANT_RTN;
    out->kv_type = AELLM_DTYPE_F32;
    out->calib_tokens = 4096;
    strcpy(out->arch_attention, "mha");
    out->arch_moe_experts = 1;
    out->arch_moe_top_k = 1;
    strcpy(out->arch_moe_method, "split");
    strcpy(out->ft_method, "none");
    out->ft_rank = 16;
    out->ft_alpha_ratio = 2.0;
    strcpy(out->ft_targets, "q,k,v,o");
    out->ft_steps = 100;
}

int aellm_config_finetunes(const aellm_config *c)
{
    return strcmp(c->ft_method, "none") != 0;
}

int aellm_config_converts(const aellm_config *c)
{
    return strcmp(c->arch_attention, "mha") != 0 || c->arch_moe_experts > 1;
}

int aellm_config_trains(const aellm_config *c)
{
    return aellm_config_finetunes(c) || (aellm_config_converts(c) && c->arch_uptrain_steps > 0);
}

int aellm_config_mla_rank(const aellm_config *c, const aellm_model *m)
{
    const aellm_model_config *mc = aellm_model_config_get(m);
    int full = 2 * mc->n_kv_heads * mc->head_dim;
    return c->arch_mla_rank ? c->arch_mla_rank : (full / 4 > 0 ? full / 4 : 1);
}

int aellm_config_mla_rope_dim(const aellm_config *c, const aellm_model *m)
{
    int hd = aellm_model_config_get(m)->head_dim;
    return c->arch_mla_rope_dim ? c->arch_mla_rope_dim : aellm_mla_default_rope_dim(hd);
}

int aellm_config_arch_kv_heads(const aellm_config *c, const aellm_model *m)
{
    int n = aellm_model_config_get(m)->n_kv_heads;
    if (!strcmp(c->arch_attention, "mqa")) return 1;
    if (strcmp(c->arch_attention, "gqa")) return n;
    int to = c->arch_kv_heads ? c->arch_kv_heads : n / 2;
    return to >= 1 && to <= n && n % to == 0 ? to : -1;
}

static int bad(const char *where, const char *key, const char *what)
{
    return aellm_error_set(AELLM_EINVAL, "%s: inference.%s: %s", where, key, what);
}

static int get_int(const cJSON *v, const char *where, const char *key, int64_t lo, int64_t hi,
                   int64_t *out)
{
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
    } else if (cJSON_IsNumber(v) && !(v->valuedouble > -0x1p63 && v->valuedouble < 0x1p63)) {
        return bad(where, key, "out of range"); /* the cast below would be undefined */
    } else if (cJSON_IsNumber(v) && v->valuedouble == (double)(int64_t)v->valuedouble) {
        *out = (int64_t)v->valuedouble;
    } else {
        return bad(where, key, "must be a whole number");
    }
    if (*out < lo || *out > hi) return bad(where, key, "out of range");
    return 0;
}

/* A file name from the configuration into dst, a relative one from
 * base_dir: the reason it is not one, or NULL. */
static const char *file_path(const cJSON *v, const char *base_dir, char *dst, size_t cap)
{
    if (!cJSON_IsString(v) || !*v->valuestring) return "must be a file name";
    const char *f = v->valuestring;
    int n = f[0] == '/' || !base_dir || !*base_dir ? snprintf(dst, cap, "%s", f)
                                                   : snprintf(dst, cap, "%s/%s", base_dir, f);
    return n >= (int)cap ? "path too long" : NULL;
}

/* A whole number in [lo, hi]. */
static int whole(const cJSON *v, double lo, double hi)
{
    return cJSON_IsNumber(v) && v->valuedouble >= lo && v->valuedouble <= hi &&
           v->valuedouble == (double)(int64_t)v->valuedouble; /* in range before the cast */
}

static int parse_calibration(aellm_config *c, const cJSON *j, const char *where,
                             const char *base_dir)
{
    if (!cJSON_IsObject(j)) return bad(where, "calibration", "must be an object");
    for (const cJSON *v = j->child; v; v = v->next) {
        int64_t x = 0;
        int rc = 0;
        if (!strcmp(v->string, "file")) {
            const char *why = file_path(v, base_dir, c->calib_file, sizeof(c->calib_file));
            if (why) return bad(where, "calibration.file", why);
        } else if (!strcmp(v->string, "skip")) {
            if (!(rc = get_int(v, where, "calibration.skip", 0, INT64_MAX, &x))) c->calib_skip = x;
        } else if (!strcmp(v->string, "bytes")) {
            if (!(rc = get_int(v, where, "calibration.bytes", 0, INT64_MAX, &x)))
                c->calib_bytes = x;
        } else if (!strcmp(v->string, "tokens")) {
            if (!(rc = get_int(v, where, "calibration.tokens", 1, INT64_MAX, &x)))
                c->calib_tokens = x;
        } else {
            char key[96];
            snprintf(key, sizeof(key), "calibration.%s", v->string);
            return bad(where, key, "unknown key (file, skip, bytes, tokens)");
        }
        if (rc) return rc;
    }
    return 0;
}

static int parse_str(const cJSON *v, const char *where, const char *key, char *dst, size_t cap)
{
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap)
        return bad(where, key, "must be a short string");
    strcpy(dst, v->valuestring);
    return 0;
}

static int parse_inference(aellm_config *c, const cJSON *j, const char *where, const char *base_dir)
{
    if (!cJSON_IsObject(j))
        return aellm_error_set(AELLM_EINVAL, "%s: inference: not an object", where);
    char method[32] = "rtn", kv[32] = "f32", scale[16] = "channel";
    int method_set = 0;
    for (const cJSON *v = j->child; v; v = v->next) {
        const char *k = v->string;
        int64_t x = 0;
        int rc = 0;
        if (!strcmp(k, "weights")) {
            rc = parse_str(v, where, k, c->weights, sizeof(c->weights));
        } else if (!strcmp(k, "method")) {
            rc = parse_str(v, where, k, method, sizeof(method));
            method_set = 1;
        } else if (!strcmp(k, "kv_cache")) {
            rc = parse_str(v, where, k, kv, sizeof(kv));
        } else if (!strcmp(k, "fp8_scale")) {
            rc = parse_str(v, where, k, scale, sizeof(scale));
        } else if (!strcmp(k, "group")) {
            if (!(rc = get_int(v, where, k, 0, 1 << 20, &x))) c->group = (int)x;
        } else if (!strcmp(k, "asym")) {
            if (!(rc = get_int(v, where, k, 0, 1, &x))) c->asym = (int)x;
        } else if (!strcmp(k, "act_order")) {
            if (!(rc = get_int(v, where, k, 0, 1, &x))) c->act_order = (int)x;
        } else if (!strcmp(k, "kv_heads")) {
            if (!(rc = get_int(v, where, k, 0, 1 << 16, &x))) c->kv_heads = (int)x;
        } else if (!strcmp(k, "kv_share")) {
            if (!(rc = get_int(v, where, k, 1, 1 << 16, &x))) c->kv_share = (int)x;
        } else if (!strcmp(k, "calibration")) {
            rc = parse_calibration(c, v, where, base_dir);
        } else {
            return bad(where, k,
                       "unknown key (weights, group, asym, method, act_order, fp8_scale, "
                       "kv_cache, kv_heads, kv_share, calibration)");
        }
        if (rc) return rc;
    }
    /* "none" is the canonical form's word for weights left as the model has
       them: read back, it is the default method, which then does nothing */
    if (!strcmp(method, "none")) {
        strcpy(method, "rtn");
        method_set = 0;
    }
    if ((c->method = aellm_quant_method_from_name(method)) < 0)
        return bad(where, "method", "not one of rtn, gptq, awq, smoothquant (none: unchanged)");
    if (strcmp(scale, "channel") && strcmp(scale, "tensor"))
        return bad(where, "fp8_scale", "not one of channel, tensor");
    c->fp8_per_tensor = !strcmp(scale, "tensor");
    c->kv_type = aellm_dtype_from_name(kv);
    if (c->kv_type != AELLM_DTYPE_F32 && c->kv_type != AELLM_DTYPE_F16 &&
        c->kv_type != AELLM_DTYPE_Q8_0)
        return bad(where, "kv_cache", "not one of f32, f16, q8_0");
    if (c->weights[0]) {
        c->weight_type = aellm_quant_type_resolve(c->weights, c->group, c->asym);
        if (c->weight_type < 0) {
            char why[256]; /* the message buffer is reused by bad() */
            snprintf(why, sizeof(why), "%s", aellm_error_last());
            return bad(where, strstr(why, "group") ? "group" : "weights", why);
        }
    } else if (c->group || c->asym || method_set || c->act_order) {
        return bad(where, "weights", "group, asym, method and act_order need a weight type");
    }
    if (c->kv_heads && c->kv_share)
        return bad(where, "kv_share", "give kv_heads or kv_share, not both");
    if (c->method == AELLM_QUANT_SMOOTHQUANT && c->weight_type != AELLM_DTYPE_INT8)
        return bad(where, "method", "smoothquant is W8A8: it needs weights int8");
    if (c->act_order && c->method != AELLM_QUANT_GPTQ)
        return bad(where, "act_order", "applies to method gptq only");
    return 0;
}

static int ft_bad(const char *where, const char *key, const char *what)
{
    return aellm_error_set(AELLM_EINVAL, "%s: finetuning.%s: %s", where, key, what);
}

static int valid_targets(const char *list)
{
    static const char *const names[] = {"q", "k", "v", "o", "gate", "up", "down"};
    if (!strcmp(list, "all")) return 1;
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", list);
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
         t = strtok_r(NULL, ",", &save), n++) {
        int ok = 0;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) ok |= !strcmp(t, names[i]);
        if (!ok) return 0;
    }
    return n > 0;
}

static int parse_finetuning(aellm_config *c, const cJSON *j, const char *where,
                            const char *base_dir)
{
    static const char *const methods[] = {"none", "full", "lora", "rslora", "dora", "qlora"};
    if (!cJSON_IsObject(j))
        return aellm_error_set(AELLM_EINVAL, "%s: finetuning: not an object", where);
    for (const cJSON *v = j->child; v; v = v->next) {
        const char *k = v->string;
        int64_t x = 0;
        int rc = 0;
        if (!strcmp(k, "method")) {
            int ok = cJSON_IsString(v);
            for (size_t i = 0; ok && i < sizeof(methods) / sizeof(methods[0]); i++)
                if (!strcmp(v->valuestring, methods[i])) ok = 2;
            if (ok != 2)
                return ft_bad(where, k, "not one of none, full, lora, rslora, dora, qlora");
            strcpy(c->ft_method, v->valuestring);
        } else if (!strcmp(k, "rank")) {
            if (!whole(v, 1, 65536)) return ft_bad(where, k, "must be a whole number >= 1");
            c->ft_rank = (int)v->valuedouble;
        } else if (!strcmp(k, "alpha_ratio")) {
            if (!cJSON_IsNumber(v) || !(v->valuedouble > 0))
                return ft_bad(where, k, "must be a number > 0");
            c->ft_alpha_ratio = v->valuedouble;
        } else if (!strcmp(k, "targets")) {
            if (!cJSON_IsString(v) || strlen(v->valuestring) >= sizeof(c->ft_targets) ||
                !valid_targets(v->valuestring))
                return ft_bad(where, k,
                              "a comma-separated list of q, k, v, o, gate, up, down, or all");
            strcpy(c->ft_targets, v->valuestring);
        } else if (!strcmp(k, "steps")) {
            if (!whole(v, 1, 1e8)) return ft_bad(where, k, "must be a whole number >= 1");
            c->ft_steps = (int)v->valuedouble;
        } else if (!strcmp(k, "lr")) {
            if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || v->valuedouble > 10)
                return ft_bad(where, k, "must be a number in (0, 10]");
            c->ft_lr = v->valuedouble;
        } else if (!strcmp(k, "data")) {
            const char *why = file_path(v, base_dir, c->ft_data, sizeof(c->ft_data));
            if (why) return ft_bad(where, k, why);
        } else {
            return ft_bad(where, k,
                          "unknown key (method, rank, alpha_ratio, targets, steps, lr, data)");
        }
        (void)x;
        if (rc) return rc;
    }
    return 0;
}

static int arch_bad(const char *where, const char *key, const char *what)
{
    return aellm_error_set(AELLM_EINVAL, "%s: architecture.%s: %s", where, key, what);
}

static int parse_architecture(aellm_config *c, const cJSON *j, const char *where,
                              const char *base_dir)
{
    if (!cJSON_IsObject(j))
        return aellm_error_set(AELLM_EINVAL, "%s: architecture: not an object", where);
    for (const cJSON *v = j->child; v; v = v->next) {
        const char *k = v->string;
        if (!strcmp(k, "attention")) {
            const char *a = cJSON_IsString(v) ? v->valuestring : "";
            if (strcmp(a, "mha") && strcmp(a, "gqa") && strcmp(a, "mqa") && strcmp(a, "mla"))
                return arch_bad(where, k, "not one of mha, gqa, mqa, mla");
            strcpy(c->arch_attention, a);
        } else if (!strcmp(k, "kv_heads")) {
            if (!whole(v, 1, 1 << 16)) return arch_bad(where, k, "must be a whole number >= 1");
            c->arch_kv_heads = (int)v->valuedouble;
        } else if (!strcmp(k, "uptrain_steps")) {
            if (!whole(v, 0, 1e8)) return arch_bad(where, k, "must be a whole number >= 0");
            c->arch_uptrain_steps = (int)v->valuedouble;
        } else if (!strcmp(k, "uptrain_lr")) {
            if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || v->valuedouble > 10)
                return arch_bad(where, k, "must be a number in (0, 10]");
            c->arch_uptrain_lr = v->valuedouble;
        } else if (!strcmp(k, "uptrain_data")) {
            const char *why =
                file_path(v, base_dir, c->arch_uptrain_data, sizeof(c->arch_uptrain_data));
            if (why) return arch_bad(where, k, why);
        } else if (!strcmp(k, "mla_rank")) {
            if (!whole(v, 1, 1 << 16)) return arch_bad(where, k, "must be a whole number >= 1");
            c->arch_mla_rank = (int)v->valuedouble;
        } else if (!strcmp(k, "mla_rope_dim")) {
            if (!whole(v, 2, 4096) || (int)v->valuedouble % 2)
                return arch_bad(where, k, "must be an even whole number >= 2");
            c->arch_mla_rope_dim = (int)v->valuedouble;
        } else if (!strcmp(k, "moe_experts")) {
            if (!whole(v, 1, 256)) return arch_bad(where, k, "must be a whole number in [1, 256]");
            c->arch_moe_experts = (int)v->valuedouble;
        } else if (!strcmp(k, "moe_top_k")) {
            if (!whole(v, 1, 256)) return arch_bad(where, k, "must be a whole number >= 1");
            c->arch_moe_top_k = (int)v->valuedouble;
        } else if (!strcmp(k, "moe_method")) {
            const char *mm = cJSON_IsString(v) ? v->valuestring : "";
            if (strcmp(mm, "split") && strcmp(mm, "upcycle"))
                return arch_bad(where, k, "not one of split, upcycle");
            strcpy(c->arch_moe_method, mm);
        } else {
            return arch_bad(
                where, k,
                "unknown key (attention, kv_heads, mla_rank, mla_rope_dim, moe_experts, "
                "moe_top_k, moe_method, uptrain_steps, uptrain_lr, uptrain_data)");
        }
    }
    if (c->arch_kv_heads && strcmp(c->arch_attention, "gqa"))
        return arch_bad(where, "kv_heads", "applies to attention gqa only");
    if (c->arch_moe_top_k > c->arch_moe_experts)
        return arch_bad(where, "moe_top_k", "more experts per token than moe_experts");
    if ((c->arch_mla_rank || c->arch_mla_rope_dim) && strcmp(c->arch_attention, "mla"))
        return arch_bad(where, c->arch_mla_rank ? "mla_rank" : "mla_rope_dim",
                        "applies to attention mla only");
    return 0;
}

int aellm_config_parse(aellm_config *out, const cJSON *j, const char *where, const char *base_dir)
{
    aellm_config_default(out);
    if (!cJSON_IsObject(j)) return aellm_error_set(AELLM_EINVAL, "%s: not a JSON object", where);
    for (const cJSON *v = j->child; v; v = v->next) {
        if (!strcmp(v->string, "inference")) {
            int rc = parse_inference(out, v, where, base_dir);
            if (rc) return rc;
        } else if (!strcmp(v->string, "finetuning")) {
            int rc = parse_finetuning(out, v, where, base_dir);
            if (rc) return rc;
        } else if (!strcmp(v->string, "architecture")) {
            int rc = parse_architecture(out, v, where, base_dir);
            if (rc) return rc;
        } else {
            return aellm_error_set(AELLM_EINVAL,
                                   "%s: unknown stage '%s' (architecture, finetuning, inference)",
                                   where, v->string);
        }
    }
    return 0;
}

int aellm_config_load(aellm_config *out, const char *path)
{
    cJSON *j = NULL;
    int rc = aellm_json_load(&j, path);
    if (rc) return rc;
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
    rc = aellm_config_parse(out, j, path, dir);
    cJSON_Delete(j);
    return rc;
}

/* Whether applying it changes the weights (rounding to the type they are
 * already in by RTN changes nothing). */
static int changes_weights(const aellm_config *c, const aellm_model *m)
{
    return c->weight_type >= 0 &&
           !(c->weight_type == aellm_model_weight_type(m) && c->method == AELLM_QUANT_RTN);
}

static int needs_calibration(const aellm_config *c)
{
    return c->weight_type >= 0 && c->method != AELLM_QUANT_RTN;
}

/* KV heads after the inference stage's pooling of a model with `from` (0 =
 * unchanged, -1 = does not fit). */
int aellm_config_inference_kv_heads(const aellm_config *c, int from)
{
    if (c->kv_share > 1) return from % c->kv_share ? -1 : from / c->kv_share;
    return c->kv_heads;
}

/* A data file a configuration names: there, and a regular file (a
 * directory would pass fopen and fail later, in the stage, hours in). */
static int readable_file(const char *path, const char *what)
{
    FILE *f;
    int64_t size;
    int rc = aellm_file_open(&f, path, &size);
    if (!rc) return fclose(f), 0;
    char why[512];
    snprintf(why, sizeof(why), "%s", aellm_error_last());
    return aellm_error_set(rc, "%s: %s", what, why);
}

static int check_architecture(const aellm_config *c, const aellm_model *m)
{
    if (aellm_config_arch_kv_heads(c, m) < 0)
        return aellm_error_set(AELLM_EINVAL,
                               "architecture.kv_heads: gqa to %d KV heads does not fit the "
                               "model's %d (a divisor, below the model's count)",
                               c->arch_kv_heads ? c->arch_kv_heads
                                                : aellm_model_config_get(m)->n_kv_heads / 2,
                               aellm_model_config_get(m)->n_kv_heads);
    const aellm_model_config *mc = aellm_model_config_get(m);
    if (!strcmp(c->arch_attention, "mla")) {
        int full = 2 * mc->n_kv_heads * mc->head_dim, r = aellm_config_mla_rank(c, m),
            dr = aellm_config_mla_rope_dim(c, m);
        if (mc->mla_rank)
            return aellm_error_set(AELLM_EINVAL, "architecture.attention: the model's attention "
                                                 "is latent already");
        if (r > full)
            return aellm_error_set(AELLM_EINVAL,
                                   "architecture.mla_rank: %d is above the full rank %d (2 x KV "
                                   "heads x head dim)",
                                   r, full);
        if (dr > mc->head_dim)
            return aellm_error_set(AELLM_EINVAL,
                                   "architecture.mla_rope_dim: %d is above the head dim %d", dr,
                                   mc->head_dim);
    }
    if (c->arch_moe_experts > 1 && mc->n_experts)
        return aellm_error_set(AELLM_EINVAL,
                               "architecture.moe_experts: the model already has %d experts",
                               mc->n_experts);
    if (c->arch_moe_experts > 1 && !strcmp(c->arch_moe_method, "split") &&
        mc->hidden_dim < c->arch_moe_experts)
        return aellm_error_set(AELLM_EINVAL,
                               "architecture.moe_experts: %d hidden neurons cannot make %d experts",
                               mc->hidden_dim, c->arch_moe_experts);
    if (!aellm_config_converts(c)) return 0;
    /* the text is read (and its hash keys the configuration) by uptraining,
       by fitting routers, and by latent attention, whose pairs it scores */
    int reads = c->arch_uptrain_steps > 0 || aellm_config_arch_fits_routers(c) ||
                !strcmp(c->arch_attention, "mla");
    if (c->arch_uptrain_data[0] && reads)
        return readable_file(c->arch_uptrain_data, "uptraining data");
    if (c->arch_uptrain_steps == 0) return 0;
    if (!c->arch_uptrain_data[0])
        return aellm_error_set(AELLM_EINVAL,
                               "architecture.uptrain_data: uptraining needs training data (the "
                               "configuration's, or a task with a \"train\" file)");
    return readable_file(c->arch_uptrain_data, "uptraining data");
}

/* The inference stage on a model with `from` KV heads. */
static int check_inference(const aellm_config *c, int from)
{
    if (aellm_config_inference_kv_heads(c, from) < 0)
        return aellm_error_set(AELLM_EINVAL,
                               "inference.kv_share: %d does not divide the %d KV heads it is "
                               "given",
                               c->kv_share, from);
    if (c->kv_heads && (c->kv_heads > from || from % c->kv_heads))
        return aellm_error_set(AELLM_EINVAL,
                               "inference.kv_heads: %d does not divide the %d KV heads it is given",
                               c->kv_heads, from);
    if (needs_calibration(c) && !c->calib_file[0])
        return aellm_error_set(AELLM_EINVAL,
                               "inference.calibration.file: method %s needs a calibration text",
                               aellm_quant_method_name(c->method));
    return c->calib_file[0] ? readable_file(c->calib_file, "calibration text") : 0;
}

/* The fine-tuning stage on a model of this shape (after the architecture
 * stage: a rank must fit the pooled key/value widths). */
static int check_finetuning(const aellm_config *c, const aellm_model_config *shape)
{
    if (!aellm_config_finetunes(c)) return 0;
    if (!c->ft_data[0])
        return aellm_error_set(AELLM_EINVAL,
                               "finetuning.data: method %s needs training data (the "
                               "configuration's data, or a task with a \"train\" file)",
                               c->ft_method);
    aellm_train_params p;
    aellm_config_train_params(c, &p);
    if (aellm_train_check_shape(shape, &p)) {
        char why[400];
        const char *msg = aellm_error_last();
        snprintf(why, sizeof(why), "%s", strncmp(msg, "training: ", 10) ? msg : msg + 10);
        return aellm_error_set(AELLM_EINVAL, "finetuning: %s", why);
    }
    return readable_file(c->ft_data, "training data");
}

/* What the inference stage cannot do to latent attention (yet). */
static int check_latent_inference(const aellm_config *c, int kv_heads)
{
    int to = aellm_config_inference_kv_heads(c, kv_heads);
    if (c->kv_type != AELLM_DTYPE_F32)
        return aellm_error_set(AELLM_EINVAL, "inference.kv_cache: latent attention keeps its "
                                             "latent cache in f32");
    if (to > 0 && to != kv_heads)
        return aellm_error_set(AELLM_EINVAL, "inference.kv_heads: latent attention has no KV "
                                             "heads to pool");
    return 0;
}

void aellm_config_arch_shape(const aellm_config *c, const aellm_model *m, aellm_model_config *out)
{
    *out = *aellm_model_config_get(m);
    out->n_kv_heads = aellm_config_arch_kv_heads(c, m);
    if (!strcmp(c->arch_attention, "mla")) {
        out->mla_rank = aellm_config_mla_rank(c, m);
        out->mla_rope_dim = aellm_config_mla_rope_dim(c, m);
    }
    int E = c->arch_moe_experts;
    if (E <= 1) return;
    out->hidden_dim = aellm_moe_expert_width(out->hidden_dim, E,
                                             strcmp(c->arch_moe_method, "split") ? AELLM_MOE_UPCYCLE
                                                                                 : AELLM_MOE_SPLIT);
    out->n_experts = E;
    out->n_experts_used = c->arch_moe_top_k;
}

int aellm_config_arch_fits_routers(const aellm_config *c)
{
    return c->arch_moe_experts > 1 && !strcmp(c->arch_moe_method, "split") &&
           c->arch_uptrain_data[0];
}

int aellm_config_check(const aellm_config *c, const aellm_model *m)
{
    int rc = check_architecture(c, m);
    if (rc) return rc;
    aellm_model_config shape;
    aellm_config_arch_shape(c, m, &shape);
    if ((rc = check_finetuning(c, &shape))) return rc;
    if (shape.mla_rank && (rc = check_latent_inference(c, shape.n_kv_heads))) return rc;
    return check_inference(c, shape.n_kv_heads);
}

void aellm_config_uptrain_params(const aellm_config *c, aellm_train_params *p)
{
    aellm_train_params_default(p);
    p->method = "full";
    p->steps = c->arch_uptrain_steps;
    p->lr = (float)c->arch_uptrain_lr;
}

void aellm_config_train_params(const aellm_config *c, aellm_train_params *p)
{
    aellm_train_params_default(p);
    p->method = c->ft_method;
    p->rank = c->ft_rank;
    p->alpha = (float)(c->ft_alpha_ratio * c->ft_rank);
    p->targets = c->ft_targets;
    p->steps = c->ft_steps;
    p->lr = (float)c->ft_lr;
}

/* The fine-tuning stage as it acts: adapter settings only for adapter
 * methods, the data by its SHA-256. */
static int add_finetuning(cJSON *root, const aellm_config *c)
{
    char hash[AELLM_HASH_HEX];
    int rc = aellm_hash_file(c->ft_data, hash);
    if (rc) return rc;
    cJSON *ft = cJSON_AddObjectToObject(root, "finetuning");
    cJSON_AddStringToObject(ft, "method", c->ft_method);
    if (strcmp(c->ft_method, "full")) {
        cJSON_AddNumberToObject(ft, "rank", c->ft_rank);
        cJSON_AddNumberToObject(ft, "alpha_ratio", c->ft_alpha_ratio);
        cJSON_AddStringToObject(ft, "targets", c->ft_targets);
    }
    cJSON_AddNumberToObject(ft, "steps", c->ft_steps);
    cJSON_AddNumberToObject(ft, "lr", c->ft_lr);
    cJSON *d = cJSON_AddObjectToObject(ft, "data");
    cJSON_AddStringToObject(d, "sha256", hash);
    return 0;
}

/* The inference stage as it acts on m, added to root; -1 after an error. */
static int add_inference(cJSON *root, const aellm_config *c, const aellm_model *m, int from)
{
    int wt = c->weight_type >= 0 ? c->weight_type : aellm_model_weight_type(m);
    int quantized = changes_weights(c, m);
    cJSON *inf = cJSON_AddObjectToObject(root, "inference");
    cJSON_AddStringToObject(inf, "weights", aellm_dtype_traits_get(wt)->name);
    cJSON_AddStringToObject(inf, "method", quantized ? aellm_quant_method_name(c->method) : "none");
    cJSON_AddBoolToObject(inf, "act_order", c->act_order);
    if (wt == AELLM_DTYPE_FP8_E4M3)
        cJSON_AddStringToObject(inf, "fp8_scale", c->fp8_per_tensor ? "tensor" : "channel");
    cJSON_AddStringToObject(inf, "kv_cache", aellm_dtype_traits_get(c->kv_type)->name);
    int heads = aellm_config_inference_kv_heads(c, from);
    cJSON_AddNumberToObject(inf, "kv_heads", heads > 0 ? heads : from);
    if (quantized && c->calib_file[0]) {
        char hash[AELLM_HASH_HEX];
        if (aellm_hash_file(c->calib_file, hash)) return -1;
        cJSON *cal = cJSON_AddObjectToObject(inf, "calibration");
        cJSON_AddStringToObject(cal, "sha256", hash);
        cJSON_AddNumberToObject(cal, "skip", (double)c->calib_skip);
        cJSON_AddNumberToObject(cal, "bytes", (double)c->calib_bytes);
        cJSON_AddNumberToObject(cal, "tokens", (double)c->calib_tokens);
    }
    return 0;
}

static char *print_canonical(cJSON *root)
{
    char *s = aellm_json_canonical(root);
    cJSON_Delete(root);
    if (!s) aellm_error_oom("a canonical configuration", 0);
    return s;
}

/* The architecture stage as it acts on m: its resolved head count and the
 * uptraining, the data by its SHA-256. */
static int add_architecture(cJSON *root, const aellm_config *c, const aellm_model *m)
{
    cJSON *a = cJSON_AddObjectToObject(root, "architecture");
    cJSON_AddStringToObject(a, "attention", c->arch_attention);
    cJSON_AddNumberToObject(a, "kv_heads", aellm_config_arch_kv_heads(c, m));
    cJSON_AddNumberToObject(a, "uptrain_steps", c->arch_uptrain_steps);
    int mla = !strcmp(c->arch_attention, "mla");
    if (mla) { /* the pairs are scored on the uptraining text when there is one */
        cJSON_AddNumberToObject(a, "mla_rank", aellm_config_mla_rank(c, m));
        cJSON_AddNumberToObject(a, "mla_rope_dim", aellm_config_mla_rope_dim(c, m));
        cJSON_AddStringToObject(a, "mla_pairs", c->arch_uptrain_data[0] ? "text" : "weights");
    }
    if (c->arch_moe_experts > 1) { /* absent when dense: GQA/MQA keys stay as they were */
        cJSON_AddNumberToObject(a, "moe_experts", c->arch_moe_experts);
        cJSON_AddNumberToObject(a, "moe_top_k", c->arch_moe_top_k);
        cJSON_AddStringToObject(a, "moe_method", c->arch_moe_method);
        cJSON_AddStringToObject(a, "moe_router",
                                aellm_config_arch_fits_routers(c) ? "fitted" : "initial");
    }
    if (c->arch_uptrain_steps == 0 && !aellm_config_arch_fits_routers(c) &&
        !(mla && c->arch_uptrain_data[0]))
        return 0;
    char hash[AELLM_HASH_HEX];
    int rc = aellm_hash_file(c->arch_uptrain_data, hash);
    if (rc) return rc;
    if (c->arch_uptrain_steps) cJSON_AddNumberToObject(a, "uptrain_lr", c->arch_uptrain_lr);
    cJSON *d = cJSON_AddObjectToObject(a, "uptrain_data");
    cJSON_AddStringToObject(d, "sha256", hash);
    return 0;
}

char *aellm_config_canonical_architecture(const aellm_config *c, const aellm_model *m)
{
    cJSON *root = cJSON_CreateObject();
    if (aellm_config_converts(c) && add_architecture(root, c, m)) {
        cJSON_Delete(root);
        return NULL;
    }
    return print_canonical(root);
}

char *aellm_config_canonical(const aellm_config *c, const aellm_model *m)
{
    cJSON *root = cJSON_CreateObject();
    if (add_inference(root, c, m, aellm_config_arch_kv_heads(c, m)) ||
        (aellm_config_finetunes(c) && add_finetuning(root, c)) ||
        (aellm_config_converts(c) && add_architecture(root, c, m))) {
        cJSON_Delete(root);
        return NULL;
    }
    return print_canonical(root);
}

char *aellm_config_canonical_inference(const aellm_config *c, const aellm_model *m)
{
    cJSON *root = cJSON_CreateObject();
    if (add_inference(root, c, m, aellm_model_config_get(m)->n_kv_heads)) {
        cJSON_Delete(root);
        return NULL;
    }
    return print_canonical(root);
}

char *aellm_config_canonical_finetuning(const aellm_config *c)
{
    cJSON *root = cJSON_CreateObject();
    if (aellm_config_finetunes(c) && add_finetuning(root, c)) {
        cJSON_Delete(root);
        return NULL;
    }
    return print_canonical(root);
}

int aellm_config_apply(const aellm_config *c, aellm_model *m, aellm_model **out,
                       aellm_engine_params *ep, aellm_quant_progress_fn progress, void *user)
{
    *out = NULL;
    int from = aellm_model_config_get(m)->n_kv_heads; /* what the stages before left */
    int rc = check_inference(c, from);
    if (rc) return rc;
    int heads = aellm_config_inference_kv_heads(c, from);
    if (heads > 0 && (rc = aellm_model_share_kv_heads(m, heads))) return rc;
    ep->kv_type = c->kv_type;
    if (!changes_weights(c, m)) return 0;
    aellm_quantize_params p;
    aellm_quantize_params_default(&p);
    p.type = c->weight_type;
    p.method = c->method;
    p.act_order = c->act_order;
    p.fp8_per_tensor = c->fp8_per_tensor;
    p.calib_tokens = c->calib_tokens;
    p.n_threads = ep->n_threads;
    p.progress = progress;
    p.progress_user = user;
    char *text = NULL;
    if (c->calib_file[0] && (rc = aellm_quant_read_calib(&text, &p.calib_len, c->calib_file,
                                                         c->calib_skip, c->calib_bytes)))
        return rc;
    p.calib_text = text;
    p.calib_path = c->calib_file[0] ? c->calib_file : NULL;
    rc = aellm_quantize_model(out, m, &p, NULL);
    free(text);
    return rc;
}

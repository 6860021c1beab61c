/* The configuration space: parsing, activity, rules, mapping to and from
 * configurations, canonical identity and enumeration. */
#include "aellm/space.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/hash.h"
#include "core/json.h"

#define MAX_CONDS 4

typedef struct { /* knob `knob` takes one of the listed option values */
    int knob;
    const cJSON *values; /* array, borrowed from the parsed document */
} cond;

typedef struct {
    char name[64];
    char technique[32]; /* group for single-technique optimisation; the stage by default */
    int stage;
    aellm_knob_type type;
    const cJSON *options; /* array for categorical */
    int n_options;
    double lo, hi, def;
    int log_scale, applies;
    const cJSON *not_yet; /* options that cannot be applied yet (array or NULL) */
    cond active[MAX_CONDS];
    int n_active;
} knob;

typedef struct {
    cond when[MAX_CONDS], require[MAX_CONDS];
    int n_when, n_require;
    char why[160];
} rule;

struct aellm_space {
    cJSON *doc; /* owns every borrowed JSON value */
    char stages[8][32];
    int n_stages;
    knob *knobs;
    int n_knobs;
    rule *rules;
    int n_rules;
};

void aellm_space_free(aellm_space *s)
{
    if (!s) return;
    cJSON_Delete(s->doc);
    free(s->knobs);
    free(s->rules);
    free(s);
}

static int option_index(const knob *k, const cJSON *v)
{
    int i = 0;
    for (const cJSON *o = k->options ? k->options->child : NULL; o; o = o->next, i++)
        if (cJSON_Compare(o, v, 1)) return i;
    return -1;
}

int aellm_space_find(const aellm_space *s, const char *name)
{
    for (int i = 0; i < s->n_knobs; i++) {
        const knob *k = &s->knobs[i];
        size_t n = strlen(s->stages[k->stage]);
        if (!strncmp(name, s->stages[k->stage], n) && name[n] == '.' &&
            !strcmp(name + n + 1, k->name))
            return i;
    }
    return -1;
}

/* {"stage.knob": [values], ...} into conditions; the values must be options. */
static int parse_conds(const aellm_space *s, const cJSON *j, cond *out, int *n, const char *where,
                       const char *what)
{
    *n = 0;
    if (!cJSON_IsObject(j))
        return aellm_error_set(AELLM_EFORMAT, "%s: %s: not an object", where, what);
    for (const cJSON *c = j->child; c; c = c->next) {
        int k = aellm_space_find(s, c->string);
        if (k < 0)
            return aellm_error_set(AELLM_EFORMAT, "%s: %s names unknown knob '%s'", where, what,
                                   c->string);
        if (!cJSON_IsArray(c) || *n >= MAX_CONDS)
            return aellm_error_set(AELLM_EFORMAT, "%s: %s: '%s' needs a list of options", where,
                                   what, c->string);
        for (const cJSON *v = c->child; v; v = v->next)
            if (option_index(&s->knobs[k], v) < 0)
                return aellm_error_set(AELLM_EFORMAT, "%s: %s: '%s' has no such option", where,
                                       what, c->string);
        out[(*n)++] = (cond){k, c};
    }
    return 0;
}

static int parse_knob(aellm_space *s, knob *k, const cJSON *j, int stage, const char *where)
{
    const cJSON *name = cJSON_GetObjectItem(j, "name"), *type = cJSON_GetObjectItem(j, "type");
    if (!cJSON_IsString(name) || strlen(name->valuestring) >= sizeof(k->name))
        return aellm_error_set(AELLM_EFORMAT, "%s: stage %s: a knob without a name", where,
                               s->stages[stage]);
    snprintf(k->name, sizeof(k->name), "%s", name->valuestring);
    k->stage = stage;
    const cJSON *tech = cJSON_GetObjectItem(j, "technique");
    if (tech && (!cJSON_IsString(tech) || !tech->valuestring[0] ||
                 strlen(tech->valuestring) >= sizeof(k->technique)))
        return aellm_error_set(AELLM_EFORMAT, "%s: %s.%s: \"technique\" must be a short name",
                               where, s->stages[stage], k->name);
    snprintf(k->technique, sizeof(k->technique), "%s", tech ? tech->valuestring : s->stages[stage]);
    const char *t = cJSON_IsString(type) ? type->valuestring : "";
    const cJSON *def = cJSON_GetObjectItem(j, "default"), *ap = cJSON_GetObjectItem(j, "applies");
    k->applies = !cJSON_IsFalse(ap);
    k->not_yet = cJSON_GetObjectItem(j, "not_yet");
    if (!strcmp(t, "categorical")) {
        k->type = AELLM_KNOB_CATEGORICAL;
        k->options = cJSON_GetObjectItem(j, "options");
        k->n_options = cJSON_GetArraySize(k->options);
        if (!cJSON_IsArray(k->options) || k->n_options < 1)
            return aellm_error_set(AELLM_EFORMAT, "%s: %s.%s: no options", where, s->stages[stage],
                                   k->name);
        k->lo = 0;
        k->hi = k->n_options - 1;
        int d = def ? option_index(k, def) : 0;
        if (d < 0)
            return aellm_error_set(AELLM_EFORMAT, "%s: %s.%s: the default is not an option", where,
                                   s->stages[stage], k->name);
        k->def = d;
        return 0;
    }
    if (strcmp(t, "integer") && strcmp(t, "real"))
        return aellm_error_set(AELLM_EFORMAT,
                               "%s: %s.%s: type must be categorical, integer or real", where,
                               s->stages[stage], k->name);
    k->type = !strcmp(t, "integer") ? AELLM_KNOB_INTEGER : AELLM_KNOB_REAL;
    const cJSON *lo = cJSON_GetObjectItem(j, "min"), *hi = cJSON_GetObjectItem(j, "max");
    if (!cJSON_IsNumber(lo) || !cJSON_IsNumber(hi) || lo->valuedouble > hi->valuedouble)
        return aellm_error_set(AELLM_EFORMAT, "%s: %s.%s: needs min <= max", where,
                               s->stages[stage], k->name);
    k->lo = lo->valuedouble;
    k->hi = hi->valuedouble;
    k->log_scale = cJSON_IsTrue(cJSON_GetObjectItem(j, "log"));
    k->def = cJSON_IsNumber(def) ? def->valuedouble : k->lo;
    if (k->def < k->lo || k->def > k->hi)
        return aellm_error_set(AELLM_EFORMAT, "%s: %s.%s: default outside [min, max]", where,
                               s->stages[stage], k->name);
    return 0;
}

static int parse_stages(aellm_space *s, const cJSON *stages, const char *where)
{
    int total = 0;
    for (const cJSON *st = stages->child; st; st = st->next)
        total += cJSON_GetArraySize(cJSON_GetObjectItem(st, "knobs"));
    s->knobs = calloc((size_t)(total ? total : 1), sizeof(*s->knobs));
    if (!s->knobs) return aellm_error_oom("space knobs", 0);
    for (const cJSON *st = stages->child; st; st = st->next) {
        const cJSON *name = cJSON_GetObjectItem(st, "name"),
                    *knobs = cJSON_GetObjectItem(st, "knobs");
        if (!cJSON_IsString(name) || !cJSON_IsArray(knobs) || s->n_stages >= 8 ||
            strlen(name->valuestring) >= sizeof(s->stages[0]))
            return aellm_error_set(AELLM_EFORMAT, "%s: stage %d needs a name and a knobs list",
                                   where, s->n_stages);
        int stage = s->n_stages++;
        snprintf(s->stages[stage], sizeof(s->stages[stage]), "%s", name->valuestring);
        for (const cJSON *kj = knobs->child; kj; kj = kj->next) {
            int rc = parse_knob(s, &s->knobs[s->n_knobs], kj, stage, where);
            if (rc) return rc;
            s->n_knobs++;
        }
    }
    return 0;
}

/* Conditions refer to knobs of any stage, so they are read once all exist. */
static int parse_links(aellm_space *s, const cJSON *stages, const cJSON *rules, const char *where)
{
    int i = 0, rc;
    for (const cJSON *st = stages->child; st; st = st->next)
        for (const cJSON *kj = cJSON_GetObjectItem(st, "knobs")->child; kj; kj = kj->next, i++) {
            const cJSON *aw = cJSON_GetObjectItem(kj, "active_when");
            knob *k = &s->knobs[i];
            if (aw && (rc = parse_conds(s, aw, k->active, &k->n_active, where, k->name))) return rc;
        }
    int n = cJSON_GetArraySize(rules);
    s->rules = calloc((size_t)(n ? n : 1), sizeof(*s->rules));
    if (!s->rules) return aellm_error_oom("space rules", 0);
    for (const cJSON *r = rules ? rules->child : NULL; r; r = r->next) {
        rule *x = &s->rules[s->n_rules];
        char what[32];
        snprintf(what, sizeof(what), "rule %d", s->n_rules + 1);
        if ((rc = parse_conds(s, cJSON_GetObjectItem(r, "when"), x->when, &x->n_when, where,
                              what)) ||
            (rc = parse_conds(s, cJSON_GetObjectItem(r, "require"), x->require, &x->n_require,
                              where, what)))
            return rc;
        const cJSON *why = cJSON_GetObjectItem(r, "why");
        snprintf(x->why, sizeof(x->why), "%s", cJSON_IsString(why) ? why->valuestring : what);
        s->n_rules++;
    }
    return 0;
}

int aellm_space_parse(aellm_space **out, const cJSON *j, const char *where)
{
    *out = NULL;
    aellm_space *s = calloc(1, sizeof(*s));
    if (!s) return aellm_error_oom("a space", sizeof(*s));
    s->doc = cJSON_Duplicate(j, 1);
    const cJSON *stages = cJSON_GetObjectItem(s->doc, "stages");
    const cJSON *rules = cJSON_GetObjectItem(s->doc, "rules");
    int rc = 0;
    if (!cJSON_IsArray(stages))
        rc = aellm_error_set(AELLM_EFORMAT, "%s: no \"stages\" list", where);
    else if (rules && !cJSON_IsArray(rules))
        rc = aellm_error_set(AELLM_EFORMAT, "%s: \"rules\" must be a list", where);
    if (!rc) rc = parse_stages(s, stages, where);
    if (!rc) rc = parse_links(s, stages, rules, where);
    if (rc) {
        aellm_space_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int aellm_space_load(aellm_space **out, const char *path)
{
    cJSON *j = NULL;
    int rc = aellm_json_load(&j, path);
    if (!rc) rc = aellm_space_parse(out, j, path);
    cJSON_Delete(j);
    return rc;
}

/* The space's document with the knobs for which held(knob) is true marked as
 * not applying: the same knobs in the same order, so points carry over.
 * *any is set when a knob left alone applies. */
static cJSON *doc_holding(const aellm_space *s, int (*held)(const aellm_space *, int, const char *),
                          const char *what, int *any)
{
    cJSON *doc = cJSON_Duplicate(s->doc, 1);
    if (!doc) return NULL;
    int i = 0;
    *any = 0;
    const cJSON *stages = cJSON_GetObjectItem(doc, "stages");
    for (const cJSON *st = stages->child; st; st = st->next)
        for (cJSON *kj = cJSON_GetObjectItem(st, "knobs")->child; kj; kj = kj->next, i++) {
            if (!held(s, i, what)) {
                *any |= s->knobs[i].applies;
                continue;
            }
            cJSON_DeleteItemFromObject(kj, "applies");
            cJSON_AddBoolToObject(kj, "applies", 0);
        }
    return doc;
}

static int other_technique(const aellm_space *s, int i, const char *technique)
{
    return strcmp(s->knobs[i].technique, technique) != 0;
}

int aellm_space_restrict(const aellm_space *s, const char *technique, aellm_space **out)
{
    *out = NULL;
    int any;
    cJSON *doc = doc_holding(s, other_technique, technique, &any);
    if (!doc) return aellm_error_oom("a restricted space", 0);
    int rc = any ? aellm_space_parse(out, doc, technique)
                 : aellm_error_set(AELLM_EINVAL, "space: no applicable knob of technique '%s'",
                                   technique);
    cJSON_Delete(doc);
    return rc;
}

static int in_stage(const aellm_space *s, int i, const char *stage)
{
    return strcmp(s->stages[s->knobs[i].stage], stage) == 0;
}

int aellm_space_hold_stage(const aellm_space *s, const char *stage, aellm_space **out)
{
    *out = NULL;
    int any;
    cJSON *doc = doc_holding(s, in_stage, stage, &any);
    if (!doc) return aellm_error_oom("a space with a stage held", 0);
    int rc = aellm_space_parse(out, doc, stage);
    cJSON_Delete(doc);
    return rc;
}

int aellm_space_stage_applies(const aellm_space *s, const char *stage)
{
    for (int i = 0; i < s->n_knobs; i++)
        if (s->knobs[i].applies && !strcmp(s->stages[s->knobs[i].stage], stage)) return 1;
    return 0;
}

int aellm_space_n_knobs(const aellm_space *s)
{
    return s->n_knobs;
}
int aellm_space_n_stages(const aellm_space *s)
{
    return s->n_stages;
}
const char *aellm_space_stage_name(const aellm_space *s, int stage)
{
    return stage >= 0 && stage < s->n_stages ? s->stages[stage] : NULL;
}

void aellm_space_knob(const aellm_space *s, int i, aellm_knob_info *out)
{
    const knob *k = &s->knobs[i];
    *out = (aellm_knob_info){.stage = s->stages[k->stage],
                             .name = k->name,
                             .technique = k->technique,
                             .stage_index = k->stage,
                             .type = k->type,
                             .n_options = k->n_options,
                             .lo = k->lo,
                             .hi = k->hi,
                             .log_scale = k->log_scale,
                             .applies = k->applies,
                             .default_gene = k->def};
}

const cJSON *aellm_space_option(const aellm_space *s, int k, int o)
{
    return cJSON_GetArrayItem(s->knobs[k].options, o);
}

int aellm_space_option_applies(const aellm_space *s, int k, int o)
{
    const knob *kn = &s->knobs[k];
    if (!kn->applies) return 0;
    for (const cJSON *v = kn->not_yet ? kn->not_yet->child : NULL; v; v = v->next)
        if (cJSON_Compare(v, aellm_space_option(s, k, o), 1)) return 0;
    return 1;
}

void aellm_space_defaults(const aellm_space *s, double *genes)
{
    for (int i = 0; i < s->n_knobs; i++) genes[i] = s->knobs[i].def;
}

static int cond_holds(const aellm_space *s, const cond *c, const double *genes)
{
    const knob *k = &s->knobs[c->knob];
    const cJSON *v = cJSON_GetArrayItem(k->options, (int)genes[c->knob]);
    for (const cJSON *o = c->values->child; o && v; o = o->next)
        if (cJSON_Compare(o, v, 1)) return 1;
    return 0;
}

static int all_hold(const aellm_space *s, const cond *c, int n, const double *genes)
{
    for (int i = 0; i < n; i++)
        if (!cond_holds(s, &c[i], genes)) return 0;
    return 1;
}

int aellm_space_is_active(const aellm_space *s, const double *genes, int k)
{
    return all_hold(s, s->knobs[k].active, s->knobs[k].n_active, genes);
}

void aellm_space_canonicalize(const aellm_space *s, double *genes)
{
    for (int i = 0; i < s->n_knobs; i++) {
        const knob *k = &s->knobs[i];
        double g = genes[i];
        if (!(g >= k->lo)) g = k->lo; /* NaN too */
        if (g > k->hi) g = k->hi;
        genes[i] = k->type == AELLM_KNOB_REAL ? g : floor(g + 0.5);
    }
    /* activity depends on other knobs: settle in at most n_knobs passes */
    for (int pass = 0; pass < s->n_knobs; pass++) {
        int changed = 0;
        for (int i = 0; i < s->n_knobs; i++)
            if (genes[i] != s->knobs[i].def && !aellm_space_is_active(s, genes, i)) {
                genes[i] = s->knobs[i].def;
                changed = 1;
            }
        if (!changed) break;
    }
}

static void say(char *why, size_t cap, const char *fmt, const char *a, const char *b)
{
    if (why && cap) snprintf(why, cap, fmt, a, b);
}

int aellm_space_violates(const aellm_space *s, const double *genes, char *why, size_t cap)
{
    for (int i = 0; i < s->n_knobs; i++) {
        const knob *k = &s->knobs[i];
        if (genes[i] == k->def || !aellm_space_is_active(s, genes, i)) continue;
        if (!k->applies || (k->type == AELLM_KNOB_CATEGORICAL &&
                            !aellm_space_option_applies(s, i, (int)genes[i]))) {
            say(why, cap, "%s.%s cannot be applied yet", s->stages[k->stage], k->name);
            return 1;
        }
    }
    for (int r = 0; r < s->n_rules; r++) {
        const rule *x = &s->rules[r];
        if (all_hold(s, x->when, x->n_when, genes) &&
            !all_hold(s, x->require, x->n_require, genes)) {
            say(why, cap, "%s%s", x->why, "");
            return 1;
        }
    }
    return 0;
}

static cJSON *knob_value(const aellm_space *s, int i, double g)
{
    const knob *k = &s->knobs[i];
    if (k->type == AELLM_KNOB_CATEGORICAL)
        return cJSON_Duplicate(aellm_space_option(s, i, (int)g), 1);
    return cJSON_CreateNumber(g);
}

cJSON *aellm_space_to_config(const aellm_space *s, const double *genes)
{
    cJSON *cfg = cJSON_CreateObject();
    for (int i = 0; i < s->n_knobs; i++) {
        const knob *k = &s->knobs[i];
        if (!k->applies || !aellm_space_is_active(s, genes, i)) continue;
        cJSON *stage = cJSON_GetObjectItem(cfg, s->stages[k->stage]);
        if (!stage) stage = cJSON_AddObjectToObject(cfg, s->stages[k->stage]);
        cJSON_AddItemToObject(stage, k->name, knob_value(s, i, genes[i]));
    }
    return cfg;
}

static int gene_of(const aellm_space *s, int i, const cJSON *v, const char *where, double *g)
{
    const knob *k = &s->knobs[i];
    if (k->type == AELLM_KNOB_CATEGORICAL) {
        int o = option_index(k, v);
        if (o < 0)
            return aellm_error_set(AELLM_EINVAL, "%s: %s.%s: not one of its options", where,
                                   s->stages[k->stage], k->name);
        *g = o;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < k->lo || v->valuedouble > k->hi ||
        (k->type == AELLM_KNOB_INTEGER && v->valuedouble != floor(v->valuedouble)))
        return aellm_error_set(
            AELLM_EINVAL, "%s: %s.%s: must be a %s in [%g, %g]", where, s->stages[k->stage],
            k->name, k->type == AELLM_KNOB_INTEGER ? "whole number" : "number", k->lo, k->hi);
    *g = v->valuedouble;
    return 0;
}

int aellm_space_from_config(const aellm_space *s, const cJSON *config, const char *where,
                            double *genes)
{
    aellm_space_defaults(s, genes);
    if (!cJSON_IsObject(config))
        return aellm_error_set(AELLM_EINVAL, "%s: a configuration is a JSON object", where);
    for (const cJSON *st = config->child; st; st = st->next) {
        int stage = -1;
        for (int i = 0; i < s->n_stages; i++)
            if (!strcmp(s->stages[i], st->string)) stage = i;
        if (stage < 0 || !cJSON_IsObject(st))
            return aellm_error_set(AELLM_EINVAL, "%s: unknown stage '%s'", where, st->string);
        for (const cJSON *v = st->child; v; v = v->next) {
            char name[128];
            snprintf(name, sizeof(name), "%s.%s", st->string, v->string);
            int k = aellm_space_find(s, name);
            if (k < 0) return aellm_error_set(AELLM_EINVAL, "%s: unknown knob '%s'", where, name);
            int rc = gene_of(s, k, v, where, &genes[k]);
            if (rc) return rc;
        }
    }
    return 0;
}

char *aellm_space_canonical(const aellm_space *s, const double *genes)
{
    double *g = malloc((size_t)s->n_knobs * sizeof(double));
    if (!g) return NULL;
    memcpy(g, genes, (size_t)s->n_knobs * sizeof(double));
    aellm_space_canonicalize(s, g);
    cJSON *cfg = aellm_space_to_config(s, g);
    char *text = aellm_json_canonical(cfg);
    cJSON_Delete(cfg);
    free(g);
    return text;
}

void aellm_space_hash(const aellm_space *s, const double *genes, char out[65])
{
    char *text = aellm_space_canonical(s, genes);
    aellm_hash_str(text ? text : "", out);
    free(text);
}

/* ---- enumeration ---- */

typedef struct {
    char **seen; /* open-addressing set of canonical texts */
    size_t cap, n;
} text_set;

static uint64_t fnv(const char *t)
{
    uint64_t h = 1469598103934665603ull;
    for (; *t; t++) h = (h ^ (unsigned char)*t) * 1099511628211ull;
    return h;
}

/* 1 if added, 0 if present, <0 on allocation failure. Takes `t`. */
static int set_add(text_set *set, char *t)
{
    if (2 * (set->n + 1) > set->cap) {
        size_t cap = set->cap ? 2 * set->cap : 256;
        char **slots = calloc(cap, sizeof(*slots));
        if (!slots) return -1;
        for (size_t i = 0; i < set->cap; i++)
            if (set->seen[i]) {
                size_t j = fnv(set->seen[i]) & (cap - 1);
                while (slots[j]) j = (j + 1) & (cap - 1);
                slots[j] = set->seen[i];
            }
        free(set->seen);
        set->seen = slots;
        set->cap = cap;
    }
    size_t j = fnv(t) & (set->cap - 1);
    for (; set->seen[j]; j = (j + 1) & (set->cap - 1))
        if (!strcmp(set->seen[j], t)) {
            free(t);
            return 0;
        }
    set->seen[j] = t;
    set->n++;
    return 1;
}

static void set_free(text_set *set)
{
    for (size_t i = 0; i < set->cap; i++) free(set->seen[i]);
    free(set->seen);
}

static int searchable_discrete(const knob *k)
{
    return k->applies && k->type != AELLM_KNOB_REAL;
}

/* Whether every knob's activity depends on earlier knobs only: then a walk
 * in knob order that fixes each inactive knob at its default yields every
 * canonical point exactly once. */
static int activity_ordered(const aellm_space *s)
{
    for (int i = 0; i < s->n_knobs; i++)
        for (int c = 0; c < s->knobs[i].n_active; c++)
            if (s->knobs[i].active[c].knob >= i) return 0;
    return 1;
}

/* The order points are handed out in is the odometer's below (knob 0
 * turning fastest, each point where it first appears: its inactive knobs at
 * their lowest value), which searches depend on; a point's rank in it is a
 * mixed-radix number over the searchable knobs. */
static int64_t odometer_rank(const aellm_space *s, const double *c)
{
    int64_t key = 0;
    for (int i = s->n_knobs - 1; i >= 0; i--) {
        const knob *k = &s->knobs[i];
        if (!searchable_discrete(k)) continue;
        int64_t digit = aellm_space_is_active(s, c, i) ? (int64_t)(c[i] - k->lo) : 0;
        key = key * (int64_t)(k->hi - k->lo + 1) + digit;
    }
    return key;
}

static void from_rank(const aellm_space *s, int64_t key, double *g)
{
    aellm_space_defaults(s, g);
    for (int i = 0; i < s->n_knobs; i++) {
        const knob *k = &s->knobs[i];
        if (!searchable_discrete(k)) continue;
        int64_t radix = (int64_t)(k->hi - k->lo + 1);
        g[i] = k->lo + (double)(key % radix);
        key /= radix;
    }
    aellm_space_canonicalize(s, g);
}

typedef struct {
    const aellm_space *s;
    double *g;
    int64_t *ranks, n, cap; /* NULL: count only */
    int failed;
} walk;

static void walk_from(walk *w, int i)
{
    const aellm_space *s = w->s;
    if (w->failed) return;
    if (i == s->n_knobs) {
        if (aellm_space_violates(s, w->g, NULL, 0)) return;
        if (w->ranks && w->n == w->cap) {
            int64_t cap = w->cap ? 2 * w->cap : 4096, *r = realloc(w->ranks, (size_t)cap * 8);
            if (!r) {
                w->failed = 1;
                return;
            }
            w->ranks = r, w->cap = cap;
        }
        if (w->ranks) w->ranks[w->n] = odometer_rank(s, w->g);
        w->n++;
        return;
    }
    const knob *k = &s->knobs[i];
    if (!searchable_discrete(k) || !aellm_space_is_active(s, w->g, i)) {
        w->g[i] = k->def;
        walk_from(w, i + 1);
        return;
    }
    for (double v = k->lo; v <= k->hi; v++) {
        w->g[i] = v;
        walk_from(w, i + 1);
    }
}

static int by_rank(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Walks the canonical points; with fn, hands them out in odometer order. */
static int64_t enumerate_walk(const aellm_space *s, aellm_space_point_fn fn, void *user)
{
    walk w = {s, malloc((size_t)s->n_knobs * sizeof(double)), NULL, 0, 0, 0};
    int64_t *ranks = fn ? malloc(4096 * 8) : NULL;
    if (!w.g || (fn && !ranks)) return free(w.g), free(ranks), aellm_error_oom("enumeration", 0);
    w.ranks = ranks, w.cap = fn ? 4096 : 0;
    aellm_space_defaults(s, w.g);
    walk_from(&w, 0);
    int rc = w.failed ? aellm_error_oom("enumeration", (size_t)w.cap * 8) : 0;
    if (!rc && fn) qsort(w.ranks, (size_t)w.n, sizeof(int64_t), by_rank);
    for (int64_t i = 0; !rc && fn && i < w.n; i++) {
        from_rank(s, w.ranks[i], w.g);
        rc = fn(w.g, user);
    }
    free(w.g);
    free(w.ranks);
    return rc < 0 ? rc : w.n;
}

/* Any order of dependencies: an odometer over every searchable knob, each
 * point canonicalised and counted once by its canonical text. */
static int64_t enumerate_odometer(const aellm_space *s, aellm_space_point_fn fn, void *user)
{
    double *g = malloc((size_t)s->n_knobs * sizeof(double) * 2), *c = g + s->n_knobs;
    if (!g) return aellm_error_oom("enumeration", 0);
    aellm_space_defaults(s, g);
    for (int i = 0; i < s->n_knobs; i++)
        if (searchable_discrete(&s->knobs[i])) g[i] = s->knobs[i].lo;
    text_set set = {0};
    int64_t visited = 0;
    int rc = 0;
    for (;;) {
        memcpy(c, g, (size_t)s->n_knobs * sizeof(double));
        aellm_space_canonicalize(s, c);
        if (!aellm_space_violates(s, c, NULL, 0)) {
            char *t = aellm_space_canonical(s, c);
            int added = t ? set_add(&set, t) : -1;
            if (added < 0) {
                rc = aellm_error_oom("enumeration", 0);
                break;
            }
            if (added && (visited++, fn) && (rc = fn(c, user))) break;
        }
        int i = 0; /* odometer over the searchable discrete knobs */
        for (; i < s->n_knobs; i++) {
            const knob *k = &s->knobs[i];
            if (!searchable_discrete(k)) continue;
            if (++g[i] <= k->hi) break;
            g[i] = k->lo;
        }
        if (i == s->n_knobs) break;
    }
    set_free(&set);
    free(g);
    return rc < 0 ? rc : visited;
}

int64_t aellm_space_enumerate(const aellm_space *s, aellm_space_point_fn fn, void *user)
{
    return activity_ordered(s) ? enumerate_walk(s, fn, user) : enumerate_odometer(s, fn, user);
}

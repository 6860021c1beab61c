/* The configuration space as data (DESIGN.md §2): stages of knobs, each
 * categorical, integer or real, with the options the engine can apply now
 * marked, knobs that only matter when others take some values
 * ("active_when"), and rules that make combinations invalid. A point of the
 * space is a vector of genes, one per knob: the option's index for a
 * categorical knob, the value for an integer or real one. The default file
 * is space/default.json. */
#ifndef AELLM_SPACE_H
#define AELLM_SPACE_H

#include <cjson/cJSON.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { AELLM_KNOB_CATEGORICAL, AELLM_KNOB_INTEGER, AELLM_KNOB_REAL } aellm_knob_type;

typedef struct aellm_space aellm_space;

/* Reads a space file; errors name the file and the stage, knob or rule. */
int aellm_space_load(aellm_space **out, const char *path);
int aellm_space_parse(aellm_space **out, const cJSON *j, const char *where);
void aellm_space_free(aellm_space *s); /* accepts NULL */

typedef struct {
    const char *stage; /* "inference" (borrowed from the space) */
    const char *name;  /* "weights" */
    /* The knob's technique ("quantization"): knobs of one technique are
     * optimised together by the single-technique baseline. The file's
     * "technique" field, else the stage's name. Borrowed. */
    const char *technique;
    int stage_index; /* 0.. in file order */
    aellm_knob_type type;
    int n_options; /* categorical: options; else 0 */
    double lo, hi; /* gene bounds: [0, n_options-1] for categorical */
    int log_scale; /* real: searched on a log scale */
    int applies;   /* 0: the engine cannot apply it yet; held at the default */
    double default_gene;
} aellm_knob_info;

int aellm_space_n_knobs(const aellm_space *s);
int aellm_space_n_stages(const aellm_space *s);
const char *aellm_space_stage_name(const aellm_space *s, int stage);
void aellm_space_knob(const aellm_space *s, int k, aellm_knob_info *out);
/* Index of "stage.knob", or -1. */
int aellm_space_find(const aellm_space *s, const char *stage_dot_knob);
/* A copy of the space in which only the knobs of `technique` apply (the
 * others held at their defaults); same knobs, same gene layout. Caller
 * frees. AELLM_EINVAL when no knob of that technique applies. */
int aellm_space_restrict(const aellm_space *s, const char *technique, aellm_space **out);
/* A copy of the space in which no knob of `stage` applies (all held at
 * their defaults: a search that cannot run the stage here); same knobs,
 * same gene layout. Caller frees. */
int aellm_space_hold_stage(const aellm_space *s, const char *stage, aellm_space **out);
/* Whether any knob of `stage` applies. */
int aellm_space_stage_applies(const aellm_space *s, const char *stage);
/* Whether option `o` of categorical knob `k` can be applied now. */
int aellm_space_option_applies(const aellm_space *s, int k, int o);
/* The option's value (borrowed JSON). */
const cJSON *aellm_space_option(const aellm_space *s, int k, int o);

void aellm_space_defaults(const aellm_space *s, double *genes);
/* Whether knob k matters given the other genes. */
int aellm_space_is_active(const aellm_space *s, const double *genes, int k);
/* Rounds discrete genes, clamps to bounds and puts inactive knobs at their
 * defaults, so that points computing the same thing are equal. */
void aellm_space_canonicalize(const aellm_space *s, double *genes);
/* 1 if the (canonical) point breaks a rule or uses what cannot be applied,
 * with the reason in `why` (may be NULL); 0 if valid. */
int aellm_space_violates(const aellm_space *s, const double *genes, char *why, size_t cap);

/* The point as a configuration {"stage": {"knob": value}} of its active,
 * applicable knobs (stages with none are left out); caller deletes. */
cJSON *aellm_space_to_config(const aellm_space *s, const double *genes);
/* The point a configuration names (missing knobs at their defaults). An
 * unknown stage or knob, or a value that is not an option, is an error
 * naming it (AELLM_EINVAL). */
int aellm_space_from_config(const aellm_space *s, const cJSON *config, const char *where,
                            double *genes);
/* Canonical JSON text of the canonicalized point (caller frees) and its
 * SHA-256 hex: the stable identity of a configuration. */
char *aellm_space_canonical(const aellm_space *s, const double *genes);
void aellm_space_hash(const aellm_space *s, const double *genes, char out[65]);

/* Calls fn for every distinct valid canonical point of the applicable
 * discrete knobs (real knobs at their defaults; fn may be NULL to count
 * them); a non-zero return stops.
 * Returns the count visited, or a negative error. */
typedef int (*aellm_space_point_fn)(const double *genes, void *user);
int64_t aellm_space_enumerate(const aellm_space *s, aellm_space_point_fn fn, void *user);

#ifdef __cplusplus
}
#endif
#endif

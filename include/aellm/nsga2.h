/* NSGA-II (Deb, Pratap, Agarwal, Meyarivan 2002) over mixed genomes: real,
 * integer and categorical genes, each belonging to a stage (architecture,
 * fine-tuning, inference, ...). All objectives are minimised. It knows nothing
 * of models or engines: a problem is a genome description plus a callback that
 * evaluates a whole population at once (real measurements or surrogate
 * predictions alike).
 *
 * Ownership: the problem's arrays and user pointer are borrowed for the life
 * of the handle; every pointer a getter returns is borrowed from the handle
 * and valid until the next init/step/run/reevaluate or free. */
#ifndef AELLM_NSGA2_H
#define AELLM_NSGA2_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    AELLM_GENE_REAL = 0, /* a double in [lo, hi] */
    AELLM_GENE_INT = 1,  /* a whole number in [lo, hi] */
    AELLM_GENE_CAT = 2,  /* an option index 0 .. n_options - 1 */
};

typedef struct {
    int kind;      /* AELLM_GENE_* */
    int stage;     /* 0 .. n_stages - 1 */
    double lo, hi; /* REAL and INT bounds, inclusive; ignored for CAT */
    int n_options; /* CAT only, >= 1 */
} aellm_gene;

/* Evaluates n genomes, genes (n, n_genes) row-major, into objectives
 * (n, n_objectives) and violations (n, n_constraints; NULL when there are no
 * constraints), each violation >= 0 and 0 when that constraint holds.
 * Integers and categoricals arrive as whole numbers. A NaN objective counts
 * as the worst value. Called once per generation with all the genomes that
 * need it. Returns 0, or a negative code that stops the search and is
 * returned unchanged (set its message with aellm_error_set). */
typedef int (*aellm_nsga2_eval_fn)(void *user, const double *genes, int n, double *objectives,
                                   double *violations);

/* Constraint-aware generation: returns non-zero to accept the genome, which
 * it may first repair in place (keeping genes in their bounds); 0 rejects it
 * and a new one is drawn (a bounded number of tries, after which the last one
 * is kept and left to the constraints). */
typedef int (*aellm_nsga2_valid_fn)(void *user, double *genes);

typedef struct {
    const aellm_gene *genes; /* (n_genes) */
    int n_genes;
    int n_stages;
    int n_objectives; /* >= 1 */
    int n_constraints;
    aellm_nsga2_eval_fn evaluate;
    aellm_nsga2_valid_fn is_valid; /* may be NULL */
    void *user;
} aellm_nsga2_problem;

typedef struct {
    int pop_size;       /* 100; >= 2 */
    int generations;    /* 50 (used by run) */
    double p_crossover; /* 0.9, per pair */
    double eta_c;       /* 15, SBX distribution index */
    double eta_m;       /* 20, polynomial mutation index */
    /* Per-gene mutation probability of each stage, (n_stages) entries; NULL
     * gives 1 / n_genes to every gene. Borrowed for the handle's life. */
    const double *stage_mutation;
    /* 3; 2 is Deb's binary tournament. The winner has the lower rank (rank
     * already orders by constrained domination), then the larger crowding. */
    int tournament;
    /* 0: SBX on real genes (each with probability 0.5, as Deb's code) and
     * whole-stage exchange for integer and categorical genes; 1: whole-stage
     * exchange for every gene. */
    int stage_crossover;
    /* 1: a child equal (all genes) to a member or an earlier child, or that
     * is_valid rejects, is re-mutated one gene at a time, then (past half the
     * tries) drawn afresh; after `tries` it stays as it is. Default 1. */
    int dedup;
    int cache;             /* 0; 1: a genome already evaluated is never evaluated again */
    int validate_children; /* 1: children also pass is_valid, as above */
    int tries;             /* 50 */
    int archive_capacity;  /* 1000; 0 keeps no archive */
    uint64_t seed;         /* 1 */
} aellm_nsga2_params;

void aellm_nsga2_params_default(aellm_nsga2_params *p);

typedef struct aellm_nsga2 aellm_nsga2;

/* A view of a set of solutions, borrowed from the handle. */
typedef struct {
    int n;
    const double *genes;      /* (n, n_genes) */
    const double *objectives; /* (n, n_objectives) */
    const double *violation;  /* (n) total constraint violation, 0 = feasible */
    const int *rank;          /* (n) 0 = first front; NULL for the archive */
    const double *crowding;   /* (n) INFINITY at a front's ends; NULL for the archive */
} aellm_nsga2_set;

/* Checks problem and params (AELLM_EINVAL naming the field) and allocates;
 * the handle in *out belongs to the caller (aellm_nsga2_free). */
int aellm_nsga2_new(aellm_nsga2 **out, const aellm_nsga2_problem *problem,
                    const aellm_nsga2_params *params);
void aellm_nsga2_free(aellm_nsga2 *g); /* accepts NULL */

/* init + `generations` steps. */
int aellm_nsga2_run(aellm_nsga2 *g);

/* Ask/tell-style driving. init draws the first population (the n_seed rows
 * of seed_genes first, may be NULL; the rest constraint-aware random),
 * evaluates and ranks it; step makes one generation (selection, variation,
 * evaluation, archive update, environmental selection). */
/* Seed genomes are only clamped and rounded, not checked by is_valid; more
 * than pop_size are ignored. init restarts the random stream from the seed. */
int aellm_nsga2_init(aellm_nsga2 *g, const double *seed_genes, int n_seed);
int aellm_nsga2_step(aellm_nsga2 *g);

/* After the evaluator changed (a retrained surrogate): forgets the cache and
 * the archive, evaluates the current population again and re-ranks it. */
int aellm_nsga2_reevaluate(aellm_nsga2 *g);

/* The population, ordered by rank then crowding (largest first), so the
 * first front is its first aellm_nsga2_front(..).n members. While nothing
 * feasible has been found, the first front holds the least infeasible
 * members: check violation. */
void aellm_nsga2_population(const aellm_nsga2 *g, aellm_nsga2_set *out);
void aellm_nsga2_front(const aellm_nsga2 *g, aellm_nsga2_set *out);
/* Every feasible solution evaluated that no other evaluated feasible solution
 * weakly dominates (an equal objective vector keeps the first genome), cut
 * to archive_capacity by crowding distance when it overflows. */
void aellm_nsga2_archive(const aellm_nsga2 *g, aellm_nsga2_set *out);
int64_t aellm_nsga2_evaluations(const aellm_nsga2 *g); /* genomes passed to evaluate */
int64_t aellm_nsga2_cache_hits(const aellm_nsga2 *g);  /* genomes answered by the cache */
int aellm_nsga2_generation(const aellm_nsga2 *g);      /* steps done since init */

/* ---- The pieces, public for tests and for other searches. ---- */

/* Constrained domination (Deb 2002): a feasible solution beats an infeasible
 * one, of two infeasible the smaller total violation wins, two feasible ones
 * compare by Pareto dominance. 1: a dominates b; -1: b dominates a; 0: neither. */
int aellm_nsga2_dominates(const double *fa, double va, const double *fb, double vb, int m);

/* Fast non-dominated sort under constrained domination: rank (n) gets 0 for
 * the first front, 1 for the next, ... Returns the number of fronts, or
 * AELLM_ENOMEM. violation may be NULL (all feasible). */
int aellm_nsga2_sort(int *rank, const double *objectives, const double *violation, int n, int m);

/* Crowding distance of the members idx (n) of one front into out (n):
 * per objective, the ends get INFINITY and the inner members the normalised
 * gap between their neighbours, summed over objectives. An objective whose
 * values are all equal adds nothing. Returns 0 or AELLM_ENOMEM. */
int aellm_nsga2_crowding(double *out, const double *objectives, const int *idx, int n, int m);

#ifdef __cplusplus
}
#endif
#endif

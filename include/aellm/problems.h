/* Benchmark problems for multi-objective optimisers, ready to hand to NSGA-II
 * (nsga2.h): ZDT1, ZDT2, ZDT3 (30 variables), ZDT6 (10), DTLZ2 (3 objectives,
 * 12 variables), Deb's constrained CONSTR and Tanaka's TNK (2 constraints
 * each), and DISC, a discrete bi-objective problem of 3,000 genomes
 * (categorical and integer genes over three stages) whose front is known.
 * They exist for tests and benchmarks; nothing here is used by the search. */
#ifndef AELLM_PROBLEMS_H
#define AELLM_PROBLEMS_H

#include "aellm/nsga2.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Fills *out with the named problem (static data; evaluate ignores user, so a
 * caller may wrap it). AELLM_ENOTFOUND for an unknown name. */
int aellm_problem_get(aellm_nsga2_problem *out, const char *name);

/* n points on the true Pareto front into *out (n, m), the caller's to free;
 * n_out gets the count (ZDT3's disconnected front keeps its non-dominated
 * part of n samples, and DISC has exactly 6 points). CONSTR and TNK are
 * sampled the same way from their feasible boundary. */
int aellm_problem_front(double **out, int *n_out, const char *name, int n);

/* The true front's hypervolume for the reference point 1.1 in every
 * objective: analytic where there is a closed form (ZDT1, ZDT2, ZDT6,
 * DTLZ2), otherwise that of a 100,000-point front sample (ZDT3, DISC exact). */
int aellm_problem_true_hv(double *out, const char *name);

#ifdef __cplusplus
}
#endif
#endif

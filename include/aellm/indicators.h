/* Quality indicators of a set of objective vectors (all minimised): exact
 * hypervolume, IGD, and the non-dominated subset. Points are (n, m)
 * row-major. Not an optimiser: see nsga2.h. */
#ifndef AELLM_INDICATORS_H
#define AELLM_INDICATORS_H

#ifdef __cplusplus
extern "C" {
#endif

/* Exact hypervolume dominated by points and bounded by ref (m): the volume of
 * the union of the boxes [p, ref]. Points not strictly better than ref in
 * every objective are ignored. m = 2 sorts (O(n log n)); m = 3 sweeps the
 * third objective over an incremental 2-D front (O(n^2) worst); m >= 4 slices
 * the last objective recursively (O(n^(m-1))). Returns 0, AELLM_EINVAL or
 * AELLM_ENOMEM. */
int aellm_hypervolume(double *out, const double *points, int n, int m, const double *ref);

/* Inverted generational distance: the mean over the reference front (n_ref, m)
 * of the Euclidean distance to the nearest point of the set (n, m). */
int aellm_igd(double *out, const double *ref_front, int n_ref, const double *points, int n, int m);

/* Writes the indices of the points no other point dominates (weakly better in
 * all, strictly in one) into idx (n), ascending; returns their count or
 * AELLM_EINVAL. Equal points are all kept. */
int aellm_nondominated(int *idx, const double *points, int n, int m);

#ifdef __cplusplus
}
#endif
#endif

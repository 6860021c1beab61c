#include "kernels/moe_route.h"

#include "kernels/softmax.h"

void aellm_moe_route(float *p, int E, int k, int *sel, float *w)
{
    aellm_kernel_softmax(p, E);
    float sum = 0.0f;
    for (int s = 0; s < k; s++) {
        int best = -1;
        for (int x = 0; x < E; x++) {
            int taken = 0;
            for (int t = 0; t < s; t++) taken |= sel[t] == x;
            if (!taken && (best < 0 || p[x] > p[best])) best = x;
        }
        sel[s] = best;
        w[s] = p[best];
        sum += p[best];
    }
    /* llama.cpp clamps the sum from below so that tiny weights stay finite */
    if (sum < 6.103515625e-5f) sum = 6.103515625e-5f;
    for (int s = 0; s < k; s++) w[s] /= sum;
}

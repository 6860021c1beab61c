/* aellm_model_repack: q4_0 matrices into the engine's decode layout,
 * q4_0_r16 (core/blocks.h), in place, one 16-row group at a time. */
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/blocks.h"
#include "core/error.h"
#include "model/model.h"

/* One group: 16 rows of nb q4_0 blocks (copied out first) to nb r16 blocks
 * over the same bytes. */
static void repack_group(void *group, void *tmp, int64_t nb)
{
    size_t row_bytes = (size_t)nb * sizeof(aellm_block_q4_0);
    memcpy(tmp, group, AELLM_Q4_0_R16_ROWS * row_bytes);
    aellm_block_q4_0_r16 *dst = group;
    for (int r = 0; r < AELLM_Q4_0_R16_ROWS; r++) {
        const aellm_block_q4_0 *src = (const aellm_block_q4_0 *)((char *)tmp + r * row_bytes);
        for (int64_t b = 0; b < nb; b++) {
            dst[b].d[r] = src[b].d;
            for (int k = 0; k < 4; k++) memcpy(dst[b].q + 64 * k + 4 * r, src[b].qs + 4 * k, 4);
        }
    }
}

static int repack_tensor(aellm_tensor *t)
{
    int64_t nb = t->ne[0] / QK4_0, groups = t->ne[1] / AELLM_Q4_0_R16_ROWS;
    size_t bytes = AELLM_Q4_0_R16_ROWS * t->row_bytes;
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        void *tmp = malloc(bytes);
        failed = !tmp;
#pragma omp for schedule(static)
        for (int64_t g = 0; g < groups; g++)
            if (tmp) repack_group((char *)t->data + (size_t)g * bytes, tmp, nb);
        free(tmp);
    }
    if (failed) return aellm_error_oom("a repacking buffer", bytes);
    t->type = AELLM_DTYPE_Q4_0_R16;
    return 0;
}

/* Whether [p, p + bytes) lies in [base, base + size). */
static int spans(const void *base, size_t size, const void *p, size_t bytes)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;
    return base && a >= b && a - b <= size && bytes <= size - (a - b);
}

/* Whether the model's own storage holds t: a transformed model may borrow
 * matrices from another model, which this one must not rewrite. */
static int owned(const aellm_model *m, const aellm_tensor *t)
{
    size_t bytes = aellm_tensor_bytes(t), size = 0;
    const void *file = m->gguf ? aellm_gguf_mapping(m->gguf, &size) : NULL;
    if (spans(file, size, t->data, bytes)) return 1;
    if (spans(m->owned, aellm_mem_size(m->owned), t->data, bytes)) return 1;
    for (int i = 0; i < m->n_extra; i++)
        if (spans(m->extra[i], aellm_mem_size(m->extra[i]), t->data, bytes)) return 1;
    return 0;
}

static int repackable(const aellm_model *m, const aellm_tensor *t)
{
    return t->data && t->type == AELLM_DTYPE_Q4_0 && t->ne[1] % AELLM_Q4_0_R16_ROWS == 0 &&
           t->ne[0] % QK4_0 == 0 && owned(m, t);
}

/* The matrices to rewrite: the dense layers' seven (MoE experts stay: their
 * slices are taken by row), and the output when it is not the embedding. */
static int collect(aellm_model *m, aellm_tensor **list)
{
    int n = 0;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int i = 0; i < AELLM_LINEAR_COUNT; i++) {
            aellm_tensor *t = aellm_layer_linear(&m->layers[l], i);
            int expert = m->cfg.n_experts > 0 && i >= AELLM_LINEAR_W_GATE;
            if (!expert && repackable(m, t)) list[n++] = t;
        }
    if (!m->cfg.tied_output && m->output.data != m->tok_embd.data && repackable(m, &m->output))
        list[n++] = &m->output;
    return n;
}

int aellm_model_repack(aellm_model *m, int *n_repacked)
{
    if (n_repacked) *n_repacked = 0;
    const char *env = getenv("AELLM_REPACK");
    if (env && !strcmp(env, "0")) return 0;
    aellm_tensor **list =
        malloc(((size_t)m->cfg.n_layers * AELLM_LINEAR_COUNT + 1) * sizeof(*list));
    if (!list) return aellm_error_oom("the repacking list", 0);
    int n = collect(m, list), rc = 0, done = 0;
    if (n && m->gguf && aellm_gguf_set_writable(m->gguf, 1)) {
        n = 0; /* mapped from the file (AELLM_MMAP=1): left as it is */
    }
    for (int i = 0; i < n && !rc; i++) {
        /* a matrix two tensors share is rewritten once */
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) seen = list[j]->data == list[i]->data;
        if (seen)
            list[i]->type = AELLM_DTYPE_Q4_0_R16;
        else if (!(rc = repack_tensor(list[i])))
            done++;
    }
    if (n && m->gguf) {
        int rc2 = aellm_gguf_set_writable(m->gguf, 0);
        if (!rc) rc = rc2;
    }
    free(list);
    if (n_repacked) *n_repacked = done;
    return rc;
}

/* Training checkpoints: the trainable arrays, the optimiser's moments, the
 * step, the data position and the held-out loss before training, written to
 * a temporary file and renamed over the checkpoint, so a run killed at any
 * moment leaves the last whole checkpoint. A resumed run continues with the
 * same state and the same data order, so it ends at the same loss as an
 * uninterrupted one. Host byte order (a file for this machine's runs, not an
 * interchange format). */
#include "techniques/finetune/checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic.h"
#include "core/error.h"

#define CKPT_MAGIC   "AELLMCKP"
#define CKPT_VERSION 2u

typedef struct {
    uint32_t version, method, rank, B, T, steps;
    uint64_t n_params, n_state;
    int64_t step, cursor, epoch;
    double heldout_before, loss;
} ckpt_header;

static uint64_t param_floats(const train_optim_group *g, int n)
{
    uint64_t total = 0;
    for (int i = 0; i < n; i++) total += g[i].n;
    return total;
}

int train_checkpoint_save(const char *path, const train_ckpt *c)
{
    aellm_atomic a;
    int rc = aellm_atomic_open(&a, path);
    if (rc) return rc;
    ckpt_header h = {.version = CKPT_VERSION,
                     .method = (uint32_t)c->method,
                     .rank = (uint32_t)c->rank,
                     .B = (uint32_t)c->B,
                     .T = (uint32_t)c->T,
                     .steps = (uint32_t)c->steps,
                     .n_params = param_floats(c->groups, c->n_groups),
                     .n_state = c->n_state,
                     .step = c->step,
                     .cursor = c->pos.cursor,
                     .epoch = c->pos.epoch,
                     .heldout_before = c->heldout_before,
                     .loss = c->loss};
    aellm_atomic_write(&a, CKPT_MAGIC, 8);
    aellm_atomic_write(&a, &h, sizeof(h));
    for (int i = 0; i < c->n_groups; i++)
        aellm_atomic_write(&a, c->groups[i].param, c->groups[i].n * sizeof(float));
    aellm_atomic_write(&a, c->state, c->n_state * sizeof(float));
    return aellm_atomic_commit(&a);
}

/* The checkpoint must be of this run: method, rank, batch, steps and sizes. */
static int check_header(const ckpt_header *h, const train_ckpt *c, long long bytes,
                        const char *path)
{
    if (h->version != CKPT_VERSION)
        return aellm_error_set(AELLM_EFORMAT, "%s: checkpoint version %u, expected %u", path,
                               h->version, CKPT_VERSION);
    if (h->method != (uint32_t)c->method || h->rank != (uint32_t)c->rank ||
        h->B != (uint32_t)c->B || h->T != (uint32_t)c->T || h->steps != (uint32_t)c->steps ||
        h->n_params != param_floats(c->groups, c->n_groups) || h->n_state != c->n_state)
        return aellm_error_set(AELLM_EINVAL,
                               "%s: a checkpoint of another run (method, rank, batch, sequence "
                               "length, steps or model differ); remove it or drop --resume",
                               path);
    if (h->step < 0 || h->step > h->steps)
        return aellm_error_set(AELLM_EFORMAT, "%s: step %lld out of range", path,
                               (long long)h->step);
    long long want = 8 + (long long)sizeof(*h) + (long long)(h->n_params + h->n_state) * 4;
    if (bytes != want)
        return aellm_error_set(AELLM_EFORMAT, "%s: %lld bytes, the header says %lld", path, bytes,
                               want);
    return 0;
}

int train_checkpoint_load(const char *path, train_ckpt *c)
{
    struct stat st;
    if (stat(path, &st))
        return aellm_error_set(errno == ENOENT ? AELLM_ENOTFOUND : AELLM_EIO, "%s: %s", path,
                               strerror(errno));
    FILE *f = fopen(path, "rb");
    if (!f) return aellm_error_set(AELLM_EIO, "%s: %s", path, strerror(errno));
    char magic[8];
    ckpt_header h;
    int rc = 0;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, CKPT_MAGIC, 8) ||
        fread(&h, sizeof(h), 1, f) != 1)
        rc = aellm_error_set(AELLM_EFORMAT, "%s: not an aellm training checkpoint", path);
    if (!rc) rc = check_header(&h, c, (long long)st.st_size, path);
    for (int i = 0; !rc && i < c->n_groups; i++)
        if (fread(c->groups[i].param, sizeof(float), c->groups[i].n, f) != c->groups[i].n)
            rc = aellm_error_set(AELLM_EFORMAT, "%s: truncated", path);
    if (!rc && fread(c->state, sizeof(float), c->n_state, f) != c->n_state)
        rc = aellm_error_set(AELLM_EFORMAT, "%s: truncated", path);
    fclose(f);
    if (!rc) {
        c->step = (int)h.step;
        c->pos = (train_data_pos){h.cursor, h.epoch};
        c->heldout_before = h.heldout_before;
        c->loss = h.loss;
    }
    return rc;
}

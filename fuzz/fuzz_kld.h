/* The kld task that fuzz_kld_base.c scores base files against, shared with
 * fuzz_mkseeds.c (which writes its true base file as a seed): a perplexity
 * text of two windows of 8 tokens on the mock language model. */
#ifndef AELLM_FUZZ_KLD_H
#define AELLM_FUZZ_KLD_H

#include "aellm/task.h"
#include "fuzz_lm.h"
#include "fuzz_util.h"

/* Where the base file keeps the SHA-256 of the windows' tokens: after the
 * magic (8) and six u32 and one u64 of sizes (task_kld.c's kld_header). */
#define FZ_KLD_SHA_AT  40
#define FZ_KLD_SHA_LEN 65

static inline const aellm_task *fz_kld_task(void)
{
    static aellm_task *t;
    if (t) return t;
    fz_write_str("kld.txt", "Once upon a time, there was a little girl named Lily. She liked "
                            "to play outside with her big red ball in the sun.");
    FZ_CHECK(aellm_task_parse(&t,
                              "{\"kind\": \"kld\", \"data\": \"kld.txt\", \"n_ctx\": 8, "
                              "\"max_chunks\": 2}",
                              fz_dir(), NULL) == 0);
    return t;
}

/* The true base file of that task, written to `path`. */
static inline void fz_kld_write_base(const char *path)
{
    aellm_lm lm = fz_lm();
    aellm_kld_base *b = NULL;
    FZ_CHECK(aellm_kld_base_compute(&b, fz_kld_task(), &lm, NULL, NULL) == 0);
    FZ_CHECK(aellm_kld_base_save(b, path) == 0);
    aellm_kld_base_free(b);
}

#endif

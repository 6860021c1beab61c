/* Fuzzes the kld task's base-distribution file (aellm_kld_base_load, then
 * aellm_task_run_kld against a fixed task, src/measure/task_kld.c). A file
 * is only scored when it carries the SHA-256 of the task's own windows,
 * which mutation cannot forge: so the input's first byte, when odd, has the
 * harness write the true SHA into the file (a file made for this text and
 * damaged elsewhere), and the rest of the input is the file. */
#include "aellm/task.h"
#include "fuzz_kld.h"
#include "fuzz_lm.h"
#include "fuzz_util.h"

static const uint8_t *true_sha(void)
{
    static uint8_t sha[FZ_KLD_SHA_LEN];
    static int done;
    if (done) return sha;
    const char *path = fz_path("kld-true.bin");
    fz_kld_write_base(path);
    FILE *f = fopen(path, "rb");
    FZ_CHECK(f && fseek(f, FZ_KLD_SHA_AT, SEEK_SET) == 0);
    FZ_CHECK(fread(sha, 1, sizeof(sha), f) == sizeof(sha));
    fclose(f);
    done = 1;
    return sha;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *sha = true_sha();
    fz_in in = {data, size};
    int flags = fz_u8(&in);
    uint8_t *file = malloc(in.n ? in.n : 1);
    FZ_CHECK(file);
    memcpy(file, in.p, in.n);
    if (flags & 1 && in.n >= FZ_KLD_SHA_AT + FZ_KLD_SHA_LEN)
        memcpy(file + FZ_KLD_SHA_AT, sha, FZ_KLD_SHA_LEN);
    const char *path = fz_write("base.bin", file, in.n);
    free(file);
    aellm_kld_base *b = NULL;
    if (aellm_kld_base_load(&b, path)) return 0;
    FZ_CHECK(aellm_kld_base_n_tokens(b) > 0);
    aellm_lm lm = fz_lm();
    aellm_task_result r;
    if (aellm_task_run_kld(fz_kld_task(), &lm, b, NULL, NULL, &r) == 0) aellm_task_result_free(&r);
    aellm_kld_base_free(b);
    return 0;
}

/* Injected faults (issue 18). Allocation failure at each allocation in turn
 * during model load, quantization, training and store writes: every one must
 * give an error with a message, free what it took and leave no output file.
 * A store locked by another process is waited for, then refused clearly.
 *
 * Two kinds of injection. Without ASan this program replaces malloc and its
 * kin (glibc allows it), so that every allocation of the process counts,
 * SQLite's and libc's included, and checks itself that the live allocations
 * come back to where they were. Under ASan (which owns malloc) only the
 * tracking allocator's hook fails, and LeakSanitizer checks the frees. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <execinfo.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "aellm/error.h"
#include "aellm/model.h"
#include "aellm/quantize.h"
#include "aellm/store.h"
#include "aellm/train.h"
#include "core/alloc.h"
#include "core/hash.h"
#include "test_tmpdir.h"

#define MODEL AELLM_SOURCE_DIR "/models/stories260K/stories260K.bin"
#define TOK   AELLM_SOURCE_DIR "/models/stories260K/tok512.bin"
#define TEXT  AELLM_SOURCE_DIR "/tasks/data/stories_calib.txt"

/* ---- the injector ---- */

#ifndef __has_feature
#define __has_feature(x) 0 /* GCC: __SANITIZE_ADDRESS__ instead */
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define WHOLE_PROCESS 0
#else
#define WHOLE_PROCESS 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static _Atomic long countdown, injected, live;

/* libgomp and OpenBLAS end the process on a failed allocation (they have no
 * way to report one), so their allocations are passed over, not failed. */
static int caller_may_fail(const void *caller)
{
    Dl_info info;
    if (!dladdr(caller, &info) || !info.dli_fname) return 1;
    return !strstr(info.dli_fname, "libgomp") && !strstr(info.dli_fname, "blas");
}

static int fail_now_from(const void *caller)
{
    long n = atomic_load(&countdown);
    if (n == 1 && !caller_may_fail(caller)) return 0;
    while (n > 0 && !atomic_compare_exchange_weak(&countdown, &n, n - 1)) {
    }
    if (n != 1) return 0;
    if (getenv("FAULT_TRACE")) {
        void *bt[32];
        int k = backtrace(bt, 32);
        backtrace_symbols_fd(bt, k, 2);
        fputs("----\n", stderr);
    }
    atomic_fetch_add(&injected, 1);
    errno = ENOMEM;
    return 1;
}

static void *counted(void *p)
{
    if (p) atomic_fetch_add(&live, 1);
    return p;
}

#define CALLER __builtin_return_address(0)

void *malloc(size_t n)
{
    return fail_now_from(CALLER) ? NULL : counted(__libc_malloc(n));
}

void *calloc(size_t n, size_t size)
{
    return fail_now_from(CALLER) ? NULL : counted(__libc_calloc(n, size));
}

void *realloc(void *p, size_t n)
{
    if (fail_now_from(CALLER)) return NULL;
    if (!p) return counted(__libc_malloc(n));
    if (n == 0) {
        free(p);
        return NULL;
    }
    return __libc_realloc(p, n);
}

void free(void *p)
{
    if (p) atomic_fetch_sub(&live, 1);
    __libc_free(p);
}

void *aligned_alloc(size_t align, size_t n)
{
    return fail_now_from(CALLER) ? NULL : counted(__libc_memalign(align, n));
}

void *memalign(size_t align, size_t n)
{
    return fail_now_from(CALLER) ? NULL : counted(__libc_memalign(align, n));
}

int posix_memalign(void **out, size_t align, size_t n)
{
    void *p = fail_now_from(CALLER) ? NULL : counted(__libc_memalign(align, n));
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
#endif

static void arm(long n)
{
#if WHOLE_PROCESS
    atomic_store(&countdown, n);
#else
    aellm_mem_fail_at(n);
#endif
}

static long injected_so_far(void)
{
#if WHOLE_PROCESS
    return atomic_load(&injected);
#else
    return aellm_mem_failures_injected();
#endif
}

static long live_now(void)
{
#if WHOLE_PROCESS
    return atomic_load(&live);
#else
    return 0;
#endif
}

/* ---- the sweep ---- */

typedef int (*operation)(void *ctx);

/* Runs op with the n-th allocation failing, n = 1, 2, ... until a run
 * reaches no n-th allocation: each failed run must return an error with a
 * message, leave the live allocations as they were and `output` absent. */
static void sweep(const char *name, operation op, void *ctx, const char *output)
{
    assert_int_equal(op(ctx), 0); /* warm-up: one-time allocations (OpenMP, SQLite) */
    if (output) remove(output);
    long n = getenv("FAULT_FROM") ? atol(getenv("FAULT_FROM")) : 1, absorbed = 0;
    for (;; n++) {
        long before = injected_so_far(), live0 = live_now();
        aellm_error_clear();
        arm(n);
        int rc = op(ctx);
        arm(0);
        if (injected_so_far() == before) { /* the run had fewer than n allocations */
            assert_int_equal(rc, 0);
            break;
        }
        if (rc == 0) { /* the failure was survived (an optional buffer): fine if whole */
            absorbed++;
            if (output) remove(output);
            continue;
        }
        if (!aellm_error_last()[0])
            fail_msg("%s: allocation %ld failed without a message", name, n);
        if (live_now() != live0)
            fail_msg("%s: allocation %ld failed (%s), %ld allocations not freed", name, n,
                     aellm_error_last(), live_now() - live0);
        if (output && access(output, F_OK) == 0)
            fail_msg("%s: allocation %ld failed, %s was written", name, n, output);
    }
    print_message("%s: %ld allocations failed in turn (%s), %ld survived\n", name, n - 1,
                  WHOLE_PROCESS ? "every malloc of the process" : "the tracking allocator",
                  absorbed);
}

/* ---- the operations ---- */

static int load_llama2c(void *ctx)
{
    (void)ctx;
    aellm_model *m = NULL;
    int rc = aellm_model_load(&m, MODEL, TOK);
    aellm_model_free(m);
    return rc;
}

static int load_gguf(void *ctx)
{
    aellm_model *m = NULL;
    int rc = aellm_model_load(&m, ctx, NULL);
    aellm_model_free(m);
    return rc;
}

typedef struct {
    const aellm_model *base;
    const char *out;
    int method;
} quant_job;

static int quantize_and_write(void *ctx)
{
    quant_job *j = ctx;
    aellm_quantize_params p;
    aellm_quantize_params_default(&p);
    p.type = aellm_quant_type_resolve("int4", 32, 0);
    p.method = j->method;
    p.calib_path = TEXT;
    p.calib_tokens = 256, p.calib_ctx = 64, p.n_threads = 1;
    aellm_model *q = NULL;
    aellm_quantize_report rep = {0};
    int rc = aellm_quantize_model(&q, j->base, &p, &rep);
    if (!rc) rc = aellm_model_save_gguf(q, j->out, -1);
    aellm_quantize_report_free(&rep);
    aellm_model_free(q);
    return rc;
}

static int train_two_steps(void *ctx)
{
    const aellm_model *base = ctx;
    aellm_train_params p;
    aellm_train_params_default(&p);
    p.method = "lora";
    p.steps = 2, p.batch = 2, p.seq_len = 32, p.eval_max = 2;
    aellm_model *out = NULL;
    aellm_train_result res;
    int rc = aellm_train(&out, base, TEXT, &p, &res);
    aellm_model_free(out);
    return rc;
}

static int store_put(void *ctx)
{
    static int seq;
    aellm_store *s = NULL;
    int rc = aellm_store_open(&s, ctx);
    char hash[AELLM_HASH_HEX], json[64];
    snprintf(json, sizeof(json), "{\"config\":%d}", seq++);
    aellm_hash_str(json, hash);
    aellm_eval_record r = {.model_hash = hash,
                           .model_json = json,
                           .task_hash = hash,
                           .task_json = json,
                           .hw_hash = hash,
                           .hw_json = json,
                           .config_hash = hash,
                           .config_json = json,
                           .engine_version = "test",
                           .provenance = "measured",
                           .accuracy_metric = "ppl",
                           .accuracy = 3.9,
                           .latency_s = 0.5,
                           .latency_reps = 3,
                           .peak_mem_bytes = 1e6,
                           .energy_j = 1,
                           .energy_source = "model",
                           .record_json = json};
    if (!rc) rc = aellm_store_put(s, &r, NULL);
    aellm_store_close(s);
    return rc;
}

/* ---- the tests ---- */

static void model_load_fails_cleanly(void **state)
{
    (void)state;
    if (getenv("FAULT_TRACE")) return;
    sweep("llama2.c load", load_llama2c, NULL, NULL);
    aellm_model *m;
    assert_int_equal(aellm_model_load(&m, MODEL, TOK), 0);
    const char *gguf = tmp_path("m.gguf");
    assert_int_equal(aellm_model_save_gguf(m, gguf, -1), 0);
    aellm_model_free(m);
    sweep("GGUF load", load_gguf, (void *)gguf, NULL);
}

static void quantization_fails_cleanly(void **state)
{
    (void)state;
    aellm_model *m;
    if (getenv("FAULT_TRACE")) return;
    assert_int_equal(aellm_model_load(&m, MODEL, TOK), 0);
    quant_job rtn = {m, tmp_path("rtn.gguf"), AELLM_QUANT_RTN};
    sweep("quantize RTN + write", quantize_and_write, &rtn, rtn.out);
    quant_job gptq = {m, tmp_path("gptq.gguf"), AELLM_QUANT_GPTQ};
    sweep("quantize GPTQ + write", quantize_and_write, &gptq, gptq.out);
    aellm_model_free(m);
}

static void training_fails_cleanly(void **state)
{
    (void)state;
    aellm_model *m;
    if (getenv("FAULT_TRACE")) return;
    assert_int_equal(aellm_model_load(&m, MODEL, TOK), 0);
    sweep("LoRA training", train_two_steps, m, NULL);
    aellm_model_free(m);
}

static void store_writes_fail_cleanly(void **state)
{
    (void)state;
    const char *db = tmp_path("faults.db");
    /* OpenSSL builds its error state at its first error, once: made here */
    EVP_MD_free(EVP_MD_fetch(NULL, "no-such-digest", NULL));
    ERR_clear_error();
    sweep("store open + put", store_put, (void *)db, NULL);
    /* whatever failed where, the file is a whole database */
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(h);
}

/* Another process holds the write lock past the wait: the put says so. */
static void a_locked_store_waits_then_says_so(void **state)
{
    (void)state;
    const char *db = tmp_path("locked.db");
    assert_int_equal(store_put((void *)db), 0);
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sqlite3 *h;
        if (sqlite3_open(db, &h) || sqlite3_exec(h, "BEGIN EXCLUSIVE", NULL, NULL, NULL)) _exit(1);
        if (write(ready[1], "x", 1) != 1) _exit(1);
        sleep(3); /* longer than the wait below */
        sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(h);
        _exit(0);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    setenv("AELLM_STORE_BUSY_MS", "500", 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = store_put((void *)db);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    unsetenv("AELLM_STORE_BUSY_MS");
    double waited = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    assert_int_equal(rc, AELLM_EIO);
    print_message("locked store: %.2f s: %s\n", waited, aellm_error_last());
    assert_non_null(strstr(aellm_error_last(), "locked.db"));
    assert_non_null(strstr(aellm_error_last(), "locked by another process (waited 0.5 s)"));
    assert_true(waited >= 0.45);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(store_put((void *)db), 0); /* and goes on once it is free */
    close(ready[0]), close(ready[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(model_load_fails_cleanly),
        cmocka_unit_test(quantization_fails_cleanly),
        cmocka_unit_test(training_fails_cleanly),
        cmocka_unit_test(store_writes_fail_cleanly),
        cmocka_unit_test(a_locked_store_waits_then_says_so),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}

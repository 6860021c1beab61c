#include "core/alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADER 64
#define MAGIC  0xae11a110u

typedef struct {
    size_t bytes;
    uint32_t magic;
    int kind;
} header;

static _Atomic size_t cur[AELLM_MEM_KINDS], peak[AELLM_MEM_KINDS];
static _Atomic size_t cur_total, peak_total, n_live;

static void raise_to(_Atomic size_t *mark, size_t value)
{
    size_t old = atomic_load(mark);
    while (value > old && !atomic_compare_exchange_weak(mark, &old, value)) {
    }
}

static void add(aellm_mem_kind kind, size_t bytes)
{
    raise_to(&peak[kind], atomic_fetch_add(&cur[kind], bytes) + bytes);
    raise_to(&peak_total, atomic_fetch_add(&cur_total, bytes) + bytes);
}

static void sub(aellm_mem_kind kind, size_t bytes)
{
    atomic_fetch_sub(&cur[kind], bytes);
    atomic_fetch_sub(&cur_total, bytes);
}

static _Atomic long fail_countdown, failures_injected;

void aellm_mem_fail_at(long n)
{
    atomic_store(&fail_countdown, n > 0 ? n : 0);
}

long aellm_mem_failures_injected(void)
{
    return atomic_load(&failures_injected);
}

/* The armed countdown reaching 1 on this call: the allocation fails. */
static int injected_failure(void)
{
    long n = atomic_load(&fail_countdown);
    while (n > 0 && !atomic_compare_exchange_weak(&fail_countdown, &n, n - 1)) {
    }
    if (n != 1) return 0;
    atomic_fetch_add(&failures_injected, 1);
    return 1;
}

void *aellm_mem_alloc(size_t bytes, aellm_mem_kind kind)
{
    if ((unsigned)kind >= AELLM_MEM_KINDS || bytes > SIZE_MAX - HEADER) return NULL;
    if (injected_failure()) return NULL;
    void *raw = NULL;
    if (posix_memalign(&raw, 64, HEADER + bytes) != 0) return NULL;
    memset(raw, 0, HEADER + bytes);
    header *h = raw;
    h->bytes = bytes;
    h->magic = MAGIC;
    h->kind = kind;
    add(kind, bytes);
    atomic_fetch_add(&n_live, 1);
    return (char *)raw + HEADER;
}

static header *header_of(const void *p)
{
    header *h = (header *)((char *)p - HEADER);
    if (h->magic != MAGIC) abort(); /* not ours, or freed twice: memory is corrupt */
    return h;
}

size_t aellm_mem_size(const void *p)
{
    return p ? header_of(p)->bytes : 0;
}

void aellm_mem_free(void *p)
{
    if (!p) return;
    header *h = header_of(p);
    sub(h->kind, h->bytes);
    atomic_fetch_sub(&n_live, 1);
    h->magic = 0;
    free(h);
}

void aellm_mem_account(aellm_mem_kind kind, long long delta)
{
    if ((unsigned)kind >= AELLM_MEM_KINDS) return;
    if (delta >= 0)
        add(kind, (size_t)delta);
    else
        sub(kind, (size_t)-delta);
}

const char *aellm_mem_kind_name(aellm_mem_kind k)
{
    static const char *names[AELLM_MEM_KINDS] = {"weights", "kv",        "activations",
                                                 "scratch", "gradients", "optimizer"};
    return (unsigned)k < AELLM_MEM_KINDS ? names[k] : "?";
}

void aellm_mem_stats_get(aellm_mem_stats *out)
{
    for (int k = 0; k < AELLM_MEM_KINDS; k++) {
        out->current[k] = atomic_load(&cur[k]);
        out->peak[k] = atomic_load(&peak[k]);
    }
    out->current_total = atomic_load(&cur_total);
    out->peak_total = atomic_load(&peak_total);
    out->n_live = atomic_load(&n_live);
}

void aellm_mem_reset_peak(void)
{
    for (int k = 0; k < AELLM_MEM_KINDS; k++) atomic_store(&peak[k], atomic_load(&cur[k]));
    atomic_store(&peak_total, atomic_load(&cur_total));
    FILE *f = fopen("/proc/self/clear_refs", "w"); /* "5" resets VmHWM (Linux >= 4.0) */
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

/* The kernel computes VmHWM and VmRSS together for one read of the file. */
void aellm_mem_process_marks(size_t *peak, size_t *current)
{
    *peak = *current = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[256];
    unsigned long long kib;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "VmHWM: %llu", &kib) == 1) *peak = (size_t)kib * 1024;
        if (sscanf(line, "VmRSS: %llu", &kib) == 1) *current = (size_t)kib * 1024;
    }
    fclose(f);
}

size_t aellm_mem_process_peak(void)
{
    size_t peak, current;
    aellm_mem_process_marks(&peak, &current);
    return peak;
}

/* Tasks against a mock language model whose log-probabilities come from a
 * small table, so every metric is worked out by hand here: perplexity, the
 * four multiple-choice formats, continuation (JSONL, OpenAI and last-word
 * text), GSM8K exact match and the needle. Also the spec's errors (file and
 * line named), seeds and the canonical form. Then, on stories260K, the engine
 * model: prefix reuse against fresh engines, the perplexity task against
 * aellm_perplexity, and the last-word task (exit 77 without the data). */
#include <ctype.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aellm/aellm.h"
#include "aellm/task.h"
#include "test_tmpdir.h"
#include "core/timer.h"

#define assert_near(a, b, tol)                                                                     \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (tol))) fail_msg("%s = %.15g, expected %.15g", #a, a_, b_);         \
    } while (0)

/* ---- the mock: bytes are tokens, log p from a table ---- */
#define M_BOS 256
#define M_EOS 257

/* log p(t | prev): 'a' and ' ' are the likeliest (-0.5, the argmax), then
 * e/i/o/u and 'C' (-1), other letters (-2), anything else (-3); after an 'x'
 * every token costs 1 more (so a context can change a continuation's score). */
static double mock_lp(int prev, int t)
{
    double lp = -3.0;
    if (t == 'a' || t == ' ')
        lp = -0.5;
    else if (t < 256 && (strchr("eiou", t) || t == 'C'))
        lp = -1.0;
    else if (t < 256 && isalpha(t))
        lp = -2.0;
    return prev == 'x' ? lp - 1.0 : lp;
}

static int mock_greedy(int t)
{
    return t == 'a' || t == ' ';
}

typedef struct {
    int n_ctx;
    /* the rest of the reply given the prompt so far (generation) */
    const char *(*reply)(const char *text);
    char scored[64][32]; /* the first bytes of each context scored (choice order) */
    int n_scored;
    char last_prompt[4096];
} mock;

static int mock_encode(void *user, const char *text, size_t len, int bos, int32_t **ids, size_t *n)
{
    (void)user;
    *ids = malloc((len + 1) * sizeof(int32_t));
    *n = 0;
    if (bos) (*ids)[(*n)++] = M_BOS;
    for (size_t i = 0; i < len; i++) (*ids)[(*n)++] = (unsigned char)text[i];
    return 0;
}

static int mock_decode(void *user, const int32_t *ids, size_t n, char **text)
{
    (void)user;
    char *s = malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 256) s[k++] = (char)ids[i];
    s[k] = '\0';
    *text = s;
    return 0;
}

static int mock_score(void *user, const int32_t *tok, int n, int n_cond, double *logprob,
                      int *greedy)
{
    mock *m = user;
    if (n_cond < 1 || n_cond >= n || n > m->n_ctx) return AELLM_EINVAL;
    if (m->n_scored < 64) { /* remember the context (without BOS) */
        int k = 0;
        for (int i = 1; i < n_cond && k < 31; i++) m->scored[m->n_scored][k++] = (char)tok[i];
        m->scored[m->n_scored++][k] = '\0';
    }
    *logprob = 0.0;
    int all = 1;
    for (int i = n_cond; i < n; i++) {
        *logprob += mock_lp(tok[i - 1], tok[i]);
        all &= mock_greedy(tok[i]);
    }
    if (greedy) *greedy = all;
    return 0;
}

static int mock_logprobs(void *user, const int32_t *tok, int n, int n_cond, double *out)
{
    mock *m = user;
    if (n_cond < 1 || n_cond >= n || n > m->n_ctx) return AELLM_EINVAL;
    for (int i = n_cond; i < n; i++) out[i - n_cond] = mock_lp(tok[i - 1], tok[i]);
    return 0;
}

static int mock_generate(void *user, const int32_t *prompt, int n, int max_new, int32_t *out,
                         int *n_out)
{
    mock *m = user;
    char *text;
    if (n > m->n_ctx) return AELLM_EINVAL;
    mock_decode(user, prompt, (size_t)n, &text);
    snprintf(m->last_prompt, sizeof(m->last_prompt), "%s", text);
    const char *rest = m->reply(text);
    *n_out = 0;
    while (*n_out < max_new && rest[*n_out]) {
        out[*n_out] = (unsigned char)rest[*n_out];
        (*n_out)++;
    }
    free(text);
    return 0;
}

static aellm_lm mock_lm(mock *m, int n_ctx, int with_logprobs)
{
    memset(m, 0, sizeof(*m));
    m->n_ctx = n_ctx;
    return (aellm_lm){.user = m,
                      .n_ctx = n_ctx,
                      .encode = mock_encode,
                      .decode = mock_decode,
                      .score = mock_score,
                      .generate = mock_generate,
                      .logprobs = with_logprobs ? mock_logprobs : NULL};
}

/* ---- helpers ---- */
static const char *write_file(const char *name, const char *text)
{
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* A spec on a data file in the temp folder (relative: resolved from it). */
static aellm_task *load_spec(const char *spec)
{
    aellm_task *t = NULL;
    if (aellm_task_parse(&t, spec, tmp_dir, NULL)) fail_msg("%s", aellm_error_last());
    return t;
}

static aellm_task_result run(const aellm_task *t, aellm_lm *lm)
{
    aellm_task_result r;
    if (aellm_task_run(t, lm, NULL, NULL, &r)) fail_msg("%s", aellm_error_last());
    return r;
}

static const aellm_metric *metric(const aellm_task_result *r, const char *name)
{
    for (int i = 0; i < r->n_metrics; i++)
        if (!strcmp(r->metrics[i].name, name)) return &r->metrics[i];
    fail_msg("no metric %s", name);
    return NULL;
}

static void expect_acc(const aellm_task_result *r, const char *name, double k, double n)
{
    const aellm_metric *m = metric(r, name);
    double p = k / n;
    assert_near(m->value, p, 1e-12);
    assert_near(m->stderr_, sqrt(p * (1 - p) / n), 1e-12);
}

/* ---- perplexity ---- */
static void ppl_by_hand(const char *text, int n_ctx, double *ppl, double *se)
{
    /* tokens: BOS then bytes; window c holds tokens [c n_ctx, (c+1) n_ctx)
     * with BOS first; the scored tokens are positions n_ctx/2+1 .. n_ctx-1 */
    int n = (int)strlen(text) + 1, first = n_ctx / 2;
    double sum = 0, sum2 = 0, count = 0;
    for (int c = 0; c < n / n_ctx; c++)
        for (int j = first + 1; j < n_ctx; j++) {
            int tok = (unsigned char)text[c * n_ctx + j - 1];
            int prev = j - 1 == 0 ? M_BOS : (unsigned char)text[c * n_ctx + j - 2];
            double nll = -mock_lp(prev, tok);
            sum += nll, sum2 += nll * nll, count++;
        }
    double mean = sum / count, var = sum2 / count - mean * mean;
    *ppl = exp(mean);
    *se = *ppl * sqrt(var / (count - 1));
}

static void test_perplexity(void **state)
{
    (void)state;
    const char *text = "the fox sat on a mat and ate a bun; extra text xx a oxen axe! zzz end...";
    write_file("ppl.txt", text);
    for (int with = 0; with < 2; with++) { /* with and without lm->logprobs */
        mock m;
        aellm_lm lm = mock_lm(&m, 64, with);
        aellm_task *t =
            load_spec("{\"kind\": \"perplexity\", \"data\": \"ppl.txt\", \"n_ctx\": 16}");
        aellm_task_result r = run(t, &lm);
        double ppl, se;
        ppl_by_hand(text, 16, &ppl, &se);
        assert_string_equal(r.metrics[0].name, "ppl");
        assert_false(r.higher_is_better);
        assert_near(r.metrics[0].value, ppl, 1e-12 * ppl);
        assert_near(r.metrics[0].stderr_, se, 1e-12 * ppl);
        assert_near(metric(&r, "nll")->value, log(ppl), 1e-12);
        assert_int_equal(r.n_items, (int64_t)(strlen(text) + 1) / 16 * 7);
        aellm_task_result_free(&r);
        aellm_task_free(t);
    }
    /* max_bytes and max_chunks cut it; a window too big fails with a message */
    mock m;
    aellm_lm lm = mock_lm(&m, 64, 1);
    aellm_task *t = load_spec("{\"kind\": \"perplexity\", \"data\": \"ppl.txt\", \"n_ctx\": 16, "
                              "\"max_bytes\": 40, \"max_chunks\": 1}");
    aellm_task_result r = run(t, &lm);
    assert_int_equal(r.n_items, 7);
    aellm_task_result_free(&r);
    aellm_task_free(t);
    t = load_spec("{\"kind\": \"perplexity\", \"data\": \"ppl.txt\", \"n_ctx\": 128}");
    assert_int_not_equal(aellm_task_run(t, &lm, NULL, NULL, &r), 0);
    assert_non_null(strstr(aellm_error_last(), "n_ctx"));
    aellm_task_free(t);
}

/* ---- multiple choice ---- */
static aellm_task_result run_choice(const char *file, const char *format)
{
    char spec[256];
    snprintf(spec, sizeof(spec), "{\"kind\": \"choice\", \"data\": \"%s\", \"format\": \"%s\"}",
             file, format);
    mock m;
    aellm_lm lm = mock_lm(&m, 256, 1);
    aellm_task *t = load_spec(spec);
    aellm_task_result r = run(t, &lm);
    aellm_task_free(t);
    return r;
}

static void test_choice_mc(void **state)
{
    (void)state;
    /* continuations " aaaaz" -4.5 (-0.75/byte), " z" -2.5 (-1.25/byte):
     * acc takes " z", acc_norm " aaaaz". Item 1 (gold 0): acc no, norm yes.
     * Item 2: " zz" -4.5, " a" -1: both take 1 = gold. Item 3 (gold 2):
     * " q" -2.5, " aaaaz" -4.5, " zzzz" -8.5: acc 0, norm 1, both wrong. */
    write_file("mc.jsonl", "{\"query\": \"Q1\", \"choices\": [\"aaaaz\", \"z\"], \"gold\": 0}\n"
                           "\n"
                           "{\"query\": \"Q2\", \"choices\": [\"zz\", \"a\"], \"gold\": 1}\n"
                           "{\"query\": \"Q3\", \"choices\": [\"q\", \"aaaaz\", \"zzzz\"], "
                           "\"gold\": 2}\n");
    for (int auto_fmt = 0; auto_fmt < 2; auto_fmt++) {
        aellm_task_result r = run_choice("mc.jsonl", auto_fmt ? "auto" : "mc");
        assert_string_equal(r.metrics[0].name, "acc");
        assert_true(r.higher_is_better);
        expect_acc(&r, "acc", 1, 3);
        expect_acc(&r, "acc_norm", 2, 3);
        assert_int_equal(r.n_items, 3);
        aellm_task_result_free(&r);
    }
    /* acc_norm first on request */
    mock m;
    aellm_lm lm = mock_lm(&m, 256, 1);
    aellm_task *t = load_spec(
        "{\"kind\": \"choice\", \"data\": \"mc.jsonl\", \"metric\": \"acc_norm\", \"limit\": 5}");
    aellm_task_result r = run(t, &lm);
    assert_string_equal(r.metrics[0].name, "acc_norm");
    aellm_task_result_free(&r);
    aellm_task_free(t);
}

static void test_choice_hellaswag(void **state)
{
    (void)state;
    /* item 1 (gold 0): -4.5 -2.5 -2.5 -8.5; per byte -0.75 -1.25 -1.25 -1.7:
     * acc takes 1 (first of the tie), norm 0. Item 2 (gold 2): " zz" -4.5,
     * " zzz" -6.5, " a" -1, " e" -1.5: both take 2. */
    write_file("hs.txt", "Roofing: A man is on a roof. he\n0\naaaaz\nz\nq\nzzzz\n"
                         "Cooking: she\n2\nzz\nzzz\na\ne\n");
    aellm_task_result r = run_choice("hs.txt", "auto");
    expect_acc(&r, "acc", 1, 2);
    expect_acc(&r, "acc_norm", 2, 2);
    aellm_task_result_free(&r);
}

static void test_choice_winogrande(void **state)
{
    (void)state;
    /* the same " went." after "... x" (first token costs 1 more) and after
     * "... y": the y option wins. Item 1 gold 1 right, item 2 gold 0 wrong. */
    write_file("wg.jsonl", "{\"context_options\": [\"The x\", \"The y\"], \"continuation\": "
                           "\"went.\", \"gold\": 1}\n"
                           "{\"context_options\": [\"It is x\", \"It is y\"], \"continuation\": "
                           "\"went.\", \"gold\": 0}\n");
    aellm_task_result r = run_choice("wg.jsonl", "auto");
    expect_acc(&r, "acc", 1, 2);
    expect_acc(&r, "acc_norm", 1, 2);
    aellm_task_result_free(&r);
}

static void test_choice_mmlu(void **state)
{
    (void)state;
    /* " A" " B" " D" score -2.5, " C" -1.5: the model always answers C */
    write_file("mmlu.json",
               "{\"subject\": \"s\", \"input\": \"Q?\\nA. 1\\nAnswer:\", \"output\": "
               "\"C\"}\n"
               "{\"subject\": \"s\", \"input\": \"R?\\nAnswer:\", \"output\": \"A\"}\n");
    aellm_task_result r = run_choice("mmlu.json", "auto");
    expect_acc(&r, "acc", 1, 2);
    expect_acc(&r, "acc_norm", 1, 2);
    aellm_task_result_free(&r);
}

/* ---- continuation ---- */
static void test_continuation(void **state)
{
    (void)state;
    /* " aaa" greedy (-2, 4 tokens); "a a" after "one two " greedy (-1.5, 3);
     * " aab" not greedy (-3.5, 4): acc 2/3, ppl_cont exp(7/11) */
    write_file("lam.jsonl", "{\"context\": \"one two\", \"continuation\": \"aaa\"}\n"
                            "{\"context\": \"one two \", \"continuation\": \"a a\"}\n"
                            "{\"context\": \"qqq\", \"continuation\": \" aab\"}\n");
    write_file("lam_openai.jsonl", "{\"text\": \"one two aaa\"}\n{\"text\": \"one two a a\"}\n"
                                   "{\"text\": \"qqq aab\"}\n");
    const char *specs[] = {"{\"kind\": \"continuation\", \"data\": \"lam.jsonl\"}",
                           "{\"kind\": \"continuation\", \"data\": \"lam_openai.jsonl\"}"};
    for (int i = 0; i < 2; i++) {
        mock m;
        aellm_lm lm = mock_lm(&m, 256, 1);
        aellm_task *t = load_spec(specs[i]);
        aellm_task_result r = run(t, &lm);
        expect_acc(&r, "acc", 2, 3);
        /* the OpenAI form puts " a" after "one two a": -1.0 over 2 tokens */
        double ppl = i == 0 ? exp(7.0 / 11.0) : exp((2.0 + 1.0 + 3.5) / 10.0);
        assert_near(metric(&r, "ppl_cont")->value, ppl, 1e-12);
        aellm_task_result_free(&r);
        aellm_task_free(t);
    }
}

static void test_last_word(void **state)
{
    (void)state;
    /* items: " mat" (not greedy), " away" (no), " aaa" (greedy); blank lines
     * and <|endoftext|> both end a paragraph, trailing punctuation dropped */
    write_file("stories.txt", "The cat sat on a mat.\n\nA dog ran far away!\n<|endoftext|>"
                              "Stories\nend aaa.\"\n \n\nNope\n");
    mock m;
    aellm_lm lm = mock_lm(&m, 256, 1);
    aellm_task *t = load_spec("{\"kind\": \"continuation\", \"data\": \"stories.txt\"}");
    assert_int_equal(aellm_task_n_items(t), 3); /* "Nope" has no context */
    aellm_task_result r = run(t, &lm);
    expect_acc(&r, "acc", 1, 3);
    /* " mat" -5 (4 tokens), " away" -5.5 (5), " aaa" -2 (4) */
    assert_near(metric(&r, "ppl_cont")->value, exp((5.0 + 5.5 + 2.0) / 13.0), 1e-12);
    aellm_task_result_free(&r);
    /* a context of 20 tokens: "The cat sat on a mat" (21 with BOS) is left out */
    lm = mock_lm(&m, 20, 1);
    r = run(t, &lm);
    expect_acc(&r, "acc", 1, 2);
    aellm_task_result_free(&r);
    aellm_task_free(t);
}

/* ---- exact match ---- */
static const char *gsm_reply(const char *text)
{
    static const char *const q[] = {"q one", "q two", "q three"};
    static const char *const reply[] = {" 5 + 13 = 18.\n#### 18\n\nQuestion: 99",
                                        " The answer is 1,234.", " It is 7\nQuestion: 9"};
    const char *ans = NULL, *p = text;
    while ((p = strstr(p, "\nAnswer:"))) ans = p += 8; /* the last one */
    const char *qs = strstr(text, "Question: ");
    while (qs && strstr(qs + 1, "Question: ") && strstr(qs + 1, "Question: ") < ans)
        qs = strstr(qs + 1, "Question: ");
    for (int i = 0; i < 3; i++)
        if (qs && !strncmp(qs + 10, q[i], strlen(q[i])) && qs[10 + strlen(q[i])] == '\n') {
            size_t done = strlen(ans);
            assert_memory_equal(reply[i], ans, done);
            return reply[i] + done;
        }
    fail_msg("no question in the prompt");
    return "";
}

static void test_exact_match(void **state)
{
    (void)state;
    /* 18 after "####": right; 1,234 the last number: right; 7 (the 9 after
     * "Question:" is cut): wrong */
    write_file("gsm.jsonl", "{\"question\": \"q one\", \"answer\": \"1+1=2\\n#### 18\"}\n"
                            "{\"question\": \"q two\", \"answer\": \"so\\n#### 1,234\"}\n"
                            "{\"question\": \"q three\", \"answer\": \"#### 9\"}\n");
    for (int shots = 0; shots < 2; shots++) {
        char spec[128];
        snprintf(spec, sizeof(spec),
                 "{\"kind\": \"exact_match\", \"data\": \"gsm.jsonl\", \"n_shot\": %d}", shots);
        mock m;
        aellm_lm lm = mock_lm(&m, 4096, 1);
        m.reply = gsm_reply;
        aellm_task *t = load_spec(spec);
        aellm_task_result r = run(t, &lm);
        assert_string_equal(r.metrics[0].name, "exact_match");
        expect_acc(&r, "exact_match", 2, 3);
        /* the last prompt: (one example) then the third question */
        assert_non_null(strstr(m.last_prompt, "Question: q three\nAnswer:"));
        if (shots) assert_non_null(strstr(m.last_prompt, "\nAnswer: "));
        if (shots) assert_non_null(strstr(m.last_prompt, "\n\nQuestion: q three"));
        aellm_task_result_free(&r);
        aellm_task_free(t);
    }
}

/* ---- needle ---- */
/* Answers right only when the needle lies in the second half of the text. */
static const char *needle_reply(const char *text)
{
    static char reply[32];
    const char *needle = strstr(text, "The secret code is "), *q = strstr(text, "What is the");
    const char *last = needle, *p = needle;
    assert_non_null(q);
    while ((p = strstr(p + 1, "The secret code is"))) last = p;
    assert_true(needle < q);
    int code = atoi(needle + 19);
    if (needle - text >= (q - text) / 2)
        snprintf(reply, sizeof(reply), " %d.", code);
    else
        snprintf(reply, sizeof(reply), " 0000.");
    size_t done = strlen(last + 18);
    assert_memory_equal(reply, last + 18, done);
    return reply + done;
}

static void test_needle(void **state)
{
    (void)state;
    mock m;
    aellm_lm lm = mock_lm(&m, 4096, 1);
    m.reply = needle_reply;
    aellm_task *t = load_spec("{\"kind\": \"needle\", \"lengths\": [40, 80], \"depths\": [0, 1], "
                              "\"trials\": 3, \"seed\": 5}");
    assert_int_equal(aellm_task_n_items(t), 12);
    aellm_task_result r = run(t, &lm);
    assert_int_equal(r.n_metrics, 5);
    expect_acc(&r, "acc", 6, 12);
    expect_acc(&r, "acc@len=40,depth=0.00", 0, 3);
    expect_acc(&r, "acc@len=40,depth=1.00", 3, 3);
    expect_acc(&r, "acc@len=80,depth=0.00", 0, 3);
    expect_acc(&r, "acc@len=80,depth=1.00", 3, 3);
    aellm_task_result_free(&r);
    aellm_task_free(t);
    /* lengths beyond the context are clipped, a clipped duplicate dropped */
    lm = mock_lm(&m, 128, 1);
    m.reply = needle_reply;
    t = load_spec("{\"kind\": \"needle\", \"lengths\": [40, 100000, 200000], \"depths\": [0, 1]}");
    r = run(t, &lm);
    assert_int_equal(r.n_metrics, 5);
    assert_string_equal(r.metrics[1].name, "acc@len=40,depth=0.00");
    assert_int_equal(strncmp(r.metrics[3].name, "acc@len=", 8), 0);
    assert_true(atoi(r.metrics[3].name + 8) < 128);
    expect_acc(&r, "acc", 4, 8);
    aellm_task_result_free(&r);
    aellm_task_free(t);
}

/* ---- spec errors, seeds, the canonical form ---- */
static void expect_error(const char *spec, const char *words1, const char *words2)
{
    aellm_task *t = NULL;
    assert_true(aellm_task_parse(&t, spec, tmp_dir, NULL) < 0);
    assert_null(t);
    const char *msg = aellm_error_last();
    if (!strstr(msg, words1) || (words2 && !strstr(msg, words2)))
        fail_msg("message \"%s\" lacks \"%s\" / \"%s\"", msg, words1, words2 ? words2 : "");
    assert_null(strchr(msg, '\n'));
}

static void test_errors(void **state)
{
    (void)state;
    write_file("bad1.jsonl", "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": 0}\n"
                             "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": 0}\n"
                             "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"] \"gold\": 0}\n");
    expect_error("{\"kind\": \"choice\", \"data\": \"bad1.jsonl\"}", "bad1.jsonl:3", "malformed");
    write_file("bad2.jsonl", "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": 0}\n"
                             "{\"query\": \"Q\", \"choice\": [\"a\", \"b\"], \"gold\": 0}\n");
    expect_error("{\"kind\": \"choice\", \"data\": \"bad2.jsonl\"}", "bad2.jsonl:2",
                 "missing key \"choices\"");
    write_file("bad3.jsonl", "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": 5}\n");
    expect_error("{\"kind\": \"choice\", \"data\": \"bad3.jsonl\"}", "bad3.jsonl:1", "gold 5");
    write_file("bad4.txt", "ctx\n1\na\nb\nc\nd\nctx\n7\na\nb\nc\nd\n");
    expect_error("{\"kind\": \"choice\", \"data\": \"bad4.txt\"}", "bad4.txt:8", "gold label");
    write_file("bad5.jsonl", "{\"question\": \"q\", \"answer\": \"no number\"}\n");
    expect_error("{\"kind\": \"exact_match\", \"data\": \"bad5.jsonl\"}", "bad5.jsonl:1", "####");
    expect_error("{\"kind\": \"bogus\", \"data\": \"x\"}", "task spec", "\"bogus\"");
    expect_error("{\"kind\": \"choice\", \"data\": \"mc.jsonl\", \"limt\": 3}", "unknown key",
                 "\"limt\"");
    expect_error("{\"kind\": \"perplexity\", \"data\": \"ppl.txt\", \"limit\": 3}", "\"limit\"",
                 "perplexity");
    expect_error("{\"kind\": \"choice\", \"data\": \"absent.jsonl\"}", "absent.jsonl", NULL);
    expect_error("{\"kind\": \"choice\", \"data\": \"mc.jsonl\", \"limit\": -1}", "\"limit\"",
                 NULL);
    expect_error("{\"kind\": \"choice\", \"data\": \"mc.jsonl\", \"format\": \"csv\"}", "csv",
                 NULL);
    expect_error("{\"kind\": \"choice\", \"data\": \"${data}/x.jsonl\"}", "${data}", NULL);
    expect_error("{\"kind\": \"needle\", \"depths\": [0.5, 2]}", "depths", NULL);
    /* a spec file: its name in the message */
    const char *spec = write_file("typo.json", "{\"kind\": \"choice\", \"data\": \"mc.jsonl\", "
                                               "\"seeed\": 1}");
    aellm_task *t = NULL;
    assert_true(aellm_task_load(&t, spec, NULL) < 0);
    assert_non_null(strstr(aellm_error_last(), "typo.json"));
    assert_non_null(strstr(aellm_error_last(), "seeed"));
    spec = write_file("kind.json", "{\"kind\": \"riddle\", \"data\": \"mc.jsonl\"}");
    assert_true(aellm_task_load(&t, spec, NULL) < 0);
    assert_non_null(strstr(aellm_error_last(), "kind.json"));
    assert_non_null(strstr(aellm_error_last(), "riddle"));
}

/* A task file with a 100 MB line is refused with the line's length and the
 * limit, found by streaming: no buffer of its size (issue 18). */
static void test_long_line(void **state)
{
    (void)state;
    const char *path = write_file("long.jsonl", "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], "
                                                "\"gold\": 0}\n{\"query\": \"");
    FILE *f = fopen(path, "ab");
    assert_non_null(f);
    static char block[1 << 20];
    memset(block, 'x', sizeof(block));
    for (int i = 0; i < 100; i++)
        assert_int_equal(fwrite(block, 1, sizeof(block), f), sizeof(block));
    fputs("\", \"choices\": [\"a\", \"b\"], \"gold\": 0}\n", f);
    fclose(f);
    expect_error("{\"kind\": \"choice\", \"data\": \"long.jsonl\"}", "long.jsonl:2",
                 "line of 104857647 bytes is over the limit of 1048576 bytes");
    remove(path);
}

/* The queries the mock scored, in order, one per item (first choice). */
static void scored_items(const char *spec, char *out, size_t cap)
{
    mock m;
    aellm_lm lm = mock_lm(&m, 256, 1);
    aellm_task *t = load_spec(spec);
    aellm_task_result r = run(t, &lm);
    out[0] = '\0';
    for (int i = 0; i < m.n_scored; i += 2) {
        strncat(out, m.scored[i], cap - strlen(out) - 2);
        strncat(out, ",", cap - strlen(out) - 1);
    }
    aellm_task_result_free(&r);
    aellm_task_free(t);
}

static void test_seed(void **state)
{
    (void)state;
    char text[2048] = "";
    for (int i = 0; i < 20; i++)
        snprintf(text + strlen(text), sizeof(text) - strlen(text),
                 "{\"query\": \"Q%02d\", \"choices\": [\"a\", \"z\"], \"gold\": 0}\n", i);
    write_file("ten.jsonl", text);
    char a[512], b[512], c[512], all[512];
    scored_items("{\"kind\": \"choice\", \"data\": \"ten.jsonl\", \"limit\": 4, \"seed\": 7}", a,
                 sizeof(a));
    scored_items("{\"kind\": \"choice\", \"data\": \"ten.jsonl\", \"limit\": 4, \"seed\": 7}", b,
                 sizeof(b));
    scored_items("{\"kind\": \"choice\", \"data\": \"ten.jsonl\", \"limit\": 4, \"seed\": 8}", c,
                 sizeof(c));
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), 4 * 4);
    for (int i = 4; i < 16; i += 4) /* file order */
        assert_true(strncmp(a + i - 4, a + i, 3) < 0);
    scored_items("{\"kind\": \"choice\", \"data\": \"ten.jsonl\", \"seed\": 3}", all, sizeof(all));
    scored_items("{\"kind\": \"choice\", \"data\": \"ten.jsonl\", \"limit\": 20, \"seed\": 9}", b,
                 sizeof(b));
    assert_string_equal(all, b);
    assert_int_equal(strncmp(all, "Q00,Q01,Q02", 11), 0);
}

static void test_canonical(void **state)
{
    (void)state;
    const char *body = "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": 1}\n";
    write_file("one.jsonl", body);
    write_file("copy.jsonl", body);
    aellm_task *a = load_spec("{\"name\": \"x\", \"kind\": \"choice\", \"data\": \"one.jsonl\"}");
    aellm_task *b =
        load_spec("{\"kind\": \"choice\", \"data\": \"copy.jsonl\", \"format\": \"mc\", "
                  "\"limit\": 9, \"seed\": 4, \"delimiter\": \" \"}");
    aellm_task *c = load_spec("{\"kind\": \"choice\", \"data\": \"copy.jsonl\", \"delimiter\": "
                              "\"\\nAnswer: \"}");
    char *ja = aellm_task_canonical_json(a), *jb = aellm_task_canonical_json(b);
    char *jc = aellm_task_canonical_json(c);
    assert_string_equal(ja, jb);
    assert_string_not_equal(ja, jc);
    assert_null(strstr(ja, "one.jsonl"));
    assert_non_null(strstr(ja, "\"sha256\":\""));
    assert_non_null(strstr(ja, "\"format\":\"mc\""));
    assert_non_null(strstr(ja, "\"metric\":\"acc\""));
    assert_string_equal(aellm_task_name(a), "x");
    assert_int_equal(aellm_task_kind_of(a), AELLM_TASK_CHOICE);
    assert_string_equal(aellm_task_kind_name(AELLM_TASK_EXACT_MATCH), "exact_match");
    free(ja);
    free(jb);
    free(jc);
    aellm_task_free(a);
    aellm_task_free(b);
    aellm_task_free(c);
}

/* ---- the engine's model, on stories260K ---- */
#define STORIES AELLM_DATA_DIR "/stories260K/"

static aellm_model *stories;

static int stories_setup(void **state)
{
    (void)state;
    return aellm_model_load(&stories, STORIES "stories260K.bin", STORIES "tok512.bin");
}

static int stories_teardown(void **state)
{
    (void)state;
    aellm_model_free(stories);
    return 0;
}

/* Sum of log-softmax over tokens[n_cond..n) on a fresh engine, from scratch. */
static double fresh_score(const int32_t *tok, int n, int n_cond)
{
    aellm_engine *e;
    assert_int_equal(aellm_engine_new(&e, stories, NULL), 0);
    int vocab = aellm_engine_vocab_size(e);
    float *logits = malloc((size_t)n * vocab * sizeof(float));
    assert_int_equal(aellm_engine_eval(e, tok, n, 0, logits, 1), 0);
    double sum = 0;
    for (int i = n_cond; i < n; i++) {
        const float *z = logits + (size_t)(i - 1) * vocab;
        double s = 0;
        for (int v = 0; v < vocab; v++) s += exp((double)z[v]);
        sum += (double)z[tok[i]] - log(s);
    }
    free(logits);
    aellm_engine_free(e);
    return sum;
}

static void test_engine_prefix_reuse(void **state)
{
    (void)state;
    double t0 = aellm_time_s();
    aellm_engine *e;
    aellm_lm *lm;
    assert_int_equal(aellm_engine_new(&e, stories, NULL), 0);
    assert_int_equal(aellm_lm_engine_new(&lm, e, aellm_model_tokenizer(stories)), 0);
    int32_t a[200], b[200];
    for (int i = 0; i < 200; i++) a[i] = b[i] = 1 + (i * 37 + 11) % 500;
    a[0] = b[0] = 1;
    for (int i = 120; i < 200; i++) b[i] = 3 + (i * 13) % 400;
    /* (sequence, n, n_cond): new, shared prefix, same again, inside the
     * cached prefix, the longest condition, from the start */
    struct {
        const int32_t *tok;
        int n, n_cond;
    } calls[] = {{a, 150, 100}, {b, 200, 110}, {b, 200, 110}, {b, 90, 50},
                 {a, 200, 199}, {a, 40, 1},    {b, 130, 125}};
    double worst = 0;
    for (size_t c = 0; c < sizeof(calls) / sizeof(calls[0]); c++) {
        double lp;
        int greedy;
        assert_int_equal(
            lm->score(lm->user, calls[c].tok, calls[c].n, calls[c].n_cond, &lp, &greedy), 0);
        double ref = fresh_score(calls[c].tok, calls[c].n, calls[c].n_cond);
        worst = fmax(worst, fabs(lp - ref));
        assert_true(fabs(lp - ref) < 1e-4);
    }
    printf("lm_engine: prefix reuse vs fresh engine, worst |logprob sum diff| %.2e\n", worst);
    /* greedy generation after scoring equals argmax decoding from scratch */
    int32_t out[12], n_out = 0;
    assert_int_equal(lm->generate(lm->user, a, 60, 12, out, &n_out), 0);
    assert_int_equal(n_out, 12);
    int32_t seq[72];
    memcpy(seq, a, 60 * sizeof(int32_t));
    for (int k = 0; k < 12; k++) {
        aellm_engine *f;
        assert_int_equal(aellm_engine_new(&f, stories, NULL), 0);
        int vocab = aellm_engine_vocab_size(f);
        float *z = malloc((size_t)vocab * sizeof(float));
        assert_int_equal(aellm_engine_eval(f, seq, 60 + k, 0, z, 0), 0);
        int best = 0;
        for (int v = 1; v < vocab; v++) best = z[v] > z[best] ? v : best;
        assert_int_equal(out[k], best);
        seq[60 + k] = best;
        free(z);
        aellm_engine_free(f);
    }
    /* score's greedy flag agrees with the generated tokens */
    double lp;
    int greedy = 0;
    assert_int_equal(lm->score(lm->user, seq, 72, 60, &lp, &greedy), 0);
    assert_true(greedy);
    aellm_lm_engine_free(lm);
    aellm_engine_free(e);
    printf("(%.1f s)\n", aellm_time_s() - t0);
}

static char *tasks_dir(void)
{
    static char dir[1024];
    const char *slash = strrchr(__FILE__, '/');
    int n = slash ? (int)(slash - __FILE__) : 1;
    snprintf(dir, sizeof(dir), "%.*s/../tasks", n, slash ? __FILE__ : ".");
    return dir;
}

static void test_engine_perplexity(void **state)
{
    (void)state;
    double t0 = aellm_time_s();
    /* the bundled tinystories-ppl, cut to 8 windows to keep the test short */
    aellm_task *t;
    if (aellm_task_parse(&t,
                         "{\"kind\": \"perplexity\", \"data\": "
                         "\"${data}/tinystories/tinystories_val.txt\", \"max_bytes\": 65536, "
                         "\"n_ctx\": 512, \"max_chunks\": 8}",
                         NULL, AELLM_DATA_DIR))
        fail_msg("%s", aellm_error_last());
    aellm_engine *e;
    aellm_lm *lm;
    assert_int_equal(aellm_engine_new(&e, stories, NULL), 0);
    assert_int_equal(aellm_lm_engine_new(&lm, e, aellm_model_tokenizer(stories)), 0);
    aellm_task_result r = run(t, lm);
    /* the same tokens through aellm_perplexity */
    FILE *f = fopen(AELLM_DATA_DIR "/tinystories/tinystories_val.txt", "rb");
    assert_non_null(f);
    char *text = malloc(65536);
    assert_int_equal(fread(text, 1, 65536, f), 65536);
    fclose(f);
    int32_t *ids = malloc(65536 * 2 * sizeof(int32_t));
    size_t n;
    assert_int_equal(
        aellm_tokenizer_encode(aellm_model_tokenizer(stories), text, 65536, 1, ids, 65536 * 2, &n),
        0);
    aellm_ppl_result ref;
    assert_int_equal(aellm_perplexity(e, ids, (int64_t)n, 512, 8, NULL, NULL, &ref), 0);
    double rel = fabs(r.metrics[0].value - ref.ppl) / ref.ppl;
    printf("tinystories-ppl: task %.8f +- %.6f, aellm_perplexity %.8f +- %.6f (rel diff %.2e, %lld "
           "tokens)\n",
           r.metrics[0].value, r.metrics[0].stderr_, ref.ppl, ref.ppl_stderr, rel,
           (long long)r.n_items);
    assert_true(rel < 1e-6);
    assert_true(fabs(r.metrics[0].stderr_ - ref.ppl_stderr) < 1e-6 * ref.ppl_stderr);
    assert_int_equal(r.n_items, ref.n_scored);
    free(text);
    free(ids);
    aellm_task_result_free(&r);
    aellm_lm_engine_free(lm);
    aellm_engine_free(e);
    aellm_task_free(t);
    printf("(%.1f s)\n", aellm_time_s() - t0);
}

static void test_engine_last_word(void **state)
{
    (void)state;
    double t0 = aellm_time_s();
    aellm_task *t;
    if (aellm_task_parse(&t,
                         "{\"kind\": \"continuation\", \"format\": \"text_last_word\", \"data\": "
                         "\"${data}/tinystories/tinystories_val.txt\", \"limit\": 20, \"seed\": 1}",
                         NULL, AELLM_DATA_DIR))
        fail_msg("%s", aellm_error_last());
    aellm_engine *e;
    aellm_lm *lm;
    assert_int_equal(aellm_engine_new(&e, stories, NULL), 0);
    assert_int_equal(aellm_lm_engine_new(&lm, e, aellm_model_tokenizer(stories)), 0);
    aellm_task_result r = run(t, lm);
    assert_int_equal(r.n_items, 20);
    assert_true(r.metrics[0].value >= 0 && r.metrics[0].value <= 1);
    printf("stories260K last word, 20 TinyStories paragraphs (seed 1): acc %.3f +- %.3f, "
           "ppl_cont %.3f\n",
           r.metrics[0].value, r.metrics[0].stderr_, r.metrics[1].value);
    aellm_task_result_free(&r);
    aellm_lm_engine_free(lm);
    aellm_engine_free(e);
    aellm_task_free(t);
    printf("(%.1f s)\n", aellm_time_s() - t0);
}

/* Every bundled spec loads with the shared data and has a canonical form. */
static void test_bundled_specs(void **state)
{
    (void)state;
    double t0 = aellm_time_s();
    const char *names[] = {"stories-ppl",
                           "stories-kld",
                           "wikitext2-ppl",
                           "tinystories-ppl",
                           "tinystories-kld",
                           "tinystories-lastword",
                           "lambada",
                           "hellaswag",
                           "arc-easy",
                           "arc-challenge",
                           "piqa",
                           "winogrande",
                           "copa",
                           "openbookqa",
                           "boolq",
                           "mmlu",
                           "gsm8k",
                           "needle"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[1200];
        snprintf(path, sizeof(path), "%s/%s.json", tasks_dir(), names[i]);
        aellm_task *t;
        if (aellm_task_load(&t, path, AELLM_DATA_DIR)) fail_msg("%s", aellm_error_last());
        assert_string_equal(aellm_task_name(t), names[i]);
        char *j = aellm_task_canonical_json(t);
        assert_non_null(j);
        printf("%-22s %6lld items  %s\n", names[i], (long long)aellm_task_n_items(t), j);
        free(j);
        aellm_task_free(t);
    }
    printf("(%.1f s)\n", aellm_time_s() - t0);
}

int main(void)
{
    const struct CMUnitTest mock_tests[] = {
        cmocka_unit_test(test_perplexity),       cmocka_unit_test(test_choice_mc),
        cmocka_unit_test(test_choice_hellaswag), cmocka_unit_test(test_choice_winogrande),
        cmocka_unit_test(test_choice_mmlu),      cmocka_unit_test(test_continuation),
        cmocka_unit_test(test_last_word),        cmocka_unit_test(test_exact_match),
        cmocka_unit_test(test_needle),           cmocka_unit_test(test_errors),
        cmocka_unit_test(test_long_line),        cmocka_unit_test(test_seed),
        cmocka_unit_test(test_canonical),
    };
    const struct CMUnitTest engine_tests[] = {
        cmocka_unit_test(test_engine_prefix_reuse),
        cmocka_unit_test(test_engine_perplexity),
        cmocka_unit_test(test_engine_last_word),
        cmocka_unit_test(test_bundled_specs),
    };
    int failed = cmocka_run_group_tests(mock_tests, tmpdir_setup, tmpdir_teardown);
    if (failed) return failed;
    if (access(STORIES "stories260K.bin", R_OK) != 0) {
        printf("skip: %s absent (the mock tests passed)\n", AELLM_DATA_DIR);
        return 77;
    }
    return cmocka_run_group_tests(engine_tests, stories_setup, stories_teardown);
}

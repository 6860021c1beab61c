/* Task data files in their original forms: llama.cpp's HellaSwag text, the
 * JSON-lines files of ARC/PIQA/Winogrande/MMLU/LAMBADA/GSM8K, and plain text
 * (paragraphs for the last-word task, sentences for the needle's filler).
 * A malformed line is reported as FILE:LINE: what is wrong. Nothing here
 * tokenizes; selection and scoring are the runners'. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "core/file.h"
#include "measure/task_internal.h"

int task_read_text(const char *path, size_t max_bytes, char **text, size_t *len)
{
    return aellm_file_read_range(text, len, path, 0, max_bytes);
}

void task_items_free(task_item *items, int64_t n)
{
    for (int64_t i = 0; items && i < n; i++) {
        for (int c = 0; c < items[i].n_choices; c++) {
            free(items[i].ctx[c]);
            free(items[i].cont[c]);
        }
        free(items[i].ctx);
        free(items[i].cont);
    }
    free(items);
}

static int line_error(const char *path, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int line_error(const char *path, int line, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return aellm_error_set(AELLM_EFORMAT, "%s:%d: %s", path, line, what);
}

/* The longest line of a file, streamed through a small buffer, so that a
 * line over the limit is refused before a buffer of its size exists. */
static int longest_line(const char *path, size_t *longest, int *at)
{
    FILE *f;
    int64_t size;
    int rc = aellm_file_open(&f, path, &size);
    if (rc) return rc;
    char buf[1 << 16];
    size_t got, run = 0;
    int line = 1;
    *longest = 0, *at = 1;
    while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
        for (size_t i = 0; i < got; i++) {
            if (buf[i] != '\n') {
                run++;
                continue;
            }
            if (run > *longest) *longest = run, *at = line;
            run = 0, line++;
        }
    if (run > *longest) *longest = run, *at = line;
    if (ferror(f)) rc = aellm_error_set(AELLM_EIO, "%s: read failed", path);
    fclose(f);
    return rc;
}

/* A task file of items: every line within TASK_MAX_LINE, then read whole. */
static int read_items_text(const char *path, char **text, size_t *len)
{
    size_t longest;
    int at;
    *text = NULL;
    int rc = longest_line(path, &longest, &at);
    if (!rc && longest > TASK_MAX_LINE)
        rc = line_error(path, at, "line of %zu bytes is over the limit of %d bytes", longest,
                        TASK_MAX_LINE);
    return rc ? rc : task_read_text(path, 0, text, len);
}

/* ---- items ---- */
typedef struct {
    task_item *items;
    int64_t n, cap;
} item_list;

static char *join3(const char *a, size_t na, const char *b, size_t nb, const char *c, size_t nc)
{
    char *s = malloc(na + nb + nc + 1);
    if (!s) return NULL;
    memcpy(s, a, na);
    memcpy(s + na, b, nb);
    memcpy(s + na + nb, c, nc);
    s[na + nb + nc] = '\0';
    return s;
}

static task_item *item_new(item_list *l, int n_choices)
{
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 256;
        task_item *grown = realloc(l->items, (size_t)cap * sizeof(task_item));
        if (!grown) return NULL;
        l->items = grown, l->cap = cap;
    }
    task_item *it = &l->items[l->n];
    memset(it, 0, sizeof(*it));
    it->ctx = calloc((size_t)n_choices, sizeof(char *));
    it->cont = calloc((size_t)n_choices, sizeof(char *));
    if (!it->ctx || !it->cont) {
        free(it->ctx);
        free(it->cont);
        return NULL;
    }
    it->n_choices = n_choices;
    l->n++;
    return it;
}

/* Choice c: the context followed by the delimiter's text, then its trailing
 * white space and the choice as the continuation (" A", " ending"), so the
 * length that acc_norm divides by counts the space as lm-eval-harness does. */
static int set_choice(task_item *it, int c, const char *ctx, const char *delim, const char *choice)
{
    size_t nd = strlen(delim), keep = nd;
    while (keep > 0 && isspace((unsigned char)delim[keep - 1])) keep--;
    it->ctx[c] = join3(ctx, strlen(ctx), delim, keep, "", 0);
    it->cont[c] = join3(delim + keep, nd - keep, choice, strlen(choice), "", 0);
    return it->ctx[c] && it->cont[c] ? 0 : aellm_error_oom("task item", strlen(choice));
}

static int set_pair(task_item *it, const char *ctx, size_t nctx, const char *cont, size_t ncont,
                    int space)
{
    it->ctx[0] = join3(ctx, nctx, "", 0, "", 0);
    it->cont[0] = join3(" ", space ? 1 : 0, cont, ncont, "", 0);
    return it->ctx[0] && it->cont[0] ? 0 : aellm_error_oom("task item", nctx + ncont);
}

/* ---- JSON lines ---- */
typedef int (*jsonl_fn)(aellm_task *t, item_list *l, const cJSON *j, int line);

static const cJSON *need(const cJSON *j, const char *key, int type, const char *path, int line,
                         int *rc)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v) {
        *rc = line_error(path, line, "missing key \"%s\"", key);
        return NULL;
    }
    if (!(v->type & type)) {
        *rc = line_error(path, line, "\"%s\" has the wrong type", key);
        return NULL;
    }
    return v;
}

static int read_jsonl(aellm_task *t, jsonl_fn fn)
{
    char *text;
    size_t len;
    item_list l = {0};
    int rc = read_items_text(t->data_path, &text, &len), line = 0;
    if (rc) return rc;
    for (char *p = text; !rc && p < text + len; line++) {
        char *end = memchr(p, '\n', (size_t)(text + len - p));
        if (!end) end = text + len;
        char *s = p;
        while (s < end && isspace((unsigned char)*s)) s++;
        if (s < end) {
            cJSON *j = cJSON_ParseWithLength(s, (size_t)(end - s));
            if (!j || !cJSON_IsObject(j))
                rc = line_error(t->data_path, line + 1, "malformed JSON");
            else
                rc = fn(t, &l, j, line + 1);
            cJSON_Delete(j);
        }
        p = end + 1;
    }
    free(text);
    if (!rc && l.n == 0) rc = aellm_error_set(AELLM_EFORMAT, "%s: no items", t->data_path);
    if (rc) {
        task_items_free(l.items, l.n);
        return rc;
    }
    t->items = l.items, t->n_all = l.n;
    return 0;
}

static int gold_of(const cJSON *j, int n, const char *path, int line, int *gold)
{
    int rc = 0;
    const cJSON *g = need(j, "gold", cJSON_Number, path, line, &rc);
    if (!g) return rc;
    if (!(g->valuedouble >= 0 && g->valuedouble < n) || g->valuedouble != (int)g->valuedouble)
        return line_error(path, line, "gold %g out of range [0, %d)", g->valuedouble, n);
    *gold = (int)g->valuedouble;
    return 0;
}

static int strings_of(const cJSON *a, const char *key, const char *path, int line)
{
    const cJSON *v;
    int n = cJSON_GetArraySize(a);
    if (n < 2) return line_error(path, line, "\"%s\" needs at least 2 entries", key);
    cJSON_ArrayForEach(v, a) if (!cJSON_IsString(v)) return line_error(
        path, line, "\"%s\" holds a non-string", key);
    return 0;
}

static int item_mc(aellm_task *t, item_list *l, const cJSON *j, int line)
{
    int rc = 0, gold = 0;
    const cJSON *q = need(j, "query", cJSON_String, t->data_path, line, &rc);
    const cJSON *ch = q ? need(j, "choices", cJSON_Array, t->data_path, line, &rc) : NULL;
    if (!ch || (rc = strings_of(ch, "choices", t->data_path, line))) return rc;
    int n = cJSON_GetArraySize(ch);
    if ((rc = gold_of(j, n, t->data_path, line, &gold))) return rc;
    task_item *it = item_new(l, n);
    if (!it) return aellm_error_oom("task items", 0);
    it->gold = gold;
    for (int c = 0; c < n && !rc; c++)
        rc =
            set_choice(it, c, q->valuestring, t->delimiter, cJSON_GetArrayItem(ch, c)->valuestring);
    return rc;
}

/* Partial scoring: the same continuation after each filled-in option. */
static int item_winogrande(aellm_task *t, item_list *l, const cJSON *j, int line)
{
    int rc = 0, gold = 0;
    const cJSON *opt = need(j, "context_options", cJSON_Array, t->data_path, line, &rc);
    const cJSON *cont = opt ? need(j, "continuation", cJSON_String, t->data_path, line, &rc) : NULL;
    if (!cont || (rc = strings_of(opt, "context_options", t->data_path, line))) return rc;
    int n = cJSON_GetArraySize(opt);
    if ((rc = gold_of(j, n, t->data_path, line, &gold))) return rc;
    task_item *it = item_new(l, n);
    if (!it) return aellm_error_oom("task items", 0);
    it->gold = gold;
    for (int c = 0; c < n && !rc; c++)
        rc = set_choice(it, c, cJSON_GetArrayItem(opt, c)->valuestring, t->delimiter,
                        cont->valuestring);
    return rc;
}

static int item_mmlu(aellm_task *t, item_list *l, const cJSON *j, int line)
{
    static const char *const letters[4] = {"A", "B", "C", "D"};
    int rc = 0;
    const cJSON *in = need(j, "input", cJSON_String, t->data_path, line, &rc);
    const cJSON *o = in ? need(j, "output", cJSON_String, t->data_path, line, &rc) : NULL;
    if (!o) return rc;
    const char *g = o->valuestring;
    if (g[0] < 'A' || g[0] > 'D' || g[1])
        return line_error(t->data_path, line, "gold \"%s\" out of range (A to D)", g);
    task_item *it = item_new(l, 4);
    if (!it) return aellm_error_oom("task items", 0);
    it->gold = g[0] - 'A';
    for (int c = 0; c < 4 && !rc; c++)
        rc = set_choice(it, c, in->valuestring, t->delimiter, letters[c]);
    return rc;
}

/* {context, continuation}: joined by one space unless either side has it. */
static int item_context(aellm_task *t, item_list *l, const cJSON *j, int line)
{
    int rc = 0;
    const cJSON *c = need(j, "context", cJSON_String, t->data_path, line, &rc);
    const cJSON *k = c ? need(j, "continuation", cJSON_String, t->data_path, line, &rc) : NULL;
    if (!k) return rc;
    const char *ctx = c->valuestring, *cont = k->valuestring;
    size_t nc = strlen(ctx), nk = strlen(cont);
    if (!nk) return line_error(t->data_path, line, "empty continuation");
    int space = !(nc && isspace((unsigned char)ctx[nc - 1])) && !isspace((unsigned char)cont[0]);
    task_item *it = item_new(l, 1);
    return it ? set_pair(it, ctx, nc, cont, nk, space) : aellm_error_oom("task items", 0);
}

/* OpenAI's LAMBADA {text}: the last word, after the last space, is the
 * continuation (with that space), as lm-eval-harness splits it. */
static int item_openai(aellm_task *t, item_list *l, const cJSON *j, int line)
{
    int rc = 0;
    const cJSON *x = need(j, "text", cJSON_String, t->data_path, line, &rc);
    if (!x) return rc;
    const char *s = x->valuestring, *sp = strrchr(s, ' ');
    if (!sp || sp == s || !sp[1])
        return line_error(t->data_path, line, "no last word after a space");
    task_item *it = item_new(l, 1);
    return it ? set_pair(it, s, (size_t)(sp - s), sp + 1, strlen(sp + 1), 1)
              : aellm_error_oom("task items", 0);
}

static int item_gsm8k(aellm_task *t, item_list *l, const cJSON *j, int line)
{
    int rc = 0;
    const cJSON *q = need(j, "question", cJSON_String, t->data_path, line, &rc);
    const cJSON *a = q ? need(j, "answer", cJSON_String, t->data_path, line, &rc) : NULL;
    if (!a) return rc;
    const char *mark = strstr(a->valuestring, "####");
    double gold;
    if (!mark || task_parse_number(mark + 4, &gold))
        return line_error(t->data_path, line, "answer has no number after \"####\"");
    task_item *it = item_new(l, 1);
    if (!it) return aellm_error_oom("task items", 0);
    it->answer = gold;
    return set_pair(it, q->valuestring, strlen(q->valuestring), a->valuestring,
                    strlen(a->valuestring), 0);
}

/* The first non-blank line, parsed when it is JSON (NULL otherwise). */
static int first_json(const char *path, cJSON **out)
{
    char buf[1 << 16];
    *out = NULL;
    FILE *f;
    int64_t size;
    int rc = aellm_file_open(&f, path, &size);
    if (rc) return rc;
    while (fgets(buf, sizeof(buf), f)) {
        char *s = buf;
        while (isspace((unsigned char)*s)) s++;
        if (!*s) continue;
        if (*s == '{') *out = cJSON_Parse(s);
        break;
    }
    fclose(f);
    return 0;
}

/* ---- HellaSwag, llama.cpp's text form: context, gold label, 4 endings ---- */
static int read_hellaswag(aellm_task *t)
{
    char *text;
    size_t len;
    item_list l = {0};
    int rc = read_items_text(t->data_path, &text, &len), line = 0, n_lines = 0;
    if (rc) return rc;
    char *lines[6];
    for (char *p = text; !rc && p < text + len;) {
        char *end = memchr(p, '\n', (size_t)(text + len - p));
        if (!end) end = text + len;
        *end = '\0';
        if (end > p && end[-1] == '\r') end[-1] = '\0';
        lines[n_lines++] = p;
        line++;
        p = end + 1;
        if (n_lines < 6) continue;
        n_lines = 0;
        char *stop;
        long gold = strtol(lines[1], &stop, 10);
        if (stop == lines[1] || *stop || gold < 0 || gold > 3) {
            rc = line_error(t->data_path, line - 4, "gold label \"%.20s\" is not 0 to 3", lines[1]);
            break;
        }
        task_item *it = item_new(&l, 4);
        if (!it) rc = aellm_error_oom("task items", 0);
        for (int c = 0; !rc && c < 4; c++)
            rc = set_choice(it, c, lines[0], t->delimiter, lines[2 + c]);
        if (it) it->gold = (int)gold;
    }
    if (!rc && n_lines) rc = line_error(t->data_path, line, "incomplete item (6 lines per item)");
    if (!rc && l.n == 0) rc = aellm_error_set(AELLM_EFORMAT, "%s: no items", t->data_path);
    free(text);
    if (rc) {
        task_items_free(l.items, l.n);
        return rc;
    }
    t->items = l.items, t->n_all = l.n;
    return 0;
}

int task_read_choice(aellm_task *t)
{
    if (t->format == TASK_FMT_NONE) {
        cJSON *j;
        int rc = first_json(t->data_path, &j);
        if (rc) return rc;
        if (!j)
            t->format = TASK_FMT_HELLASWAG;
        else if (cJSON_HasObjectItem(j, "context_options"))
            t->format = TASK_FMT_WINOGRANDE;
        else if (cJSON_HasObjectItem(j, "input") && cJSON_HasObjectItem(j, "output"))
            t->format = TASK_FMT_MMLU;
        else
            t->format = TASK_FMT_MC; /* its missing keys are named by the reader */
        cJSON_Delete(j);
    }
    switch (t->format) {
    case TASK_FMT_HELLASWAG:
        return read_hellaswag(t);
    case TASK_FMT_WINOGRANDE:
        return read_jsonl(t, item_winogrande);
    case TASK_FMT_MMLU:
        return read_jsonl(t, item_mmlu);
    default:
        return read_jsonl(t, item_mc);
    }
}

/* ---- plain text: paragraphs and their last words ---- */
static int is_word(unsigned char c)
{
    return isalnum(c) || c >= 0x80 || c == '\'' || c == '-';
}

/* A paragraph s[0..n) as context and last word: trailing punctuation is
 * dropped, the space before the word goes with the word. 0 if it has none. */
static int last_word_item(item_list *l, const char *s, size_t n)
{
    size_t e = n, w, c;
    while (e > 0 && !isalnum((unsigned char)s[e - 1]) && (unsigned char)s[e - 1] < 0x80) e--;
    for (w = e; w > 0 && is_word((unsigned char)s[w - 1]);) w--;
    while (w < e && !isalnum((unsigned char)s[w]) && (unsigned char)s[w] < 0x80) w++;
    for (c = w; c > 0 && isspace((unsigned char)s[c - 1]);) c--;
    if (w == e || c == 0) return 0;
    task_item *it = item_new(l, 1);
    return it ? set_pair(it, s, c, s + w, e - w, c < w) : aellm_error_oom("task items", 0);
}

/* Paragraphs end at blank lines and at "<|endoftext|>". */
static int read_last_word(aellm_task *t)
{
    static const char eot[] = "<|endoftext|>";
    char *text;
    size_t len;
    item_list l = {0};
    int rc = read_items_text(t->data_path, &text, &len);
    if (rc) return rc;
    char *m = strstr(text, eot);
    for (char *p = text; !rc && p < text + len;) {
        char *end = p;
        /* the paragraph runs to the first blank line or end-of-text marker */
        for (;;) {
            char *nl = strchr(end, '\n');
            if (!nl) {
                end = text + len;
                break;
            }
            char *q = nl + 1;
            while (*q == ' ' || *q == '\t' || *q == '\r') q++;
            if (*q == '\n' || !*q) {
                end = nl;
                break;
            }
            end = q;
        }
        if (m && m < p) m = strstr(p, eot);
        if (m && m < end) end = m;
        char *s = p, *e = end;
        while (s < e && isspace((unsigned char)*s)) s++;
        while (e > s && isspace((unsigned char)e[-1])) e--;
        if (e > s) rc = last_word_item(&l, s, (size_t)(e - s));
        p = end == m ? end + sizeof(eot) - 1 : end + 1;
    }
    free(text);
    if (!rc && l.n == 0) rc = aellm_error_set(AELLM_EFORMAT, "%s: no paragraphs", t->data_path);
    if (rc) {
        task_items_free(l.items, l.n);
        return rc;
    }
    t->items = l.items, t->n_all = l.n;
    return 0;
}

int task_read_continuation(aellm_task *t)
{
    if (t->format == TASK_FMT_NONE) {
        cJSON *j;
        int rc = first_json(t->data_path, &j);
        if (rc) return rc;
        t->format = !j                               ? TASK_FMT_LAST_WORD
                    : cJSON_HasObjectItem(j, "text") ? TASK_FMT_OPENAI
                                                     : TASK_FMT_JSONL;
        cJSON_Delete(j);
    }
    switch (t->format) {
    case TASK_FMT_LAST_WORD:
        return read_last_word(t);
    case TASK_FMT_OPENAI:
        return read_jsonl(t, item_openai);
    default:
        return read_jsonl(t, item_context);
    }
}

int task_read_gsm8k(aellm_task *t)
{
    return read_jsonl(t, item_gsm8k);
}

/* ---- filler sentences for the needle task ---- */
int task_read_filler(aellm_task *t)
{
    char *text;
    size_t len;
    int rc = task_read_text(t->data_path, 0, &text, &len), cap = 0;
    if (rc) return rc;
    for (char *p = text; !rc && *p;) {
        while (isspace((unsigned char)*p)) p++;
        char *e = p;
        while (*e && !(strchr(".!?", *e) && (isspace((unsigned char)e[1]) || !e[1]))) e++;
        size_t n = (size_t)(*e ? e + 1 - p : e - p);
        /* whole sentences of a sensible size, on one line */
        if (*e && n >= 8 && n <= 400 && !memchr(p, '\n', n) && t->n_sentences < 100000) {
            if (t->n_sentences == cap) {
                char **g =
                    realloc(t->sentences, (size_t)(cap = cap ? 2 * cap : 256) * sizeof(char *));
                if (!g)
                    rc = aellm_error_oom("filler", 0);
                else
                    t->sentences = g;
            }
            if (!rc && !(t->sentences[t->n_sentences++] = strndup(p, n)))
                rc = aellm_error_oom("filler", n);
        }
        p = *e ? e + 1 : e;
    }
    free(text);
    if (!rc && t->n_sentences == 0)
        rc = aellm_error_set(AELLM_EFORMAT, "%s: no sentences for filler", t->data_path);
    return rc;
}

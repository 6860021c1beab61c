/* SentencePiece BPE encoding (llama.cpp's "llama"/SPM vocabulary): highest
 * score pair merges first, then byte fallback; and decoding of one token.
 * Not the file formats (tokenizer_load.c), and not the splitting of text on
 * user-defined or special tokens: text is always plain text here. */
#include "model/tokenizer_impl.h"

#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* U+2581 LOWER ONE EIGHTH BLOCK: SentencePiece's visible space. */
static const char SPACE_MARK[3] = {'\xe2', '\x96', '\x81'};

/* Bytes of the UTF-8 character led by byte c (a stray continuation byte or
 * invalid lead counts as one, as llama.cpp's unicode_len_utf8). */
static int32_t utf8_len(unsigned char c)
{
    static const int8_t lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lens[c >> 4];
}

/* Whether text may be cut before every '▁' that follows another character:
 * true when no piece holds such a pair (SentencePiece pieces are shaped
 * "▁▁word"), so no merge can cross a cut. Words then merge one at a time in
 * a small, cache-resident queue, with the same result as one queue for all:
 * merges in one word neither see nor reorder those of another. Pieces are
 * walked by UTF-8 characters exactly as text is split into symbols. */
static int pieces_allow_word_split(const aellm_tokenizer *t)
{
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *p = aellm_tokenizer_piece(t, id);
        uint32_t n = t->len[id];
        int prev = 1;
        for (uint32_t i = 0; i < n;) {
            uint32_t k = (uint32_t)utf8_len((unsigned char)p[i]);
            if (k > n - i) k = n - i;
            int mark = k == 3 && memcmp(p + i, SPACE_MARK, 3) == 0;
            if (mark && !prev) return 0;
            prev = mark;
            i += k;
        }
    }
    return 1;
}

/* ---- construction ---- */

int aellm_tokenizer_alloc(aellm_tokenizer **out, int32_t n_vocab, size_t text_bytes,
                          const char *what)
{
    *out = NULL;
    if (n_vocab <= 0) return aellm_error_set(AELLM_EFORMAT, "%s: empty vocabulary", what);
    aellm_tokenizer *t = calloc(1, sizeof(*t));
    if (!t) return aellm_error_oom("tokenizer", sizeof(*t));
    size_t n = (size_t)n_vocab;
    t->n_vocab = n_vocab;
    t->text = malloc(text_bytes ? text_bytes : 1);
    t->off = calloc(n, sizeof(*t->off));
    t->len = calloc(n, sizeof(*t->len));
    t->score = calloc(n, sizeof(*t->score));
    t->type = malloc(n * sizeof(*t->type));
    if (!t->text || !t->off || !t->len || !t->score || !t->type) {
        aellm_tokenizer_free(t);
        return aellm_error_oom("tokenizer vocabulary", (unsigned long long)(text_bytes + 24 * n));
    }
    for (size_t i = 0; i < n; i++) t->type[i] = AELLM_TOKEN_NORMAL;
    t->bos = 1;
    t->eos = 2;
    t->unk = 0;
    t->add_space_prefix = 1;
    *out = t;
    return 0;
}

void aellm_tokenizer_free(aellm_tokenizer *t)
{
    if (!t) return;
    free(t->text);
    free(t->off);
    free(t->len);
    free(t->score);
    free(t->type);
    free(t->slot);
    free(t);
}

/* A deep copy: the pieces and tables are copied, the index rebuilt. */
int aellm_tokenizer_copy(aellm_tokenizer **out, const aellm_tokenizer *t)
{
    *out = NULL;
    size_t bytes = 0, n = (size_t)t->n_vocab;
    for (size_t i = 0; i < n; i++)
        if (t->off[i] + t->len[i] + 1 > bytes) bytes = t->off[i] + t->len[i] + 1;
    aellm_tokenizer *c;
    int rc = aellm_tokenizer_alloc(&c, t->n_vocab, bytes, "tokenizer copy");
    if (rc) return rc;
    memcpy(c->text, t->text, bytes);
    memcpy(c->off, t->off, n * sizeof(*t->off));
    memcpy(c->len, t->len, n * sizeof(*t->len));
    memcpy(c->score, t->score, n * sizeof(*t->score));
    memcpy(c->type, t->type, n * sizeof(*t->type));
    c->bos = t->bos, c->eos = t->eos, c->unk = t->unk;
    c->add_space_prefix = t->add_space_prefix;
    c->add_space_prefix_set = t->add_space_prefix_set;
    if ((rc = aellm_tokenizer_index(c, "tokenizer copy"))) {
        aellm_tokenizer_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int aellm_tokenizer_vocab_size(const aellm_tokenizer *t)
{
    return t->n_vocab;
}
int aellm_tokenizer_bos(const aellm_tokenizer *t)
{
    return t->bos;
}
int aellm_tokenizer_eos(const aellm_tokenizer *t)
{
    return t->eos;
}

/* ---- piece -> id table: open addressing, linear probing, load <= 1/2 ---- */

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

int32_t aellm_tokenizer_find(const aellm_tokenizer *t, const char *s, size_t n)
{
    if (n == 0 || n > t->max_len) return -1;
    for (uint32_t h = hash_bytes(s, n) & t->mask;; h = (h + 1) & t->mask) {
        int32_t id = t->slot[h];
        if (id < 0) return -1;
        if (t->len[id] == n && memcmp(aellm_tokenizer_piece(t, id), s, n) == 0) return id;
    }
}

static void table_insert(aellm_tokenizer *t, int32_t id)
{
    const char *s = aellm_tokenizer_piece(t, id);
    size_t n = t->len[id];
    for (uint32_t h = hash_bytes(s, n) & t->mask;; h = (h + 1) & t->mask) {
        int32_t old = t->slot[h];
        if (old < 0 || (t->len[old] == n && memcmp(aellm_tokenizer_piece(t, old), s, n) == 0)) {
            t->slot[h] = id; /* a duplicate piece: the later id wins */
            return;
        }
    }
}

static int build_table(aellm_tokenizer *t, const char *what)
{
    uint32_t size = 16;
    while (size < 2u * (uint32_t)t->n_vocab) {
        if (size > UINT32_MAX / 2)
            return aellm_error_set(AELLM_EFORMAT, "%s: vocabulary too large", what);
        size *= 2;
    }
    t->slot = malloc((size_t)size * sizeof(*t->slot));
    if (!t->slot) return aellm_error_oom("tokenizer table", (size_t)size * sizeof(*t->slot));
    memset(t->slot, 0xff, (size_t)size * sizeof(*t->slot));
    t->mask = size - 1;
    t->max_len = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (t->len[i] > t->max_len) t->max_len = t->len[i];
    }
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (t->len[i] > 0) table_insert(t, i); /* an empty piece can never match */
    }
    return 0;
}

/* llama.cpp's byte_to_token: the piece "<0xNN>", else the byte itself. */
static void build_byte_ids(aellm_tokenizer *t)
{
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; b++) {
        char piece[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
        char raw = (char)b;
        int32_t id = aellm_tokenizer_find(t, piece, sizeof(piece));
        t->byte_id[b] = id >= 0 ? id : aellm_tokenizer_find(t, &raw, 1);
    }
}

int aellm_tokenizer_index(aellm_tokenizer *t, const char *what)
{
    const int32_t ids[3] = {t->bos, t->eos, t->unk};
    static const char *const names[3] = {"BOS", "EOS", "unknown"};
    for (int i = 0; i < 3; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return aellm_error_set(AELLM_EFORMAT, "%s: %s token id %d outside vocabulary of %d",
                                   what, names[i], ids[i], t->n_vocab);
    }
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (t->score[i] != t->score[i]) t->score[i] = -FLT_MAX; /* NaN: never preferred */
    }
    int rc = build_table(t, what);
    if (rc) return rc;
    build_byte_ids(t);
    t->word_split = pieces_allow_word_split(t);
    return 0;
}

/* ---- encoding ---- */

/* One symbol of the text being merged: a run of bytes of the escaped text,
 * in a doubly-linked list (prev/next: symbol index, -1 at the ends). */
typedef struct {
    int32_t start, n; /* n = 0: merged into its left neighbour */
    int32_t prev, next;
} tok_symbol;

/* A candidate merge of symbols left and its right neighbour `right`, whose
 * concatenation (size bytes) is a token of the given score. */
typedef struct {
    float score;
    int32_t left, right, size;
} tok_pair;

typedef struct {
    const aellm_tokenizer *t;
    char *text;      /* escaped text */
    tok_symbol *sym; /* (n_sym) */
    int32_t n_sym;
    tok_pair *heap; /* (heap_cap) binary heap, best pair at [0] */
    size_t n_heap, heap_cap;
    int32_t *out; /* (cap) caller's ids */
    size_t cap, n_out;
} tok_session;

/* Copies text with ' ' -> '▁', after a '▁' prefix if asked. */
static int escape_text(tok_session *s, const char *text, size_t len, int prefix)
{
    if (len > (INT32_MAX - 3) / 3) /* symbol offsets are int32 */
        return aellm_error_set(AELLM_EINVAL, "tokenizer: text of %zu bytes is too long", len);
    size_t spaces = 0;
    for (size_t i = 0; i < len; i++) spaces += text[i] == ' ';
    size_t n = len + 2 * spaces + (prefix ? 3 : 0);
    s->text = malloc(n ? n : 1);
    if (!s->text) return aellm_error_oom("escaped text", n);
    size_t o = 0;
    if (prefix) {
        memcpy(s->text, SPACE_MARK, 3);
        o = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(s->text + o, SPACE_MARK, 3);
            o += 3;
        } else {
            s->text[o++] = text[i];
        }
    }
    s->n_sym = (int32_t)o; /* bytes for now; split_symbols makes it a count */
    return 0;
}

static int split_symbols(tok_session *s)
{
    int32_t bytes = s->n_sym;
    s->sym = malloc((size_t)(bytes ? bytes : 1) * sizeof(*s->sym));
    if (!s->sym) return aellm_error_oom("tokenizer symbols", (size_t)bytes * sizeof(*s->sym));
    int32_t n = 0;
    for (int32_t o = 0; o < bytes; n++) {
        int32_t k = utf8_len((unsigned char)s->text[o]);
        if (k > bytes - o) k = bytes - o;
        s->sym[n] = (tok_symbol){.start = o, .n = k, .prev = n - 1, .next = n + 1};
        o += k;
    }
    if (n > 0) s->sym[n - 1].next = -1;
    s->n_sym = n;
    return 0;
}

/* Pair a is better than b: higher score, then the leftmost. */
static int pair_before(const tok_pair *a, const tok_pair *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int heap_push(tok_session *s, tok_pair p)
{
    if (s->n_heap == s->heap_cap) {
        size_t cap = s->heap_cap ? 2 * s->heap_cap : 64;
        tok_pair *h = realloc(s->heap, cap * sizeof(*h));
        if (!h) return aellm_error_oom("tokenizer merge queue", cap * sizeof(*h));
        s->heap = h;
        s->heap_cap = cap;
    }
    size_t i = s->n_heap++;
    while (i > 0 && pair_before(&p, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = p;
    return 0;
}

static tok_pair heap_pop(tok_session *s)
{
    tok_pair top = s->heap[0], last = s->heap[--s->n_heap];
    size_t i = 0, n = s->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && pair_before(&s->heap[c + 1], &s->heap[c])) c++;
        if (!pair_before(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n > 0) s->heap[i] = last;
    return top;
}

/* Queues the merge of symbols left and right if their text is a token. */
static int try_pair(tok_session *s, int32_t left, int32_t right)
{
    if (left < 0 || right < 0) return 0;
    const tok_symbol *l = &s->sym[left], *r = &s->sym[right];
    int32_t size = l->n + r->n;
    int32_t id = aellm_tokenizer_find(s->t, s->text + l->start, (size_t)size);
    if (id < 0) return 0;
    tok_pair p = {.score = s->t->score[id], .left = left, .right = right, .size = size};
    return heap_push(s, p);
}

/* Merges the best pair of symbols [a, b) until none is left. A queued pair
 * is stale when either symbol has since merged: sizes only grow, so the size
 * check finds it. */
static int merge_range(tok_session *s, int32_t a, int32_t b)
{
    int rc = 0;
    s->n_heap = 0;
    s->sym[a].prev = -1;
    s->sym[b - 1].next = -1;
    for (int32_t i = a + 1; i < b && !rc; i++) rc = try_pair(s, i - 1, i);
    while (s->n_heap > 0 && !rc) {
        tok_pair p = heap_pop(s);
        tok_symbol *l = &s->sym[p.left], *r = &s->sym[p.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != p.size) continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s->sym[r->next].prev = p.left;
        rc = try_pair(s, l->prev, p.left);
        if (!rc) rc = try_pair(s, p.left, l->next);
    }
    return rc;
}

static int is_mark(const char *p, int32_t n)
{
    return n == 3 && memcmp(p, SPACE_MARK, 3) == 0;
}

/* End of the word that starts at symbol a: the next '▁' after another
 * character, when the vocabulary allows cutting there (word_split). */
static int32_t word_end(const tok_session *s, int32_t a)
{
    if (!s->t->word_split) return s->n_sym;
    const tok_symbol *y = s->sym;
    int prev = is_mark(s->text + y[a].start, y[a].n);
    for (int32_t i = a + 1; i < s->n_sym; i++) {
        int mark = is_mark(s->text + y[i].start, y[i].n);
        if (mark && !prev) return i;
        prev = mark;
    }
    return s->n_sym;
}

static void emit(tok_session *s, int32_t id)
{
    if (s->n_out < s->cap) s->out[s->n_out] = id;
    s->n_out++;
}

/* A final symbol is a token, or its bytes go out one token each. llama.cpp's
 * "resegment" would split a merged non-token back into its two halves, but a
 * pair is only queued when its text is a token, so every merged symbol is
 * one: the fallback only ever sees single characters. */
static void emit_symbol(tok_session *s, const tok_symbol *y)
{
    int32_t id = aellm_tokenizer_find(s->t, s->text + y->start, (size_t)y->n);
    if (id >= 0) {
        emit(s, id);
        return;
    }
    for (int32_t j = 0; j < y->n; j++) {
        int32_t b = s->t->byte_id[(unsigned char)s->text[y->start + j]];
        emit(s, b >= 0 ? b : s->t->unk);
    }
}

int aellm_tokenizer_encode(const aellm_tokenizer *t, const char *text, size_t len, int add_bos,
                           int32_t *out_ids, size_t cap, size_t *n_out)
{
    if (!t || !n_out || (len && !text) || (cap && !out_ids))
        return aellm_error_set(AELLM_EINVAL, "tokenizer_encode: NULL argument");
    tok_session s = {.t = t, .out = out_ids, .cap = cap};
    int rc = 0;
    if (add_bos) emit(&s, t->bos);
    if (len > 0) {
        rc = escape_text(&s, text, len, t->add_space_prefix);
        if (!rc) rc = split_symbols(&s);
        for (int32_t a = 0, b; a < s.n_sym && !rc; a = b) {
            b = word_end(&s, a);
            rc = merge_range(&s, a, b);
            for (int32_t i = a; i != -1 && !rc; i = s.sym[i].next) emit_symbol(&s, &s.sym[i]);
        }
        if (rc) goto done;
    }
    *n_out = s.n_out;
    if (s.n_out > cap)
        rc = aellm_error_set(AELLM_EINVAL, "tokenizer_encode: %zu tokens do not fit in %zu",
                             s.n_out, cap);
done:
    free(s.text);
    free(s.sym);
    free(s.heap);
    return rc;
}

/* ---- decoding ---- */

/* The byte of a piece "<0xNN>", or -1. */
static int piece_byte(const char *p, uint32_t n)
{
    if (n != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = 16 * v + d;
    }
    return v;
}

/* Copies piece p (n bytes) to buf with '▁' -> ' ', dropping a first space
 * if asked. */
static int unescape(const char *p, uint32_t n, int drop_space, char *buf, size_t cap)
{
    size_t o = 0;
    for (uint32_t i = 0; i < n;) {
        char c = p[i];
        int mark = n - i >= 3 && memcmp(p + i, SPACE_MARK, 3) == 0;
        i += mark ? 3 : 1;
        if (mark) c = ' ';
        if (c == ' ' && drop_space && o == 0) {
            drop_space = 0;
            continue;
        }
        drop_space = 0;
        if (o + 1 >= cap)
            return aellm_error_set(AELLM_EINVAL, "tokenizer_decode: buffer of %zu too small", cap);
        buf[o++] = c;
    }
    buf[o] = '\0';
    return (int)o;
}

int aellm_tokenizer_decode(const aellm_tokenizer *t, int prev, int id, char *buf, size_t cap)
{
    if (!t || !buf || cap == 0)
        return aellm_error_set(AELLM_EINVAL, "tokenizer_decode: NULL argument");
    if (id < 0 || id >= t->n_vocab)
        return aellm_error_set(AELLM_EINVAL, "tokenizer_decode: token %d outside vocabulary of %d",
                               id, t->n_vocab);
    const char *p = aellm_tokenizer_piece(t, id);
    uint32_t n = t->len[id];
    int type = t->type[id];
    buf[0] = '\0';
    if (type == AELLM_TOKEN_BYTE) {
        int b = piece_byte(p, n);
        if (b >= 0) {
            if (cap < 2)
                return aellm_error_set(AELLM_EINVAL, "tokenizer_decode: buffer of 1 too small");
            buf[0] = (char)b;
            buf[1] = '\0';
            return 1;
        }
    } else if (type != AELLM_TOKEN_NORMAL && type != AELLM_TOKEN_USER_DEFINED) {
        return 0; /* control, unknown, unused: nothing to print */
    }
    return unescape(p, n, prev == t->bos, buf, cap);
}

/* GGUF reader and writer tests: exact round trips of every metadata type and
 * tensor dtype, a hand-made v2 file, malformed files (each rejected with its
 * own message naming the file), and the writer's atomicity on failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "aellm/dtype.h"
#include "aellm/error.h"
#include "aellm/gguf.h"
#include "model/model.h"

#include "test_tmpdir.h"

/* ---- helpers ---- */

static void write_file(const char *path, const void *data, size_t n)
{
    unlink(path); /* a fresh file: rewriting in place makes ext4 flush on close */
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A hand-made GGUF image. */
typedef struct {
    uint8_t b[16384];
    size_t n;
} image;

static void put(image *im, const void *p, size_t n)
{
    assert_true(im->n + n <= sizeof(im->b));
    memcpy(im->b + im->n, p, n);
    im->n += n;
}

static void put_u8(image *im, uint8_t v)
{
    put(im, &v, 1);
}
static void put_u16(image *im, uint16_t v)
{
    put(im, &v, 2);
}
static void put_u32(image *im, uint32_t v)
{
    put(im, &v, 4);
}
static void put_u64(image *im, uint64_t v)
{
    put(im, &v, 8);
}
static void put_str(image *im, const char *s)
{
    put_u64(im, strlen(s));
    put(im, s, strlen(s));
}
static void put_key(image *im, const char *key, uint32_t type)
{
    put_str(im, key);
    put_u32(im, type);
}
static void pad_to(image *im, size_t align)
{
    while (im->n % align) put_u8(im, 0);
}

/* ---- round trips through the writer ---- */

static const uint8_t u8s[] = {0, 1, 255};
static const int8_t i8s[] = {-128, 0, 127};
static const uint16_t u16s[] = {0, 65535, 1234};
static const int16_t i16s[] = {-32768, 32767};
static const uint32_t u32s[] = {0, 4000000000u, 7};
static const int32_t i32s[] = {INT32_MIN, -1, INT32_MAX};
static const float f32s[] = {1.5f, -0.0f, 3.4e38f};
static const uint8_t bools[] = {1, 0, 1, 1};
static const uint64_t u64s[] = {UINT64_MAX, 0};
static const int64_t i64s[] = {INT64_MIN, INT64_MAX, -5};
static const double f64s[] = {1e300, -2.5};
static const char *const strs[] = {"", "hello", "\xe2\x96\x81world", "<0x0A>"};

static const struct {
    const char *key;
    aellm_gguf_type type;
    const void *data;
    uint64_t n;
    size_t es;
} arrays[] = {
    {"arr.u8", AELLM_GGUF_UINT8, u8s, 3, 1},     {"arr.i8", AELLM_GGUF_INT8, i8s, 3, 1},
    {"arr.u16", AELLM_GGUF_UINT16, u16s, 3, 2},  {"arr.i16", AELLM_GGUF_INT16, i16s, 2, 2},
    {"arr.u32", AELLM_GGUF_UINT32, u32s, 3, 4},  {"arr.i32", AELLM_GGUF_INT32, i32s, 3, 4},
    {"arr.f32", AELLM_GGUF_FLOAT32, f32s, 3, 4}, {"arr.bool", AELLM_GGUF_BOOL, bools, 4, 1},
    {"arr.u64", AELLM_GGUF_UINT64, u64s, 2, 8},  {"arr.i64", AELLM_GGUF_INT64, i64s, 3, 8},
    {"arr.f64", AELLM_GGUF_FLOAT64, f64s, 2, 8}, {"arr.empty", AELLM_GGUF_UINT32, NULL, 0, 4},
};
#define N_ARRAYS (sizeof(arrays) / sizeof(arrays[0]))

static void set_metadata(aellm_gguf_writer *w)
{
    assert_int_equal(aellm_gguf_set_str(w, "general.architecture", "llama"), 0);
    assert_int_equal(aellm_gguf_set_u32(w, "s.u32", 1), 0);
    assert_int_equal(aellm_gguf_set_i32(w, "s.i32", -7), 0);
    assert_int_equal(aellm_gguf_set_u64(w, "s.u64", UINT64_MAX), 0);
    assert_int_equal(aellm_gguf_set_f32(w, "s.f32", 0.1f), 0);
    assert_int_equal(aellm_gguf_set_bool(w, "s.bool", 1), 0);
    assert_int_equal(aellm_gguf_set_str(w, "s.str", "a string"), 0);
    for (size_t i = 0; i < N_ARRAYS; i++)
        assert_int_equal(
            aellm_gguf_set_arr(w, arrays[i].key, arrays[i].type, arrays[i].data, arrays[i].n), 0);
    assert_int_equal(aellm_gguf_set_arr_str(w, "arr.str", strs, 4), 0);
    /* a second set replaces the value and keeps the key's place */
    assert_int_equal(aellm_gguf_set_u32(w, "s.u32", 4000000000u), 0);
}

static void check_metadata(const aellm_gguf *g)
{
    uint32_t u32;
    int64_t i64;
    float f32;
    int b;
    const char *s;
    assert_int_equal(aellm_gguf_kv_count(g), 8 + N_ARRAYS);
    assert_string_equal(aellm_gguf_kv_key(g, 0), "general.architecture");
    assert_string_equal(aellm_gguf_kv_key(g, 1), "s.u32");
    assert_int_equal(aellm_gguf_get_u32(g, "s.u32", &u32), 0);
    assert_int_equal(u32, 4000000000u);
    assert_int_equal(aellm_gguf_get_i64(g, "s.i32", &i64), 0);
    assert_int_equal(i64, -7);
    assert_int_equal(aellm_gguf_kv_type(g, aellm_gguf_find_key(g, "s.u64")), AELLM_GGUF_UINT64);
    assert_int_equal(aellm_gguf_get_i64(g, "s.u64", &i64), AELLM_EFORMAT); /* > INT64_MAX */
    assert_int_equal(aellm_gguf_get_f32(g, "s.f32", &f32), 0);
    assert_true(f32 == 0.1f);
    assert_int_equal(aellm_gguf_get_bool(g, "s.bool", &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(aellm_gguf_get_str(g, "s.str", &s), 0);
    assert_string_equal(s, "a string");
    assert_int_equal(aellm_gguf_get_u32(g, "s.i32", &u32), AELLM_EFORMAT); /* negative */
    assert_int_equal(aellm_gguf_get_u32(g, "s.str", &u32), AELLM_EFORMAT);
    assert_int_equal(aellm_gguf_get_u32(g, "absent", &u32), AELLM_ENOTFOUND);
    assert_int_equal(aellm_gguf_find_key(g, "absent"), -1);
}

static void check_arrays(const aellm_gguf *g)
{
    for (size_t i = 0; i < N_ARRAYS; i++) {
        int64_t k = aellm_gguf_find_key(g, arrays[i].key);
        assert_true(k >= 0);
        assert_int_equal(aellm_gguf_kv_type(g, k), AELLM_GGUF_ARRAY);
        assert_int_equal(aellm_gguf_arr_type(g, k), arrays[i].type);
        assert_int_equal(aellm_gguf_arr_len(g, k), arrays[i].n);
        if (arrays[i].n)
            assert_memory_equal(aellm_gguf_arr_data(g, k), arrays[i].data,
                                arrays[i].n * arrays[i].es);
    }
    int64_t k = aellm_gguf_find_key(g, "arr.str");
    assert_int_equal(aellm_gguf_arr_type(g, k), AELLM_GGUF_STRING);
    assert_int_equal(aellm_gguf_arr_len(g, k), 4);
    for (uint64_t j = 0; j < 4; j++) {
        size_t len;
        assert_string_equal(aellm_gguf_arr_str(g, k, j, &len), strs[j]);
        assert_int_equal(len, strlen(strs[j]));
    }
    assert_null(aellm_gguf_arr_str(g, k, 4, NULL));
}

/* One tensor of every dtype the traits know, of 1 to 4 dimensions. */
typedef struct {
    char name[32];
    int type, n_dims;
    int64_t ne[4];
    size_t size;
    uint8_t *data;
} test_tensor;

static int make_tensors(test_tensor *ts)
{
    int n = 0;
    for (int type = 0; type < AELLM_DTYPE_MAX; type++) {
        const aellm_dtype_traits *tr = aellm_dtype_traits_get(type);
        if (!tr || tr->interleave) continue; /* in-memory layouts: test_memory_layout_refused */
        test_tensor *t = &ts[n];
        snprintf(t->name, sizeof(t->name), "t.%s", tr->name);
        t->type = type;
        t->n_dims = 1 + n % 4;
        int64_t ne[4] = {2 * tr->block_size, 3, 2, 5};
        t->size = aellm_dtype_row_size(type, ne[0]);
        for (int d = 0; d < 4; d++) t->ne[d] = d < t->n_dims ? ne[d] : 1;
        for (int d = 1; d < 4; d++) t->size *= (size_t)t->ne[d];
        t->data = malloc(t->size);
        for (size_t i = 0; i < t->size; i++) t->data[i] = (uint8_t)(i * 31 + type * 7 + 1);
        n++;
    }
    return n;
}

static void test_roundtrip(void **state)
{
    (void)state;
    test_tensor ts[AELLM_DTYPE_MAX]; /* one per known dtype */
    int n = make_tensors(ts);
    assert_true(n >= 6);
    aellm_gguf_writer *w;
    assert_int_equal(aellm_gguf_writer_new(&w), 0);
    set_metadata(w);
    for (int i = 0; i < n; i++)
        assert_int_equal(
            aellm_gguf_add_tensor(w, ts[i].name, ts[i].type, ts[i].n_dims, ts[i].ne, ts[i].data),
            0);
    const char *path = tmp_path("rt.gguf");
    assert_int_equal(aellm_gguf_writer_write(w, path), 0);
    aellm_gguf_writer_free(w);
    assert_int_equal(tmp_temporaries("rt.gguf"), 0);

    aellm_gguf *g;
    assert_int_equal(aellm_gguf_open(&g, path), 0);
    assert_int_equal(aellm_gguf_version(g), 3);
    assert_int_equal(aellm_gguf_alignment(g), 32);
    check_metadata(g);
    check_arrays(g);
    assert_int_equal(aellm_gguf_tensor_count(g), n);
    for (int i = 0; i < n; i++) {
        const aellm_gguf_tensor_info *t = aellm_gguf_tensor(g, i);
        assert_string_equal(t->name, ts[i].name);
        assert_ptr_equal(aellm_gguf_find_tensor(g, ts[i].name), t);
        assert_int_equal(t->type, ts[i].type);
        assert_int_equal(t->n_dims, ts[i].n_dims);
        assert_memory_equal(t->ne, ts[i].ne, sizeof(t->ne));
        assert_int_equal(t->size, ts[i].size);
        assert_int_equal(t->offset % 32, 0);
        assert_memory_equal(t->data, ts[i].data, ts[i].size);
        free(ts[i].data);
    }
    assert_null(aellm_gguf_find_tensor(g, "nope"));
    aellm_gguf_free(g);
}

static void test_alignment_key(void **state)
{
    (void)state;
    aellm_gguf_writer *w;
    float x[3] = {1, 2, 3};
    int64_t ne[1] = {3};
    assert_int_equal(aellm_gguf_writer_new(&w), 0);
    assert_int_equal(aellm_gguf_set_u32(w, "general.alignment", 64), 0);
    assert_int_equal(aellm_gguf_add_tensor(w, "a", AELLM_DTYPE_F32, 1, ne, x), 0);
    assert_int_equal(aellm_gguf_add_tensor(w, "b", AELLM_DTYPE_F32, 1, ne, x), 0);
    const char *path = tmp_path("align.gguf");
    assert_int_equal(aellm_gguf_writer_write(w, path), 0);
    aellm_gguf *g;
    assert_int_equal(aellm_gguf_open(&g, path), 0);
    assert_int_equal(aellm_gguf_alignment(g), 64);
    assert_int_equal(aellm_gguf_tensor(g, 1)->offset, 64);
    assert_memory_equal(aellm_gguf_tensor(g, 1)->data, x, sizeof(x));
    aellm_gguf_free(g);
    /* not a power of two: refused at write time, no file left */
    assert_int_equal(aellm_gguf_set_u32(w, "general.alignment", 24), 0);
    assert_int_equal(aellm_gguf_writer_write(w, tmp_path("align24.gguf")), AELLM_EINVAL);
    assert_false(exists(tmp_path("align24.gguf")));
    aellm_gguf_writer_free(w);
}

static void test_writer_rejects(void **state)
{
    (void)state;
    aellm_gguf_writer *w;
    uint8_t buf[64] = {0};
    int64_t ne[2] = {32, 1}, bad[2] = {31, 1};
    assert_int_equal(aellm_gguf_writer_new(&w), 0);
    assert_int_equal(aellm_gguf_add_tensor(w, "x", AELLM_DTYPE_F16, 2, ne, buf), 0);
    assert_int_equal(aellm_gguf_add_tensor(w, "x", AELLM_DTYPE_F16, 2, ne, buf), AELLM_EINVAL);
    assert_int_equal(aellm_gguf_add_tensor(w, "y", AELLM_DTYPE_Q4_0, 2, bad, buf), AELLM_EINVAL);
    assert_int_equal(aellm_gguf_add_tensor(w, "z", 77, 2, ne, buf), AELLM_EINVAL);
    /* the engine's in-memory layout is no file type */
    int64_t group[2] = {32, 16};
    uint8_t rows[16 * 18] = {0};
    assert_int_equal(aellm_gguf_add_tensor(w, "r", AELLM_DTYPE_Q4_0_R16, 2, group, rows),
                     AELLM_EINVAL);
    assert_non_null(strstr(aellm_error_last(), "in-memory layout"));
    assert_int_equal(aellm_gguf_add_tensor(w, "z", AELLM_DTYPE_F32, 5, ne, buf), AELLM_EINVAL);
    assert_int_equal(aellm_gguf_set_arr(w, "k", AELLM_GGUF_STRING, buf, 1), AELLM_EINVAL);
    aellm_gguf_writer_free(w);
}

/* A failed write leaves neither the file nor its temporary behind. */
static void test_failed_write(void **state)
{
    (void)state;
    aellm_gguf_writer *w;
    assert_int_equal(aellm_gguf_writer_new(&w), 0);
    assert_int_equal(aellm_gguf_set_str(w, "general.architecture", "llama"), 0);
    const char *path = tmp_path("no/such/dir/x.gguf");
    assert_int_equal(aellm_gguf_writer_write(w, path), AELLM_EIO);
    assert_non_null(strstr(aellm_error_last(), "x.gguf: cannot write a file there"));
    assert_false(exists(path));
    /* the target is a directory: refused before anything is written, and
     * the target is untouched */
    const char *dir = tmp_path("a_dir.gguf");
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(aellm_gguf_writer_write(w, dir), AELLM_EIO);
    assert_int_equal(tmp_temporaries("a_dir.gguf"), 0);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    rmdir(dir);
    aellm_gguf_writer_free(w);
}

/* ---- a hand-made v2 file with a scalar of every type, copied through ---- */

static void build_v2(image *im)
{
    put(im, "GGUF", 4);
    put_u32(im, 2);
    put_u64(im, 1);  /* tensors */
    put_u64(im, 13); /* kvs */
    put_key(im, "v.u8", AELLM_GGUF_UINT8), put_u8(im, 200);
    put_key(im, "v.i8", AELLM_GGUF_INT8), put_u8(im, 0x80); /* -128 */
    put_key(im, "v.u16", AELLM_GGUF_UINT16), put_u16(im, 60000);
    put_key(im, "v.i16", AELLM_GGUF_INT16), put_u16(im, 0xfffe); /* -2 */
    put_key(im, "v.u32", AELLM_GGUF_UINT32), put_u32(im, 123456);
    put_key(im, "v.i32", AELLM_GGUF_INT32), put_u32(im, (uint32_t)-123456);
    float f = 2.5f;
    put_key(im, "v.f32", AELLM_GGUF_FLOAT32), put(im, &f, 4);
    put_key(im, "v.bool", AELLM_GGUF_BOOL), put_u8(im, 1);
    put_key(im, "v.str", AELLM_GGUF_STRING), put_str(im, "two");
    put_key(im, "v.arr", AELLM_GGUF_ARRAY), put_u32(im, AELLM_GGUF_INT16), put_u64(im, 2);
    put_u16(im, 1), put_u16(im, 0xffff);
    put_key(im, "v.u64", AELLM_GGUF_UINT64), put_u64(im, 1ull << 40);
    put_key(im, "v.i64", AELLM_GGUF_INT64), put_u64(im, (uint64_t) - (1ll << 40));
    double d = -0.125;
    put_key(im, "v.f64", AELLM_GGUF_FLOAT64), put(im, &d, 8);
    put_str(im, "w"), put_u32(im, 1), put_u64(im, 4), put_u32(im, AELLM_DTYPE_F32), put_u64(im, 0);
    pad_to(im, 32);
    float x[4] = {1, 2, 3, 4};
    put(im, x, sizeof(x));
    pad_to(im, 32); /* the writer pads every tensor, the last too */
}

static void check_v2_values(const aellm_gguf *g)
{
    static const struct {
        const char *key;
        double v;
    } want[] = {{"v.u8", 200},
                {"v.i8", -128},
                {"v.u16", 60000},
                {"v.i16", -2},
                {"v.u32", 123456},
                {"v.i32", -123456},
                {"v.f32", 2.5},
                {"v.bool", 1},
                {"v.u64", 1099511627776.0},
                {"v.i64", -1099511627776.0},
                {"v.f64", -0.125}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        int64_t k = aellm_gguf_find_key(g, want[i].key);
        assert_true(k >= 0);
        assert_true(aellm_gguf_kv_number(g, k) == want[i].v);
    }
    int64_t v;
    float f;
    assert_int_equal(aellm_gguf_get_i64(g, "v.i8", &v), 0);
    assert_int_equal(v, -128);
    assert_int_equal(aellm_gguf_get_i64(g, "v.i64", &v), 0);
    assert_int_equal(v, -(1ll << 40));
    assert_int_equal(aellm_gguf_get_f32(g, "v.f64", &f), 0);
    assert_true(f == -0.125f);
    size_t len;
    assert_string_equal(aellm_gguf_kv_str(g, aellm_gguf_find_key(g, "v.str"), &len), "two");
    assert_int_equal(len, 3);
    int64_t k = aellm_gguf_find_key(g, "v.arr");
    assert_int_equal(aellm_gguf_arr_type(g, k), AELLM_GGUF_INT16);
    int16_t a[2];
    memcpy(a, aellm_gguf_arr_data(g, k), 4);
    assert_int_equal(a[0], 1);
    assert_int_equal(a[1], -1);
    const aellm_gguf_tensor_info *t = aellm_gguf_find_tensor(g, "w");
    assert_non_null(t);
    assert_true(((const float *)t->data)[3] == 4.0f);
}

static void test_v2_and_copy(void **state)
{
    (void)state;
    image im = {.n = 0};
    build_v2(&im);
    const char *path = tmp_path("v2.gguf"), *copy = tmp_path("v2copy.gguf");
    write_file(path, im.b, im.n);
    aellm_gguf *g, *h;
    assert_int_equal(aellm_gguf_open(&g, path), 0);
    assert_int_equal(aellm_gguf_version(g), 2);
    check_v2_values(g);

    aellm_gguf_writer *w;
    assert_int_equal(aellm_gguf_writer_new(&w), 0);
    for (int64_t i = 0; i < aellm_gguf_kv_count(g); i++)
        assert_int_equal(aellm_gguf_copy_kv(w, g, i), 0);
    const aellm_gguf_tensor_info *t = aellm_gguf_tensor(g, 0);
    assert_int_equal(aellm_gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data), 0);
    assert_int_equal(aellm_gguf_writer_write(w, copy), 0);
    aellm_gguf_writer_free(w);
    assert_int_equal(aellm_gguf_open(&h, copy), 0);
    assert_int_equal(aellm_gguf_version(h), 3);
    check_v2_values(h);
    for (int64_t i = 0; i < aellm_gguf_kv_count(g); i++) {
        assert_string_equal(aellm_gguf_kv_key(h, i), aellm_gguf_kv_key(g, i));
        assert_int_equal(aellm_gguf_kv_type(h, i), aellm_gguf_kv_type(g, i));
    }
    /* v2 and v3 encode everything after the version alike: identical bytes */
    FILE *f = fopen(copy, "rb");
    uint8_t back[sizeof(im.b)];
    size_t n = fread(back, 1, sizeof(back), f);
    fclose(f);
    assert_int_equal(n, im.n);
    assert_memory_equal(back + 8, im.b + 8, im.n - 8);
    aellm_gguf_free(h);
    aellm_gguf_free(g);
}

/* ---- malformed files ---- */

/* The base of the malformed files: one kv and one f32 tensor [32, 32], with
 * fields a case can change. */
typedef struct {
    const char *magic;
    uint32_t version;
    uint64_t n_kv;
    uint32_t n_dims;
    uint64_t ne0;
    uint32_t type;
    uint64_t offset;
    int two_tensors; /* a second tensor, same name */
    int nested;      /* the kv is an array of arrays */
    int zero_dim;    /* ne[1] = 0 */
    uint32_t align;  /* general.alignment instead of the string kv */
    size_t cut;      /* truncate the file to this many bytes */
} craft_opts;

static size_t craft(image *im, const craft_opts *o)
{
    im->n = 0;
    put(im, o->magic ? o->magic : "GGUF", 4);
    put_u32(im, o->version ? o->version : 3);
    put_u64(im, o->two_tensors ? 2 : 1);
    put_u64(im, o->n_kv ? o->n_kv : 1);
    if (o->nested) {
        put_key(im, "k", AELLM_GGUF_ARRAY), put_u32(im, AELLM_GGUF_ARRAY), put_u64(im, 1);
    } else if (o->align) {
        put_key(im, "general.alignment", AELLM_GGUF_UINT32), put_u32(im, o->align);
    } else {
        put_key(im, "general.architecture", AELLM_GGUF_STRING), put_str(im, "llama");
    }
    for (int i = 0; i < 1 + o->two_tensors; i++) {
        uint32_t n_dims = o->n_dims ? o->n_dims : 2;
        put_str(im, "blk.0.attn_q.weight"), put_u32(im, n_dims);
        for (uint32_t d = 0; d < n_dims && d < 8; d++)
            put_u64(im, d == 0 && o->ne0 ? o->ne0 : d == 1 && o->zero_dim ? 0 : 32);
        put_u32(im, o->type), put_u64(im, o->offset);
    }
    pad_to(im, 32);
    for (int i = 0; i < 32 * 32 * 4 * 2; i++) put_u8(im, 0);
    return o->cut ? o->cut : im->n;
}

static void expect_bad(const char *name, const craft_opts *o, int code, const char *what)
{
    image *im = malloc(sizeof(*im));
    size_t n = craft(im, o);
    const char *path = tmp_path(name);
    write_file(path, im->b, n);
    free(im);
    aellm_gguf *g = (aellm_gguf *)1;
    aellm_error_clear();
    int rc = aellm_gguf_open(&g, path);
    const char *msg = aellm_error_last();
    print_message("%-14s -> %d: %s\n", name, rc, msg);
    assert_int_equal(rc, code);
    assert_null(g);
    assert_non_null(strstr(msg, path));
    assert_non_null(strstr(msg, what));
    assert_null(strchr(msg, '\n'));
}

static void test_good_base(void **state)
{
    (void)state;
    image im;
    craft_opts o = {0};
    size_t n = craft(&im, &o);
    write_file(tmp_path("base.gguf"), im.b, n);
    aellm_gguf *g;
    assert_int_equal(aellm_gguf_open(&g, tmp_path("base.gguf")), 0);
    assert_int_equal(aellm_gguf_tensor(g, 0)->size, 32 * 32 * 4);
    aellm_gguf_free(g);
}

static void test_malformed(void **state)
{
    (void)state;
    expect_bad("magic.gguf", &(craft_opts){.magic = "GGUX"}, AELLM_EFORMAT, "bad magic");
    expect_bad("version1.gguf", &(craft_opts){.version = 1}, AELLM_EFORMAT,
               "unsupported GGUF version 1");
    expect_bad("version4.gguf", &(craft_opts){.version = 4}, AELLM_EFORMAT,
               "unsupported GGUF version 4");
    expect_bad("header.gguf", &(craft_opts){.cut = 20}, AELLM_EFORMAT, "truncated in the header");
}

static void test_truncations(void **state)
{
    (void)state;
    const char *path = tmp_path("empty.gguf");
    write_file(path, "", 0);
    aellm_gguf *g;
    assert_int_equal(aellm_gguf_open(&g, path), AELLM_EFORMAT);
    assert_non_null(strstr(aellm_error_last(), "truncated"));
    /* cut 5 bytes into a key, and 5 bytes into a string value */
    image im = {.n = 0};
    put(&im, "GGUF", 4), put_u32(&im, 3), put_u64(&im, 0), put_u64(&im, 1);
    put_key(&im, "general.name", AELLM_GGUF_STRING), put_str(&im, "a model name");
    path = tmp_path("string.gguf");
    write_file(path, im.b, 24 + 8 + 5);
    assert_int_equal(aellm_gguf_open(&g, path), AELLM_EFORMAT);
    assert_non_null(strstr(aellm_error_last(), "truncated in the key of metadata entry 0"));
    write_file(path, im.b, 24 + 8 + 12 + 4 + 8 + 5);
    assert_int_equal(aellm_gguf_open(&g, path), AELLM_EFORMAT);
    assert_non_null(strstr(aellm_error_last(), ": truncated in key 'general.name' (12 bytes"));
    assert_non_null(strstr(aellm_error_last(), path));
    /* header 24, kv 45, tensor name 27, n_dims 4, then 4 bytes of ne[0] */
    expect_bad("tinfo.gguf", &(craft_opts){.cut = 24 + 45 + 27 + 4 + 4}, AELLM_EFORMAT,
               "truncated in tensor 'blk.0.attn_q.weight'");
    expect_bad("pastend.gguf", &(craft_opts){.offset = 4128}, AELLM_EFORMAT,
               "tensor 'blk.0.attn_q.weight' extends past end of file (offset");
    expect_bad("pastend2.gguf", &(craft_opts){.offset = UINT64_MAX - 31}, AELLM_EFORMAT,
               "tensor 'blk.0.attn_q.weight'");
}

static void test_bad_tensors(void **state)
{
    (void)state;
    expect_bad("absurd.gguf", &(craft_opts){.ne0 = 1ull << 62}, AELLM_EFORMAT,
               "tensor 'blk.0.attn_q.weight' dimensions [4611686018427387904, 32, 1, 1] are "
               "too large");
    expect_bad("negative.gguf", &(craft_opts){.ne0 = 1ull << 63}, AELLM_EFORMAT,
               "ne[0] = 9223372036854775808 out of range");
    expect_bad("zero.gguf", &(craft_opts){.zero_dim = 1}, AELLM_EFORMAT, "ne[1] = 0 out of range");
    expect_bad("ndims_huge.gguf", &(craft_opts){.n_dims = 0xffffffff}, AELLM_EFORMAT,
               "has 4294967295 dimensions (must be 1..4)");
    expect_bad("ndims5.gguf", &(craft_opts){.n_dims = 5}, AELLM_EFORMAT,
               "has 5 dimensions (must be 1..4)");
    expect_bad("type.gguf", &(craft_opts){.type = 99}, AELLM_EFORMAT,
               "tensor 'blk.0.attn_q.weight' has unknown type id 99");
    expect_bad("r16.gguf", &(craft_opts){.type = AELLM_DTYPE_Q4_0_R16}, AELLM_EFORMAT,
               "tensor 'blk.0.attn_q.weight' has unknown type id 110");
    expect_bad("misalign.gguf", &(craft_opts){.offset = 4}, AELLM_EFORMAT,
               "offset 4 is not a multiple of the alignment 32");
    expect_bad("block.gguf", &(craft_opts){.type = AELLM_DTYPE_Q4_0, .ne0 = 48}, AELLM_EFORMAT,
               "row of 48 is not a multiple of q4_0's block of 32");
    expect_bad("dup.gguf", &(craft_opts){.two_tensors = 1}, AELLM_EFORMAT,
               "duplicate tensor name 'blk.0.attn_q.weight'");
}

static void test_bad_metadata(void **state)
{
    (void)state;
    expect_bad("kvcount.gguf", &(craft_opts){.n_kv = 1ull << 60}, AELLM_EFORMAT,
               "metadata count 1152921504606846976 exceeds");
    expect_bad("nested.gguf", &(craft_opts){.nested = 1}, AELLM_EFORMAT,
               "key 'k': arrays of arrays are not supported");
    expect_bad("align3.gguf", &(craft_opts){.align = 48}, AELLM_EFORMAT,
               "general.alignment 48 is not a power of two");
}

/* Sizes a downloaded file claims are checked against the file and the
 * limits before anything of their size is allocated (issue 18): a 2^40-byte
 * tensor, a vocabulary of 2^31 tokens, a context of 2^30. */
static void test_untrusted_sizes(void **state)
{
    (void)state;
    expect_bad("tensor2e40.gguf", &(craft_opts){.ne0 = 1ull << 33}, AELLM_EFORMAT,
               "+ size 1099511627776 > ");
    image *im = calloc(1, sizeof(*im));
    put(im, "GGUF", 4), put_u32(im, 3), put_u64(im, 0), put_u64(im, 1);
    put_key(im, "tokenizer.ggml.tokens", AELLM_GGUF_ARRAY);
    put_u32(im, AELLM_GGUF_STRING), put_u64(im, 1ull << 31);
    for (int i = 0; i < 64; i++) put_str(im, "tok");
    const char *path = tmp_path("vocab2e31.gguf");
    write_file(path, im->b, im->n);
    free(im);
    aellm_gguf *g = (aellm_gguf *)1;
    assert_int_equal(aellm_gguf_open(&g, path), AELLM_EFORMAT);
    assert_non_null(
        strstr(aellm_error_last(), "array of 2147483648 strings exceeds the file size"));
    assert_null(g);
    aellm_model_config c = {.dim = 64,
                            .hidden_dim = 172,
                            .n_layers = 5,
                            .n_heads = 8,
                            .n_kv_heads = 4,
                            .head_dim = 8,
                            .vocab_size = 512,
                            .seq_len = 1 << 30};
    assert_int_equal(aellm_model_config_check(&c, "m.gguf"), AELLM_ESHAPE);
    assert_string_equal(aellm_error_last(),
                        "m.gguf: context of 1073741824 is over the limit of 16777216");
    c.seq_len = 256, c.vocab_size = 1 << 30;
    assert_int_equal(aellm_model_config_check(&c, "m.gguf"), AELLM_ESHAPE);
    assert_string_equal(aellm_error_last(),
                        "m.gguf: vocabulary of 1073741824 is over the limit of 16777216");
}

/* n_dims 0 as its own case (the craft default stands for 2). */
static void test_ndims_zero(void **state)
{
    (void)state;
    image im = {.n = 0};
    put(&im, "GGUF", 4), put_u32(&im, 3), put_u64(&im, 1), put_u64(&im, 0);
    put_str(&im, "t"), put_u32(&im, 0), put_u32(&im, 0), put_u64(&im, 0);
    for (int i = 0; i < 64; i++) put_u8(&im, 0);
    const char *path = tmp_path("ndims_zero.gguf");
    write_file(path, im.b, im.n);
    aellm_gguf *g;
    assert_int_equal(aellm_gguf_open(&g, path), AELLM_EFORMAT);
    assert_non_null(strstr(aellm_error_last(), "tensor 't' has 0 dimensions (must be 1..4)"));
    assert_non_null(strstr(aellm_error_last(), path));
}

/* Every truncation and many single-byte corruptions of a valid file are
 * either read or refused with a message: never a crash (run under ASan). */
static void test_corruptions(void **state)
{
    (void)state;
    image *im = calloc(1, sizeof(*im)), *bad = malloc(sizeof(*bad));
    build_v2(im);
    const char *path = tmp_path("fuzz.gguf");
    /* the last 16 bytes are padding after the data: those cuts are readable */
    for (size_t n = 0; n + 16 < im->n; n++) {
        write_file(path, im->b, n);
        aellm_gguf *g;
        assert_true(aellm_gguf_open(&g, path) < 0);
        assert_true(strlen(aellm_error_last()) > 0);
    }
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 3000; i++) {
        *bad = *im;
        for (int k = 0; k < 1 + i % 3; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            bad->b[x % im->n] = (uint8_t)(x >> 32);
        }
        write_file(path, bad->b, bad->n);
        aellm_gguf *g = NULL;
        int rc = aellm_gguf_open(&g, path);
        assert_true(rc == 0 ? g != NULL : rc < 0 && g == NULL);
        aellm_gguf_free(g);
    }
    free(im);
    free(bad);
}

/* A vocabulary file written by llama.cpp's tools, read and copied through
 * the writer key by key, comes back byte for byte. */
static void test_llama_cpp_file(void **state)
{
    (void)state;
    const char *src = AELLM_DATA_DIR "/gguf-vocab/ggml-vocab-llama-spm.gguf";
    if (access(src, R_OK) != 0) {
        print_message("skip: %s not found\n", src);
        skip();
    }
    aellm_gguf *g;
    assert_int_equal(aellm_gguf_open(&g, src), 0);
    int64_t k = aellm_gguf_find_key(g, "tokenizer.ggml.tokens");
    assert_int_equal(aellm_gguf_arr_len(g, k), 32000);
    assert_string_equal(aellm_gguf_arr_str(g, k, 1, NULL), "<s>");
    uint32_t v;
    assert_int_equal(aellm_gguf_get_u32(g, "llama.rope.dimension_count", &v), 0);
    assert_int_equal(v, 128);
    aellm_gguf_writer *w;
    assert_int_equal(aellm_gguf_writer_new(&w), 0);
    for (int64_t i = 0; i < aellm_gguf_kv_count(g); i++)
        assert_int_equal(aellm_gguf_copy_kv(w, g, i), 0);
    const char *dst = tmp_path("vocab_copy.gguf");
    assert_int_equal(aellm_gguf_writer_write(w, dst), 0);
    aellm_gguf_writer_free(w);
    size_t n = aellm_gguf_file_size(g);
    uint8_t *a = malloc(n + 1);
    FILE *f = fopen(dst, "rb");
    assert_int_equal(fread(a, 1, n + 1, f), n);
    fclose(f);
    FILE *o = fopen(src, "rb");
    uint8_t *b = malloc(n);
    assert_int_equal(fread(b, 1, n, o), n);
    fclose(o);
    assert_memory_equal(a, b, n);
    free(a);
    free(b);
    aellm_gguf_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),      cmocka_unit_test(test_alignment_key),
        cmocka_unit_test(test_writer_rejects), cmocka_unit_test(test_failed_write),
        cmocka_unit_test(test_v2_and_copy),    cmocka_unit_test(test_good_base),
        cmocka_unit_test(test_malformed),      cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_bad_tensors),    cmocka_unit_test(test_bad_metadata),
        cmocka_unit_test(test_ndims_zero),     cmocka_unit_test(test_corruptions),
        cmocka_unit_test(test_llama_cpp_file), cmocka_unit_test(test_untrusted_sizes),
    };
    return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}

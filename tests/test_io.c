/*
 * test_io.c: the io layer against files written by PyTorch 1.13 and numpy
 * (tests/fixtures/io/, from tests/scripts/gen_io_fixtures.py, reference values in
 * expected.bin), round trips of our own writers, torch.load reading what we write (when
 * a Python with torch is at hand), hostile inputs built here byte by byte (each must give
 * an error, never a crash), and BEARD's real checkpoints and distilled sets in ../shared.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/io/file.h"
#include "../src/io/pickle.h"
#include "../src/io/safetensors.h"
#include "../src/io/torch_pt.h"
#include "harness.h"

#include <zip.h>

#define FIX "tests/fixtures/io/"

static Fixture F;

#define ref(...) fixture_getf(&F, __VA_ARGS__)

// dtype, shape and every value (as float32) of t against a reference
static void check_tensor(const char *what, const Tensor *t, DType dt, const FixTensor *r, double rtol) {
    if (!t || !r) {
        CHECK(0, "%s: missing tensor or reference", what);
        return;
    }
    CHECK(t->dtype == dt, "%s: dtype %s, want %s", what, dtype_name(t->dtype), dtype_name(dt));
    int same = t->ndim == r->ndim;
    for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == r->shape[d];
    char b[96];
    // fixture files store 0-dim tensors as shape [1] (numpy's ascontiguousarray)
    if (t->ndim == 0) same = r->n == 1 && r->ndim <= 1;
    CHECK(same, "%s: shape %s does not match the reference (%d dims)", what, tensor_shape_str(t, b, sizeof(b)), r->ndim);
    if (!same || t->numel != r->n) return;
    float *f = tensor_to_f32(t, NULL);
    check_close(what, f, r->data, t->numel, 0, rtol);
    xfree(f);
}

static const Tensor *tensor_at(const PickleValue *v) { return pickle_is(v, PICKLE_TENSOR) ? v->tensor : NULL; }

// ----------------------------------------------------------------------------
// files written by torch

static const struct {
    const char *name;
    DType dt;
} zip_tensors[] = {
    {"f32", DTYPE_F32},        {"f64", DTYPE_F64},       {"f16", DTYPE_F16},          {"bf16", DTYPE_BF16},
    {"i64", DTYPE_I64},        {"i32", DTYPE_I32},       {"i16", DTYPE_I16},          {"i8", DTYPE_I8},
    {"u8", DTYPE_U8},          {"bool", DTYPE_BOOL},     {"transposed", DTYPE_F32},   {"sliced", DTYPE_F32},
    {"stepped", DTYPE_F32},    {"shared_a", DTYPE_F32},  {"shared_b", DTYPE_F32},     {"expanded", DTYPE_F32},
    {"nd5", DTYPE_F32},        {"scalar", DTYPE_F32},    {"scalar_i64", DTYPE_I64},   {"empty", DTYPE_F32},
};
#define N_ZIP ((int)(sizeof(zip_tensors) / sizeof(zip_tensors[0])))

static void test_zip_dtypes(void) {
    PickleValue *root;
    Err e;
    if (torch_load(FIX "zip_dtypes.pt", &root, &e)) {
        CHECK(0, "zip_dtypes.pt: %s", e.msg);
        return;
    }
    CHECK(pickle_is(root, PICKLE_DICT) && pickle_len(root) == N_ZIP, "zip_dtypes.pt: not a dict of %d", N_ZIP);
    for (int i = 0; i < N_ZIP; i++) {
        char what[64];
        snprintf(what, sizeof(what), "zip %s", zip_tensors[i].name);
        check_tensor(what, tensor_at(pickle_dict_get(root, zip_tensors[i].name)), zip_tensors[i].dt,
                     ref("zip/%s", zip_tensors[i].name), zip_tensors[i].dt == DTYPE_F64 ? 1e-7 : 0);
    }
    // values that float32 cannot hold, checked in their own dtype
    const Tensor *t = tensor_at(pickle_dict_get(root, "f64"));
    CHECK(t && ((const double *)t->data)[1] == -1.75 / 3.0, "f64[0][1] is not exactly -1.75/3");
    t = tensor_at(pickle_dict_get(root, "i64"));
    CHECK(t && ((const int64_t *)t->data)[0] == -(INT64_C(1) << 40) && ((const int64_t *)t->data)[3] == INT64_C(1) << 33,
          "int64 extremes");
    t = tensor_at(pickle_dict_get(root, "scalar"));
    CHECK(t && t->ndim == 0 && t->numel == 1 && *(const float *)t->data == 3.25f, "0-dim tensor");
    t = tensor_at(pickle_dict_get(root, "empty"));
    CHECK(t && t->ndim == 2 && t->shape[0] == 0 && t->shape[1] == 3 && t->numel == 0, "empty tensor");
    pickle_free(root);
}

static void test_zip_nested(void) {
    PickleValue *root;
    Err e;
    if (torch_load(FIX "zip_nested.pt", &root, &e)) {
        CHECK(0, "zip_nested.pt: %s", e.msg);
        return;
    }
    const PickleValue *a = pickle_dict_get(root, "a");
    CHECK(pickle_is(a, PICKLE_LIST) && pickle_len(a) == 7, "'a' is a list of 7");
    if (pickle_len(a) == 7) {
        CHECK(pickle_is(a->items[0], PICKLE_INT) && a->items[0]->i == 1, "a[0] == 1");
        CHECK(pickle_is(a->items[1], PICKLE_FLOAT) && a->items[1]->f == 2.5, "a[1] == 2.5");
        CHECK(pickle_is(a->items[2], PICKLE_STR) && !strcmp(a->items[2]->s, "h\xc3\xa9llo"), "a[2] == 'h\\u00e9llo' in utf-8");
        CHECK(pickle_is(a->items[3], PICKLE_NONE), "a[3] is None");
        CHECK(pickle_is(a->items[4], PICKLE_BOOL) && a->items[4]->i == 1, "a[4] is True");
        CHECK(pickle_is(a->items[5], PICKLE_BOOL) && a->items[5]->i == 0, "a[5] is False");
        const PickleValue *tu = a->items[6];
        CHECK(pickle_is(tu, PICKLE_TUPLE) && tu->n == 2 && tu->items[0]->i == 3 && tu->items[1]->i == 4, "a[6] == (3, 4)");
    }
    const PickleValue *od = pickle_dict_get(root, "od");
    CHECK(pickle_is(od, PICKLE_DICT) && pickle_len(od) == 2 && pickle_is_str(od->items[0], "x"), "OrderedDict keeps order");
    const Tensor *y = tensor_at(pickle_dict_get(od, "y"));
    CHECK(y && y->dtype == DTYPE_I64 && y->numel == 3 && ((const int64_t *)y->data)[2] == 2, "od['y'] == arange(3)");
    double d;
    int64_t i;
    const PickleValue *v = pickle_dict_get(root, "np_f64");
    CHECK(pickle_as_double(v, &d, &e) == 0 && d == 0.125 && v->np == DTYPE_F64 + 1, "numpy float64 scalar");
    v = pickle_dict_get(root, "np_f32");
    CHECK(pickle_as_double(v, &d, &e) == 0 && d == 1.5 && v->np == DTYPE_F32 + 1, "numpy float32 scalar");
    v = pickle_dict_get(root, "np_i64");
    CHECK(pickle_as_int(v, &i, &e) == 0 && i == -3, "numpy int64 scalar");
    CHECK(pickle_as_int(pickle_dict_get(root, "big"), &i, &e) == 0 && i == INT64_C(1) << 40, "2**40");
    CHECK(pickle_as_int(pickle_dict_get(root, "neg"), &i, &e) == 0 && i == -5, "-5");
    v = pickle_dict_get(root, "huge");
    CHECK(pickle_is(v, PICKLE_BIGINT) && pickle_as_int(v, &i, &e) == -1 && strstr(e.msg, "64 bits"),
          "2**70 is a big int that refuses to become an int64");
    v = pickle_dict_get(root, "bytes");
    CHECK(pickle_is(v, PICKLE_BYTES) && v->len == 2 && (uint8_t)v->s[0] == 0 && (uint8_t)v->s[1] == 0xff, "bytes");
    CHECK(pickle_as_double(pickle_dict_get(root, "f"), &d, &e) == 0 && d == 1e-3, "1e-3");
    v = pickle_dict_get(root, "set");
    CHECK(pickle_is(v, PICKLE_SET) && v->n == 1 && v->items[0]->i == 7, "{7}");
    v = pickle_dict_get(pickle_dict_get(root, "nested"), "deep");
    v = pickle_item(pickle_item(v, 0), 0);
    CHECK(tensor_at(v) && v->tensor->numel == 2 && ((const float *)v->tensor->data)[1] == 1.0f, "nested['deep'][0][0]");
    v = pickle_dict_get(root, "arr");
    check_tensor("numpy int16 array", tensor_at(v), DTYPE_I16, ref("nested/arr"), 0);
    CHECK(v && v->np, "numpy array is marked as numpy");
    check_tensor("numpy Fortran-order array", tensor_at(pickle_dict_get(root, "farr")), DTYPE_F64, ref("nested/farr"), 0);
    CHECK(pickle_dict_get(root, "missing") == NULL, "absent key gives NULL");
    // the printer runs over everything (output discarded)
    FILE *null = fopen("/dev/null", "w");
    if (null) {
        pickle_print(null, root, 3);
        fclose(null);
    }
    pickle_free(root);
}

static void test_legacy(void) {
    PickleValue *root;
    Err e;
    if (torch_load(FIX "legacy.pt", &root, &e)) {
        CHECK(0, "legacy.pt: %s", e.msg);
        return;
    }
    check_tensor("legacy w", tensor_at(pickle_dict_get(root, "w")), DTYPE_F32, ref("legacy/w"), 0);
    check_tensor("legacy v (storage offset)", tensor_at(pickle_dict_get(root, "v")), DTYPE_F32, ref("legacy/v"), 0);
    check_tensor("legacy i", tensor_at(pickle_dict_get(root, "i")), DTYPE_I64, ref("legacy/i"), 0);
    check_tensor("legacy h", tensor_at(pickle_dict_get(root, "h")), DTYPE_F16, ref("legacy/h"), 0);
    check_tensor("legacy nested t()", tensor_at(pickle_item(pickle_dict_get(root, "nested"), 0)), DTYPE_F32,
                 ref("legacy/nested0"), 0);
    double acc;
    CHECK(pickle_as_double(pickle_dict_get(root, "acc"), &acc, &e) == 0 && acc == 0.75, "legacy acc");
    pickle_free(root);
}

static void test_plain(const char *file) {
    PickleValue *root;
    Err e;
    char path[256];
    snprintf(path, sizeof(path), FIX "%s", file);
    if (torch_load(path, &root, &e)) {
        CHECK(0, "%s: %s", file, e.msg);
        return;
    }
    CHECK(pickle_is(root, PICKLE_TUPLE) && pickle_len(root) == 3, "%s: a 3-tuple", file);
    static const DType dts[3] = {DTYPE_F32, DTYPE_I64, DTYPE_F32};
    for (size_t k = 0; k < 3; k++) {
        char what[96];
        snprintf(what, sizeof(what), "%s[%zu]", file, k);
        check_tensor(what, tensor_at(pickle_item(root, k)), dts[k], ref("plain/%zu", k), 0);
    }
    pickle_free(root);
    // the same file through the plain unpickler alone must refuse the torch blobs
    uint8_t *buf;
    size_t n;
    if (file_read_all(path, 1 << 20, &buf, &n, &e) == 0) {
        CHECK(pickle_loads(buf, n, NULL, &root, &e) == -1 && strstr(e.msg, "torch"),
              "%s without the torch loader: %s", file, e.msg);
        free(buf);
    }
}

static void test_state_dict(void) {
    TensorDict sd;
    Err e;
    tensordict_init(&sd);
    if (torch_load_state_dict(FIX "state_dict.pth", &sd, &e)) {
        CHECK(0, "state_dict.pth: %s", e.msg);
        return;
    }
    CHECK(sd.n == 4, "state_dict.pth: %d tensors, want 4 (epoch and best_acc skipped)", sd.n);
    static const char *names[] = {"conv.weight", "conv.bias", "bn.running_mean", "bn.num_batches_tracked"};
    for (int k = 0; k < 4; k++) {
        char what[64];
        snprintf(what, sizeof(what), "state_dict %s", names[k]);
        check_tensor(what, tensordict_get(&sd, names[k]), k == 3 ? DTYPE_I64 : DTYPE_F32, ref("sd/%s", names[k]), 0);
        CHECK(sd.n > k && !strncmp(sd.items[k].name, names[k], strlen(names[k])), "state_dict order: %s", names[k]);
    }
    const Tensor *nbt = tensordict_get(&sd, "bn.num_batches_tracked");
    CHECK(nbt && nbt->ndim == 0 && *(const int64_t *)nbt->data == 5, "num_batches_tracked is int64 scalar 5");
    tensordict_free(&sd);
    // things that are not state_dicts
    tensordict_init(&sd);
    CHECK(torch_load_state_dict(FIX "plain_p4.pkl", &sd, &e) == -1 && strstr(e.msg, "tuple"), "a tuple is no state_dict: %s", e.msg);
    CHECK(torch_load_state_dict(FIX "cifar10_py/batches.meta", &sd, &e) == -1 && strstr(e.msg, "no tensors"),
          "a dict without tensors is no state_dict: %s", e.msg);
    CHECK(torch_load_state_dict(FIX "does-not-exist.pth", &sd, &e) == -1, "missing file");
    CHECK(sd.n == 0, "failed loads add nothing");
    tensordict_free(&sd);
}

static void test_safetensors_fixture(void) {
    TensorDict sd;
    Err e;
    tensordict_init(&sd);
    if (safetensors_load(FIX "tensors.safetensors", &sd, &e)) {
        CHECK(0, "tensors.safetensors: %s", e.msg);
        return;
    }
    static const struct {
        const char *n;
        DType dt;
    } want[] = {{"a", DTYPE_F32}, {"b", DTYPE_I64}, {"c", DTYPE_U8}, {"d", DTYPE_BF16}, {"e", DTYPE_F64}};
    CHECK(sd.n == 5, "safetensors: %d tensors", sd.n);
    for (int k = 0; k < 5; k++) {
        char what[32];
        snprintf(what, sizeof(what), "safetensors %s", want[k].n);
        check_tensor(what, tensordict_get(&sd, want[k].n), want[k].dt, ref("st/%s", want[k].n), want[k].dt == DTYPE_F64 ? 1e-7 : 0);
    }
    const Tensor *b = tensordict_get(&sd, "b"), *ee = tensordict_get(&sd, "e");
    CHECK(b && ((const int64_t *)b->data)[0] == -(INT64_C(1) << 40), "safetensors int64 exact");
    CHECK(ee && ee->ndim == 0 && *(const double *)ee->data == 0.1, "safetensors float64 scalar exact");
    tensordict_free(&sd);
}

// ----------------------------------------------------------------------------
// round trips

static int same_tensor(const Tensor *a, const Tensor *b) {
    if (!a || !b || a->dtype != b->dtype || a->ndim != b->ndim || a->numel != b->numel) return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    return a->numel == 0 || !memcmp(a->data, b->data, tensor_nbytes(a));
}

static void check_same_dicts(const char *what, const TensorDict *a, const TensorDict *b) {
    CHECK(a->n == b->n, "%s: %d tensors came back, %d went in", what, b->n, a->n);
    for (int k = 0; k < a->n && k < b->n; k++) {
        CHECK(!strcmp(a->items[k].name, b->items[k].name), "%s: entry %d is '%s', want '%s'", what, k, b->items[k].name,
              a->items[k].name);
        CHECK(same_tensor(&a->items[k].t, &b->items[k].t), "%s: '%s' differs after the round trip", what, a->items[k].name);
    }
}

// every dtype, shape [] and [0, 3], views made contiguous, plus num_batches_tracked
static int load_all_fixture_tensors(TensorDict *sd, Err *e) {
    tensordict_init(sd);
    return torch_load_state_dict(FIX "zip_dtypes.pt", sd, e) || torch_load_state_dict(FIX "state_dict.pth", sd, e);
}

static void test_roundtrips(void) {
    TensorDict sd, back;
    Err e;
    if (load_all_fixture_tensors(&sd, &e)) {
        CHECK(0, "loading fixtures for the round trip: %s", e.msg);
        tensordict_free(&sd);
        return;
    }
    CHECK(sd.n == N_ZIP + 4, "fixture tensors: %d", sd.n);
    const char *pth = test_tmp("roundtrip.pth"), *st = test_tmp("roundtrip.safetensors");
    tensordict_init(&back);
    CHECK(torch_save_state_dict(pth, &sd, &e) == 0, "torch_save_state_dict: %s", e.msg);
    CHECK(torch_load_state_dict(pth, &back, &e) == 0, "reading our .pth back: %s", e.msg);
    check_same_dicts(".pth round trip", &sd, &back);
    tensordict_free(&back);
    tensordict_init(&back);
    CHECK(safetensors_save(st, &sd, &e) == 0, "safetensors_save: %s", e.msg);
    CHECK(safetensors_load(st, &back, &e) == 0, "reading our .safetensors back: %s", e.msg);
    check_same_dicts(".safetensors round trip", &sd, &back);
    tensordict_free(&back);

    // torch.load must read our .pth and find exactly torch's own tensors
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
        test_skip("torch.load interop (no /usr/bin/python3 with torch)");
    } else {
        char cmd[2048];
        snprintf(cmd, sizeof(cmd),
                 "/usr/bin/python3 -c \"\n"
                 "import sys, collections, torch\n"
                 "ours = torch.load(sys.argv[1])\n"
                 "want = collections.OrderedDict(torch.load('" FIX "zip_dtypes.pt'))\n"
                 "for k, v in torch.load('" FIX "state_dict.pth')['state_dict'].items(): want[k[len('module.'):]] = v\n"
                 "assert isinstance(ours, collections.OrderedDict), type(ours)\n"
                 "assert list(ours) == list(want), (list(ours), list(want))\n"
                 "for k in want:\n"
                 "    a, b = ours[k], want[k]\n"
                 "    assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), k\n"
                 "assert ours['bn.num_batches_tracked'].dim() == 0\n"
                 "strict = torch.load(sys.argv[1], weights_only=True)\n"
                 "assert all(torch.equal(strict[k], want[k]) for k in want)\n"
                 "\" %s",
                 pth);
        CHECK(system(cmd) == 0, "torch.load of beard's .pth does not give back torch's tensors");
    }
    remove(pth);
    remove(st);
    tensordict_free(&sd);
}

// a valid .pth whose records are then replaced, removed or compressed with libzip
// object trees written by torch_save_obj (zip) and pickle_dump_obj (plain pickle) read
// back: the res_*.pt and .pkl layouts of the distillation stage, plus every scalar kind
static void test_object_writers(void) {
    Err e;
    Tensor x, y, a;
    int64_t sx[4] = {2, 3, 2, 2}, sy[1] = {2};
    tensor_init(&x, DTYPE_F32, 4, sx, &e);
    tensor_init(&y, DTYPE_I64, 1, sy, &e);
    tensor_init(&a, DTYPE_F64, 0, NULL, &e);
    for (size_t i = 0; i < x.numel; i++) ((float *)x.data)[i] = (float)i * 0.5f - 3.0f;
    ((int64_t *)y.data)[0] = 7, ((int64_t *)y.data)[1] = -1;
    ((double *)a.data)[0] = 0.6125;
    TorchObj *root = tobj_dict(), *data = tobj_list(), *pair = tobj_list(), *accs = tobj_dict(), *l = tobj_list();
    int bad = tobj_append(pair, tobj_tensor(&x)) | tobj_append(pair, tobj_tensor(&y)) | tobj_append(data, pair) |
              tobj_set(root, "data", data) | tobj_append(l, tobj_tensor(&a)) | tobj_append(l, tobj_float(-2.5e-7)) |
              tobj_set(accs, "ConvNet", l) | tobj_set(root, "accs_all_exps", accs) | tobj_set(root, "n", tobj_int(-70000)) |
              tobj_set(root, "big", tobj_int((int64_t)1 << 40)) | tobj_set(root, "t", tobj_bool(1)) |
              tobj_set(root, "none", tobj_none()) | tobj_set(root, "name", tobj_str("DM")) |
              tobj_set(root, "empty", tobj_list());
    CHECK(!bad, "building the tree");
    CHECK(tobj_append(root, tobj_int(1)) == -1 && tobj_set(l, "k", tobj_int(1)) == -1 && tobj_append(NULL, NULL) == -1,
          "wrong container kinds are refused");
    const char *pt = test_tmp("obj.pt"), *pkl = test_tmp("obj.pkl");
    for (int pass = 0; pass < 2; pass++) {
        const char *path = pass ? pkl : pt;
        TorchObj *top = root;
        if (pass) { // (images, labels) as IDM writes it
            top = tobj_tuple();
            tobj_append(top, tobj_tensor(&x));
            tobj_append(top, tobj_tensor(&y));
        }
        int rc = pass ? pickle_dump_obj(path, top, &e) : torch_save_obj(path, top, &e);
        CHECK(rc == 0, "writing %s: %s", path, e.msg);
        if (pass) tobj_free(top);
        PickleValue *v;
        if (rc || torch_load(path, &v, &e)) {
            CHECK(0, "reading %s back: %s", path, e.msg);
            continue;
        }
        const PickleValue *px = pass ? pickle_item(v, 0) : pickle_item(pickle_item(pickle_dict_get(v, "data"), 0), 0);
        const PickleValue *py = pass ? pickle_item(v, 1) : pickle_item(pickle_item(pickle_dict_get(v, "data"), 0), 1);
        CHECK(pickle_is(px, PICKLE_TENSOR) && px->tensor->ndim == 4 && px->tensor->shape[1] == 3 &&
                  !memcmp(px->tensor->data, x.data, tensor_nbytes(&x)),
              "%s: images back", path);
        CHECK(pickle_is(py, PICKLE_TENSOR) && py->tensor->dtype == DTYPE_I64 && ((int64_t *)py->tensor->data)[0] == 7 &&
                  ((int64_t *)py->tensor->data)[1] == -1,
              "%s: labels back", path);
        if (!pass) {
            const PickleValue *al = pickle_dict_get(pickle_dict_get(v, "accs_all_exps"), "ConvNet");
            double d = 0;
            int64_t n = 0, big = 0;
            CHECK(pickle_len(al) == 2 && pickle_is(pickle_item(al, 0), PICKLE_TENSOR) &&
                      ((double *)pickle_item(al, 0)->tensor->data)[0] == 0.6125 &&
                      pickle_as_double(pickle_item(al, 1), &d, &e) == 0 && d == -2.5e-7,
                  "accs_all_exps back");
            CHECK(pickle_as_int(pickle_dict_get(v, "n"), &n, &e) == 0 && n == -70000 &&
                      pickle_as_int(pickle_dict_get(v, "big"), &big, &e) == 0 && big == (int64_t)1 << 40,
                  "ints back");
            CHECK(pickle_is(pickle_dict_get(v, "t"), PICKLE_BOOL) && pickle_is(pickle_dict_get(v, "none"), PICKLE_NONE) &&
                      pickle_is_str(pickle_dict_get(v, "name"), "DM") && pickle_len(pickle_dict_get(v, "empty")) == 0,
                  "bool, None, str, empty list back");
        }
        pickle_free(v);
    }
    tobj_free(root);
    tensor_free(&x), tensor_free(&y), tensor_free(&a);
    remove(pt), remove(pkl);
}

static void test_zip_records(void) {
    TensorDict sd, back;
    Err e;
    tensordict_init(&sd);
    if (torch_load_state_dict(FIX "state_dict.pth", &sd, &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
    const char *path = test_tmp("records.pth");
    static const struct {
        const char *what, *entry, *needle;
        int action; // 0: replace with 3 bytes, 1: delete, 2: deflate everything (must load)
    } cases[] = {
        {"storage record shorter than its storage", "archive/data/0", "needs", 0},
        {"storage record missing", "archive/data/1", "no record", 1},
        {"data.pkl missing", "archive/data.pkl", "no data.pkl", 1},
        {"data.pkl cut short", "archive/data.pkl", "truncated", 0},
        {"deflated records", NULL, NULL, 2},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        if (torch_save_state_dict(path, &sd, &e)) {
            CHECK(0, "%s", e.msg);
            break;
        }
        int zerr;
        zip_t *za = zip_open(path, 0, &zerr);
        if (!za) {
            CHECK(0, "libzip cannot reopen %s", path);
            break;
        }
        zip_int64_t idx = cases[k].entry ? zip_name_locate(za, cases[k].entry, 0) : -1;
        if (cases[k].action == 0) {
            zip_source_t *src = zip_source_buffer(za, "\x80\x02K", 3, 0);
            CHECK(idx >= 0 && src && zip_file_replace(za, (zip_uint64_t)idx, src, 0) == 0, "replacing %s", cases[k].entry);
        } else if (cases[k].action == 1) {
            CHECK(idx >= 0 && zip_delete(za, (zip_uint64_t)idx) == 0, "deleting %s", cases[k].entry);
        } else {
            for (zip_int64_t i = 0; i < zip_get_num_entries(za, 0); i++)
                zip_set_file_compression(za, (zip_uint64_t)i, ZIP_CM_DEFLATE, 9);
        }
        CHECK(zip_close(za) == 0, "rewriting %s", path);
        tensordict_init(&back);
        int rc = torch_load_state_dict(path, &back, &e);
        if (cases[k].action == 2) {
            CHECK(rc == 0, "%s: %s", cases[k].what, e.msg);
            check_same_dicts(cases[k].what, &sd, &back);
        } else {
            CHECK(rc == -1 && strstr(e.msg, cases[k].needle), "%s: rc %d, '%s' (want '%s')", cases[k].what, rc, e.msg,
                  cases[k].needle);
        }
        tensordict_free(&back);
    }
    remove(path);
    tensordict_free(&sd);
}

// ----------------------------------------------------------------------------
// hostile inputs

// loads through the plain unpickler; the call must fail and say something
static void expect_pickle_error(const char *what, const void *buf, size_t n, const char *needle) {
    PickleValue *v = NULL;
    Err e = {{0}};
    int rc = pickle_loads(buf, n, NULL, &v, &e);
    CHECK(rc == -1 && v == NULL && e.msg[0], "%s: should fail (rc %d)", what, rc);
    if (needle) CHECK(strstr(e.msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, e.msg, needle);
    if (rc == 0) pickle_free(v);
}

static void expect_torch_error(const char *what, const void *buf, size_t n, const char *needle) {
    PickleValue *v = NULL;
    Err e = {{0}};
    int rc = torch_loads(buf, n, &v, &e);
    CHECK(rc == -1 && v == NULL && e.msg[0], "%s: should fail (rc %d)", what, rc);
    if (needle) CHECK(strstr(e.msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, e.msg, needle);
    if (rc == 0) pickle_free(v);
}

#define P(s) (const uint8_t *)(s), sizeof(s) - 1

static void test_hostile_globals(void) {
    expect_pickle_error("os.system via GLOBAL", P("\x80\x02" "cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03."),
                        "disallowed global 'os.system' in pickle");
    expect_pickle_error("os.system via STACK_GLOBAL",
                        P("\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x02ls\x85R."), "disallowed global 'os.system'");
    expect_pickle_error("builtins.eval", P("cbuiltins\neval\n(S'1'\ntR."), "disallowed global 'builtins.eval'");
    expect_pickle_error("subprocess.Popen via INST", P("(S'ls'\nisubprocess\nPopen\n."), "subprocess.Popen");
    expect_pickle_error("__builtin__.getattr", P("c__builtin__\ngetattr\n."), "disallowed global");
    expect_pickle_error("torch module lookalike", P("ctorch\nload\n."), "disallowed global 'torch.load'");
    expect_pickle_error("non-printable module name", P("c\x01\x02\nx\n."), "disallowed global '??.x'");
    // allowed globals may not be called in ways they do not support
    expect_pickle_error("REDUCE on a list", P("\x80\x02])R."), "not an allowed callable");
    expect_pickle_error("REDUCE on an int", P("\x80\x02K\x05)R."), "not an allowed callable");
    expect_pickle_error("calling a storage type", P("\x80\x02" "ctorch\nFloatStorage\n)R."), "cannot be called");
    expect_pickle_error("calling numpy.ndarray", P("\x80\x02" "cnumpy\nndarray\n)R."), "cannot be called");
    expect_pickle_error("REDUCE with non-tuple args", P("\x80\x02" "ccollections\nOrderedDict\n]R."), "not a tuple");
    expect_pickle_error("NEWOBJ of a storage type", P("\x80\x02" "ctorch\nFloatStorage\n)\x81."), "not allowed");
    expect_pickle_error("_load_from_bytes without the torch loader",
                        P("\x80\x02" "ctorch.storage\n_load_from_bytes\nC\x01x\x85R."), "torch loader");
    expect_pickle_error("persistent id in a plain pickle", P("\x80\x02K\x01Q."), "persistent id");
    expect_pickle_error("_rebuild_tensor_v2 on a non-storage",
                        P("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n(K\x00K\x00)))\x89}t" "R."), "not a storage");
    expect_pickle_error("extension registry", P("\x80\x02\x82\x01."), "extension");
    expect_pickle_error("out-of-band buffer", P("\x80\x05\x97."), "out-of-band");
    expect_pickle_error("numpy scalar with wrong byte count",
                        P("\x80\x02" "cnumpy.core.multiarray\nscalar\ncnumpy\ndtype\nX\x02\x00\x00\x00" "f8\x89\x88\x87R"
                          "C\x03xyz\x86R."),
                        "numpy scalar");
    expect_pickle_error("numpy array with too little data",
                        P("\x80\x02" "cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" "C\x01" "b\x87R"
                          "(K\x01K\x04\x85" "cnumpy\ndtype\nX\x02\x00\x00\x00" "f4\x89\x88\x87R(K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
                          "\x89" "C\x04" "abcdtb."),
                        "bytes of data");
    expect_pickle_error("object-dtype numpy array",
                        P("\x80\x02" "cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" "C\x01" "b\x87R"
                          "(K\x01K\x01\x85" "cnumpy\ndtype\nX\x02\x00\x00\x00" "O8\x89\x88\x87R(K\x03X\x01\x00\x00\x00"
                          "|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x3f" "tb\x89]K\x01" "atb."),
                        "numpy dtype 'O8' is not supported");
}

static void test_hostile_lengths(void) {
    expect_pickle_error("BINUNICODE claiming 4 GB", P("\x80\x02X\xff\xff\xff\xff" "abc."), "truncated");
    expect_pickle_error("BINBYTES8 claiming 2^63", P("\x80\x04\x8e\x00\x00\x00\x00\x00\x00\x00\x80" "abc."), "truncated");
    expect_pickle_error("BINUNICODE8 claiming 2^64-1", P("\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\xff."), "truncated");
    expect_pickle_error("LONG4 claiming 2 GB", P("\x80\x02\x8b\xff\xff\xff\x7f\x01."), "truncated");
    expect_pickle_error("LONG4 negative length", P("\x80\x02\x8b\xff\xff\xff\xff\x01."), "negative");
    expect_pickle_error("BINSTRING negative length", P("T\xff\xff\xff\xff" "abc."), "negative");
    expect_pickle_error("FRAME past the end", P("\x80\x04\x95\x00\x00\x00\x00\x01\x00\x00\x00N."), "frame");
    expect_pickle_error("LONG_BINPUT at 4 billion", P("\x80\x02Nr\xff\xff\xff\xff."), "memo index");
    expect_pickle_error("LONG_BINGET of an unset slot", P("\x80\x02j\x05\x00\x00\x00."), "memo entry");
    expect_pickle_error("text GET of a huge index", P("g99999999999999999999\n."), "memo index");
    expect_pickle_error("protocol 6", P("\x80\x06N."), "protocol 6");
    expect_pickle_error("unknown opcode", P("\x80\x02\xff."), "unknown pickle opcode 0xff");
    expect_pickle_error("empty input", "", 0, "empty");
    expect_pickle_error("no STOP", P("\x80\x02N"), "STOP");
    expect_pickle_error("STOP on an empty stack", P("\x80\x02."), "underflow");
    expect_pickle_error("APPEND to an int", P("\x80\x02K\x01K\x02" "a."), "APPEND");
    expect_pickle_error("SETITEM on a list", P("\x80\x02]K\x01K\x02s."), "SETITEM");
    expect_pickle_error("SETITEMS with an odd count", P("\x80\x02}(K\x01u."), "odd");
    expect_pickle_error("TUPLE without MARK", P("\x80\x02K\x01t."), "MARK");
    expect_pickle_error("TUPLE3 on two items", P("\x80\x02K\x01K\x02\x87."), "underflow");
    expect_pickle_error("pop below the mark", P("\x80\x02K\x01(\x85."), "underflow");
    expect_pickle_error("bad INT text", P("I12x\n."), "integer");
    char many[5000 + 4] = "I";
    memset(many + 1, '9', 5000);
    memcpy(many + 5001, "\n.", 3);
    expect_pickle_error("INT text with 5000 digits", many, strlen(many), "too large");
    expect_pickle_error("bad FLOAT text", P("F1.5q\n."), "FLOAT");
    expect_pickle_error("unterminated text line", P("I123"), "text line");
    expect_pickle_error("STRING without quotes", P("Sabc\n."), "quoted");
}

// protocol 0 integers of any size, as Python writes them
static void test_text_ints(void) {
    PickleValue *v;
    Err e;
    int64_t i;
    CHECK(pickle_loads(P("I-9223372036854775808\n."), NULL, &v, &e) == 0 && pickle_as_int(v, &i, &e) == 0 &&
              i == INT64_MIN,
          "INT64_MIN as text");
    pickle_free(v);
    static const uint8_t two70[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0x40}, mtwo64[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff};
    CHECK(pickle_loads(P("L1180591620717411303424L\n."), NULL, &v, &e) == 0 && pickle_is(v, PICKLE_BIGINT) &&
              v->len == 9 && !memcmp(v->s, two70, 9),
          "2**70 as text is the same big int LONG1 gives");
    pickle_free(v);
    CHECK(pickle_loads(P("L-18446744073709551616L\n."), NULL, &v, &e) == 0 && pickle_is(v, PICKLE_BIGINT) &&
              v->len == 9 && !memcmp(v->s, mtwo64, 9),
          "-2**64 as text");
    pickle_free(v);
    CHECK(pickle_loads(P("I99999999999999999999\n."), NULL, &v, &e) == 0 && pickle_is(v, PICKLE_BIGINT) &&
              pickle_as_int(v, &i, &e) == -1,
          "INT text beyond int64 is a big int");
    pickle_free(v);
    CHECK(pickle_loads(P("L-5L\n."), NULL, &v, &e) == 0 && pickle_as_int(v, &i, &e) == 0 && i == -5, "-5L");
    pickle_free(v);
}

static void test_hostile_nesting(void) {
    enum { N = 100000 };
    uint8_t *buf = malloc(3 * (size_t)N + 8);
    // N nested lists: ]]]...]aaa...a.
    size_t k = 0;
    buf[k++] = 0x80, buf[k++] = 2;
    for (int i = 0; i < N; i++) buf[k++] = ']';
    for (int i = 0; i < N - 1; i++) buf[k++] = 'a';
    buf[k++] = '.';
    expect_pickle_error("100000 nested lists", buf, k, "deeper");
    // N nested tuples via MARK ... TUPLE
    k = 0;
    for (int i = 0; i < N; i++) buf[k++] = '(';
    for (int i = 0; i < N; i++) buf[k++] = 't';
    buf[k++] = '.';
    expect_pickle_error("100000 nested tuples", buf, k, "deeper");
    // a million marks and nothing else
    k = 0;
    for (int i = 0; i < N; i++) buf[k++] = '(';
    buf[k++] = '.';
    expect_pickle_error("100000 marks", buf, k, "underflow");
    // a list appended to itself 300 times: a cycle that keeps getting deeper
    k = 0;
    buf[k++] = 0x80, buf[k++] = 2, buf[k++] = ']', buf[k++] = 'q', buf[k++] = 0;
    for (int i = 0; i < 300; i++) buf[k++] = 'h', buf[k++] = 0, buf[k++] = 'a';
    buf[k++] = '.';
    expect_pickle_error("self-appended list", buf, k, "deeper");
    free(buf);

    // a list that contains itself once loads, prints and frees without trouble
    PickleValue *v;
    Err e;
    CHECK(pickle_loads(P("\x80\x02]q\x00h\x00" "a."), NULL, &v, &e) == 0, "cyclic list: %s", e.msg);
    FILE *null = fopen("/dev/null", "w");
    if (v && null) pickle_print(null, v, 20);
    pickle_free(v);
    // 200 levels of (x, x) share every subtree: 2^200 paths; the printer must stop
    uint8_t dag[2 + 1 + 400 + 1];
    k = 0;
    dag[k++] = 0x80, dag[k++] = 2, dag[k++] = ']';
    for (int i = 0; i < 200; i++) dag[k++] = '2', dag[k++] = 0x86;
    dag[k++] = '.';
    CHECK(pickle_loads(dag, k, NULL, &v, &e) == 0, "shared-subtree tuple: %s", e.msg);
    double t0 = time_now();
    if (v && null) pickle_print(null, v, 20);
    CHECK(time_now() - t0 < 10, "printing a shared-subtree tree takes %.1f s", time_now() - t0);
    pickle_free(v);
    if (null) fclose(null);
}

// ---- a hand-written legacy torch.save blob with one storage and one tensor

typedef struct {
    uint8_t b[4096];
    size_t n;
} Blob;

static void bput(Blob *b, const void *p, size_t k) {
    memcpy(b->b + b->n, p, k);
    b->n += k;
}
static void bstr(Blob *b, const char *s) { bput(b, s, strlen(s)); }
static void bint(Blob *b, int64_t v) {
    uint8_t h[5] = {'J'};
    uint32_t u = (uint32_t)(int32_t)v;
    for (int k = 0; k < 4; k++) h[1 + k] = (uint8_t)(u >> (8 * k));
    bput(b, h, 5);
}
static void bunicode(Blob *b, const char *s) {
    uint8_t h[5] = {'X', (uint8_t)strlen(s), 0, 0, 0};
    bput(b, h, 5);
    bstr(b, s);
}
static void btuple(Blob *b, int n, const int64_t *v) {
    bstr(b, "(");
    for (int k = 0; k < n; k++) bint(b, v[k]);
    bstr(b, "t");
}

// storage of numel float32 (values 0, 1, 2, ...), data_numel claimed in the data section
static void make_legacy(Blob *b, int64_t numel, int64_t offset, int ndim, const int64_t *shape, const int64_t *stride,
                        int64_t data_numel, int64_t data_floats) {
    b->n = 0;
    bstr(b, "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.");
    bstr(b, "\x80\x02M\xe9\x03.");
    bstr(b, "\x80\x02}(");
    bunicode(b, "little_endian");
    bstr(b, "\x88u.");
    bstr(b, "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((");
    bunicode(b, "storage");
    bstr(b, "ctorch\nFloatStorage\n");
    bunicode(b, "k0");
    bunicode(b, "cpu");
    bint(b, numel);
    bstr(b, "NtQ");
    bint(b, offset);
    btuple(b, ndim, shape);
    btuple(b, ndim, stride);
    bstr(b, "\x89" "ccollections\nOrderedDict\n)RtR.");
    bstr(b, "\x80\x02]");
    bunicode(b, "k0");
    bstr(b, "a.");
    for (int k = 0; k < 8; k++) b->b[b->n++] = (uint8_t)((uint64_t)data_numel >> (8 * k));
    for (int64_t i = 0; i < data_floats; i++) {
        float f = (float)i;
        bput(b, &f, 4);
    }
}

static void test_hostile_tensors(void) {
    Blob b;
    PickleValue *v;
    Err e;
    // positive control: a (2, 2) view with strides (1, 2) of a 4-element storage is fine
    int64_t s22[2] = {2, 2}, st12[2] = {1, 2};
    make_legacy(&b, 4, 0, 2, s22, st12, 4, 4);
    CHECK(torch_loads(b.b, b.n, &v, &e) == 0, "hand-made legacy blob: %s", e.msg);
    if (v && v->tensor) {
        const float *f = v->tensor->data;
        CHECK(v->tensor->numel == 4 && f[0] == 0 && f[1] == 2 && f[2] == 1 && f[3] == 3, "transposed view values");
        pickle_free(v);
    }
    // a size-1 dimension may have any stride, even one that would overflow when stepped
    int64_t s1[1] = {1}, huge[1] = {INT64_C(1) << 62};
    make_legacy(&b, 4, 3, 1, s1, huge, 4, 4);
    CHECK(torch_loads(b.b, b.n, &v, &e) == 0 && v->tensor && *(const float *)v->tensor->data == 3.0f,
          "size-1 dim with a huge stride: %s", e.msg);
    pickle_free(v);

    int64_t s10[1] = {10}, one[1] = {1}, two[1] = {2}, s3[1] = {3}, s2[1] = {2};
    make_legacy(&b, 4, 0, 1, s10, one, 4, 4);
    expect_torch_error("10 elements from a 4-element storage", b.b, b.n, "past its storage");
    make_legacy(&b, 4, 3, 1, s2, one, 4, 4);
    expect_torch_error("offset 3 + 2 elements", b.b, b.n, "past its storage");
    make_legacy(&b, 4, 0, 1, s3, two, 4, 4);
    expect_torch_error("stride 2 x 3 elements", b.b, b.n, "past its storage");
    make_legacy(&b, 4, INT64_C(2147483647), 1, s1, one, 4, 4);
    expect_torch_error("offset 2^31-1", b.b, b.n, "past its storage");
    int64_t big2[2] = {INT64_C(1) << 30, INT64_C(1) << 30}, bst[2] = {1, 1};
    make_legacy(&b, 4, 0, 2, big2, bst, 4, 4);
    expect_torch_error("a 2^60-element view", b.b, b.n, NULL);
    make_legacy(&b, 4, 0, 1, s2, one, 5, 4);
    expect_torch_error("storage count differs from its persistent id", b.b, b.n, "elements");
    make_legacy(&b, 4, 0, 1, s2, one, 4, 3);
    expect_torch_error("storage bytes cut short", b.b, b.n, "truncated");
    make_legacy(&b, INT64_C(2000000000), 0, 1, s2, one, 4, 4);
    expect_torch_error("storage claiming 8 GB", b.b, b.n, "more memory");
    // every truncation of a valid legacy blob fails cleanly
    make_legacy(&b, 4, 0, 2, s22, st12, 4, 4);
    int bad = 0;
    for (size_t cut = 0; cut < b.n; cut++) {
        int rc = torch_loads(b.b, cut, &v, &e);
        if (rc == 0) {
            pickle_free(v);
            bad++;
        }
    }
    CHECK(bad == 0, "%d truncations of a legacy blob loaded anyway", bad);
}

static void test_hostile_files(void) {
    uint8_t *zip, *pkl;
    size_t nz, np;
    Err e;
    if (file_read_all(FIX "zip_dtypes.pt", 1 << 20, &zip, &nz, &e) ||
        file_read_all(FIX "cifar10_py2/test_batch", 1 << 20, &pkl, &np, &e)) {
        CHECK(0, "reading fixtures: %s", e.msg);
        return;
    }
    PickleValue *v;
    int loaded = 0;
    for (size_t cut = 0; cut < nz; cut += 37) {
        if (torch_loads(zip, cut, &v, &e) == 0) {
            loaded++;
            pickle_free(v);
        }
    }
    CHECK(loaded == 0, "%d truncated zips loaded", loaded);
    // a truncated zip on disk, through libzip's file reader
    const char *tmp = test_tmp("truncated.pt");
    CHECK(file_write_all(tmp, zip, nz / 2, &e) == 0, "writing %s", tmp);
    CHECK(torch_load(tmp, &v, &e) == -1 && strstr(e.msg, tmp), "truncated zip file: %s", e.msg);
    remove(tmp);
    // a zip whose records are all there but one storage is corrupted (bytes flipped in the
    // central directory or a local header): loads fail or succeed, never crash
    for (size_t at = 0; at < nz; at += 29) {
        uint8_t save = zip[at];
        zip[at] ^= 0x5a;
        if (torch_loads(zip, nz, &v, &e) == 0) pickle_free(v);
        zip[at] = save;
    }
    // every truncation of a Python 2 CIFAR batch fails; corrupting bytes never crashes
    loaded = 0;
    for (size_t cut = 0; cut < np; cut += 7) {
        if (pickle_loads(pkl, cut, NULL, &v, &e) == 0) {
            loaded++;
            pickle_free(v);
        }
    }
    CHECK(loaded == 0, "%d truncated pickles loaded", loaded);
    for (size_t at = 0; at < 400 && at < np; at++) {
        for (int x = 1; x < 256; x += 51) {
            uint8_t save = pkl[at];
            pkl[at] = (uint8_t)(save ^ x);
            if (pickle_loads(pkl, np, NULL, &v, &e) == 0) pickle_free(v);
            pkl[at] = save;
        }
    }
    free(zip);
    free(pkl);
}

static void test_hostile_safetensors(void) {
    uint8_t *good;
    size_t n;
    Err e;
    if (file_read_all(FIX "tensors.safetensors", 1 << 20, &good, &n, &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
    TensorDict sd;
    static const struct {
        const char *json, *needle;
        size_t data;
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", NULL, 8}, // positive control
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "bytes for", 8},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", "past the", 8},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", "overlap", 8},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "unused", 8},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "trailing", 8},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", "data_offsets", 8},
        {"{\"a\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[0,8]}}", "dtype", 8},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "shape", 8},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", "shape", 8},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", NULL, 8},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", "dimensions", 4},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", "lacks", 8},
        {"{\"a\":[1,2]}", "lacks", 8},
        {"{\"__metadata__\":[1]}", "__metadata__", 0},
        {"{\"a\":", "JSON", 0},
        {"[1,2]", "object", 0},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        uint8_t buf[512] = {0};
        size_t hl = strlen(cases[k].json);
        for (int j = 0; j < 8; j++) buf[j] = (uint8_t)((uint64_t)hl >> (8 * j));
        memcpy(buf + 8, cases[k].json, hl);
        tensordict_init(&sd);
        Err err = {{0}};
        int rc = safetensors_loads(buf, 8 + hl + cases[k].data, &sd, &err);
        if (k == 0) {
            CHECK(rc == 0 && sd.n == 1, "safetensors control case: %s", err.msg);
        } else {
            CHECK(rc == -1 && err.msg[0], "safetensors case %zu should fail: %s", k, cases[k].json);
            if (cases[k].needle)
                CHECK(strstr(err.msg, cases[k].needle) != NULL, "safetensors case %zu: '%s' lacks '%s'", k, err.msg, cases[k].needle);
        }
        tensordict_free(&sd);
    }
    // header length beyond the file, and every truncation of the fixture
    uint8_t big[16] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    tensordict_init(&sd);
    CHECK(safetensors_loads(big, sizeof(big), &sd, &e) == -1 && strstr(e.msg, "exceeds"), "header past the end: %s", e.msg);
    int loaded = 0;
    for (size_t cut = 0; cut < n; cut++) {
        if (safetensors_loads(good, cut, &sd, &e) == 0) loaded++;
        tensordict_free(&sd);
        tensordict_init(&sd);
    }
    CHECK(loaded == 0, "%d truncated safetensors loaded", loaded);
    tensordict_free(&sd);
    free(good);
}

// ----------------------------------------------------------------------------
// BEARD's own files

static void test_model_pool(void) {
    static const struct {
        const char *file;
        double wsum; // sum of classifier.weight in float64, from torch
    } pool[] = {
        {"BACON_ConvNet_CIFAR10_50_None_0.6995.pth", -1.8110590134324411},
        {"DC_ConvNet_CIFAR10_50_None.pth", 0.3206059350027317},
        {"DM_ConvNet_CIFAR10_50_None.pth", -3.065857973928587},
        {"DSA_ConvNet_CIFAR10_50_None_0.6048.pth", 1.0716697512270912},
        {"IDM_ConvNet_CIFAR10_50_None_0.6691.pth", -0.673355105764017},
        {"MTT_ConvNet_CIFAR10_50_None_0.6966.pth", -1.9531996469372643},
    };
    if (!shared_path("beard/model_pool", "BEARD model pool checkpoints")) return;
    for (size_t k = 0; k < sizeof(pool) / sizeof(pool[0]); k++) {
        char rel[256];
        snprintf(rel, sizeof(rel), "beard/model_pool/%s", pool[k].file);
        const char *path = shared_path(rel, pool[k].file);
        if (!path) continue;
        TensorDict sd;
        Err e;
        tensordict_init(&sd);
        if (torch_load_state_dict(path, &sd, &e)) {
            CHECK(0, "%s", e.msg);
            continue;
        }
        CHECK(sd.n == 14, "%s: %d tensors, want 14", pool[k].file, sd.n);
        const Tensor *w0 = tensordict_get(&sd, "features.0.weight"), *fc = tensordict_get(&sd, "classifier.weight");
        CHECK(w0 && w0->dtype == DTYPE_F32 && w0->ndim == 4 && w0->shape[0] == 128 && w0->shape[1] == 3 &&
                  w0->shape[2] == 3 && w0->shape[3] == 3,
              "%s: features.0.weight is not float32 [128, 3, 3, 3]", pool[k].file);
        CHECK(fc && fc->ndim == 2 && fc->shape[0] == 10 && fc->shape[1] == 2048, "%s: classifier.weight is not [10, 2048]", pool[k].file);
        if (fc && fc->numel == 20480) {
            double s = 0;
            for (size_t i = 0; i < fc->numel; i++) s += ((const float *)fc->data)[i];
            CHECK(fabs(s - pool[k].wsum) < 1e-9, "%s: classifier.weight sums to %.15g, torch says %.15g", pool[k].file, s, pool[k].wsum);
        }
        if (k == 1 && w0) {
            const float *f = w0->data;
            CHECK(f[0] == 0x1.4a361ep-4f && f[1] == -0x1.95b54ep-6f && f[2] == -0x1.6b3fa6p-4f, "DC features.0.weight values");
        }
        tensordict_free(&sd);
    }
}

static const Tensor *check_images_labels(const char *what, const PickleValue *pair, int64_t n) {
    const Tensor *im = tensor_at(pickle_item(pair, 0)), *lb = tensor_at(pickle_item(pair, 1));
    CHECK(pickle_len(pair) == 2 && im && lb, "%s: not [images, labels]", what);
    if (!im || !lb) return NULL;
    CHECK(im->dtype == DTYPE_F32 && im->ndim == 4 && im->shape[0] == n && im->shape[1] == 3 && im->shape[2] == 32 &&
              im->shape[3] == 32,
          "%s: images are not float32 (%lld, 3, 32, 32)", what, (long long)n);
    CHECK(lb->dtype == DTYPE_I64 && lb->ndim == 1 && lb->shape[0] == n, "%s: labels are not int64 (%lld)", what, (long long)n);
    return im;
}

static void test_dataset_pool(void) {
    if (!shared_path("beard/dataset_pool", "BEARD dataset pool")) return;
    static const struct {
        const char *file;
        int n, exps, accs;
    } res[] = {
        {"res_RandomReal_CIFAR10_ConvNet_1ipc.pt", 10, 2, 1},
        {"res_RandomReal_CIFAR10_ConvNet_10ipc.pt", 100, 2, 1},
        {"res_RandomReal_CIFAR10_ConvNet_50ipc.pt", 500, 2, 1},
        {"res_RandomReal_CIFAR10_ConvNet_10ipc_legacy.pt", 100, 1, 0},
    };
    PickleValue *mtt_images = NULL;
    const char *p = shared_path("beard/dataset_pool/mtt_ipc10/images_best.pt", "MTT images");
    Err e;
    if (p) CHECK(torch_load(p, &mtt_images, &e) == 0, "%s", e.msg);
    const Tensor *mtt = tensor_at(mtt_images);
    CHECK(!p || (mtt && mtt->numel == 100 * 3072), "MTT images_best.pt is a (100, 3, 32, 32) tensor");

    for (size_t k = 0; k < sizeof(res) / sizeof(res[0]); k++) {
        char rel[256];
        snprintf(rel, sizeof(rel), "beard/dataset_pool/%s", res[k].file);
        const char *path = shared_path(rel, res[k].file);
        PickleValue *root;
        if (!path) continue;
        if (torch_load(path, &root, &e)) {
            CHECK(0, "%s", e.msg);
            continue;
        }
        const PickleValue *data = pickle_dict_get(root, "data");
        CHECK(pickle_is(data, PICKLE_LIST) && pickle_len(data) == (size_t)res[k].exps, "%s: 'data' is a list of %d",
              res[k].file, res[k].exps);
        for (size_t x = 0; x < pickle_len(data); x++) {
            const Tensor *im = check_images_labels(res[k].file, pickle_item(data, x), res[k].n);
            if (x == 0 && res[k].n == 100 && im && mtt && !res[k].accs)
                CHECK(!memcmp(im->data, mtt->data, tensor_nbytes(mtt)), "legacy res images differ from MTT's");
        }
        if (res[k].accs) {
            const PickleValue *accs = pickle_dict_get(pickle_dict_get(root, "accs_all_exps"), "ConvNet");
            double a0 = 0, a1 = 0;
            CHECK(pickle_len(accs) == 2 && pickle_as_double(pickle_item(accs, 0), &a0, &e) == 0 &&
                      pickle_as_double(pickle_item(accs, 1), &a1, &e) == 0 && a0 == 0.25 && a1 == 0.26,
                  "%s: accs_all_exps['ConvNet'] is not [0.25, 0.26] (numpy float64)", res[k].file);
        }
        pickle_free(root);
    }

    p = shared_path("beard/dataset_pool/idm_style_ipc10.pkl", "IDM-style pickle");
    PickleValue *root;
    if (p && torch_load(p, &root, &e) == 0) {
        CHECK(pickle_is(root, PICKLE_TUPLE), "idm pickle is a tuple");
        const Tensor *im = check_images_labels("idm_style_ipc10.pkl", root, 100);
        const Tensor *lb = tensor_at(pickle_item(root, 1));
        if (im && mtt) CHECK(!memcmp(im->data, mtt->data, tensor_nbytes(mtt)), "IDM images differ from MTT's");
        if (im) CHECK(((const float *)im->data)[5 * 3072 + 1 * 1024 + 7 * 32 + 9] == 0x1.bb4044p+0f, "IDM image value");
        int ok = lb && lb->numel == 100;
        for (int i = 0; ok && i < 100; i++) ok = ((const int64_t *)lb->data)[i] == i / 10;
        CHECK(ok, "IDM labels are not i // 10");
        pickle_free(root);
    } else if (p) {
        CHECK(0, "%s", e.msg);
    }
    p = shared_path("beard/dataset_pool/mtt_ipc10/labels_best.pt", "MTT labels");
    if (p && torch_load(p, &root, &e) == 0) {
        const Tensor *lb = tensor_at(root);
        CHECK(lb && lb->dtype == DTYPE_I64 && lb->numel == 100 && ((const int64_t *)lb->data)[99] == 9, "MTT labels");
        pickle_free(root);
    }
    p = shared_path("beard/dataset_pool/mtt_ipc10/lr_best.pt", "MTT learning rate");
    if (p && torch_load(p, &root, &e) == 0) {
        double lr = 0;
        CHECK(pickle_as_double(root, &lr, &e) == 0 && (float)lr == 0x1.47ae14p-7f && root->tensor->ndim == 0,
              "MTT lr_best.pt is the 0-dim tensor 0.01");
        pickle_free(root);
    }
    pickle_free(mtt_images);
}

// ----------------------------------------------------------------------------
// the CLI, when the test runner names it

static void test_cli(void) {
    const char *beard = getenv("BEARD");
    if (!beard) {
        test_skip("beard inspect (set BEARD to the CLI binary; make test does)");
        return;
    }
    char cmd[1024], out[8192];
    snprintf(cmd, sizeof(cmd), "%s inspect " FIX "zip_nested.pt 2>&1", beard);
    FILE *f = popen(cmd, "r");
    size_t n = f ? fread(out, 1, sizeof(out) - 1, f) : 0;
    out[n] = 0;
    int rc = f ? pclose(f) : -1;
    CHECK(rc == 0, "beard inspect zip_nested.pt exits with %d: %s", rc, out);
    CHECK(strstr(out, "'np_f64': 0.125 (numpy float64)") && strstr(out, "'y': tensor int64 [3] = [0, 1, 2]") &&
              strstr(out, "'a': list (7 items)"),
          "beard inspect output lacks expected lines:\n%s", out);
    snprintf(cmd, sizeof(cmd), "%s inspect " FIX "tensors.safetensors 2>&1", beard);
    f = popen(cmd, "r");
    n = f ? fread(out, 1, sizeof(out) - 1, f) : 0;
    out[n] = 0;
    rc = f ? pclose(f) : -1;
    CHECK(rc == 0 && strstr(out, "d: tensor bfloat16 [2] = [1.5, -0.25]"), "beard inspect on safetensors:\n%s", out);
    snprintf(cmd, sizeof(cmd), "%s inspect " FIX "no-such-file.pt 2>&1", beard);
    f = popen(cmd, "r");
    n = f ? fread(out, 1, sizeof(out) - 1, f) : 0;
    out[n] = 0;
    rc = f ? pclose(f) : -1;
    CHECK(rc != 0 && strncmp(out, "beard inspect: ", 15) == 0 && strchr(out, '\n') == out + n - 1,
          "beard inspect on a missing file: one error line and a failure status, got %d: %s", rc, out);
}

int main(void) {
    if (fixture_load(FIX "expected.bin", &F)) return test_done("test_io");
    test_zip_dtypes();
    test_zip_nested();
    test_legacy();
    test_plain("plain_p4.pkl");
    test_plain("plain_p2.pkl");
    test_state_dict();
    test_safetensors_fixture();
    test_roundtrips();
    test_object_writers();
    test_zip_records();
    test_hostile_globals();
    test_hostile_lengths();
    test_text_ints();
    test_hostile_nesting();
    test_hostile_tensors();
    test_hostile_files();
    test_hostile_safetensors();
    test_model_pool();
    test_dataset_pool();
    test_cli();
    fixture_free(&F);
    return test_done("test_io");
}

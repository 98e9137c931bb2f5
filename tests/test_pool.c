/*
 * test_pool.c: the distilled-set loaders (src/data/pool.c, imagefolder.c).
 *
 * Small files in every layout, written by PyTorch and PIL (tests/fixtures/train/pool, from
 * tests/scripts/gen_pool_fixtures.py), must load to the tensors recorded in expected.bin:
 * res_*.pt with experiment selection, the legacy format, soft labels, MTT folders and
 * prefixes with lr_best.pt, IDM/BACON's pickled tuple, image folders (PNG in four colour
 * modes and JPEG, against PIL + ToTensor + Normalize), and BEARD's 4-in-1 unpacking
 * against number_sign_augment. Broken inputs must fail with a message. Then every file
 * of BEARD's shared dataset pool (../shared/beard/dataset_pool) against sums and values
 * read with torch.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/data/pool.h"
#include "../src/io/file.h"
#include <time.h>
#include <zlib.h>

#include "harness.h"

#define DIR "tests/fixtures/train/pool/"

static Fixture F;
static const DatasetInfo TINY = {"TINY", 3, 4, 4, 10, {0.4914f, 0.4822f, 0.4465f}, {0.2023f, 0.1994f, 0.2010f}};

static void check_pool(const char *what, const Pool *p, const char *xname, const char *yname) {
    const FixTensor *x = fixture_get(&F, xname), *y = yname ? fixture_get(&F, yname) : NULL;
    if (!x || (yname && !y)) return;
    CHECK(p->n == (int)x->shape[0] && p->c == 3 && p->h == 4 && p->w == 4, "%s: shape %d %d %d %d", what, p->n, p->c,
          p->h, p->w);
    if (p->n != (int)x->shape[0]) return;
    check_close(what, p->x, x->data, x->n, 0, 0);
    if (y) {
        int bad = 0;
        for (int i = 0; i < p->n; i++) bad += p->y[i] != (int)y->data[i];
        CHECK(bad == 0, "%s: %d labels differ", what, bad);
    }
}

static void test_formats(void) {
    Pool p;
    Err e;
    PoolOptions o = {.info = &TINY, .exp = -1};
    CHECK(pool_load(&p, DIR "res_tiny.pt", &o, &e) == 0, "res_tiny.pt: %s", e.msg);
    CHECK(!strcmp(p.format, "res") && p.n_exps == 2 && p.exp == 1 && p.stored_normalised && !p.soft && p.lr == 0,
          "res: the last of 2 experiments by default (%s, %d of %d)", p.format, p.exp, p.n_exps);
    check_pool("res last experiment", &p, "x1", "y1");
    pool_free(&p);
    o.exp = 0;
    CHECK(pool_load(&p, DIR "res_tiny.pt", &o, &e) == 0 && p.exp == 0, "--exp 0: %s", e.msg);
    check_pool("res experiment 0", &p, "x0", "y0");
    pool_free(&p);
    o.exp = -2;
    CHECK(pool_load(&p, DIR "res_tiny.pt", &o, &e) == 0 && p.exp == 0, "--exp -2 counts from the end");
    pool_free(&p);
    o.exp = 2;
    CHECK(pool_load(&p, DIR "res_tiny.pt", &o, &e) == -1 && strstr(e.msg, "2 experiments"), "--exp 2: %s", e.msg);
    pool_free(&p);
    o.exp = -1;

    CHECK(pool_load(&p, DIR "res_tiny_legacy.pt", &o, &e) == 0, "legacy: %s", e.msg);
    check_pool("legacy format", &p, "x1", "y1");
    pool_free(&p);

    CHECK(pool_load(&p, DIR "res_soft.pt", &o, &e) == 0 && p.soft, "soft labels: %s", e.msg);
    check_pool("soft-label set", &p, "x1", NULL);
    const FixTensor *soft = fixture_get(&F, "soft");
    if (p.soft && soft) {
        check_close("soft labels", p.soft, soft->data, soft->n, 0, 0);
        int bad = 0;
        for (int i = 0; i < p.n; i++)
            for (int k = 0; k < 10; k++) bad += soft->data[i * 10 + k] > soft->data[i * 10 + p.y[i]];
        CHECK(bad == 0, "hard labels are the argmax of the soft ones");
    }
    pool_free(&p);

    const char *mtt[] = {DIR "mtt_tiny", DIR "mtt_tiny/", DIR "mtt_tiny/images_best.pt"};
    for (int k = 0; k < 3; k++) {
        CHECK(pool_load(&p, mtt[k], &o, &e) == 0, "%s: %s", mtt[k], e.msg);
        CHECK(!strcmp(p.format, "mtt") && fabs(p.lr - 0.0123) < 1e-9, "%s: MTT with lr %g", mtt[k], p.lr);
        check_pool("MTT images_best/labels_best", &p, "x0", "y1");
        pool_free(&p);
    }
    // BEARD's data_file for MTT is a prefix
    CHECK(pool_load(&p, DIR "mtt_tiny/", &o, &e) == 0, "prefix");
    pool_free(&p);

    CHECK(pool_load(&p, DIR "idm_tiny.pkl", &o, &e) == 0 && !strcmp(p.format, "pickle"), "idm pickle: %s", e.msg);
    check_pool("IDM/BACON pickled tuple", &p, "x1", "y0");
    pool_free(&p);
    CHECK(pool_load(&p, DIR "pair_dict.pt", &o, &e) == 0, "pair dict: %s", e.msg);
    check_pool("dict pair (float64 images, int32 labels)", &p, "x0", "y0");
    pool_free(&p);

    // pixels: float tensors normalised on load when asked
    o.pixels = 1;
    CHECK(pool_load(&p, DIR "res_tiny.pt", &o, &e) == 0 && !p.stored_normalised, "--pixels");
    const FixTensor *x1 = fixture_get(&F, "x1");
    if (p.x && x1)
        CHECK(p.x[5] == (x1->data[5] - 0.4914f) / 0.2023f && p.x[17] == (x1->data[17] - 0.4822f) / 0.1994f,
              "pixels normalised on load");
    pool_free(&p);
    o.pixels = 0;
}

static void test_errors(void) {
    Pool p;
    Err e;
    PoolOptions o = {.info = &TINY, .exp = -1};
    CHECK(pool_load(&p, DIR "bad_labels.pt", &o, &e) == -1 && strstr(e.msg, "label 4 is 10"), "bad label: %s", e.msg);
    pool_free(&p);
    CHECK(pool_load(&p, DIR "bad_shape.pt", &o, &e) == -1 && strstr(e.msg, "(n, c, h, w)"), "bad shape: %s", e.msg);
    pool_free(&p);
    CHECK(pool_load(&p, DIR "nonexistent.pt", &o, &e) == -1 && strstr(e.msg, "no such"), "missing: %s", e.msg);
    pool_free(&p);
    CHECK(pool_load(&p, DIR "mtt_tiny/lr_best.pt", &o, &e) == -1 && strstr(e.msg, "single tensor"), "bare tensor: %s",
          e.msg);
    pool_free(&p);
    const DatasetInfo *c10 = dataset_info("cifar10");
    PoolOptions oc = {.info = c10, .exp = -1};
    CHECK(pool_load(&p, DIR "res_tiny.pt", &oc, &e) == -1 && strstr(e.msg, "CIFAR10 images are (3, 32, 32)"),
          "shape vs dataset: %s", e.msg);
    pool_free(&p);
    DatasetInfo five = TINY;
    five.n_classes = 5;
    PoolOptions o5 = {.info = &five, .exp = -1};
    CHECK(pool_load(&p, DIR "res_soft.pt", &o5, &e) == -1 && strstr(e.msg, "soft labels"), "soft width: %s", e.msg);
    pool_free(&p);
    // truncated copies of a good file must fail cleanly at every length
    FILE *f = fopen(DIR "res_tiny.pt", "rb");
    if (!f) {
        CHECK(0, "cannot read res_tiny.pt");
        return;
    }
    uint8_t buf[8192];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    const char *tmp = test_tmp("trunc.pt");
    int ok = 1;
    for (size_t len = 0; len < n; len += 97) {
        FILE *g = fopen(tmp, "wb");
        fwrite(buf, 1, len, g);
        fclose(g);
        if (pool_load(&p, tmp, &o, &e) == 0) ok = 0;
        pool_free(&p);
    }
    unlink(tmp);
    CHECK(ok, "truncated res files are errors");
}

// a PNG of the given size that holds its header only (IHDR, then an empty IDAT: no pixels)
static void write_png_header(const char *path, uint32_t w, uint32_t h) {
    uint8_t b[45] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    for (int k = 0; k < 4; k++) b[16 + k] = (uint8_t)(w >> (24 - 8 * k)), b[20 + k] = (uint8_t)(h >> (24 - 8 * k));
    b[24] = 8, b[25] = 2; // 8-bit RGB
    uint32_t crc = (uint32_t)crc32(0, b + 12, 17);
    for (int k = 0; k < 4; k++) b[29 + k] = (uint8_t)(crc >> (24 - 8 * k));
    memcpy(b + 33, "\0\0\0\0IDAT", 8);
    crc = (uint32_t)crc32(0, b + 37, 4);
    for (int k = 0; k < 4; k++) b[41 + k] = (uint8_t)(crc >> (24 - 8 * k));
    FILE *f = fopen(path, "wb");
    if (f) fwrite(b, 1, sizeof(b), f), fclose(f);
}

static void test_imagefolder(void) {
    Pool p;
    Err e;
    DatasetInfo three = TINY;
    three.n_classes = 3;
    PoolOptions o = {.info = &three, .exp = -1};
    CHECK(pool_load(&p, DIR "folder", &o, &e) == 0 && !strcmp(p.format, "imagefolder"), "image folder: %s", e.msg);
    const FixTensor *x = fixture_get(&F, "folder.x"), *y = fixture_get(&F, "folder.y");
    if (x && y && p.n == (int)x->shape[0]) {
        int bad = 0;
        for (int i = 0; i < p.n; i++) bad += p.y[i] != (int)y->data[i];
        CHECK(bad == 0, "folder labels follow the sorted class folders");
        // PNG is lossless; libjpeg's and PIL's decoders agree bit for bit (both islow DCT),
        // but allow one grey level for JPEG in case of another libjpeg build
        size_t D = 48;
        check_close("PNG images (RGB, RGBA, gray, palette) vs PIL", p.x, x->data, 1 * D, 0, 0);
        check_close("PNG images (RGB, RGBA, gray, palette) vs PIL", p.x + 2 * D, x->data + 2 * D, 3 * D, 0, 0);
        check_close("JPEG images vs PIL", p.x + D, x->data + D, D, 1.0 / 255 / 0.199, 0);
        check_close("JPEG images vs PIL", p.x + 5 * D, x->data + 5 * D, D, 1.0 / 255 / 0.199, 0);
    } else {
        CHECK(0, "image folder: %d images", p.n);
    }
    pool_free(&p);
    DatasetInfo two = TINY;
    two.n_classes = 2;
    PoolOptions o2 = {.info = &two, .exp = -1};
    CHECK(pool_load(&p, DIR "folder", &o2, &e) == -1 && strstr(e.msg, "3 class folders"), "too many classes: %s", e.msg);
    pool_free(&p);
    // a missing class folder would shift every later label: refused
    CHECK(pool_load(&p, DIR "folder", &(PoolOptions){.info = &TINY, .exp = -1}, &e) == -1 &&
              strstr(e.msg, "missing class folder"),
          "3 class folders for 10 classes: %s", e.msg);
    pool_free(&p);
    const char *gap = test_tmp("gapfolder");
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s' && cp -r %sfolder/class_000 %sfolder/class_001 '%s/' && "
             "cp -r %sfolder/class_002 '%s/class_003' && rm '%s/class_003/notes.txt'",
             gap, gap, DIR, DIR, gap, DIR, gap, gap);
    CHECK(system(cmd) == 0, "gap folder");
    CHECK(pool_load(&p, gap, &o, &e) == -1 && strstr(e.msg, "class_003 follows class_001"), "numbering gap: %s", e.msg);
    pool_free(&p);
    // an image of the wrong size is refused from its header, before any decoding: a
    // 16384x16384 PNG header without pixel data fails on its size, not on missing data
    char big[1200];
    snprintf(big, sizeof(big), "%s/class_003/huge.png", gap);
    write_png_header(big, 16384, 16384);
    uint8_t *px = NULL;
    int pw, ph;
    clock_t c0 = clock(); // CPU time: the suite's machine may be shared
    CHECK(image_read_rgb_sized(big, 4, 4, &px, &pw, &ph, &e) == -1 && strstr(e.msg, "16384x16384") &&
              strstr(e.msg, "not decoded"),
          "huge PNG: %s", e.msg);
    double secs = (double)(clock() - c0) / CLOCKS_PER_SEC;
    CHECK(secs < 0.5, "huge PNG refused in %.2f s of CPU", secs);
    write_png_header(big, 100000, 100000);
    CHECK(image_read_rgb(big, &px, &pw, &ph, &e) == -1 && strstr(e.msg, "implausible"), "100000x100000 PNG: %s", e.msg);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", gap);
    if (system(cmd)) {}
    uint8_t *rgb = NULL;
    int w, h;
    CHECK(image_read_rgb(DIR "folder/class_002/notes.txt", &rgb, &w, &h, &e) == -1 && strstr(e.msg, "neither"),
          "not an image: %s", e.msg);
    // a JPEG cut short is an error, as in PIL: in its header, in its scan data (where
    // libjpeg would fill the rest with grey), or only its EOI marker missing
    const char *tmp = test_tmp("cut.jpg");
    uint8_t *buf = NULL;
    size_t n = 0;
    CHECK(file_read_all(DIR "folder/class_000/b.jpg", 1 << 20, &buf, &n, &e) == 0 && n > 200 && buf[n - 2] == 0xFF &&
              buf[n - 1] == 0xD9,
          "b.jpg read whole (%zu bytes)", n);
    const size_t cuts[3] = {64, n > 200 ? n - 40 : 0, n - 2};
    const char *what[3] = {"without its frame header", "cut in its scan data", "without its EOI marker"};
    for (int k = 0; k < 3 && buf && n > 200; k++) {
        CHECK(file_write_all(tmp, buf, cuts[k], &e) == 0, "%s: %s", tmp, e.msg);
        rgb = NULL;
        int rc = image_read_rgb(tmp, &rgb, &w, &h, &e);
        CHECK(rc == -1 && !rgb, "a JPEG %s is an error", what[k]);
        if (k) CHECK(rc == -1 && strstr(e.msg, "truncated JPEG"), "a JPEG %s: %s", what[k], rc ? e.msg : "decoded");
        xfree(rgb);
    }
    free(buf);
    CHECK(image_read_rgb(DIR "folder/class_000/b.jpg", &rgb, &w, &h, &e) == 0, "the whole JPEG decodes: %s", e.msg);
    xfree(rgb);
    unlink(tmp);
}

static void test_unpack4(void) {
    const FixTensor *x = fixture_get(&F, "unpack.x"), *out = fixture_get(&F, "unpack.out"), *y = fixture_get(&F, "unpack.y");
    if (!x || !out || !y) return;
    Pool p = {0};
    Err e;
    p.n = 2, p.c = 3, p.h = 6, p.w = 6, p.n_classes = 10;
    p.x = xmalloc(x->n * sizeof(float));
    p.y = xmalloc(2 * sizeof(int));
    memcpy(p.x, x->data, x->n * sizeof(float));
    p.y[0] = 3, p.y[1] = 7;
    CHECK(pool_unpack4(&p, &e) == 0 && p.n == 8 && p.unpacked, "unpack4: %s", e.msg);
    if (p.n == 8) {
        // the weights are exact (1/4, 3/4); PyTorch's kernel rounds its sums in another
        // order (and may contract them into FMAs), which costs at most an ulp or two
        check_close("4-in-1 unpacking vs number_sign_augment", p.x, out->data, out->n, 5e-7, 2.5e-7);
        int bad = 0;
        for (int i = 0; i < 8; i++) bad += p.y[i] != (int)y->data[i];
        CHECK(bad == 0, "labels repeated x4");
    }
    pool_free(&p);
    Pool q = {0};
    q.n = 1, q.c = 1, q.h = 5, q.w = 5, q.n_classes = 10;
    q.x = xcalloc(25 * sizeof(float));
    q.y = xcalloc(sizeof(int));
    CHECK(pool_unpack4(&q, &e) == -1 && strstr(e.msg, "even"), "odd sizes refused");
    pool_free(&q);
}

// the shared dataset pool, against torch: float64 sums of the images, and a few values
static void test_shared(void) {
    const char *dir = shared_path("beard/dataset_pool", "BEARD's dataset pool");
    if (!dir) return;
    const DatasetInfo *info = dataset_info("cifar10");
    struct {
        const char *file;
        int exp, n, n_exps;
        double sum, first;
        const char *format;
    } cases[] = {
        {"res_RandomReal_CIFAR10_ConvNet_10ipc.pt", -1, 100, 2, -8235.7530362205, -1.3628954887390137, "res"},
        {"res_RandomReal_CIFAR10_ConvNet_10ipc.pt", 0, 100, 2, 21438.126568761596, 0.7112908363342285, "res"},
        {"res_RandomReal_CIFAR10_ConvNet_10ipc_legacy.pt", -1, 100, 1, 729.2686973927193, 2.184544324874878, "res"},
        {"mtt_ipc10", -1, 100, 0, 729.2686973927193, 2.184544324874878, "mtt"},
        {"idm_style_ipc10.pkl", -1, 100, 0, 729.2686973927193, 2.184544324874878, "pickle"},
        {"res_RandomReal_CIFAR10_ConvNet_1ipc.pt", -1, 10, 2, NAN, NAN, "res"},
        {"res_RandomReal_CIFAR10_ConvNet_50ipc.pt", -1, 500, 2, NAN, NAN, "res"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, cases[k].file);
        Pool p;
        Err e;
        PoolOptions o = {.info = info, .exp = cases[k].exp};
        if (pool_load(&p, path, &o, &e)) {
            CHECK(0, "%s: %s", cases[k].file, e.msg);
            pool_free(&p);
            continue;
        }
        CHECK(p.n == cases[k].n && p.c == 3 && p.h == 32 && !strcmp(p.format, cases[k].format) &&
                  (cases[k].n_exps == 0 || p.n_exps == cases[k].n_exps),
              "%s: %d images, format %s, %d experiments", cases[k].file, p.n, p.format, p.n_exps);
        if (!isnan(cases[k].sum)) {
            double s = 0;
            for (size_t i = 0; i < (size_t)p.n * 3072; i++) s += p.x[i];
            CHECK(fabs(s - cases[k].sum) < 1e-6 * fabs(cases[k].sum) && p.x[0] == (float)cases[k].first,
                  "%s: sum %.10g (torch %.10g), x[0] %.9g", cases[k].file, s, cases[k].sum, p.x[0]);
        }
        int hist[10] = {0}, balanced = 1;
        for (int i = 0; i < p.n; i++) hist[p.y[i]]++;
        for (int c = 0; c < 10; c++) balanced &= hist[c] == p.n / 10;
        CHECK(balanced, "%s: %d images per class", cases[k].file, p.n / 10);
        if (!strcmp(cases[k].format, "mtt")) CHECK(fabs(p.lr - 0.01) < 1e-8, "MTT lr_best.pt = %g", p.lr);
        pool_free(&p);
    }
}

int main(void) {
    if (fixture_load(DIR "expected.bin", &F) == 0) {
        test_formats();
        test_imagefolder();
        test_unpack4();
        fixture_free(&F);
    }
    test_errors();
    test_shared();
    return test_done("test_pool");
}

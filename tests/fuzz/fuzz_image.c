/*
 * fuzz_image.c: libFuzzer target for the PNG and JPEG decoders (libpng's simplified
 * API, libjpeg) behind image folders (SRe2L, CDA, ...) and TinyImageNet's tree, and for
 * the image-folder loader itself: the input becomes one image of a two-class folder.
 * A decoded image must have the size its header promised and no more than the caller
 * allowed.
 * Seeds: tests/fuzz/corpus_image/ (tests/scripts/gen_fuzz_seeds.py).
 */
#include "../../src/data/pool.h"
#include "fuzz_common.h"

static const DatasetInfo TINY2 = {"TINY2", 3, 4, 4, 2, {0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *png = fuzz_put("img/class_0/a.png", data, size);
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    Err e;
    if (image_read_rgb(png, &rgb, &w, &h, &e) == 0) {
        if (w <= 0 || h <= 0 || (size_t)w * h > IMAGE_MAX_PIXELS) abort();
        volatile uint8_t sink = rgb[(size_t)w * h * 3 - 1]; // the whole buffer is there
        (void)sink;
        xfree(rgb);
    }
    if (image_read_rgb_sized(png, 4, 4, &rgb, &w, &h, &e) == 0) {
        if (w != 4 || h != 4) abort();
        xfree(rgb);
    }
    // the same bytes as the only image of class 1 of a folder
    fuzz_put("img/class_1/b.jpg", data, size);
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/img", fuzz_dir());
    Pool p;
    if (pool_load_imagefolder(&p, dir, &TINY2, &e) == 0 && (p.n != 2 || p.y[0] != 0 || p.y[1] != 1)) abort();
    pool_free(&p);
    fuzz_clean();
    return 0;
}

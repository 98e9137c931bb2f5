/*
 * synthetic.c: see synthetic.h. No reference implementation: this dataset is beard's own,
 * for the demo only.
 */
#include "synthetic.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/rng.h"

#define S 16

static const DatasetInfo info = {"SYNTHETIC", 3, S, S, 10, {0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f}};
static const char *const class_names[10] = {"disc", "ring", "square", "frame", "hbar",
                                            "vbar", "plus", "cross", "triangle", "dots"};

const DatasetInfo *synthetic_info(void) { return &info; }

// is (u, v) (shape coordinates, the shape spans about [-1, 1]) inside shape k?
static int inside(int k, float u, float v) {
    float au = fabsf(u), av = fabsf(v), r = sqrtf(u * u + v * v);
    switch (k) {
    case 0: return r <= 0.9f;
    case 1: return r <= 0.95f && r >= 0.55f;
    case 2: return au <= 0.75f && av <= 0.75f;
    case 3: return au <= 0.9f && av <= 0.9f && (au >= 0.5f || av >= 0.5f);
    case 4: return au <= 1.0f && av <= 0.3f;
    case 5: return av <= 1.0f && au <= 0.3f;
    case 6: return (au <= 0.25f && av <= 1.0f) || (av <= 0.25f && au <= 1.0f);
    case 7: return au <= 1.0f && av <= 1.0f && (fabsf(u - v) <= 0.5f || fabsf(u + v) <= 0.5f);
    case 8: return v <= 0.8f && v >= -0.8f && au <= (v + 0.8f) * 0.6f;
    case 9: {
        float d1 = sqrtf((u + 0.55f) * (u + 0.55f) + v * v), d2 = sqrtf((u - 0.55f) * (u - 0.55f) + v * v);
        return d1 <= 0.38f || d2 <= 0.38f;
    }
    }
    return 0;
}

int synthetic_make(Dataset *ds, int n, int train, uint64_t seed, Err *e) {
    memset(ds, 0, sizeof(*ds));
    if (n <= 0) return err_set(e, "the synthetic dataset needs at least one image");
    snprintf(ds->name, sizeof(ds->name), "%s", info.name);
    ds->n = n, ds->c = 3, ds->h = S, ds->w = S, ds->n_classes = 10;
    size_t D = 3 * S * S;
    ds->images = malloc(D * (size_t)n);
    ds->labels = malloc(sizeof(int) * (size_t)n);
    if (!ds->images || !ds->labels) return err_set(e, "out of memory for %d synthetic images", n);
    if (dataset_set_class_names(ds, class_names, 10, e)) return -1;
    for (int i = 0; i < n; i++) {
        Rng r;
        rng_init(&r, seed, (uint64_t)(train ? 1 : 2) << 40 | (uint64_t)i);
        int k = i % 10;
        ds->labels[i] = k;
        float cx = (S - 1) / 2.0f + (rng_uniform(&r) - 0.5f) * 5.0f;
        float cy = (S - 1) / 2.0f + (rng_uniform(&r) - 0.5f) * 5.0f;
        float scale = 4.2f + rng_uniform(&r) * 1.8f; // half-size in pixels
        // a low contrast (0.15 to 0.35 per channel, either sign), so that an 8/255 attack
        // has something to do
        float fg[3], bg[3];
        int sign = rng_uniform(&r) < 0.5f ? 1 : -1;
        for (int c = 0; c < 3; c++) {
            bg[c] = 0.3f + 0.4f * rng_uniform(&r);
            fg[c] = bg[c] + sign * (0.15f + 0.2f * rng_uniform(&r));
        }
        uint8_t *img = ds->images + D * i;
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                int in = inside(k, (x - cx) / scale, (y - cy) / scale);
                for (int c = 0; c < 3; c++) {
                    float v = (in ? fg[c] : bg[c]) + 0.04f * (float)rng_normal(&r);
                    v = v < 0 ? 0 : (v > 1 ? 1 : v);
                    img[(size_t)c * S * S + y * S + x] = (uint8_t)lrintf(v * 255.0f);
                }
            }
    }
    return 0;
}

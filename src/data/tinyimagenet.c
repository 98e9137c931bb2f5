/*
 * tinyimagenet.c: Tiny ImageNet (200 classes, 64x64) in two layouts.
 *
 * DC's get_dataset reads one torch.save file `tinyimagenet.pt` holding a dict with
 * 'classes', 'images_train', 'labels_train', 'images_val', 'labels_val' (images
 * (N, 3, 64, 64) uint8; the val split serves as the test set). Float images are accepted
 * only when every value is an integer in [0, 255], so that the uint8 -> float conversion
 * stays exact.
 *
 * The official tiny-imagenet-200 tree (what `beard download tinyimagenet` unpacks, and
 * what MTT's and IDM's get_dataset read with torchvision's ImageFolder):
 *   wnids.txt                       the 200 class ids
 *   train/<wnid>/images/<f>.JPEG    500 training images per class
 *   val/images/val_<k>.JPEG         10000 validation images (the test split)
 *   val/val_annotations.txt         "<file>\t<wnid>\t<box>" per validation image
 * Classes are the wnids in sorted order (ImageFolder's class_to_idx); training images
 * come class by class, files sorted by name within a class (ImageFolder's order);
 * validation images in the order of val_annotations.txt. Images are decoded as PIL's
 * Image.open(f).convert('RGB') does (grayscale JPEGs replicated into three channels).
 * tinyimagenet.pt wins when both are present, as it is what DC and BEARD read.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../io/file.h"
#include "../io/torch_pt.h"
#include "dataset.h"
#include "pool.h"

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

typedef struct {
    char **path; // (n) image files
    int *label;  // (n)
    int n, cap;
} FileList;

static int files_add(FileList *f, const char *path, int label) {
    if (f->n == f->cap) {
        int cap = f->cap ? 2 * f->cap : 1024;
        char **p = realloc(f->path, sizeof(char *) * (size_t)cap);
        if (p) f->path = p;
        int *l = realloc(f->label, sizeof(int) * (size_t)cap);
        if (l) f->label = l;
        if (!p || !l) return -1;
        f->cap = cap;
    }
    if (!(f->path[f->n] = xstrdup(path))) return -1;
    f->label[f->n++] = label;
    return 0;
}

static void files_free(FileList *f) {
    for (int i = 0; i < f->n; i++) xfree(f->path[i]);
    free(f->path);
    free(f->label);
    memset(f, 0, sizeof(*f));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_jpeg_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".jpg"));
}

// the wnids of wnids.txt, sorted (ImageFolder's class order)
static int read_wnids(const char *root, char ***wnids, Err *e) {
    char path[1200];
    snprintf(path, sizeof(path), "%s/wnids.txt", root);
    uint8_t *buf;
    size_t n;
    if (file_read_all(path, 1 << 20, &buf, &n, e)) return -1;
    char **w = calloc(200, sizeof(char *));
    int k = 0;
    for (char *line = strtok((char *)buf, "\r\n"); line && w; line = strtok(NULL, "\r\n")) {
        while (*line == ' ' || *line == '\t') line++;
        if (!*line) continue;
        if (k == 200 || strchr(line, '/') || strstr(line, "..") || strlen(line) > 64) {
            err_set(e, "%s: expected 200 class ids, one per line", path);
            k = -1;
            break;
        }
        if (!(w[k++] = xstrdup(line))) k = -1;
        if (k < 0) break;
    }
    free(buf);
    if (!w || k != 200) {
        if (k >= 0) err_set(e, "%s: %d class ids, expected 200", path, k);
        if (w) for (int i = 0; i < 200; i++) xfree(w[i]);
        free(w);
        return -1;
    }
    qsort(w, 200, sizeof(char *), cmp_str);
    for (int i = 1; i < 200; i++)
        if (!strcmp(w[i], w[i - 1])) {
            err_set(e, "%s: class id %s appears twice", path, w[i]);
            for (int j = 0; j < 200; j++) xfree(w[j]);
            free(w);
            return -1;
        }
    *wnids = w;
    return 0;
}

static int wnid_index(char **wnids, const char *id) {
    int lo = 0, hi = 199;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(wnids[mid], id);
        if (!c) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

static int list_train(const char *root, char **wnids, long limit, FileList *fl, Err *e) {
    char dir[1400], path[2400];
    for (int k = 0; k < 200 && (limit <= 0 || fl->n < limit); k++) {
        snprintf(dir, sizeof(dir), "%s/train/%s/images", root, wnids[k]);
        NameList files = {0};
        if (name_list_dir(dir, 0, &files, e)) return -1;
        for (int f = 0; f < files.n && (limit <= 0 || fl->n < limit); f++) {
            if (!is_jpeg_name(files.items[f])) continue;
            snprintf(path, sizeof(path), "%s/%s", dir, files.items[f]);
            if (files_add(fl, path, k)) {
                name_list_free(&files);
                return err_set(e, "out of memory");
            }
        }
        name_list_free(&files);
    }
    return 0;
}

static int list_val(const char *root, char **wnids, long limit, FileList *fl, Err *e) {
    char path[1400], img[2400];
    snprintf(path, sizeof(path), "%s/val/val_annotations.txt", root);
    uint8_t *buf;
    size_t n;
    if (file_read_all(path, 64 << 20, &buf, &n, e)) return -1;
    int rc = 0, lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r((char *)buf, "\r\n", &save); line && (limit <= 0 || fl->n < limit);
         line = strtok_r(NULL, "\r\n", &save)) {
        lineno++;
        char *tab = strchr(line, '\t');
        char *tab2 = tab ? strchr(tab + 1, '\t') : NULL;
        if (!tab) {
            rc = err_set(e, "%s line %d: expected <file>\\t<wnid>", path, lineno);
            break;
        }
        *tab = 0;
        if (tab2) *tab2 = 0;
        int k = wnid_index(wnids, tab + 1);
        if (k < 0 || strchr(line, '/') || strstr(line, "..")) {
            rc = err_set(e, "%s line %d: unknown class id or bad file name", path, lineno);
            break;
        }
        snprintf(img, sizeof(img), "%s/val/images/%s", root, line);
        if (files_add(fl, img, k)) {
            rc = err_set(e, "out of memory");
            break;
        }
    }
    free(buf);
    return rc;
}

// the tiny-imagenet-200 tree under root
static int load_tree(Dataset *ds, const char *root, int train, long limit, Err *e) {
    char **wnids = NULL;
    if (read_wnids(root, &wnids, e)) return -1;
    FileList fl = {0};
    int rc = -1;
    if ((train ? list_train(root, wnids, limit, &fl, e) : list_val(root, wnids, limit, &fl, e))) goto done;
    if (fl.n == 0) {
        err_set(e, "%s: no %s images found", root, train ? "training" : "validation");
        goto done;
    }
    size_t per = (size_t)3 * 64 * 64;
    ds->images = malloc(per * (size_t)fl.n);
    ds->labels = malloc(sizeof(int) * (size_t)fl.n);
    if (!ds->images || !ds->labels) {
        err_set(e, "out of memory for %d TinyImageNet images", fl.n);
        goto done;
    }
    int failed = -1;
    Err first;
#pragma omp parallel for schedule(dynamic, 64)
    for (int i = 0; i < fl.n; i++) {
        int bad;
#pragma omp atomic read
        bad = failed;
        if (bad >= 0) continue;
        uint8_t *rgb = NULL;
        int w = 0, h = 0;
        Err le;
        int r = image_read_rgb_sized(fl.path[i], 64, 64, &rgb, &w, &h, &le); // size checked before decoding
        if (r) {
#pragma omp critical(tiny_err)
            {
                if (failed < 0 || i < failed) {
                    first = le;
#pragma omp atomic write
                    failed = i;
                }
            }
            xfree(rgb);
            continue;
        }
        uint8_t *dst = ds->images + per * (size_t)i;
        for (int p = 0; p < 64 * 64; p++)
            for (int c = 0; c < 3; c++) dst[(size_t)c * 4096 + p] = rgb[p * 3 + c];
        xfree(rgb);
        ds->labels[i] = fl.label[i];
    }
    if (failed >= 0) {
        *e = first;
        goto done;
    }
    ds->n = fl.n;
    if (dataset_set_class_names(ds, (const char *const *)wnids, 200, e)) goto done;
    rc = 0;
done:
    files_free(&fl);
    for (int i = 0; i < 200; i++) xfree(wnids[i]);
    free(wnids);
    return rc;
}

int tinyimagenet_load(Dataset *ds, const char *dir, int train, long limit, Err *e) {
    char path[1200];
    snprintf(path, sizeof(path), "%s/tinyimagenet.pt", dir);
    if (!is_file(path)) {
        char root[1100];
        snprintf(root, sizeof(root), "%s/tiny-imagenet-200", dir);
        snprintf(path, sizeof(path), "%s/wnids.txt", root);
        if (is_file(path)) return load_tree(ds, root, train, limit, e);
        snprintf(path, sizeof(path), "%s/wnids.txt", dir);
        if (is_file(path)) return load_tree(ds, dir, train, limit, e);
        return err_set(e, "no TinyImageNet in %s (expected DC's tinyimagenet.pt or the tiny-imagenet-200 folder)", dir);
    }
    PickleValue *root;
    if (torch_load(path, &root, e)) return -1;
    int rc = -1;
    const PickleValue *im = pickle_dict_get(root, train ? "images_train" : "images_val");
    const PickleValue *lb = pickle_dict_get(root, train ? "labels_train" : "labels_val");
    if (!pickle_is(im, PICKLE_TENSOR) || !pickle_is(lb, PICKLE_TENSOR)) {
        err_set(e, "%s has no %s tensors", path, train ? "images_train/labels_train" : "images_val/labels_val");
        goto done;
    }
    const Tensor *ti = im->tensor, *tl = lb->tensor;
    if (ti->ndim != 4 || ti->shape[1] != ds->c || ti->shape[2] != ds->h || ti->shape[3] != ds->w ||
        tl->numel != (size_t)ti->shape[0]) {
        err_set(e, "%s: images must be (N, 3, 64, 64) with N labels", path);
        goto done;
    }
    size_t n = (size_t)ti->shape[0];
    if (limit > 0 && n > (size_t)limit) n = (size_t)limit;
    size_t per = (size_t)ds->c * ds->h * ds->w;
    ds->images = malloc(n * per + 1);
    ds->labels = malloc(n * sizeof(int) + 1);
    int64_t *lab = tensor_to_i64(tl, e);
    float *f = ti->dtype == DTYPE_U8 ? NULL : tensor_to_f32(ti, e);
    if (!ds->images || !ds->labels || !lab || (ti->dtype != DTYPE_U8 && !f)) {
        xfree(lab);
        xfree(f);
        err_set(e, "out of memory loading %s", path);
        goto done;
    }
    if (f) {
        for (size_t k = 0; k < n * per; k++) {
            if (!(f[k] >= 0 && f[k] <= 255 && f[k] == floorf(f[k]))) {
                xfree(lab);
                xfree(f);
                err_set(e, "%s: images are not integers in [0, 255]", path);
                goto done;
            }
            ds->images[k] = (uint8_t)f[k];
        }
    } else {
        memcpy(ds->images, ti->data, n * per);
    }
    for (size_t k = 0; k < n; k++) ds->labels[k] = lab[k] < 0 || lab[k] > 1 << 20 ? -1 : (int)lab[k];
    ds->n = (int)n;
    xfree(lab);
    xfree(f);
    const PickleValue *cl = pickle_dict_get(root, "classes");
    if (pickle_len(cl) >= (size_t)ds->n_classes) {
        const char *names[200];
        int k = 0;
        for (; k < ds->n_classes; k++) {
            const PickleValue *s = pickle_item(cl, (size_t)k);
            if (!pickle_is(s, PICKLE_STR) && !pickle_is(s, PICKLE_BYTES)) break;
            names[k] = s->s;
        }
        if (k == ds->n_classes && dataset_set_class_names(ds, names, k, e)) goto done;
    }
    rc = 0;
done:
    pickle_free(root);
    return rc;
}

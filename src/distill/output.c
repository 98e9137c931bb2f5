/*
 * output.c: the release files of the distillation stage, in the methods' own formats, so
 * that BEARD's train_model.py, DC-bench and `beard train` read them as they are:
 *
 *   res_{method}_{dataset}_{model}_{ipc}ipc.pt  torch.save({'data': [[image_syn,
 *       label_syn]], 'accs_all_exps': {model: [acc, ...]}}), as DC/DSA/DM's main loops
 *       write it (one experiment): images float32 (n, C, H, W) normalised, labels int64,
 *       class-major. IDM and BACON write the same layout with their compact 2x2-mosaic
 *       images, which BEARD's `aug: true` unpacks. Deliberate difference: the accuracies
 *       (fractions, as DC records acc_test) are 0-dim float64 tensors instead of numpy
 *       float64 scalars, because torch.load(weights_only=True) refuses numpy scalars, and
 *       torch 1.13's restricted unpickler has no float opcode either; np.mean reads
 *       both alike.
 *   {method}_{dataset}_{model}_{ipc}ipc.pkl  pickle.dump((image_syn, label_syn)), IDM's
 *       and BACON's compact form (their acc_*.pkl). pickle.load reads it; torch.load
 *       cannot (no torch.save magic number), in PyTorch as in beard's res reader.
 *   vis_*.png  torchvision's save_image(x, nrow=ipc) of the images denormalised and
 *       clamped to [0, 1] (make_grid: 2-pixel black padding, gray images as RGB; the
 *       byte is (int)clamp(v * 255 + 0.5, 0, 255)).
 *   {stem}/new{c:03d}/class{c:03d}_id{i:03d}.jpg|png  the decoupled methods' release (SRe2L
 *       recover_cifar.py's save_images, CDA, DELT, SC-DD: JPEG through PIL at its defaults;
 *       G-VBSM: PNG): each image denormalised with torch's float arithmetic, clamped to
 *       [0, 1], times 255 truncated by astype(uint8); an ImageFolder that `beard train`,
 *       torchvision and the methods' relabel code read.
 */
#include <dirent.h>
#include <errno.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../data/pool.h"

#include "../io/file.h"
#include "../io/torch_pt.h"
#include "distill.h"

// the synthetic set as tensors: images (n, c, h, w) float32 and labels int64
static int syn_tensors(const DistillRun *r, Tensor *x, Tensor *y, Err *e) {
    int64_t sx[4] = {r->n_syn, r->syn_c, r->syn_h, r->syn_w}, sy[1] = {r->n_syn};
    if (tensor_init(x, DTYPE_F32, 4, sx, e)) return -1;
    if (tensor_init(y, DTYPE_I64, 1, sy, e)) {
        tensor_free(x);
        return -1;
    }
    memcpy(x->data, r->syn, sizeof(float) * x->numel);
    for (int i = 0; i < r->n_syn; i++) ((int64_t *)y->data)[i] = r->syn_y[i];
    return 0;
}

int distill_write_res(const char *path, const DistillRun *r, const double *accs, int n_accs, Err *e) {
    Tensor x, y, soft = {0};
    if (syn_tensors(r, &x, &y, e)) return -1;
    int has_soft = r->syn_soft != NULL;
    if (has_soft) { // soft labels take the labels' place (a (n, K) float matrix)
        int64_t ss[2] = {r->n_syn, r->K};
        if (tensor_init(&soft, DTYPE_F32, 2, ss, e)) {
            tensor_free(&x), tensor_free(&y);
            return -1;
        }
        memcpy(soft.data, r->syn_soft, sizeof(float) * soft.numel);
    }
    Tensor *acc = calloc((size_t)(n_accs > 0 ? n_accs : 1), sizeof(Tensor));
    TorchObj *root = tobj_dict(), *data = tobj_list(), *pair = tobj_list(), *all = tobj_dict(), *list = tobj_list();
    int bad = !acc;
    for (int k = 0; !bad && k < n_accs; k++) {
        if (tensor_init(&acc[k], DTYPE_F64, 0, NULL, e)) bad = 1;
        else ((double *)acc[k].data)[0] = accs[k], bad |= tobj_append(list, tobj_tensor(&acc[k]));
    }
    bad |= tobj_append(pair, tobj_tensor(&x)) | tobj_append(pair, tobj_tensor(has_soft ? &soft : &y)) |
           tobj_append(data, pair) | tobj_set(root, "data", data) | tobj_set(all, r->cfg->arch, list) |
           tobj_set(root, "accs_all_exps", all);
    // (whatever the tobj_* calls were given is in root now, or was freed by them)
    int rc = bad ? err_set(e, "out of memory building %s", path) : torch_save_obj(path, root, e);
    tobj_free(root);
    for (int k = 0; acc && k < n_accs; k++) tensor_free(&acc[k]);
    free(acc);
    tensor_free(&x), tensor_free(&y), tensor_free(&soft);
    return rc;
}

int distill_write_pkl(const char *path, const DistillRun *r, Err *e) {
    Tensor x, y;
    if (syn_tensors(r, &x, &y, e)) return -1;
    TorchObj *t = tobj_tuple();
    int bad = tobj_append(t, tobj_tensor(&x)) | tobj_append(t, tobj_tensor(&y));
    int rc = bad ? err_set(e, "out of memory building %s", path) : pickle_dump_obj(path, t, e);
    tobj_free(t);
    tensor_free(&x), tensor_free(&y);
    return rc;
}

int distill_write_png(const char *path, const DistillRun *r, Err *e) {
    int n = r->n_syn, C = r->syn_c, H = r->syn_h, W = r->syn_w, pad = 2;
    int xmaps = r->ipc < n ? r->ipc : n, ymaps = (n + xmaps - 1) / xmaps;
    int gw = xmaps * (W + pad) + pad, gh = ymaps * (H + pad) + pad;
    if ((size_t)gw * gh > (size_t)1 << 28) return err_set(e, "the image grid would be too large");
    uint8_t *img = calloc((size_t)gw * gh * 3, 1);
    if (!img) return err_set(e, "out of memory for the image grid");
    size_t plane = (size_t)H * W;
    for (int i = 0; i < n; i++) {
        int gx = (i % xmaps) * (W + pad) + pad, gy = (i / xmaps) * (H + pad) + pad;
        const float *x = r->syn + (size_t)i * C * plane;
        for (int c = 0; c < 3; c++) {
            int sc = C == 1 ? 0 : c; // make_grid repeats a single channel three times
            float m = r->info->mean[sc], s = r->info->std[sc];
            for (int yy = 0; yy < H; yy++)
                for (int xx = 0; xx < W; xx++) {
                    float v = x[(size_t)sc * plane + (size_t)yy * W + xx] * s + m;
                    v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
                    v = v * 255.0f + 0.5f;
                    v = v > 255.0f ? 255.0f : v;
                    img[((size_t)(gy + yy) * gw + gx + xx) * 3 + c] = (uint8_t)v;
                }
        }
    }
    png_image pi;
    memset(&pi, 0, sizeof(pi));
    pi.version = PNG_IMAGE_VERSION;
    pi.width = (png_uint_32)gw, pi.height = (png_uint_32)gh;
    pi.format = PNG_FORMAT_RGB;
    png_alloc_size_t size = 0;
    int rc = -1;
    if (!png_image_write_to_memory(&pi, NULL, &size, 0, img, 0, NULL) || size == 0) {
        err_set(e, "cannot encode %s: %s", path, pi.message);
    } else {
        void *buf = malloc(size);
        if (!buf) err_set(e, "out of memory encoding %s", path);
        else if (!png_image_write_to_memory(&pi, buf, &size, 0, img, 0, NULL)) err_set(e, "cannot encode %s: %s", path, pi.message);
        else rc = file_write_all(path, buf, size, e);
        free(buf);
    }
    png_image_free(&pi);
    free(img);
    return rc;
}

// ----------------------------------------------------------------------------
// the image folder

static int is_our_dir(const char *name) { // new000 ...
    if (strncmp(name, "new", 3) || strlen(name) < 6) return 0;
    for (const char *p = name + 3; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    return 1;
}

static int is_our_file(const char *name) { // class000_id000.jpg|png
    unsigned c, i;
    char ext[8];
    int n = 0;
    if (sscanf(name, "class%u_id%u.%7s%n", &c, &i, ext, &n) != 3 || name[n]) return 0;
    return !strcmp(ext, "jpg") || !strcmp(ext, "png");
}

// removes an image folder of the release layout; 1 when everything went, 0 when files of
// other names (kept) remain
static int remove_release(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int clean = 1;
    struct dirent *de;
    char path[2400], fp[2700];
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(path, &st) || !S_ISDIR(st.st_mode) || !is_our_dir(de->d_name)) {
            clean = 0;
            continue;
        }
        DIR *s = opendir(path);
        struct dirent *fe;
        while (s && (fe = readdir(s))) {
            if (!strcmp(fe->d_name, ".") || !strcmp(fe->d_name, "..")) continue;
            snprintf(fp, sizeof(fp), "%s/%s", path, fe->d_name);
            if (!is_our_file(fe->d_name) || lstat(fp, &st) || !S_ISREG(st.st_mode) || unlink(fp)) clean = 0;
        }
        if (s) closedir(s);
        if (rmdir(path)) clean = 0;
    }
    closedir(d);
    return clean && rmdir(dir) == 0;
}

int distill_write_imagefolder(const char *dir, const DistillRun *r, const char *ext, Err *e) {
    int png = !strcasecmp(ext, "png");
    if (!png && strcasecmp(ext, "jpg")) return err_set(e, "image format must be jpg or png, not '%s'", ext);
    int C = r->syn_c, H = r->syn_h, W = r->syn_w, K = r->K;
    if (C != 1 && C != 3) return err_set(e, "%d-channel images cannot be saved as %s", C, ext);
    if (r->n_syn != K * r->ipc) return err_set(e, "the image folder needs %d images per class", r->ipc);
    if (strlen(dir) > 1000) return err_set(e, "the image folder's path is too long");
    char tmp[1100], old[1100];
    snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", dir, (long)getpid());
    snprintf(old, sizeof(old), "%s.old-%ld", dir, (long)getpid());
    remove_release(tmp); // a leftover of this pid
    if (mkdir(tmp, 0777)) return err_set(e, "cannot create %s: %s", tmp, strerror(errno));
    size_t plane = (size_t)H * W, D = plane * C;
    uint8_t *px = malloc(D);
    if (!px) {
        rmdir(tmp);
        return err_set(e, "out of memory");
    }
    int rc = 0;
    char sub[1200], path[1300];
    for (int c = 0; c < K && !rc; c++) {
        snprintf(sub, sizeof(sub), "%s/new%03d", tmp, c);
        if (mkdir(sub, 0777)) {
            rc = err_set(e, "cannot create %s: %s", sub, strerror(errno));
            break;
        }
        for (int i = 0; i < r->ipc && !rc; i++) {
            const float *x = r->syn + ((size_t)c * r->ipc + i) * D;
            for (int ch = 0; ch < C; ch++)
                for (size_t k = 0; k < plane; k++) {
                    float v = x[ch * plane + k] * r->info->std[ch] + r->info->mean[ch]; // denormalize: torch float math
                    v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
                    px[k * C + ch] = (uint8_t)(v * 255.0f); // astype(uint8) truncates
                }
            snprintf(path, sizeof(path), "%s/class%03d_id%03d.%s", sub, c, i, png ? "png" : "jpg");
            if ((rc = image_write(path, px, W, H, C, png ? "png" : "jpg", e))) err_wrap(e, "%s", path);
        }
    }
    free(px);
    if (rc) {
        remove_release(tmp);
        return -1;
    }
    struct stat st;
    int had = lstat(dir, &st) == 0;
    if (had && !S_ISDIR(st.st_mode)) {
        remove_release(tmp);
        return err_set(e, "%s exists and is not a folder", dir);
    }
    if (had && rename(dir, old)) {
        int er = errno;
        remove_release(tmp);
        return err_set(e, "cannot move the earlier %s aside: %s", dir, strerror(er));
    }
    if (rename(tmp, dir)) {
        int er = errno;
        if (had) rename(old, dir);
        remove_release(tmp);
        return err_set(e, "cannot rename %s to %s: %s", tmp, dir, strerror(er));
    }
    if (had) remove_release(old); // what it cannot remove (files of other names) stays in old
    return 0;
}

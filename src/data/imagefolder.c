/*
 * imagefolder.c: distilled sets saved as image files, one sub-folder per class, as
 * SRe2L (Yin et al., arXiv:2306.13092), CDA (arXiv:2311.18838), DELT and G-VBSM
 * (arXiv:2311.17950) write them: <dir>/<class folder>/<image>.png or .jpg.
 *
 * Reference: torchvision.datasets.ImageFolder with the default PIL loader, which those
 * methods' evaluation code uses: class folders sorted by name are classes 0, 1, ...;
 * images are opened with PIL and converted to RGB ('L' for one-channel datasets), then
 * ToTensor and Normalize with the dataset's mean/std. Decoding uses libpng's simplified
 * API and libjpeg (islow DCT, fancy upsampling: libjpeg's defaults, which are PIL's).
 * Deliberate differences: only .png, .jpg and .jpeg files are read (another image
 * extension in a class folder is an error, not silently skipped), class folders are not
 * searched recursively, and images must already have the dataset's size (the methods
 * save them at that size; nothing is resized).
 * Writing (image_write) is what the decoupled methods' recover code does with PIL:
 * Image.fromarray(...).save(path) at PIL's defaults, JPEG quality 75 with 4:2:0 chroma
 * (byte for byte PIL's output, as the decoupled test checks), or PNG.
 */
#include <dirent.h>
#include <stdio.h> // before jpeglib.h, which uses FILE
#include <jpeglib.h>
#include <jerror.h> // JWRN_JPEG_EOF
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "pool.h"

#include "../io/file.h"

// ----------------------------------------------------------------------------
// decoders

// the size from an image's header, checked before a byte of it is decoded: the size the
// caller wants (want_w/want_h > 0), else at most IMAGE_MAX_PIXELS
static int check_size(const char *path, const char *kind, unsigned w, unsigned h, int want_w, int want_h, Err *e) {
    if (w == 0 || h == 0 || w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE || (uint64_t)w * h > IMAGE_MAX_PIXELS)
        return err_set(e, "%s: implausible %s size %ux%u (not decoded)", path, kind, w, h);
    if (want_w > 0 && want_h > 0 && (w != (unsigned)want_w || h != (unsigned)want_h))
        return err_set(e, "%s is %ux%u but %dx%d images are expected (not decoded; resize them first)", path, w, h, want_w,
                       want_h);
    return 0;
}

static int png_read_rgb(const uint8_t *buf, size_t size, const char *path, int want_w, int want_h, uint8_t **rgb,
                        int *w, int *h, Err *e) {
    png_image im;
    memset(&im, 0, sizeof(im));
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&im, buf, size)) return err_set(e, "%s: %s", path, im.message);
    if (check_size(path, "PNG", im.width, im.height, want_w, want_h, e)) {
        png_image_free(&im);
        return -1;
    }
    // read as RGBA and drop alpha, as PIL's convert('RGB') does (libpng would composite
    // it onto a background otherwise)
    im.format = PNG_FORMAT_RGBA;
    size_t n = (size_t)im.width * im.height;
    uint8_t *rgba = xmalloc(n * 4);
    if (!rgba) {
        png_image_free(&im);
        return err_set(e, "%s: out of memory", path);
    }
    if (!png_image_finish_read(&im, NULL, rgba, 0, NULL)) {
        xfree(rgba);
        return err_set(e, "%s: %s", path, im.message);
    }
    *rgb = xmalloc(n * 3);
    if (!*rgb) {
        xfree(rgba);
        return err_set(e, "%s: out of memory", path);
    }
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) (*rgb)[i * 3 + c] = rgba[i * 4 + c];
    xfree(rgba);
    *w = (int)im.width, *h = (int)im.height;
    return 0;
}

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} JpegErr;

// libjpeg calls exit() on errors by default; jump back to the caller instead
static void jpeg_on_error(j_common_ptr cinfo) {
    JpegErr *je = (JpegErr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, je->msg);
    longjmp(je->jump, 1);
}

// libjpeg's warnings are not printed. One is an error: the data ending before the image
// (or its EOI marker) does, where libjpeg would fill the rest with grey and go on. PIL,
// which torchvision's loaders and the official DD code read images with, refuses such a
// file ("image file is truncated"), so beard does too: a cut-off download must not
// become a silently grey image (and a 600-byte file claiming 8000x8000 pixels is not
// decoded in full)
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    if (level >= 0 || cinfo->err->msg_code != JWRN_JPEG_EOF) return;
    JpegErr *je = (JpegErr *)cinfo->err;
    snprintf(je->msg, sizeof(je->msg), "truncated JPEG (its data ends before the image does; PIL refuses it too)");
    longjmp(je->jump, 1);
}

static int jpeg_read_rgb(const uint8_t *buf, size_t size, const char *path, int want_w, int want_h, uint8_t **rgb,
                         int *w, int *h, Err *e) {
    struct jpeg_decompress_struct cinfo;
    JpegErr je;
    // volatile: modified between setjmp and longjmp
    uint8_t *volatile out = NULL;
    cinfo.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jpeg_on_error;
    je.pub.emit_message = jpeg_on_message;
    if (setjmp(je.jump)) {
        jpeg_destroy_decompress(&cinfo);
        xfree(out);
        return je.msg[0] ? err_set(e, "%s: %s", path, je.msg) : -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, (unsigned char *)buf, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    if (check_size(path, "JPEG", cinfo.image_width, cinfo.image_height, want_w, want_h, e)) {
        je.msg[0] = 0; // e says why
        longjmp(je.jump, 1);
    }
    if (cinfo.num_components != 1 && cinfo.num_components != 3) {
        snprintf(je.msg, sizeof(je.msg), "%d-component JPEG (CMYK?) is not supported", cinfo.num_components);
        longjmp(je.jump, 1);
    }
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_width == 0 || cinfo.output_height == 0 || cinfo.output_width > 16384 ||
        cinfo.output_height > 16384 || cinfo.output_components != 3) {
        snprintf(je.msg, sizeof(je.msg), "implausible JPEG %ux%u", cinfo.output_width, cinfo.output_height);
        longjmp(je.jump, 1);
    }
    size_t stride = (size_t)cinfo.output_width * 3;
    out = xmalloc(stride * cinfo.output_height);
    if (!out) {
        snprintf(je.msg, sizeof(je.msg), "out of memory");
        longjmp(je.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out + stride * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    *w = (int)cinfo.output_width, *h = (int)cinfo.output_height;
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    *rgb = out;
    return 0;
}

int image_read_rgb_sized(const char *path, int want_w, int want_h, uint8_t **rgb, int *w, int *h, Err *e) {
    *rgb = NULL;
    // the whole file in memory first (a regular file: a FIFO named .png must not hang the
    // loader): a truncated or corrupt JPEG makes libjpeg ask for more input at every
    // marker it looks for, which from a FILE is a read() each time
    uint8_t *buf = NULL;
    size_t size = 0;
    if (file_read_all(path, IMAGE_MAX_FILE_BYTES, &buf, &size, e)) return -1;
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    int rc;
    if (size >= 8 && !memcmp(buf, png_sig, 8)) rc = png_read_rgb(buf, size, path, want_w, want_h, rgb, w, h, e);
    else if (size >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF)
        rc = jpeg_read_rgb(buf, size, path, want_w, want_h, rgb, w, h, e);
    else rc = err_set(e, "%s is neither a PNG nor a JPEG file", path);
    free(buf);
    return rc;
}

int image_read_rgb(const char *path, uint8_t **rgb, int *w, int *h, Err *e) {
    return image_read_rgb_sized(path, 0, 0, rgb, w, h, e);
}

// ----------------------------------------------------------------------------
// the folder

static int names_add(NameList *s, const char *name) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        char **it = realloc(s->items, sizeof(char *) * (size_t)cap);
        if (!it) return -1;
        s->items = it, s->cap = cap;
    }
    if (!(s->items[s->n] = xstrdup(name))) return -1;
    s->n++;
    return 0;
}

void name_list_free(NameList *s) {
    for (int i = 0; i < s->n; i++) xfree(s->items[i]);
    free(s->items);
    memset(s, 0, sizeof(*s));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int has_ext(const char *name, const char *const *exts) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (; *exts; exts++)
        if (!strcasecmp(dot, *exts)) return 1;
    return 0;
}

static const char *const readable[] = {".png", ".jpg", ".jpeg", NULL};
// what torchvision's ImageFolder would also pick up (IMG_EXTENSIONS)
static const char *const other_images[] = {".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", NULL};

int name_list_dir(const char *dir, int want_dirs, NameList *out, Err *e) {
    DIR *d = opendir(dir);
    if (!d) return err_set(e, "cannot open folder %s", dir);
    struct dirent *de;
    char path[2048];
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0) continue;
        if ((want_dirs && S_ISDIR(st.st_mode)) || (!want_dirs && S_ISREG(st.st_mode))) {
            if (names_add(out, de->d_name)) {
                closedir(d);
                return err_set(e, "out of memory listing %s", dir);
            }
        }
    }
    closedir(d);
    if (out->n > 1) qsort(out->items, (size_t)out->n, sizeof(char *), cmp_str);
    return 0;
}

// When every class folder ends in a number (class_000, new007, 3), the numbers in sorted
// order must count up by one: folders 0..8 and 10 mean that class 9 is missing and that
// "10" would silently become class 9.
static int check_numbering(const char *dir, const NameList *classes, Err *e) {
    long first = 0, prev = 0;
    for (int k = 0; k < classes->n; k++) {
        const char *nm = classes->items[k], *d = nm + strlen(nm);
        while (d > nm && d[-1] >= '0' && d[-1] <= '9') d--;
        if (!*d || strlen(d) > 9) return 0; // not all numbered: sorted order is all there is
        long v = atol(d);
        if (k == 0) first = v;
        else if (v != prev + 1)
            return err_set(e, "%s: class folder %s follows %s (numbered folders must count up by one from %ld; is a class missing?)",
                           dir, nm, classes->items[k - 1], first);
        prev = v;
    }
    return 0;
}

int pool_load_imagefolder(Pool *p, const char *dir, const DatasetInfo *info, Err *e) {
    memset(p, 0, sizeof(*p));
    p->exp = -1;
    p->n_classes = info->n_classes;
    NameList classes = {0}, files = {0};
    int rc = -1, cap = 0;
    uint8_t *rgb = NULL;
    if (name_list_dir(dir, 1, &classes, e)) goto done;
    if (classes.n == 0) {
        err_set(e, "%s has no class sub-folders (expected <dir>/<class>/<image>.png|jpg, or an MTT folder with "
                   "images_best.pt)", dir);
        goto done;
    }
    // class k is the k-th folder in sorted order (torchvision's rule): a missing folder
    // would shift every later label, so the folders must be exactly the classes
    if (classes.n != info->n_classes) {
        err_set(e, "%s has %d class folders but %s has %d classes (a missing class folder would shift every later label)",
                dir, classes.n, info->name, info->n_classes);
        goto done;
    }
    if (check_numbering(dir, &classes, e)) goto done;
    p->c = info->c, p->h = info->h, p->w = info->w;
    size_t plane = (size_t)p->h * p->w, D = plane * p->c;
    char path[4096], cdir[2048];
    for (int k = 0; k < classes.n; k++) {
        snprintf(cdir, sizeof(cdir), "%s/%s", dir, classes.items[k]);
        name_list_free(&files);
        if (name_list_dir(cdir, 0, &files, e)) goto done;
        for (int f = 0; f < files.n; f++) {
            const char *name = files.items[f];
            snprintf(path, sizeof(path), "%s/%s", cdir, name);
            if (has_ext(name, other_images)) {
                err_set(e, "%s: only PNG and JPEG images are supported", path);
                goto done;
            }
            if (!has_ext(name, readable)) continue; // ImageFolder skips non-images too
            int w, h;
            if (image_read_rgb_sized(path, p->w, p->h, &rgb, &w, &h, e)) goto done;
            if (p->n == cap) {
                cap = cap ? 2 * cap : 256;
                if (cap > (1 << 24)) {
                    err_set(e, "%s: too many images", dir);
                    goto done;
                }
                float *x = realloc(p->x, sizeof(float) * D * (size_t)cap);
                int *y = realloc(p->y, sizeof(int) * (size_t)cap);
                if (x) p->x = x;
                if (y) p->y = y;
                if (!x || !y) {
                    err_set(e, "out of memory reading %s", dir);
                    goto done;
                }
            }
            float *dst = p->x + (size_t)p->n * D;
            for (size_t i = 0; i < plane; i++) {
                const uint8_t *px = rgb + i * 3;
                if (p->c == 1) {
                    // PIL's convert('L'): ITU-R 601-2 luma in 16-bit fixed point
                    uint8_t l = (uint8_t)((px[0] * 19595 + px[1] * 38470 + px[2] * 7471 + 0x8000) >> 16);
                    dst[i] = ((float)l / 255.0f - info->mean[0]) / info->std[0];
                } else {
                    for (int c = 0; c < 3; c++) dst[c * plane + i] = ((float)px[c] / 255.0f - info->mean[c]) / info->std[c];
                }
            }
            xfree(rgb);
            rgb = NULL;
            p->y[p->n++] = k;
        }
    }
    if (p->n == 0) {
        err_set(e, "%s: no .png or .jpg images in its %d class folders", dir, classes.n);
        goto done;
    }
    snprintf(p->format, sizeof(p->format), "imagefolder");
    rc = 0;
done:
    xfree(rgb);
    name_list_free(&classes);
    name_list_free(&files);
    return rc;
}

// ----------------------------------------------------------------------------
// encoders, as the decoupled methods save with PIL (to memory, then file_write_all's
// temporary name and rename)

static int jpeg_encode(const uint8_t *rgb, int w, int h, int C, unsigned char **buf, unsigned long *n, Err *e) {
    struct jpeg_compress_struct c;
    JpegErr je;
    c.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jpeg_on_error;
    *buf = NULL, *n = 0;
    if (setjmp(je.jump)) {
        jpeg_destroy_compress(&c);
        free(*buf);
        *buf = NULL;
        return err_set(e, "JPEG encoding: %s", je.msg);
    }
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, buf, n);
    c.image_width = (JDIMENSION)w, c.image_height = (JDIMENSION)h;
    c.input_components = C;
    c.in_color_space = C == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 75, TRUE); // PIL's default quality; its default subsampling is libjpeg's 4:2:0
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)c.next_scanline * w * C);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return 0;
}

static int png_encode(const uint8_t *rgb, int w, int h, int C, void **buf, size_t *n, Err *e) {
    png_image im;
    memset(&im, 0, sizeof(im));
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w, im.height = (png_uint_32)h;
    im.format = C == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    size_t size = 0;
    if (!png_image_write_to_memory(&im, NULL, &size, 0, rgb, 0, NULL)) return err_set(e, "PNG encoding: %s", im.message);
    *buf = malloc(size);
    if (!*buf) return err_set(e, "out of memory");
    if (!png_image_write_to_memory(&im, *buf, &size, 0, rgb, 0, NULL)) {
        free(*buf);
        return err_set(e, "PNG encoding: %s", im.message);
    }
    *n = size;
    return 0;
}

int image_write(const char *path, const uint8_t *px, int W, int H, int C, const char *ext, Err *e) {
    int rc;
    if (!strcasecmp(ext, "png")) {
        void *buf = NULL;
        size_t n = 0;
        rc = png_encode(px, W, H, C, &buf, &n, e) || file_write_all(path, buf, n, e);
        free(buf);
    } else {
        unsigned char *buf = NULL;
        unsigned long n = 0;
        rc = jpeg_encode(px, W, H, C, &buf, &n, e) || file_write_all(path, buf, n, e);
        free(buf);
    }
    return rc ? -1 : 0;
}


/*
 * download.c: see download.h. URLs and MD5s are torchvision's (datasets/cifar.py,
 * mnist.py, svhn.py) and, for TinyImageNet, the cs231n archive's; the layouts under the
 * data directory are torchvision's too, which is where dataset_load looks (BEARD's
 * get_dataset downloads through torchvision into the same places).
 */
#include "download.h"

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../io/file.h"
#include <unistd.h>

#include "../core/progress.h"
#include "dataset.h"

#define MNIST_A "https://ossci-datasets.s3.amazonaws.com/mnist/"
#define MNIST_B "http://yann.lecun.com/exdb/mnist/"
#define FASHION "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

static const DownloadSpec specs[] = {
    {"cifar10", "CIFAR-10", "", 1,
     {{"cifar-10-python.tar.gz", {"https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"},
       "c58f30108f718f92721af3b95e74349a", 1}},
     "cifar-10-batches-py/test_batch", NULL},
    {"cifar100", "CIFAR-100", "", 1,
     {{"cifar-100-python.tar.gz", {"https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"},
       "eb9058c3a382ffc7106e4002c42a8d85", 1}},
     "cifar-100-python/test", NULL},
    {"mnist", "MNIST", "MNIST/raw", 4,
     {{"train-images-idx3-ubyte.gz", {MNIST_A "train-images-idx3-ubyte.gz", MNIST_B "train-images-idx3-ubyte.gz"},
       "f68b3c2dcbeaaa9fbdd348bbdeb94873", 0},
      {"train-labels-idx1-ubyte.gz", {MNIST_A "train-labels-idx1-ubyte.gz", MNIST_B "train-labels-idx1-ubyte.gz"},
       "d53e105ee54ea40749a09fcbcd1e9432", 0},
      {"t10k-images-idx3-ubyte.gz", {MNIST_A "t10k-images-idx3-ubyte.gz", MNIST_B "t10k-images-idx3-ubyte.gz"},
       "9fb629c4189551a2d022fa330f9573f3", 0},
      {"t10k-labels-idx1-ubyte.gz", {MNIST_A "t10k-labels-idx1-ubyte.gz", MNIST_B "t10k-labels-idx1-ubyte.gz"},
       "ec29112dd5afa0611ce80d1b7f02629c", 0}},
     "MNIST/raw/t10k-images-idx3-ubyte.gz", NULL},
    {"fashionmnist", "FashionMNIST", "FashionMNIST/raw", 4,
     {{"train-images-idx3-ubyte.gz", {FASHION "train-images-idx3-ubyte.gz"}, "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 0},
      {"train-labels-idx1-ubyte.gz", {FASHION "train-labels-idx1-ubyte.gz"}, "25c81989df183df01b3e8a0aad5dffbe", 0},
      {"t10k-images-idx3-ubyte.gz", {FASHION "t10k-images-idx3-ubyte.gz"}, "bef4ecab320f06d8554ea6380940ec79", 0},
      {"t10k-labels-idx1-ubyte.gz", {FASHION "t10k-labels-idx1-ubyte.gz"}, "bb300cfdad3c16e7a12a480ee83cd310", 0}},
     "FashionMNIST/raw/t10k-images-idx3-ubyte.gz", NULL},
    {"svhn", "SVHN", "", 2,
     {{"train_32x32.mat", {"http://ufldl.stanford.edu/housenumbers/train_32x32.mat"},
       "e26dedcc434d2e4c54c9b2d4a06d8373", 0},
      {"test_32x32.mat", {"http://ufldl.stanford.edu/housenumbers/test_32x32.mat"}, "eb5a983be6a315427106f1b164d9cef3",
       0}},
     "test_32x32.mat", NULL},
    {"tinyimagenet", "TinyImageNet", "", 1,
     {{"tiny-imagenet-200.zip", {"http://cs231n.stanford.edu/tiny-imagenet-200.zip"},
       "90528d7ca1a48142e341f4ef8d21d0de", 1}},
     "tiny-imagenet-200/wnids.txt",
     "the JPEG folders are unpacked in tiny-imagenet-200/, which beard reads as they are (DC's preprocessed "
     "tinyimagenet.pt is read instead when it is present)"},
};

const DownloadSpec *download_find(const char *name) {
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
        if (dataset_name_eq(name, specs[i].name)) return &specs[i];
    return NULL;
}

const char *download_names(void) { return "cifar10, cifar100, mnist, fashionmnist, svhn, tinyimagenet"; }

// ----------------------------------------------------------------------------
// checksums

int download_md5_file(const char *path, char hex[33], Err *e) {
    FILE *f = file_open_regular(path, e);
    if (!f) return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *buf = malloc(1 << 20);
    int rc = -1;
    if (!ctx || !buf || EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1) {
        err_set(e, "cannot start an MD5 digest");
        goto done;
    }
    size_t n;
    while ((n = fread(buf, 1, 1 << 20, f)) > 0)
        if (EVP_DigestUpdate(ctx, buf, n) != 1) {
            err_set(e, "MD5 digest failed");
            goto done;
        }
    if (ferror(f)) {
        err_set(e, "cannot read %s", path);
        goto done;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx, md, &len) != 1 || len != 16) {
        err_set(e, "MD5 digest failed");
        goto done;
    }
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    rc = 0;
done:
    free(buf);
    EVP_MD_CTX_free(ctx);
    fclose(f);
    return rc;
}

// ----------------------------------------------------------------------------
// fetching

typedef struct {
    Progress p;
    int on, started;
    char label[64];
} FetchProgress;

static int xferinfo(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    FetchProgress *fp = ctx;
    if (!fp->on || dltotal <= 0) return 0;
    if (!fp->started) {
        progress_start(&fp->p, fp->label, (double)dltotal);
        fp->started = 1;
    }
    char extra[48];
    snprintf(extra, sizeof(extra), "%.1f/%.1f MB", dlnow / 1e6, dltotal / 1e6);
    progress_update(&fp->p, (double)dlnow, extra);
    return 0;
}

int download_fetch(const char *url, const char *dest, int progress, const char *md5, Err *e) {
    static int curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return err_set(e, "cannot initialise libcurl");
        curl_ready = 1;
    }
    FileAtomic out; // the download goes to a temporary next to dest, renamed when complete
    if (file_atomic_open(&out, dest, e)) return -1;
    FILE *f = out.f;
    CURL *c = curl_easy_init();
    if (!c) {
        file_atomic_abort(&out);
        return err_set(e, "cannot initialise libcurl");
    }
    FetchProgress fp = {.on = progress};
    const char *base = strrchr(dest, '/');
    snprintf(fp.label, sizeof(fp.label), "%.60s", base ? base + 1 : dest);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f); // libcurl's default writer is fwrite
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L); // give up after a minute without data
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "beard/" BEARD_VERSION);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xferinfo);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &fp);
    CURLcode rc = curl_easy_perform(c);
    if (fp.started) progress_end(&fp.p);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        file_atomic_abort(&out);
        return err_set(e, "%s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    }
    // the checksum of the temporary, before it takes dest's name
    char got[33];
    if (md5 && (fflush(out.f) != 0 || download_md5_file(out.tmp, got, e))) {
        file_atomic_abort(&out);
        return -1;
    }
    if (md5 && strcmp(got, md5)) {
        file_atomic_abort(&out);
        return err_set(e, "%.300s: checksum mismatch (md5 %s, published %s); nothing was kept", url, got, md5);
    }
    return file_atomic_commit(&out, e);
}

// ----------------------------------------------------------------------------
// unpacking

static int unsafe_name(const char *p) {
    if (p[0] == '/') return 1;
    for (const char *s = p; *s;) {
        size_t k = strcspn(s, "/");
        if (k == 2 && s[0] == '.' && s[1] == '.') return 1;
        s += k;
        while (*s == '/') s++;
    }
    return 0;
}

int download_extract(const char *archive, const char *dir, Err *e) {
    struct archive *a = archive_read_new(), *w = archive_write_disk_new();
    int rc = -1;
    if (!a || !w) {
        err_set(e, "cannot initialise libarchive");
        goto done;
    }
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    archive_write_disk_set_options(w, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                          ARCHIVE_EXTRACT_SECURE_SYMLINKS);
    if (archive_read_open_filename(a, archive, 1 << 16) != ARCHIVE_OK) {
        err_set(e, "%s: %s", archive, archive_error_string(a));
        goto done;
    }
    struct archive_entry *ent;
    int r, n = 0;
    while ((r = archive_read_next_header(a, &ent)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(ent);
        if (!name || !*name) continue;
        if (unsafe_name(name)) {
            err_set(e, "%s: refusing the entry '%s' (absolute or '..' path)", archive, name);
            goto done;
        }
        mode_t type = archive_entry_filetype(ent);
        if (type != AE_IFREG && type != AE_IFDIR) continue; // datasets hold files and folders only
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        archive_entry_set_pathname(ent, path);
        archive_entry_set_perm(ent, type == AE_IFDIR ? 0755 : 0644);
        if (archive_write_header(w, ent) != ARCHIVE_OK) {
            err_set(e, "%s: cannot create %s: %s", archive, path, archive_error_string(w));
            goto done;
        }
        const void *buf;
        size_t size;
        la_int64_t off;
        int d;
        while ((d = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK)
            if (archive_write_data_block(w, buf, size, off) != ARCHIVE_OK) {
                err_set(e, "%s: cannot write %s: %s", archive, path, archive_error_string(w));
                goto done;
            }
        if (d != ARCHIVE_EOF) {
            err_set(e, "%s: corrupt archive at %s: %s", archive, name, archive_error_string(a));
            goto done;
        }
        if (archive_write_finish_entry(w) != ARCHIVE_OK) {
            err_set(e, "%s: cannot finish %s: %s", archive, path, archive_error_string(w));
            goto done;
        }
        n++;
    }
    if (r != ARCHIVE_EOF) {
        err_set(e, "%s: corrupt archive: %s", archive, archive_error_string(a));
        goto done;
    }
    if (n == 0) {
        err_set(e, "%s: no files in the archive", archive);
        goto done;
    }
    rc = 0;
done:
    if (a) archive_read_free(a);
    if (w) archive_write_free(w);
    return rc;
}

// ----------------------------------------------------------------------------
// a whole dataset

static int mkdirs(const char *path, Err *e) {
    char p[1024];
    if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p)) return err_set(e, "path too long: %s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) return err_set(e, "cannot create %s: %s", p, strerror(errno));
        *s = '/';
    }
    if (mkdir(p, 0777) != 0 && errno != EEXIST) return err_set(e, "cannot create %s: %s", p, strerror(errno));
    return 0;
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

int download_dataset(const DownloadSpec *s, const char *dir, const DownloadOptions *opt, Err *e) {
    char folder[1024], ready[1200];
    snprintf(folder, sizeof(folder), "%s%s%s", dir, s->subdir[0] ? "/" : "", s->subdir);
    snprintf(ready, sizeof(ready), "%s/%s", dir, s->ready);
    if (exists(ready) && !opt->force) {
        if (opt->msg) fprintf(opt->msg, "%s is already in %s (%s); --force fetches it again\n", s->title, dir, ready);
        return 0;
    }
    if (mkdirs(folder, e)) return -1;
    for (int i = 0; i < s->n_files; i++) {
        const DownloadFile *df = &s->files[i];
        char dest[1200], md5[33];
        snprintf(dest, sizeof(dest), "%s/%s", folder, df->file);
        int have = 0;
        if (exists(dest) && !opt->force) {
            Err ce;
            if (download_md5_file(dest, md5, &ce) == 0 && !strcmp(md5, df->md5)) {
                have = 1;
                if (opt->msg) fprintf(opt->msg, "%s: in place, checksum ok\n", dest);
            } else if (opt->msg) fprintf(opt->msg, "%s: in place but its checksum is wrong; fetching it again\n", dest);
        }
        char first_err[ERR_MAX] = "";
        const char *first_url = df->urls[0];
        char murl[1200];
        if (opt->mirror) {
            size_t ml = strlen(opt->mirror);
            snprintf(murl, sizeof(murl), "%s%s%s", opt->mirror, ml && opt->mirror[ml - 1] == '/' ? "" : "/", df->file);
            first_url = murl;
        }
        for (int u = 0; !have && u < DOWNLOAD_MAX_URLS; u++) {
            const char *url = opt->mirror ? (u == 0 ? murl : NULL) : df->urls[u];
            if (!url) break;
            if (opt->msg) fprintf(opt->msg, "fetching %s\n", url);
            Err fe;
            if (download_fetch(url, dest, opt->progress, df->md5, &fe)) {
                // the last failure is the one to report when a checksum was wrong
                if (!first_err[0] || strstr(fe.msg, "checksum")) snprintf(first_err, sizeof(first_err), "%s", fe.msg);
                if (opt->msg) fprintf(opt->msg, "  failed: %s\n", fe.msg);
                continue;
            }
            if (opt->msg) fprintf(opt->msg, "  %s: md5 %s ok\n", df->file, df->md5);
            have = 1;
        }
        if (!have)
            return err_set(e,
                           "cannot get %s (%s). Without network access: download %s (md5 %s) by other means, put it "
                           "at %s and run `beard download %s --data %s` again to verify and unpack it",
                           df->file, first_err, first_url, df->md5, dest, s->name, dir);
        if (df->extract) {
            if (opt->msg) fprintf(opt->msg, "unpacking %s into %s\n", dest, folder);
            if (download_extract(dest, folder, e)) return -1;
        }
    }
    if (!exists(ready)) return err_set(e, "%s was unpacked but %s is missing: unexpected archive layout", s->title, ready);
    if (opt->msg) {
        fprintf(opt->msg, "%s is ready in %s\n", s->title, dir);
        if (s->note) fprintf(opt->msg, "note: %s\n", s->note);
    }
    return 0;
}

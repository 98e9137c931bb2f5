/*
 * test_download.c: `beard download` (src/data/download.c) without a network: archives
 * built here are served through file:// URLs, which go through the same libcurl path as
 * http(s). Checked: MD5 against known digests, fetch + verify + unpack + load, the
 * already-in-place path, checksum mismatches, missing files (with the offline
 * instructions), unsafe and corrupt archives, and the CLI's exit statuses.
 */
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/data/dataset.h"
#include "../src/data/download.h"
#include "../src/io/file.h"
#include "harness.h"

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

// a tar.gz holding files: names[i] with the contents of srcs[i] (paths) or texts[i]
static int make_tgz(const char *path, const char *const *names, const char *const *srcs, int n) {
    struct archive *a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_pax_restricted(a);
    if (archive_write_open_filename(a, path) != ARCHIVE_OK) return -1;
    for (int i = 0; i < n; i++) {
        uint8_t *buf = NULL;
        size_t len = 0;
        Err e;
        if (srcs[i][0] == '@') buf = (uint8_t *)strdup(srcs[i] + 1), len = strlen(srcs[i] + 1);
        else if (file_read_all(srcs[i], 1 << 26, &buf, &len, &e)) return -1;
        struct archive_entry *ent = archive_entry_new();
        archive_entry_set_pathname(ent, names[i]);
        archive_entry_set_size(ent, (la_int64_t)len);
        archive_entry_set_filetype(ent, AE_IFREG);
        archive_entry_set_perm(ent, 0644);
        archive_write_header(a, ent);
        archive_write_data(a, buf, len);
        archive_entry_free(ent);
        free(buf);
    }
    archive_write_close(a);
    archive_write_free(a);
    return 0;
}

static void test_md5(void) {
    const char *p = test_tmp("md5.txt");
    Err e;
    char hex[33];
    file_write_all(p, "abc", 3, &e);
    CHECK(download_md5_file(p, hex, &e) == 0 && !strcmp(hex, "900150983cd24fb0d6963f7d28e17f72"), "md5(abc) = %s", hex);
    file_write_all(p, "", 0, &e);
    CHECK(download_md5_file(p, hex, &e) == 0 && !strcmp(hex, "d41d8cd98f00b204e9800998ecf8427e"), "md5() = %s", hex);
    remove(p);
    CHECK(download_md5_file(p, hex, &e) == -1 && strstr(e.msg, "md5.txt"), "md5 of a missing file: %s", e.msg);
}

static void test_specs(void) {
    const char *names[] = {"cifar10", "CIFAR-10", "cifar100", "mnist", "fashion_mnist", "FashionMNIST", "svhn",
                           "TinyImageNet"};
    for (int i = 0; i < 8; i++) CHECK(download_find(names[i]) != NULL, "download_find(%s)", names[i]);
    CHECK(download_find("imagenet") == NULL, "unknown names are NULL");
    const DownloadSpec *c = download_find("cifar10");
    CHECK(c && !strcmp(c->files[0].md5, "c58f30108f718f92721af3b95e74349a") &&
              strstr(c->files[0].urls[0], "www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
          "CIFAR-10: torchvision's URL and MD5");
    const DownloadSpec *m = download_find("mnist");
    CHECK(m && m->n_files == 4 && m->files[2].urls[1] != NULL && !strcmp(m->subdir, "MNIST/raw"), "MNIST: two mirrors");
}

static void test_fetch_and_unpack(void) {
    const char *root = test_tmp("dl");
    char serve[1024], data[1024], archive[1100], url[1200], cmd[2600];
    snprintf(serve, sizeof(serve), "%s/serve", root);
    snprintf(data, sizeof(data), "%s/data", root);
    snprintf(cmd, sizeof(cmd), "mkdir -p %s", serve);
    CHECK(system(cmd) == 0, "mkdir");
    snprintf(archive, sizeof(archive), "%s/cifar-10-python.tar.gz", serve);
    const char *names[] = {"cifar-10-batches-py/test_batch", "cifar-10-batches-py/batches.meta"};
    const char *srcs[] = {"tests/fixtures/io/cifar10_py/test_batch", "tests/fixtures/io/cifar10_py/batches.meta"};
    CHECK(make_tgz(archive, names, srcs, 2) == 0, "a CIFAR-10-like tar.gz");
    char md5[33];
    Err e;
    CHECK(download_md5_file(archive, md5, &e) == 0, "its md5");
    snprintf(url, sizeof(url), "file://%s", archive);
    DownloadSpec spec = {"cifar10", "CIFAR-10 (test archive)", "", 1, {{"cifar-10-python.tar.gz", {url}, md5, 1}},
                         "cifar-10-batches-py/test_batch", NULL};
    DownloadOptions opt = {.progress = 0};
    CHECK(download_dataset(&spec, data, &opt, &e) == 0, "fetch, verify, unpack through file://: %s", e.msg);
    Dataset ds;
    CHECK(dataset_load(&ds, "cifar10", data, 0, 0, &e) == 0 && ds.n > 0, "dataset_load reads what was unpacked: %s",
          e.msg);
    dataset_free(&ds);
    char part[1200];
    snprintf(part, sizeof(part), "ls -a '%s' | grep -q 'tmp$'", data);
    CHECK(system(part) != 0, "no temporary is left");

    // in place: no fetch (the URL is gone)
    DownloadSpec gone = spec;
    gone.files[0].urls[0] = "file:///nonexistent/cifar-10-python.tar.gz";
    CHECK(download_dataset(&gone, data, &opt, &e) == 0, "already unpacked: nothing to fetch");
    opt.force = 1;
    CHECK(download_dataset(&spec, data, &opt, &e) == 0, "--force fetches, verifies and unpacks again: %s", e.msg);
    CHECK(download_dataset(&gone, data, &opt, &e) == -1, "--force really fetches (the URL is gone)");
    opt.force = 0;

    // a checksum mismatch removes the file and says so
    char data2[1100];
    snprintf(data2, sizeof(data2), "%s/data2", root);
    DownloadSpec wrong = spec;
    wrong.files[0].md5 = "00000000000000000000000000000000";
    CHECK(download_dataset(&wrong, data2, &opt, &e) == -1 && strstr(e.msg, "checksum mismatch"), "mismatch: %s", e.msg);
    char dest[1200];
    snprintf(dest, sizeof(dest), "%s/cifar-10-python.tar.gz", data2);
    CHECK(!exists(dest), "the mismatched file is removed");

    // a missing file: the message says what to fetch and where to put it
    CHECK(download_dataset(&gone, data2, &opt, &e) == -1 && strstr(e.msg, "Without network access") &&
              strstr(e.msg, md5) && strstr(e.msg, dest),
          "offline instructions: %s", e.msg);
    // ... and following them works
    snprintf(cmd, sizeof(cmd), "cp %s %s", archive, dest);
    CHECK(system(cmd) == 0, "cp");
    CHECK(download_dataset(&gone, data2, &opt, &e) == 0, "a file put in place by hand is verified and unpacked: %s",
          e.msg);

    // unsafe and corrupt archives
    char evil[1100], target[1100];
    snprintf(evil, sizeof(evil), "%s/evil.tar.gz", serve);
    const char *en[] = {"ok.txt", "../escaped.txt"}, *es[] = {"@fine", "@bad"};
    make_tgz(evil, en, es, 2);
    snprintf(target, sizeof(target), "%s/unpack", root);
    snprintf(cmd, sizeof(cmd), "mkdir -p %s", target);
    CHECK(system(cmd) == 0, "mkdir");
    CHECK(download_extract(evil, target, &e) == -1 && strstr(e.msg, "refusing"), "'..' entries are refused: %s", e.msg);
    char escaped[1200];
    snprintf(escaped, sizeof(escaped), "%s/escaped.txt", root);
    CHECK(!exists(escaped), "nothing is written outside the target");
    const char *an[] = {"/etc/beard-evil"}, *as[] = {"@x"};
    make_tgz(evil, an, as, 1);
    CHECK(download_extract(evil, target, &e) == -1 && strstr(e.msg, "refusing"), "absolute entries are refused");
    char junk[1100];
    snprintf(junk, sizeof(junk), "%s/junk.tar.gz", serve);
    static const char garbage[] = "\x1f\x8b\x08\x00garbage garbage garbage";
    file_write_all(junk, garbage, sizeof(garbage) - 1, &e);
    CHECK(download_extract(junk, target, &e) == -1, "a corrupt archive is an error: %s", e.msg);

    // the CLI
    if (!beard_bin()) {
        test_skip("CLI tests: no beard binary ($BEARD or build/beard)");
        return;
    }
    static char out[1 << 14];
    int rc = run_cli(out, sizeof(out), "download imagenet");
    CHECK(rc == 2 && strstr(out, "unknown dataset"), "unknown dataset: usage error (%d)", rc);
    rc = run_cli(out, sizeof(out), "download");
    CHECK(rc == 2, "no dataset: usage error (%d)", rc);
    char d3[1100];
    snprintf(d3, sizeof(d3), "%s/data3", root);
    rc = run_cli(out, sizeof(out), "download cifar10 --dir %s --mirror file:///nonexistent/", d3);
    CHECK(rc == 1 && strstr(out, "Without network access") && strstr(out, "c58f30108f718f92721af3b95e74349a"),
          "no network: exit 1 with what to download and where (%d): %s", rc, out);
    // our test archive is not the real one: the published checksum rejects it
    rc = run_cli(out, sizeof(out), "download cifar10 --dir %s --mirror file://%s", d3, serve);
    CHECK(rc == 1 && strstr(out, "checksum mismatch"), "the published MD5 is checked (%d): %s", rc, out);
    rc = run_cli(out, sizeof(out), "download --help");
    CHECK(rc == 0 && strstr(out, "ossci-datasets") && strstr(out, "eb5a983be6a315427106f1b164d9cef3"),
          "--help lists URLs and checksums");
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    if (system(cmd) != 0) test_skip("could not remove the temporary directory");
}

int main(void) {
    test_md5();
    test_specs();
    test_fetch_and_unpack();
    return test_done("test_download");
}

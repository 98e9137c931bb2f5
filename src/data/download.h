/*
 * download.h: fetching the datasets BEARD evaluates on from their canonical URLs, with the
 * checksums torchvision publishes, and unpacking them where dataset_load looks.
 *
 * libcurl fetches (any scheme it supports, file:// included, which is how the tests and
 * offline mirrors work), OpenSSL's libcrypto computes MD5, libarchive unpacks tar.gz and
 * zip. A file is written to a temporary next to it (src/io/file.h) and renamed only once
 * its checksum matches, so an interrupted or corrupted download never looks finished. An archive that is already in
 * place with the right checksum is not fetched again: with no network, put the file there
 * by hand and run the same command to verify and unpack it.
 */
#ifndef BEARD_DOWNLOAD_H
#define BEARD_DOWNLOAD_H

#include <stdio.h>

#include "../core/common.h"

#define DOWNLOAD_MAX_URLS 3

typedef struct {
    const char *file;                   // file name on disk, e.g. "cifar-10-python.tar.gz"
    const char *urls[DOWNLOAD_MAX_URLS]; // tried in order (NULL-terminated)
    const char *md5;                    // published checksum, lower-case hex
    int extract;                        // unpack after verifying (tar.gz, zip)
} DownloadFile;

typedef struct {
    const char *name;    // "cifar10"
    const char *title;   // "CIFAR-10"
    const char *subdir;  // where the files go under the data directory ("" or "MNIST/raw")
    int n_files;
    DownloadFile files[4];
    const char *ready;   // a path under the data directory that exists once unpacked
    const char *note;    // printed after a successful download (NULL: none)
} DownloadSpec;

// by name (case-insensitive, '-' and '_' ignored), NULL when unknown
const DownloadSpec *download_find(const char *name);
// "cifar10, cifar100, mnist, fashionmnist, svhn, tinyimagenet"
const char *download_names(void);

typedef struct {
    const char *mirror; // base URL replacing the canonical ones: <mirror>/<file>
    int progress;       // progress bar on stderr
    int force;          // fetch and unpack again even when the files are in place
    FILE *msg;          // one line per step (NULL: silent)
} DownloadOptions;

// Downloads, verifies and unpacks every file of spec into dir (created when missing).
int download_dataset(const DownloadSpec *spec, const char *dir, const DownloadOptions *opt, Err *e);

// the pieces
int download_md5_file(const char *path, char hex[33], Err *e);
// url -> dest (via a temporary renamed when complete); with md5 (lower-case hex, or NULL
// for no check) the temporary must have that checksum or nothing is kept
int download_fetch(const char *url, const char *dest, int progress, const char *md5, Err *e);
// unpacks an archive (tar, tar.gz, zip, ...) under dir; refuses absolute paths and ".."
int download_extract(const char *archive, const char *dir, Err *e);

#endif

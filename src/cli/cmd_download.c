/*
 * cmd_download.c: `beard download <dataset> [--dir DIR]`: fetch, verify (MD5) and unpack
 * a dataset where `--data DIR` finds it. The work is in src/data/download.c.
 */
#include <string.h>

#include "../data/download.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: beard download cifar10|cifar100|mnist|fashionmnist|svhn|tinyimagenet [--data DIR]\n"
            "                      [--mirror URL] [--force] [--quiet] [--threads N]\n"
            "\n"
            "Fetches the dataset from its canonical URLs (torchvision's), checks the published\n"
            "MD5 checksums and unpacks the archives into DIR (default ./data; --dir is another\n"
            "name for --data), where the other commands' --data DIR finds them. --mirror URL fetches <URL>/<file> instead (http(s)://, file://, ...).\n"
            "A file already in place with the right checksum is not fetched again, so without\n"
            "network access: download the files listed below by other means, put them in DIR (the\n"
            "MNIST files in DIR/MNIST/raw, FashionMNIST's in DIR/FashionMNIST/raw) and run the\n"
            "same command to verify and unpack them. --threads is accepted as by every command\n"
            "(a download uses one).\n\nfiles:\n");
    const char *names[] = {"cifar10", "cifar100", "mnist", "fashionmnist", "svhn", "tinyimagenet"};
    for (int i = 0; i < 6; i++) {
        const DownloadSpec *s = download_find(names[i]);
        for (int k = 0; k < s->n_files; k++)
            fprintf(f, "  %-12s %s  md5 %s\n", k ? "" : names[i], s->files[k].urls[0], s->files[k].md5);
    }
}

int cmd_download(int argc, char **argv) {
    const char *C = "download", *dir = "data", *name = NULL, *mirror = NULL;
    int force = 0, quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int missing = 0;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            usage(stdout);
            return 0;
        } else if (cli_flag(argv, i, "--force")) force = 1;
        else if (cli_flag(argv, i, "--quiet")) quiet = 1;
        else if ((v = cli_opt_any(argc, argv, &i, "--data,--dir", &missing))) dir = v;
        else if ((v = cli_opt(argc, argv, &i, "--threads", &missing))) {
            long t;
            if (cli_parse_int(C, "--threads", v, 0, 256, &t)) return 2;
        }
        else if ((v = cli_opt(argc, argv, &i, "--mirror", &missing))) mirror = v;
        else if (missing) return 2;
        else if (!strncmp(argv[i], "--", 2)) return cli_usage_error(C, "unknown option '%s' (see beard download --help)", argv[i]);
        else if (name) return cli_usage_error(C, "one dataset at a time ('%s' and '%s')", name, argv[i]);
        else name = argv[i];
    }
    if (!name) return cli_usage_error(C, "which dataset? (%s)", download_names());
    const DownloadSpec *s = download_find(name);
    if (!s) return cli_usage_error(C, "unknown dataset '%s' (%s)", name, download_names());
    DownloadOptions opt = {.mirror = mirror, .progress = !quiet, .force = force, .msg = quiet ? NULL : stdout};
    Err e;
    if (cli_check_output_dir(C, "--data", dir)) return 1;
    if (download_dataset(s, dir, &opt, &e)) return cli_error(C, "%s", e.msg);
    return 0;
}

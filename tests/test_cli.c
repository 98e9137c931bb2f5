/*
 * test_cli.c: the command line on bad and hostile input. Every case must end with a
 * non-zero exit status and exactly one line on stderr that starts with "beard", never a
 * crash or a sanitizer report. Also checks eval's JSON and --dump-logits on a checkpoint
 * written by beard itself. $BEARD names the binary (default ./build/beard).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/core/parallel.h"
#include "../src/models/checkpoint.h"
#include "../src/models/convnet.h"
#include "harness.h"

static const char *beard;

// runs cmd (stdout discarded); returns the exit status, or -1 when it died by a signal;
// stderr goes to *err (malloc'd)
static int run(const char *args, char **err) {
    char cmd[4096], errf[512];
    snprintf(errf, sizeof(errf), "%s", test_tmp("stderr"));
    snprintf(cmd, sizeof(cmd), "%s %s >/dev/null 2>%s", beard, args, errf);
    int st = system(cmd);
    FILE *f = fopen(errf, "rb");
    *err = calloc(1, 65536);
    if (f) {
        size_t n = fread(*err, 1, 65535, f);
        (*err)[n] = 0;
        fclose(f);
    }
    unlink(errf);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

static void expect_error(const char *what, const char *args, const char *must_contain) {
    char *err;
    int st = run(args, &err);
    int lines = 0;
    for (char *p = err; *p; p++) lines += *p == '\n';
    CHECK(st > 0 && st < 128, "%s: exit status %d (want an error status)", what, st);
    CHECK(lines == 1 && !strncmp(err, "beard", 5), "%s: want one line starting with 'beard' on stderr, got: %s", what, err);
    if (must_contain) CHECK(strstr(err, must_contain) != NULL, "%s: message lacks '%s': %s", what, must_contain, err);
    free(err);
}

static void write_bytes(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
}

int main(int argc, char **argv) {
    parallel_init(argc, argv);
    beard = getenv("BEARD") ? getenv("BEARD") : "./build/beard";
    struct stat st;
    if (stat(beard, &st) != 0) {
        CHECK(0, "no beard binary at %s (set $BEARD)", beard);
        return test_done("test_cli");
    }
    char dir[512], good[600], trunc[600], pkl[600], evil[600], wrong[600], json[600], logits[600], data[600];
    snprintf(dir, sizeof(dir), "%s", test_tmp("cli"));
    mkdir(dir, 0755);
    snprintf(good, sizeof(good), "%s/good.pth", dir);
    snprintf(trunc, sizeof(trunc), "%s/trunc.pth", dir);
    snprintf(pkl, sizeof(pkl), "%s/corrupt.pkl", dir);
    snprintf(evil, sizeof(evil), "%s/evil.pt", dir);
    snprintf(wrong, sizeof(wrong), "%s/w32.pth", dir);
    snprintf(json, sizeof(json), "%s/eval.json", dir);
    snprintf(logits, sizeof(logits), "%s/logits.bin", dir);
    snprintf(data, sizeof(data), "%s/data", dir);

    // a tiny CIFAR-10-format test set (binary layout) so that eval can run without ../shared
    mkdir(data, 0755);
    char batch[700];
    snprintf(batch, sizeof(batch), "%s/test_batch.bin", data);
    unsigned char rec[3073 * 20];
    for (int i = 0; i < 20; i++) {
        rec[i * 3073] = (unsigned char)(i % 10);
        for (int j = 1; j < 3073; j++) rec[i * 3073 + j] = (unsigned char)((i * 31 + j * 7) & 255);
    }
    write_bytes(batch, rec, sizeof(rec));
    // and five training batches of the same images (beard buffer / beard distill)
    for (int k = 1; k <= 5; k++) {
        snprintf(batch, sizeof(batch), "%s/data_batch_%d.bin", data, k);
        write_bytes(batch, rec, sizeof(rec));
    }

    Net net;
    Err e;
    CHECK(model_create(&net, "ConvNet", 3, 10, 32, 32, &e) == 0, "model");
    net_init_params(&net, 3);
    CHECK(checkpoint_save(&net, good, &e) == 0, "save: %s", e.msg);
    net_free(&net);
    CHECK(model_create(&net, "ConvNetW32", 3, 10, 32, 32, &e) == 0, "model W32");
    CHECK(checkpoint_save(&net, wrong, &e) == 0, "save W32: %s", e.msg);
    net_free(&net);

    // a truncated zip: the good checkpoint cut in half
    FILE *f = fopen(good, "rb");
    unsigned char *buf = malloc(2 << 20);
    size_t n = fread(buf, 1, 2 << 20, f);
    fclose(f);
    write_bytes(trunc, buf, n / 2);
    free(buf);
    // a corrupt pickle, and one that would call os.system
    const char corrupt[] = "\x80\x02}q\x00(X\x03\x00\x00\x00" "abcq\x01\x8a\xff\xff";
    write_bytes(pkl, corrupt, sizeof(corrupt) - 1);
    const char hostile[] = "\x80\x02" "cos\nsystem\nq\x00X\x06\x00\x00\x00touch!q\x01\x85q\x02Rq\x03.";
    write_bytes(evil, hostile, sizeof(hostile) - 1);

    char args[4096];
    // a misspelt BEARD_CONV is refused, not run on the default kernels
    setenv("BEARD_CONV", "winograd", 1);
    expect_error("unknown BEARD_CONV", "bench --batch 1 --seconds 0.01", "BEARD_CONV=winograd");
    unsetenv("BEARD_CONV");
    snprintf(args, sizeof(args), "eval --model %s --dataset cifar10 --data %s", trunc, data);
    expect_error("truncated zip", args, NULL);
    snprintf(args, sizeof(args), "inspect %s", pkl);
    expect_error("corrupt pickle", args, NULL);
    snprintf(args, sizeof(args), "inspect %s", evil);
    expect_error("disallowed global (inspect)", args, "os.system");
    snprintf(args, sizeof(args), "eval --model %s --dataset cifar10 --data %s", evil, data);
    expect_error("disallowed global (eval)", args, "os.system");
    snprintf(args, sizeof(args), "eval --model %s --dataset cifar10 --data %s", wrong, data);
    expect_error("wrong tensor sizes", args, "shape");
    snprintf(args, sizeof(args), "eval --model %s/missing.pth --dataset cifar10 --data %s", dir, data);
    expect_error("missing checkpoint", args, NULL);
    snprintf(args, sizeof(args), "eval --model %s --dataset cifar10 --data %s/nowhere", good, dir);
    expect_error("missing data", args, NULL);
    snprintf(args, sizeof(args), "eval --model %s --dataset imagenet-99 --data %s", good, data);
    expect_error("unknown dataset", args, "unknown dataset");
    snprintf(args, sizeof(args), "eval --model %s --dataset cifar10 --data %s --arch ResNet999", good, data);
    expect_error("unknown architecture", args, "unknown architecture");
    expect_error("unknown command", "frobnicate", NULL);
    snprintf(args, sizeof(args), "eval --model %s --dataset cifar10 --bogus 1", good);
    expect_error("unknown option", args, "unknown option");
    snprintf(args, sizeof(args), "eval --model %s --dataset cifar10 --batch zero", good);
    expect_error("bad number", args, NULL);
    snprintf(args, sizeof(args), "attack --model %s --dataset cifar10 --data %s --attack NoSuchAttack", good, data);
    expect_error("unknown attack", args, "unknown attack");
    snprintf(args, sizeof(args), "attack --model %s --dataset cifar10 --data %s --attack PGD --eps lots", good, data);
    expect_error("bad attack option", args, NULL);
    snprintf(args, sizeof(args), "attack --model %s --dataset cifar10 --data %s --attack FGSM --kappa 3", good, data);
    expect_error("option of another attack", args, "unknown option");
    snprintf(args, sizeof(args), "attack --model %s --dataset cifar10 --data %s --attack FGSM --semantics both", good, data);
    expect_error("bad semantics", args, NULL);
    snprintf(args, sizeof(args), "inspect %s/missing.pt", dir);
    expect_error("inspect a missing file", args, NULL);
    expect_error("buffer without a dataset", "buffer", "--dataset");
    expect_error("buffer of an unknown architecture", "buffer --dataset cifar10 --arch NoSuchNet", "NoSuchNet");
    expect_error("buffer with zero experts", "buffer --dataset cifar10 --num-experts 0", NULL);
    snprintf(args, sizeof(args), "buffer --dataset cifar10 --data %s/nodata --out %s/buffers", dir, dir);
    expect_error("buffer without the data", args, "CIFAR10");
    // DC/DSA/MTT in beard distill: DC without the official loops for an IPC; MTT without
    // experts, with experts of another architecture (both named), with another model's
    // files in the asked model's folder (both named)
    snprintf(args, sizeof(args), "distill --method DC --dataset cifar10 --data %s --ipc 3 --iterations 0 --out %s/dc",
             data, dir);
    expect_error("DC at an IPC without loops", args, "outer_loop");
    snprintf(args, sizeof(args),
             "buffer --dataset cifar10 --data %s --arch ConvNetW32 --num-experts 1 --train-epochs 3 --out %s/buf "
             "--quiet",
             data, dir);
    char *berr;
    int brc = run(args, &berr);
    CHECK(brc == 0, "beard buffer: %s", berr);
    free(berr);
    snprintf(args, sizeof(args),
             "distill --method MTT --dataset cifar10 --data %s --ipc 1 --iterations 0 --out %s/mtt --buffer_path %s/buf "
             "--zca false --expert_epochs 1 --max_start_epoch 1 --syn_steps 2",
             data, dir, dir);
    expect_error("MTT without experts of its architecture", args, "CIFAR10_NO_ZCA/ConvNetW32");
    char cmd[2400];
    snprintf(cmd, sizeof(cmd), "mkdir -p %s/buf/CIFAR10_NO_ZCA/ConvNet && cp %s/buf/CIFAR10_NO_ZCA/ConvNetW32/replay_buffer_0.pt "
             "%s/buf/CIFAR10_NO_ZCA/ConvNet/", dir, dir, dir);
    CHECK(system(cmd) == 0, "copying a buffer");
    expect_error("MTT with another architecture's experts in its folder", args, "(32, 3, 3, 3)");

    // the good checkpoint evaluates; JSON and logits have the documented shape
    char *err;
    snprintf(args, sizeof(args), "eval --model %s --dataset cifar10 --data %s --json %s --dump-logits %s", good, data,
             json, logits);
    int rc = run(args, &err);
    CHECK(rc == 0, "eval of a beard-written checkpoint: %s", err);
    free(err);
    if (stat(logits, &st) == 0) CHECK(st.st_size == 20 * 10 * 4, "logits file holds 20 x 10 float32 (%ld bytes)", (long)st.st_size);
    else CHECK(0, "no logits file");
    f = fopen(json, "r");
    char text[4096] = {0};
    if (f) {
        size_t m = fread(text, 1, sizeof(text) - 1, f);
        text[m] = 0;
        fclose(f);
    }
    const char *keys[] = {"\"dataset\"", "\"arch\"", "\"n\"", "\"correct\"", "\"accuracy\""};
    for (int k = 0; k < 5; k++) CHECK(strstr(text, keys[k]) != NULL, "eval JSON has %s", keys[k]);

    char rm[700];
    snprintf(rm, sizeof(rm), "rm -rf %s", dir);
    if (system(rm) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_done("test_cli");
}

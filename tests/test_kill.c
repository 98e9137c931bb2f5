/*
 * test_kill.c: kill -9 never leaves a half-written file under its final name. Every long
 * command (demo, train, evaluate, attack) is killed with SIGKILL at its k-th file commit
 * (BEARD_FAULT=file-commit:k, src/core/fault.h: the file is complete in its temporary,
 * not yet renamed; the worst moment) and from outside at a time into its run; after each
 * kill every file under a final name must be complete (JSON parses, a checkpoint loads,
 * every log line is whole), an earlier run's files replaced with --force must still be
 * the earlier run's, and nothing but hidden temporaries may be left over.
 * The train, evaluate and attack runs need ../shared (BEARD's checkpoint and CIFAR-10);
 * the demo runs on its synthetic data (and is the only series in the sanitizer build).
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdarg.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/evaluate/beardlog.h"
#include "../src/io/file.h"
#include "../src/io/torch_pt.h"
#include "harness.h"

// runs `beard args` with BEARD_FAULT=fault (NULL: none), killing it with SIGKILL after
// after_s seconds (0: never); returns the exit status, or -signal
static int run(const char *fault, double after_s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int run(const char *fault, double after_s, const char *fmt, ...) {
    char args[4096], cmd[4600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "exec %s %s >/dev/null 2>&1", beard_bin(), args);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("BEARD_NO_PROGRESS", "1", 1);
        if (fault) setenv("BEARD_FAULT", fault, 1);
        else unsetenv("BEARD_FAULT");
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (after_s > 0) {
        double t0 = time_now();
        while (time_now() - t0 < after_s) {
            if (waitpid(pid, &status, WNOHANG) == pid) goto done;
            usleep(20000);
        }
        kill(pid, SIGKILL);
    }
    waitpid(pid, &status, 0);
done:
    return WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
}

static char *slurp(const char *path, size_t *n) {
    uint8_t *b;
    Err e;
    if (file_read_all(path, 1 << 26, &b, n, &e)) return NULL;
    return (char *)b;
}

static int ends_with(const char *s, const char *t) {
    size_t a = strlen(s), b = strlen(t);
    return a >= b && !strcmp(s + a - b, t);
}

// every visible file under dir (recursively) is complete; returns the number checked
static int check_tree(const char *what, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.') continue; // temporaries are hidden: ".<name>.<pid>.<n>.tmp"
        char p[2048];
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(p, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            n += check_tree(what, p);
            continue;
        }
        n++;
        CHECK(!ends_with(p, ".tmp") && !ends_with(p, ".part"), "%s: a visible temporary %s", what, p);
        size_t len = 0;
        char *s = slurp(p, &len);
        if (!s) {
            CHECK(0, "%s: %s unreadable", what, p);
            continue;
        }
        if (ends_with(p, ".json")) {
            cJSON *j = cJSON_ParseWithLength(s, len);
            CHECK(j != NULL, "%s: %s is not complete JSON", what, p);
            cJSON_Delete(j);
        } else if (ends_with(p, ".pth") || ends_with(p, ".pt")) {
            TensorDict sd;
            tensordict_init(&sd);
            Err e;
            CHECK(torch_load_state_dict(p, &sd, &e) == 0, "%s: %s does not load: %s", what, p, e.msg);
            tensordict_free(&sd);
        } else if (ends_with(p, ".txt") || ends_with(p, ".csv")) {
            CHECK(len == 0 || s[len - 1] == '\n', "%s: %s ends mid-line", what, p);
            if (ends_with(p, "_evaluation_log.txt")) {
                BeardLogFile f;
                Err e;
                CHECK(beardlog_parse(&f, s, p, &e) == 0 && f.n_unparsed == 0, "%s: %s has a broken line", what, p);
                beardlog_file_free(&f);
            }
        }
        free(s);
    }
    closedir(d);
    return n;
}

static void rm_rf(const char *dir) {
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd)) {}
}

// kills at the 1st..max_commits-th commit, then from outside at each of times[]
static void kill_series(const char *what, const char *dir, int max_commits, const double *times, int n_times,
                        const char *args) {
    char fault[32];
    for (int k = 1; k <= max_commits; k++) {
        snprintf(fault, sizeof(fault), "file-commit:%d", k);
        int st = run(fault, 0, "%s", args);
        if (st != -SIGKILL) break; // fewer commits than that: the run completed
        check_tree(what, dir);
    }
    for (int i = 0; i < n_times; i++) {
        run(NULL, times[i], "%s", args);
        check_tree(what, dir);
    }
}

static void test_demo(void) {
    const char *dir = test_tmp("kill-demo");
    rm_rf(dir);
    char args[1200];
    snprintf(args, sizeof(args), "demo --quick --synthetic --out %s --threads 2", dir);
    const double times[] = {1.0};
    kill_series("demo", dir, 4, times, 1, args);
    // and once to the end: everything there, and complete
    CHECK(run(NULL, 0, "%s", args) == 0, "demo to the end");
    int n = check_tree("demo (complete)", dir);
    CHECK(n >= 4, "demo wrote %d files", n);
    rm_rf(dir);
}

static void test_shared(void) {
    const char *model = shared_path("beard/model_pool/BACON_ConvNet_CIFAR10_50_None_0.6995.pth", "kill tests on BEARD's checkpoint");
    const char *data = shared_path("data", "kill tests on CIFAR-10");
    const char *pool = shared_path("beard/dataset_pool/res_RandomReal_CIFAR10_ConvNet_1ipc.pt", "kill test of beard train");
    const char *config = shared_path("beard/evaluate_config.json", "kill test of beard evaluate");
    if (!model || !data || !pool || !config) return;
    char args[4096];
    const double times[] = {1.0, 3.0};

    // train: checkpoints (libzip via the atomic writer) and the JSON summary
    const char *tdir = test_tmp("kill-train");
    rm_rf(tdir);
    snprintf(args, sizeof(args),
             "train --data-file %s --dataset cifar10 --data %s --epochs 10 --runs 2 --limit 100 --eval-every 5 "
             "--out %s --json %s/train.json --quiet --threads 2",
             pool, data, tdir, tdir);
    kill_series("train", tdir, 3, times, 2, args);
    rm_rf(tdir);

    // evaluate: a finished run, then reruns with --force killed midway: the first run's
    // log and results.json must stay whole (and be the first run's) until a rerun completes
    const char *edir = test_tmp("kill-evaluate");
    rm_rf(edir);
    snprintf(args, sizeof(args),
             "evaluate --config %s --load-file %s --data %s --out %s --limit 16 --attack Clean,FGSM,PGD --csv "
             "--quiet --threads 2",
             config, model, data, edir);
    CHECK(run(NULL, 0, "%s", args) == 0, "evaluate to the end");
    char lpath[1200];
    snprintf(lpath, sizeof(lpath), "%s/BACON_ConvNet_CIFAR10_50_evaluation_log.txt", edir);
    size_t n0 = 0;
    char *first = slurp(lpath, &n0);
    CHECK(first != NULL, "the first run's log");
    char rerun[4200];
    snprintf(rerun, sizeof(rerun), "%s --force", args);
    char fault[32];
    for (int k = 1; k <= 3; k++) {
        snprintf(fault, sizeof(fault), "file-commit:%d", k);
        if (run(fault, 0, "%s", rerun) != -SIGKILL) break;
        check_tree("evaluate --force", edir);
    }
    // the log is committed last: until then it is the first run's
    size_t n1 = 0;
    char *now = slurp(lpath, &n1);
    CHECK(first && now && n0 == n1 && !memcmp(first, now, n0), "a killed rerun left the earlier log in place");
    free(first), free(now);
    run(NULL, 2.0, "%s", rerun);
    check_tree("evaluate --force (outside kill)", edir);
    rm_rf(edir);

    // attack --json
    const char *adir = test_tmp("kill-attack");
    rm_rf(adir);
    mkdir(adir, 0700);
    snprintf(args, sizeof(args),
             "attack --model %s --dataset cifar10 --data %s --attack FGSM,PGD --limit 32 --json %s/a.json --quiet "
             "--threads 2",
             model, data, adir);
    kill_series("attack", adir, 1, times, 1, args);
    rm_rf(adir);
}

int main(void) {
    if (!beard_bin()) {
        test_skip("kill tests: no beard binary ($BEARD or build/beard)");
        return test_done("test_kill");
    }
    test_demo();
    // the sanitizer build is several times slower: the demo's series covers the writers there
    if (getenv("BEARD_SANITIZED")) test_skip("kill tests of train, evaluate and attack: not in the sanitizer build");
    else test_shared();
    return test_done("test_kill");
}

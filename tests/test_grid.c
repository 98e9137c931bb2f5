/*
 * test_grid.c: `beard run` as a whole, on a tiny grid that needs no ../shared (beard's
 * SYNTHETIC dataset: one model trained by a grid cell, one checkpoint written here; FGSM
 * and 3-step PGD, both modes, both semantics, 32 test images; 21 cells):
 *   - bad input is reported before any cell runs, every problem with its key or path;
 *   - --dry-run lists the cells and their costs and runs nothing;
 *   - kill -9 at several points (before a cell, inside the store's transaction, after a
 *     cell's work but before its row, right after a commit, and from outside at a random
 *     moment): PRAGMA integrity_check is ok after each, no row is duplicated, at most the
 *     cell in flight is lost, and the final store equals an uninterrupted run's;
 *   - rerunning resumes (nothing runs), a changed configuration makes new cells, --force
 *     reruns;
 *   - `mpirun -np 2 --oversubscribe` and two shards merged give the same rows as one process;
 *   - a "distill" method (stage 1 in the grid: DM, 3 iterations): listed and costed by
 *     --dry-run; killed between two of its checkpoints and rerun, it resumes from the last
 *     one and its set equals an uninterrupted run's tensor for tensor (the rows' set
 *     identities); under `mpirun -np 2` the rows are one process's; a rerun skips it, a
 *     changed distill setting distils and trains again; bad distill settings (unknown
 *     method, unknown parameter, impossible IPC) are reported before any cell runs; a
 *     teacher-based method (SRe2L) distils again when its teacher file is replaced;
 *     with ../shared, the grid's distilled set equals `beard distill`'s, tensor for tensor;
 * and with ../shared, the acceptance grid: two of BEARD's checkpoints, FGSM and PGD, both
 * modes, 64 CIFAR-10 images, equal to `beard attack` cell by cell (accuracy and every
 * per-sample outcome; beard semantics, to keep the suite short: pixel semantics runs the
 * same code with other inputs, and the synthetic grid covers it).
 */
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/core/parallel.h"
#include "../src/data/pool.h"
#include "../src/data/synthetic.h"
#include "../src/io/file.h"
#include "../src/models/checkpoint.h"
#include "../src/models/convnet.h"
#include "../src/store/store.h"
#include "harness.h"

static char beard[PATH_MAX], dir[600];


typedef struct {
    StoreRow *rows;
    int n;
} Rows;

static int load(const char *path, Rows *r) {
    char full[800];
    snprintf(full, sizeof(full), "%s/%s", dir, path);
    Store *s;
    Err e;
    r->rows = NULL, r->n = 0;
    if (store_open(&s, full, 0, &e)) {
        CHECK(0, "%s", e.msg);
        return -1;
    }
    int rc = store_integrity(s, &e);
    CHECK(rc == 0, "integrity of %s: %s", path, e.msg);
    if (store_load(s, &r->rows, &r->n, &e)) {
        CHECK(0, "%s", e.msg);
        rc = -1;
    }
    store_close(s);
    // no key twice (the rows come sorted by key)
    for (int i = 1; i < r->n; i++) CHECK(strcmp(r->rows[i - 1].key, r->rows[i].key) || strcmp(r->rows[i - 1].hash, r->rows[i].hash),
                                         "%s: row %s twice", path, r->rows[i].key);
    return rc;
}

static void rows_free(Rows *r) { store_rows_free(r->rows, r->n); }

static int n_rows(const char *path) {
    char full[800];
    snprintf(full, sizeof(full), "%s/%s", dir, path);
    if (access(full, F_OK) != 0) return 0; // killed before it opened the store
    Rows r;
    if (load(path, &r)) return -1;
    int n = r.n;
    rows_free(&r);
    return n;
}

// the results of two stores agree row for row (provenance such as time and machine aside)
static void same_rows(const char *what, const char *a_path, const char *b_path) {
    Rows a, b;
    if (load(a_path, &a) || load(b_path, &b)) return;
    CHECK(a.n == b.n, "%s: %d rows against %d", what, a.n, b.n);
    int bad = 0;
    for (int i = 0; i < a.n && i < b.n && bad < 3; i++) {
        const StoreRow *x = &a.rows[i], *y = &b.rows[i];
        int same = !strcmp(x->key, y->key) && !strcmp(x->hash, y->hash) && x->n == y->n && x->clean_correct == y->clean_correct &&
                   x->adv_correct == y->adv_correct && !strcmp(x->model_sha256, y->model_sha256) &&
                   (x->adv_ok == NULL) == (y->adv_ok == NULL) && (x->clean_ok == NULL) == (y->clean_ok == NULL) &&
                   (!x->adv_ok || !memcmp(x->adv_ok, y->adv_ok, x->n)) && (!x->clean_ok || !memcmp(x->clean_ok, y->clean_ok, x->n)) &&
                   ((isnan(x->accuracy) && isnan(y->accuracy)) || x->accuracy == y->accuracy);
        if (!same) {
            bad++;
            CHECK(0, "%s: row %d differs: %s (%.2f%%) against %s (%.2f%%)", what, i, x->key, x->accuracy, y->key, y->accuracy);
        }
    }
    rows_free(&a), rows_free(&b);
}

static void write_file(const char *name, const char *text) {
    char p[800];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
}

static const char *grid_json =
    "{\"name\": \"test\", \"datasets\": [\"synthetic\"], \"ipcs\": [200], \"archs\": [\"ConvNetW32\"],\n"
    " \"methods\": [{\"name\": \"Full\", \"src_dataset\": true}, {\"name\": \"Rand\", \"model\": \"rand.pth\"}],\n"
    " \"train\": {\"epochs\": 1, \"dsa_strategy\": \"None\"},\n"
    " \"attacks\": [\"FGSM\", {\"name\": \"PGD\", \"params\": {\"steps\": 3}}], \"limit\": 32, \"train_limit\": 300,\n \"threads\": 1}\n";

#define RUN "%s run --config grid.json --quiet"

static void test_bad_input(void) {
    char out[16384];
    // a pool file that does not parse
    write_file("garbage.pt", "PK\003\004 this is not a zip archive");
    write_file("bad.json",
               "{\"datasets\": [\"synthetic\"], \"ipcs\": [200], \"archs\": [\"ConvNetW32\", \"ConvNetW32\"],\n"
               " \"atacks\": [\"FGSM\"],\n"
               " \"methods\": [{\"name\": \"Full\", \"src_dataset\": true}, {\"name\": \"G\", \"pool\": \"garbage.pt\"},\n"
               "             {\"name\": \"M\", \"model\": \"missing.pth\"}],\n"
               " \"attacks\": [\"FGSM\", \"NoSuchAttack\", {\"name\": \"PGD\", \"params\": {\"stepz\": 3}},\n"
               "             {\"name\": \"FGSM\", \"params\": {\"eps\": 9}}, \"PGD_e4\"],\n"
               " \"train_attacks\": [\"None\", \"NoSuchTraining\"], \"train\": {\"epochs\": 1, \"epoch\": 2}}\n");
    int st = run_sh(out, sizeof(out), dir, "%s run --config bad.json --store bad.db --out bad", beard);
    CHECK(st == 1, "bad grid: exit status %d (want 1)\n%s", st, out);
    const char *want[] = {"unknown key \"atacks\"", "unknown attack 'NoSuchAttack'", "PGD has no parameter \"stepz\"",
                          "garbage.pt does not load", "missing.pth", "NoSuchTraining", "unknown key \"epoch\"",
                          "both write bad/model_pool/Full/Full_ConvNetW32_SYNTHETIC_200_None.pth", "eps must be a number in [0, 1], not 9",
                          "nothing was run"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        CHECK(strstr(out, want[i]) != NULL, "bad grid: the report lacks '%s':\n%s", want[i], out);
    int lines = 0;
    for (char *p = out; *p; p++) lines += *p == '\n';
    CHECK(lines >= 10, "bad grid: want every problem on its own line, got %d lines", lines);
    CHECK(!strstr(out, "PGD_e4"), "BEARD's PGD_e4 is a known attack (PGD at eps 4/255):\n%s", out);
    for (char *l = out; *l;) { // each line is beard's
        CHECK(!strncmp(l, "beard run: ", 11), "bad grid: a line does not start with 'beard run: ': %.80s", l);
        char *nl = strchr(l, '\n');
        if (!nl) break;
        l = nl + 1;
    }
    char p[800];
    snprintf(p, sizeof(p), "%s/bad.db", dir);
    CHECK(access(p, F_OK) != 0, "bad grid: the store must not even be created");
    snprintf(p, sizeof(p), "%s/bad", dir);
    CHECK(access(p, F_OK) != 0, "bad grid: nothing may be written");
    // not JSON
    write_file("notjson.json", "{\"datasets\": [\"synthetic\",]\n");
    st = run_sh(out, sizeof(out), dir, "%s run --config notjson.json", beard);
    CHECK(st == 1 && strstr(out, "not valid JSON (line 1)"), "invalid JSON: %d\n%s", st, out);
    // usage errors
    st = run_sh(out, sizeof(out), dir, "%s run --config grid.json --shard 3/2", beard);
    CHECK(st == 2 && strstr(out, "--shard"), "--shard 3/2: %d\n%s", st, out);
    st = run_sh(out, sizeof(out), dir, "%s run --config grid.json --frobnicate", beard);
    CHECK(st == 2 && strstr(out, "--frobnicate"), "unknown option: %d\n%s", st, out);
}

static void test_dry_run(void) {
    char out[16384];
    int st = run_sh(out, sizeof(out), dir, RUN " --store dry.db --out dry --dry-run", beard);
    CHECK(st == 0, "dry run: status %d\n%s", st, out);
    CHECK(strstr(out, "21 cells, 21 to run (10 after training)"), "dry run: the summary:\n%s", out);
    CHECK(strstr(out, "train/SYNTHETIC/Full/ipc200/ConvNetW32/None/run0") &&
              strstr(out, "attack/SYNTHETIC/Rand/ipc200/ConvNetW32/None/run0/PGD[steps=3]/targeted/pixel"),
          "dry run: the cell list:\n%s", out);
    CHECK(strstr(out, "passes (7 per test sample x 32)"), "dry run: PGD[steps=3]'s estimated cost:\n%s", out);
    char p[800];
    snprintf(p, sizeof(p), "%s/dry.db", dir);
    CHECK(access(p, F_OK) != 0, "dry run: no store");
}

static void test_kill(void) {
    char out[16384];
    // the uninterrupted reference
    int st = run_sh(out, sizeof(out), dir, RUN " --store ref.db --out ref", beard);
    CHECK(st == 0, "reference run: status %d\n%s", st, out);
    CHECK(n_rows("ref.db") == 21, "reference run: 21 rows");
    // the same grid, killed again and again
    char K[PATH_MAX + 128];
    snprintf(K, sizeof(K), RUN " --store kill.db --out kill", beard);
    // from outside, early (probably while the first cell trains): any moment must be safe
    st = run_sh(out, sizeof(out), dir, "(" RUN " --store kill.db --out kill & pid=$!; sleep 0.3; kill -9 $pid; wait $pid)", beard);
    int n0 = n_rows("kill.db");
    CHECK(n0 >= 0 && n0 <= 21, "after kill -9 from outside: %d rows", n0);
    // at chosen points; each must really have killed the run
    struct {
        const char *fault;
        int before_rows; // rows committed when it fires, counted from the rows already there
    } steps[] = {{"cell-start:3", 2}, {"store-write:2", 1}, {"cell-mid:3", 2}, {"cell-end:2", 2}};
    int have = n0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        if (have + steps[i].before_rows >= 21) break; // the outside kill came late
        st = run_sh(out, sizeof(out), dir, "BEARD_FAULT=%s %s", steps[i].fault, K);
        CHECK(st == -SIGKILL, "BEARD_FAULT=%s: the run was not killed (status %d)\n%s", steps[i].fault, st, out);
        int n = n_rows("kill.db");
        int want = have + steps[i].before_rows;
        CHECK(n == want, "BEARD_FAULT=%s: %d rows, want %d (only the cell in flight may be lost)", steps[i].fault, n, want);
        have = n;
    }
    st = run_sh(out, sizeof(out), dir, "%s", K);
    CHECK(st == 0, "the final rerun: status %d\n%s", st, out);
    same_rows("killed and resumed vs uninterrupted", "kill.db", "ref.db");
}

static void test_mpi_and_shards(void) {
    char out[16384];
    // shards, merged
    int st = run_sh(out, sizeof(out), dir, RUN " --store shards.db --out sh --shard 0/2", beard);
    CHECK(st == 0, "shard 0/2: %d\n%s", st, out);
    st = run_sh(out, sizeof(out), dir, RUN " --store shards.db --out sh --shard 1/2", beard);
    CHECK(st == 0, "shard 1/2: %d\n%s", st, out);
    st = run_sh(out, sizeof(out), dir, "%s store merge merged.db shards.db.shard-0-of-2 shards.db.shard-1-of-2", beard);
    CHECK(st == 0, "merge: %d\n%s", st, out);
    same_rows("two shards merged vs one process", "merged.db", "ref.db");
    // MPI
    st = run_sh(out, sizeof(out), dir, "command -v mpirun >/dev/null && OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
                              "timeout 60 mpirun -np 1 --oversubscribe true");
    if (st != 0) {
        test_skip("mpirun is missing or cannot start here (scripts/deps.sh installs openmpi-bin)");
        return;
    }
    const char *asan = getenv("BEARD_SANITIZED") ? "ASAN_OPTIONS=detect_leaks=0 " : ""; // OpenMPI's own allocations
    st = run_sh(out, sizeof(out), dir,
            "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 %stimeout 300 mpirun -np 2 --oversubscribe -x ASAN_OPTIONS "
            "-x BEARD_NO_PROGRESS %s run --config grid.json --store mpi.db --out mpi",
            asan, beard);
    CHECK(st == 0 && strstr(out, "2 processes"), "mpirun -np 2: status %d\n%s", st, out);
    same_rows("mpirun -np 2 vs one process", "mpi.db", "ref.db");
}

static void test_resume(void) {
    char out[16384];
    int st;
    // resuming runs nothing; --force reruns; a changed configuration makes new cells
    st = run_sh(out, sizeof(out), dir, "%s run --config grid.json --store ref.db --out ref", beard);
    CHECK(st == 0 && strstr(out, "21 cells: 0 ran, 21 already in the store"), "resume: status %d\n%s", st, out);
    // the trained checkpoint deleted: trained again (the same weights), nothing else reruns
    char mp[900];
    snprintf(mp, sizeof(mp), "%s/ref/model_pool/Full/Full_ConvNetW32_SYNTHETIC_200_None.pth", dir);
    CHECK(unlink(mp) == 0, "no trained checkpoint at %s", mp);
    st = run_sh(out, sizeof(out), dir, "%s run --config grid.json --store ref.db --out ref", beard);
    CHECK(st == 0 && strstr(out, "21 cells: 1 ran, 20 already in the store") && access(mp, F_OK) == 0,
          "a deleted checkpoint is trained again, and only that: status %d\n%s", st, out);
    st = run_sh(out, sizeof(out), dir, "%s run --config grid.json --store ref.db --out ref --limit 12", beard);
    CHECK(st == 0 && strstr(out, "21 cells: 20 ran, 1 already in the store"),
          "a changed test set: new evaluation cells, the trained model reused; status %d\n%s", st, out);
    CHECK(n_rows("ref.db") == 41, "41 rows after a changed configuration");
    st = run_sh(out, sizeof(out), dir, "%s run --config grid.json --store ref.db --out ref --limit 12 --force", beard);
    CHECK(st == 0 && strstr(out, "21 cells: 21 ran, 0 already"), "--force: status %d\n%s", st, out);
    CHECK(n_rows("ref.db") == 41, "--force replaces rows, it does not add them");
    // the exported BEARD logs
    char p[800];
    snprintf(p, sizeof(p), "%s/ref/model_pool/Rand/ConvNetW32_SYNTHETIC_200_evaluation_log.txt", dir);
    FILE *f = fopen(p, "r");
    CHECK(f != NULL, "no BEARD log at %s", p);
    if (f) {
        char line[2048];
        int found = 0;
        while (fgets(line, sizeof(line), f)) found += strstr(line, "PGD_steps_3 attack on Rand: final acc is:  target_attack: ") != NULL;
        fclose(f);
        CHECK(found == 1, "the BEARD log has one PGD line (%d)", found);
    }
}

// the row of a kind in a store (the first), or NULL
static const StoreRow *row_of(const Rows *r, const char *kind) {
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->rows[i].kind, kind)) return &r->rows[i];
    return NULL;
}

// a number in a row's extra JSON
static double extra_num(const StoreRow *r, const char *key) {
    cJSON *x = r && r->extra ? cJSON_Parse(r->extra) : NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(x, key);
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    cJSON_Delete(x);
    return d;
}

// two distilled sets hold the same tensors (images bit for bit, labels)
static void same_pool(const char *what, const char *a, const char *b, const DatasetInfo *info) {
    Pool x, y;
    Err e;
    PoolOptions po = {.info = info, .exp = -1};
    memset(&x, 0, sizeof(x)), memset(&y, 0, sizeof(y));
    int ok = pool_load(&x, a, &po, &e) == 0;
    CHECK(ok, "%s: %s: %s", what, a, e.msg);
    if (ok) CHECK((ok = pool_load(&y, b, &po, &e) == 0), "%s: %s: %s", what, b, e.msg);
    if (ok) {
        size_t n = (size_t)x.n * x.c * x.h * x.w;
        CHECK(x.n > 0 && x.n == y.n && x.c == y.c && x.h == y.h && x.w == y.w, "%s: %d against %d images", what, x.n, y.n);
        if (x.n == y.n && x.c == y.c && x.h == y.h && x.w == y.w) {
            CHECK(!memcmp(x.x, y.x, sizeof(float) * n), "%s: the images differ", what);
            CHECK(!memcmp(x.y, y.y, sizeof(int) * (size_t)x.n), "%s: the labels differ", what);
        }
    }
    pool_free(&x), pool_free(&y);
}

static const char *distill_json =
    "{\"datasets\": [\"synthetic\"], \"ipcs\": [1], \"archs\": [\"ConvNetW32\"], \"limit\": 32, \"train_limit\": 300,\n"
    " \"methods\": [{\"name\": \"DM\", \"distill\": {\"arch\": \"ConvNetW32\", \"iterations\": 3, \"batch_real\": 16,\n"
    "                                   \"checkpoint_every\": 1%s}}],\n"
    " \"train\": {\"epochs\": 1, \"dsa_strategy\": \"None\"}, \"attacks\": [\"FGSM\"], \"modes\": [\"untargeted\"],\n"
    " \"semantics\": [\"pixel\"], \"threads\": 1}\n";

// stage 1 inside the grid
static void test_distill(void) {
    char out[16384], json[6000], p[900];
    snprintf(json, sizeof(json), distill_json, "");
    write_file("distill.json", json);
    snprintf(json, sizeof(json), distill_json, ", \"lr_img\": 0.5");
    write_file("distill2.json", json);
    // the dry run lists and costs the distill cell; its training cell waits for it
    int st = run_sh(out, sizeof(out), dir, "%s run --config distill.json --store d.db --out d --dry-run", beard);
    CHECK(st == 0 && strstr(out, "4 cells, 4 to run (3 after training)"), "distill dry run: status %d\n%s", st, out);
    CHECK(strstr(out, "distill  to run") && strstr(out, "per update x 4)  distill/SYNTHETIC/DM/ipc1/ConvNetW32") &&
              strstr(out, "train    after distilling"),
          "distill dry run: the distill cell and its cost:\n%s", out);
    // killed by the third atomic commit: the checkpoints of updates 1 and 2 are written,
    // the third is not
    st = run_sh(out, sizeof(out), dir, "BEARD_FAULT=file-commit:3 %s run --config distill.json --store d.db --out d --quiet", beard);
    CHECK(st == -SIGKILL, "distill: BEARD_FAULT=file-commit:3 did not kill the run (status %d)\n%s", st, out);
    st = run_sh(out, sizeof(out), dir, "ls d/dataset_pool/DM/DM_SYNTHETIC_ConvNetW32_1ipc.*.checkpoint.pt");
    CHECK(st == 0, "distill: no checkpoint after the kill\n%s", out);
    CHECK(n_rows("d.db") == 0, "distill: a row before the distill cell finished");
    st = run_sh(out, sizeof(out), dir, "%s run --config distill.json --store d.db --out d", beard);
    CHECK(st == 0 && strstr(out, "4 cells: 4 ran"), "distill: the rerun after the kill: status %d\n%s", st, out);
    Rows r;
    if (!load("d.db", &r)) {
        const StoreRow *dr = row_of(&r, "distill");
        CHECK(dr && dr->n == 10 && extra_num(dr, "resumed_from") == 2, "distill: want 10 images resumed from update 2, got %d, %g",
              dr ? dr->n : -1, extra_num(dr, "resumed_from"));
        rows_free(&r);
    }
    CHECK(run_sh(out, sizeof(out), dir, "ls d/dataset_pool/DM/*.checkpoint.pt") != 0, "distill: the checkpoint outlived the run");
    // an uninterrupted run: the same rows, the same set (the rows' set identities)
    st = run_sh(out, sizeof(out), dir, "%s run --config distill.json --store dref.db --out dref --quiet", beard);
    CHECK(st == 0, "distill: the uninterrupted run: status %d\n%s", st, out);
    same_rows("distill: killed and resumed vs uninterrupted", "d.db", "dref.db");
    // MPI: a worker distils, another may train on the set, rank 0 stores
    if (run_sh(out, sizeof(out), dir, "command -v mpirun >/dev/null && OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
                                      "timeout 60 mpirun -np 1 --oversubscribe true") == 0) {
        const char *asan = getenv("BEARD_SANITIZED") ? "ASAN_OPTIONS=detect_leaks=0 " : "";
        st = run_sh(out, sizeof(out), dir,
                    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 %stimeout 120 mpirun -np 3 --oversubscribe "
                    "-x ASAN_OPTIONS %s run --config distill.json --store dmpi.db --out dmpi --quiet",
                    asan, beard);
        CHECK(st == 0, "distill: mpirun -np 3: status %d\n%s", st, out);
        same_rows("distill: mpirun -np 3 vs one process", "dmpi.db", "dref.db");
    } else test_skip("mpirun is missing or cannot start here: the distill grid under MPI");
    // a rerun skips it all; a changed distill setting distils and trains again
    st = run_sh(out, sizeof(out), dir, "%s run --config distill.json --store d.db --out d", beard);
    CHECK(st == 0 && strstr(out, "4 cells: 0 ran, 4 already in the store"), "distill: the rerun: status %d\n%s", st, out);
    st = run_sh(out, sizeof(out), dir, "%s run --config distill2.json --store d.db --out d", beard);
    CHECK(st == 0 && strstr(out, "4 cells: 4 ran, 0 already in the store"), "distill: lr_img changed: status %d\n%s", st, out);
    CHECK(n_rows("d.db") == 8, "distill: 8 rows after a changed setting");
    // a method that distils from a teacher file (SRe2L, no real images): the teacher's
    // content is part of the distill cell's configuration
    Net t;
    Err te;
    char tp[900];
    snprintf(tp, sizeof(tp), "%s/teacher.pth", dir);
    CHECK(model_create(&t, "ConvNetBN", 3, 10, 16, 16, &te) == 0, "%s", te.msg);
    net_init_params(&t, 1);
    CHECK(checkpoint_save(&t, tp, &te) == 0, "%s", te.msg);
    write_file("sre.json",
               "{\"datasets\": [\"synthetic\"], \"ipcs\": [1], \"archs\": [\"ConvNetW32\"], \"limit\": 16,\n"
               " \"methods\": [{\"name\": \"SRe2L\", \"distill\": {\"arch\": \"ConvNetBN\", \"teacher\": \"teacher.pth\",\n"
               "                                      \"iterations\": 2, \"batch_size\": 10}}],\n"
               " \"train\": {\"epochs\": 1, \"dsa_strategy\": \"None\"}, \"attacks\": [\"FGSM\"], \"modes\": [\"untargeted\"],\n"
               " \"semantics\": [\"pixel\"], \"threads\": 1}\n");
    st = run_sh(out, sizeof(out), dir, "%s run --config sre.json --store sre.db --out sre", beard);
    CHECK(st == 0 && strstr(out, "4 cells: 4 ran"), "SRe2L in the grid: status %d\n%s", st, out);
    st = run_sh(out, sizeof(out), dir, "%s run --config sre.json --store sre.db --out sre", beard);
    CHECK(st == 0 && strstr(out, "4 cells: 0 ran"), "SRe2L rerun: status %d\n%s", st, out);
    net_init_params(&t, 2); // another teacher under the same name
    CHECK(checkpoint_save(&t, tp, &te) == 0, "%s", te.msg);
    net_free(&t);
    st = run_sh(out, sizeof(out), dir, "%s run --config sre.json --store sre.db --out sre", beard);
    CHECK(st == 0 && strstr(out, "4 cells: 4 ran"), "SRe2L with a replaced teacher distils again: status %d\n%s", st, out);
    // the same from options: --distill adds methods, --iterations sets every distilling one's
    st = run_sh(out, sizeof(out), dir,
                "%s run --dataset synthetic --ipc 1 --distill DM,DC --iterations 2 --attack FGSM --limit 8 --dry-run", beard);
    CHECK(st == 0 && strstr(out, "per update x 3)  distill/SYNTHETIC/DM/ipc1/ConvNet") &&
              strstr(out, "per update x 3)  distill/SYNTHETIC/DC/ipc1/ConvNet"),
          "distill from options: status %d\n%s", st, out);
    st = run_sh(out, sizeof(out), dir, "%s run --dataset synthetic --method X --iterations 2 --dry-run", beard);
    CHECK(st == 2 && strstr(out, "--iterations: no method of the grid distils"), "--iterations alone: %d\n%s", st, out);
    // bad distill settings, before anything runs
    write_file("dbad.json",
               "{\"datasets\": [\"synthetic\"], \"ipcs\": [1, 500], \"train_limit\": 300, \"attacks\": [\"FGSM\"],\n"
               " \"methods\": [{\"name\": \"A\", \"distill\": {\"method\": \"NoSuchMethod\"}},\n"
               "             {\"name\": \"DM\", \"distill\": {\"batch_reel\": 16, \"ipc\": [500, 3]}},\n"
               "             {\"name\": \"B\", \"learned_lr\": true, \"distill\": {\"method\": \"DM\", \"ipc\": 1}}]}\n");
    st = run_sh(out, sizeof(out), dir, "%s run --config dbad.json --store dbad.db --out dbad", beard);
    CHECK(st == 1, "bad distill settings: status %d (want 1)\n%s", st, out);
    const char *want[] = {"\"methods\"[0]: \"distill\": unknown method 'NoSuchMethod'",
                          "\"methods\"[1]: \"distill\": DM has no parameter 'batch_reel'",
                          "\"methods\"[1]: \"distill\": ipc 3 is not one of the grid's \"ipcs\"",
                          "method DM: \"distill\" (DM on SYNTHETIC at ipc 500): IPC 500 is larger than the 30 training images",
                          "method B: \"learned_lr\", but DM learns no learning rate", "5 problems found; nothing was run"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        CHECK(strstr(out, want[i]) != NULL, "bad distill settings: the report lacks '%s':\n%s", want[i], out);
    snprintf(p, sizeof(p), "%s/dbad", dir);
    CHECK(access(p, F_OK) != 0, "bad distill settings: nothing may be written");

    // with ../shared: the grid's set is `beard distill`'s with the same settings
    const char *data = shared_path("data", "the grid's distilled set against beard distill on CIFAR-10");
    char adata[PATH_MAX];
    if (!data || !realpath(data, adata)) return;
    snprintf(json, sizeof(json),
             "{\"datasets\": [\"cifar10\"], \"data\": \"%s\", \"ipcs\": [1], \"limit\": 16, \"train_limit\": 200,\n"
             " \"methods\": [{\"name\": \"DM\", \"distill\": {\"iterations\": 2, \"batch_real\": 8}}],\n"
             " \"train\": {\"epochs\": 1, \"dsa_strategy\": \"None\"}, \"attacks\": [\"FGSM\"], \"modes\": [\"untargeted\"],\n"
             " \"semantics\": [\"pixel\"], \"threads\": 1}\n",
             adata);
    write_file("dcifar.json", json);
    st = run_sh(out, sizeof(out), dir, "%s run --config dcifar.json --store dc.db --out dc --quiet", beard);
    CHECK(st == 0, "the CIFAR-10 distill grid: status %d\n%s", st, out);
    st = run_sh(out, sizeof(out), dir,
                "%s distill --method DM --dataset cifar10 --data %s --ipc 1 --iterations 2 --batch_real 8 --train-limit 200 "
                "--threads 1 --out dcmp --quiet",
                beard, adata);
    CHECK(st == 0, "beard distill: status %d\n%s", st, out);
    char a[900], b[900];
    snprintf(a, sizeof(a), "%s/dc/dataset_pool/DM/res_DM_CIFAR10_ConvNet_1ipc.pt", dir);
    snprintf(b, sizeof(b), "%s/dcmp/res_DM_CIFAR10_ConvNet_1ipc.pt", dir);
    same_pool("the grid's DM set vs beard distill's", a, b, dataset_info("cifar10"));
    // the picture of the set, byte for byte (the res files differ in their zip timestamps)
    st = run_sh(out, sizeof(out), dir, "cmp dc/dataset_pool/DM/vis_DM_CIFAR10_ConvNet_1ipc_exp0_iter2.png "
                                       "dcmp/vis_DM_CIFAR10_ConvNet_1ipc_exp0_iter2.png");
    CHECK(st == 0, "the grid's vis_*.png differs from beard distill's\n%s", out);
}

// ../shared: two of BEARD's checkpoints, equal to `beard attack` cell by cell
static void test_against_attack(void) {
    if (getenv("BEARD_SANITIZED")) {
        // the same code paths as the synthetic grid above; CIFAR-10 PGD at -O1 with ASan is slow
        printf("SKIP: the acceptance grid on BEARD's checkpoints runs in the optimised build only\n");
        return;
    }
    const char *pool = shared_path("beard/model_pool", "the acceptance grid on BEARD's checkpoints");
    const char *data = shared_path("data", "the acceptance grid on CIFAR-10");
    if (!pool || !data) return;
    char out[65536], apool[PATH_MAX], adata[PATH_MAX];
    if (!realpath(pool, apool) || !realpath(data, adata)) return;
    int st = run_sh(out, sizeof(out), dir,
                "%s run --dataset cifar10 --data %s --model-pool %s --method BACON,DM --attack FGSM,PGD --limit 64 "
                "--semantics beard --threads 2 --store real.db --out real --quiet",
                beard, adata, apool);
    CHECK(st == 0, "the acceptance grid: status %d\n%s", st, out);
    Rows r;
    if (load("real.db", &r)) return;
    CHECK(r.n == 10, "10 cells (2 models x (clean + 2 attacks x 2 modes)), got %d", r.n);
    const char *files[2] = {"BACON_ConvNet_CIFAR10_50_None_0.6995.pth", "DM_ConvNet_CIFAR10_50_None.pth"};
    const char *methods[2] = {"BACON", "DM"};
    int compared = 0;
    for (int m = 0; m < 2; m++)
        for (int s = 0; s < 1; s++) {
            const char *sem = s ? "pixel" : "beard";
            char json[800];
            snprintf(json, sizeof(json), "%s/attack-%s-%s.json", dir, methods[m], sem);
            st = run_sh(out, sizeof(out), dir,
                    "%s attack --model %s/%s --dataset cifar10 --data %s --attack FGSM,PGD --targeted both --semantics %s "
                    "--preset beard --limit 64 --threads 2 --per-sample --json %s",
                    beard, apool, files[m], adata, sem, json);
            CHECK(st == 0, "beard attack: %d\n%s", st, out);
            uint8_t *buf;
            size_t len;
            Err e;
            if (file_read_all(json, 1 << 24, &buf, &len, &e)) continue;
            cJSON *root = cJSON_Parse((const char *)buf);
            free(buf);
            const cJSON *res, *results = cJSON_GetObjectItemCaseSensitive(root, "results");
            cJSON_ArrayForEach(res, results) {
                const char *att = cJSON_GetObjectItemCaseSensitive(res, "attack")->valuestring;
                int tg = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "targeted"));
                double acc = cJSON_GetObjectItemCaseSensitive(res, "accuracy")->valuedouble;
                const cJSON *adv = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "per_sample"), "adv_correct");
                char key[256];
                snprintf(key, sizeof(key), "attack/CIFAR10/%s/ipc50/ConvNet/None/run0/%s/%s/%s", methods[m], att,
                         tg ? "targeted" : "untargeted", sem);
                int found = 0;
                for (int i = 0; i < r.n; i++) {
                    if (strcmp(r.rows[i].key, key)) continue;
                    found = 1;
                    CHECK(r.rows[i].accuracy == acc, "%s: beard run %.4f%%, beard attack %.4f%%", key, r.rows[i].accuracy, acc);
                    int same = r.rows[i].adv_ok && cJSON_GetArraySize(adv) == r.rows[i].n;
                    for (int k = 0; same && k < r.rows[i].n; k++)
                        same = cJSON_GetArrayItem(adv, k)->valueint == r.rows[i].adv_ok[k];
                    CHECK(same, "%s: the per-sample outcomes differ", key);
                    compared++;
                }
                CHECK(found, "no cell %s in the store", key);
            }
            cJSON_Delete(root);
        }
    CHECK(compared == 8, "compared %d cells with beard attack, want 8", compared);
    rows_free(&r);
}

int main(int argc, char **argv) {
    parallel_init(argc, argv);
    const char *b = beard_bin();
    if (!b || !realpath(b, beard)) {
        CHECK(0, "no beard binary (set $BEARD)");
        return test_done("test_grid");
    }
    snprintf(dir, sizeof(dir), "%s", test_tmp("grid"));
    mkdir(dir, 0755);
    // a checkpoint of our own (seeded), so that the grid has a file model besides a trained one
    Net net;
    Err e;
    char p[800];
    snprintf(p, sizeof(p), "%s/rand.pth", dir);
    if (model_create(&net, "ConvNetW32", 3, 10, 16, 16, &e) == 0) {
        net_init_params(&net, 7);
        CHECK(checkpoint_save(&net, p, &e) == 0, "%s", e.msg);
        net_free(&net);
    }
    write_file("grid.json", grid_json);
    test_bad_input();
    test_dry_run();
    test_kill();
    test_mpi_and_shards();
    test_resume();
    test_distill();
    test_against_attack();
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (!g_fails && system(cmd)) {
    }
    return test_done("test_grid");
}

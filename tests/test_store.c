/*
 * test_store.c: the results store (src/store/store.c): rows round-trip with their blobs
 * and undefined figures, the same key under another configuration is another row, a
 * second write of a row keeps the first unless replaced, merging adds what is missing and
 * reports rows that disagree, published figures import from CSV (and bad CSV is refused
 * with the line), a file that is not a store is refused, and so is one whose schema version
 * is NULL or missing, PRAGMA integrity_check passes.
 */
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/store/store.h"
#include "harness.h"

static void make_row(StoreRow *r, const char *key, const char *hash, double acc, int n) {
    store_row_init(r);
    snprintf(r->kind, sizeof(r->kind), "attack");
    snprintf(r->key, sizeof(r->key), "%s", key);
    snprintf(r->hash, sizeof(r->hash), "%s", hash);
    r->config = xstrdup("{\"kind\":\"attack\"}");
    snprintf(r->dataset, sizeof(r->dataset), "CIFAR10");
    snprintf(r->method, sizeof(r->method), "DM");
    snprintf(r->ipc, sizeof(r->ipc), "10");
    snprintf(r->arch, sizeof(r->arch), "ConvNet");
    snprintf(r->train_attack, sizeof(r->train_attack), "None");
    r->run = 0;
    snprintf(r->attack, sizeof(r->attack), "PGD");
    snprintf(r->attack_name, sizeof(r->attack_name), "PGD");
    r->targeted = 1;
    snprintf(r->semantics, sizeof(r->semantics), "beard");
    r->n = n;
    r->accuracy = acc;
    r->clean_accuracy = 75;
    r->asr = NAN; // undefined: must come back as NAN, not 0
    r->passes = 20;
    r->clean_ok = malloc(n);
    r->adv_ok = malloc(n);
    for (int i = 0; i < n; i++) r->clean_ok[i] = i % 3 != 0, r->adv_ok[i] = i % 5 == 0;
    store_utc_now(r->finished, sizeof(r->finished));
}

static int count_rows(Store *s) {
    StoreRow *rows;
    int n;
    Err e;
    if (store_load(s, &rows, &n, &e)) return -1;
    store_rows_free(rows, n);
    return n;
}

int main(void) {
    char path[600], path2[600], csv[600], bad[600], junk[600];
    snprintf(path, sizeof(path), "%s", test_tmp("store.db"));
    snprintf(path2, sizeof(path2), "%s", test_tmp("store2.db"));
    snprintf(csv, sizeof(csv), "%s", test_tmp("pub.csv"));
    snprintf(bad, sizeof(bad), "%s", test_tmp("bad.csv"));
    snprintf(junk, sizeof(junk), "%s", test_tmp("junk.db"));
    Err e;
    Store *s;
    CHECK(store_open(&s, path, 0, &e) != 0, "opening a missing store without create must fail");
    CHECK(store_open(&s, path, 1, &e) == 0, "create: %s", e.msg);

    // a row round-trips
    StoreRow r, got;
    make_row(&r, "attack/CIFAR10/DM/ipc10/ConvNet/None/run0/PGD/targeted/beard", "aaaa", 41.5, 37);
    int w = -1;
    CHECK(store_put(s, &r, 0, &w, &e) == 0 && w == 1, "put: %s", e.msg);
    CHECK(store_get(s, r.key, "aaaa", &got, &e) == 1, "get");
    CHECK(got.accuracy == 41.5 && got.clean_accuracy == 75 && isnan(got.asr) && got.passes == 20, "scalars round-trip (asr %g)",
          got.asr);
    CHECK(got.n == 37 && got.adv_ok && got.clean_ok && !memcmp(got.adv_ok, r.adv_ok, 37) && !memcmp(got.clean_ok, r.clean_ok, 37),
          "per-sample blobs round-trip");
    CHECK(got.targeted == 1 && !strcmp(got.semantics, "beard") && !strcmp(got.attack, "PGD") && got.run == 0, "coordinates");
    store_row_free(&got);

    // the same key and hash again: kept, not duplicated; replace overwrites
    r.accuracy = 10;
    CHECK(store_put(s, &r, 0, &w, &e) == 0 && w == 0, "a second put of the same row must be a no-op");
    CHECK(store_get(s, r.key, "aaaa", &got, &e) == 1 && got.accuracy == 41.5, "the first row is kept");
    store_row_free(&got);
    CHECK(store_put(s, &r, 1, &w, &e) == 0 && w == 1, "replace");
    CHECK(store_get(s, r.key, "aaaa", &got, &e) == 1 && got.accuracy == 10, "replace overwrote");
    store_row_free(&got);
    CHECK(count_rows(s) == 1, "still one row");

    // the same key under another configuration is another row; the newest wins in _latest
    StoreRow r2;
    make_row(&r2, r.key, "bbbb", 33, 37);
    snprintf(r2.finished, sizeof(r2.finished), "2999-01-01T00:00:00Z");
    CHECK(store_put(s, &r2, 0, &w, &e) == 0 && w == 1, "a changed configuration is a new row");
    CHECK(count_rows(s) == 2, "two rows");
    StoreRow *rows;
    int n;
    CHECK(store_load_latest(s, &rows, &n, &e) == 0 && n == 1 && rows[0].accuracy == 33, "latest per key");
    store_rows_free(rows, n);
    CHECK(store_get(s, r.key, "cccc", NULL, &e) == 0, "an unknown hash is not found");
    CHECK(store_integrity(s, &e) == 0, "integrity: %s", e.msg);

    // published rows from CSV
    FILE *f = fopen(csv, "w");
    fputs("# my own figures, not BEARD's\nsource,dataset,ipc,method,mode,semantics,crei,rrm,aem\n"
          "mine,CIFAR10,all,DM,untargeted,beard,28.5,34.25,22.75\nmine,CIFAR10,10,DM,untargeted,beard,26.5,,26.5\n",
          f);
    fclose(f);
    int cnt = -1;
    CHECK(store_import_published_csv(s, csv, &cnt, &e) == 0 && cnt == 2, "import CSV: %s (%d)", e.msg, cnt);
    PublishedRow *pub;
    int np;
    CHECK(store_load_published(s, &pub, &np, &e) == 0 && np == 2, "published rows");
    int ok = 0;
    for (int i = 0; i < np; i++)
        if (!strcmp(pub[i].ipc, "all")) ok = pub[i].crei == 28.5 && pub[i].rrm == 34.25 && pub[i].aem == 22.75;
        else ok &= isnan(pub[i].rrm) && !strcmp(pub[i].arch, "ConvNet") && !strcmp(pub[i].train_attack, "None");
    CHECK(ok, "published values and defaults");
    free(pub);
    f = fopen(bad, "w");
    fputs("source,dataset,ipc,method,mode,semantics,crei,rrm,aem\nmine,CIFAR10,all,DM,sideways,beard,1,2,3\n", f);
    fclose(f);
    CHECK(store_import_published_csv(s, bad, &cnt, &e) != 0 && strstr(e.msg, ":2:") && strstr(e.msg, "sideways"),
          "a bad mode is refused with its line: %s", e.msg);
    f = fopen(bad, "w");
    fputs("source,dataset,method,mode\nx,y,z,w\n", f);
    fclose(f);
    CHECK(store_import_published_csv(s, bad, &cnt, &e) != 0 && strstr(e.msg, "lacks the column"), "a missing column: %s", e.msg);
    f = fopen(bad, "w");
    fputs("source,dataset,ipc,method,mode,semantics,crei,rrm,aem\nmine,CIFAR10,all,DM,untargeted,beard,1.2.3,2,3\n", f);
    fclose(f);
    CHECK(store_import_published_csv(s, bad, &cnt, &e) != 0 && strstr(e.msg, "1.2.3"), "a bad number: %s", e.msg);
    CHECK(store_load_published(s, &pub, &np, &e) == 0 && np == 2, "a failed import adds nothing");
    free(pub);

    // merge: a second store with one new row, one identical, one conflicting
    Store *s2;
    CHECK(store_open(&s2, path2, 1, &e) == 0, "second store");
    StoreRow a, b, c;
    make_row(&a, "attack/CIFAR10/DM/ipc10/ConvNet/None/run0/FGSM/targeted/beard", "dddd", 50, 37);
    make_row(&b, r.key, "aaaa", 10, 37); // what s holds
    make_row(&c, r.key, "bbbb", 33, 37);
    c.adv_ok[3] ^= 1; // a different per-sample outcome: a conflict
    snprintf(b.finished, sizeof(b.finished), "%s", "2000-01-01T00:00:00Z");
    CHECK(!store_put(s2, &a, 0, &w, &e) && !store_put(s2, &b, 0, &w, &e) && !store_put(s2, &c, 0, &w, &e), "fill s2");
    store_close(s2);
    int added, same, conflicts;
    CHECK(store_merge(s, path2, &added, &same, &conflicts, &e) == 0, "merge: %s", e.msg);
    CHECK(added == 1 && same == 1 && conflicts == 1, "merge counts: %d added, %d same, %d conflicts", added, same, conflicts);
    CHECK(conflicts == 0 || strstr(e.msg, r.key), "the conflict names the key: %s", e.msg);
    CHECK(count_rows(s) == 3, "three rows after the merge");
    CHECK(store_merge(s, path2, &added, &same, &conflicts, &e) == 0 && added == 0, "merging twice adds nothing");
    CHECK(store_integrity(s, &e) == 0, "integrity after merge: %s", e.msg);
    store_close(s);

    // not a store
    f = fopen(junk, "w");
    fputs("this is not a database\n", f);
    fclose(f);
    CHECK(store_open(&s, junk, 1, &e) != 0, "a text file is not a store");

    // a store whose schema version is NULL, or missing (fuzz_store's finding: the NULL
    // went into strcmp)
    static const char *metas[2] = {"INSERT INTO meta VALUES('schema', NULL);", ""};
    for (int k = 0; k < 2; k++) {
        unlink(junk);
        sqlite3 *db = NULL;
        char sql[256];
        snprintf(sql, sizeof(sql), "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT); %s", metas[k]);
        CHECK(sqlite3_open(junk, &db) == SQLITE_OK && sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK, "make the store");
        sqlite3_close(db);
        CHECK(store_open(&s, junk, 0, &e) != 0 && strstr(e.msg, "schema none"), "a %s schema version is refused: %s",
              k ? "missing" : "NULL", e.msg);
    }

    char h1[65], h2[65];
    store_sha256_hex("abc", 3, h1);
    CHECK(!strcmp(h1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "sha256(abc) = %s", h1);
    CHECK(store_sha256_file(csv, h2, &e) == 0 && strlen(h2) == 64, "file checksum");

    store_row_free(&r), store_row_free(&r2), store_row_free(&a), store_row_free(&b), store_row_free(&c);
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int k = 0; k < 3; k++) {
        char p[700];
        snprintf(p, sizeof(p), "%s%s", path, suffix[k]), unlink(p);
        snprintf(p, sizeof(p), "%s%s", path2, suffix[k]), unlink(p);
    }
    unlink(csv), unlink(bad), unlink(junk);
    return test_done("test_store");
}

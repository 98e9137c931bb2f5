/*
 * cmd_store.c: `beard store`, looking inside the results store of `beard run`
 * (src/store/store.h): list, show one row, export as CSV or JSON, merge the stores of
 * shards, check integrity, import published figures.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../io/file.h"
#include "../metrics/metrics.h"
#include "../store/store.h"
#include "cli.h"

static const char *usage_text =
    "usage: beard store ls STORE [--match TEXT]\n"
    "       beard store show STORE KEY\n"
    "       beard store export STORE [--format csv|json] [--out FILE] [--per-sample]\n"
    "       beard store merge OUT IN [IN...]\n"
    "       beard store check STORE\n"
    "       beard store import STORE --published CSV\n"
    "\n"
    "The results store that `beard run` writes (SQLite; one row per finished cell).\n"
    "  ls      one line per row: kind, key, accuracy, when, configuration hash (--match: keys\n"
    "          containing TEXT)\n"
    "  show    one row in full (configuration, provenance, results) as JSON\n"
    "  export  every row as CSV (default) or JSON to --out (default: stdout); --per-sample adds\n"
    "          the per-sample outcomes (1 = correctly classified) to JSON\n"
    "  merge   adds the rows of each IN (e.g. the stores of `beard run --shard i/N`) to OUT\n"
    "          (created when missing); rows in both with different results are reported\n"
    "  check   PRAGMA integrity_check and the row counts\n"
    "  import  published figures (CSV: source,dataset,ipc,method,mode,semantics,crei,rrm,aem)\n"
    "          as reference rows for the leaderboard\n"
    "STORE may also be given as --store FILE. --threads N is accepted as by every command\n"
    "(the store is read by one).\n";

static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static cJSON *bits_json(const unsigned char *b, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(b[i]));
    return a;
}

static cJSON *row_json(const StoreRow *r, int per_sample) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", r->kind);
    cJSON_AddStringToObject(o, "key", r->key);
    cJSON_AddStringToObject(o, "hash", r->hash);
    cJSON_AddStringToObject(o, "source", r->source);
    cJSON_AddStringToObject(o, "dataset", r->dataset);
    cJSON_AddStringToObject(o, "method", r->method);
    cJSON_AddStringToObject(o, "ipc", r->ipc);
    cJSON_AddStringToObject(o, "arch", r->arch);
    cJSON_AddStringToObject(o, "train_attack", r->train_attack);
    cJSON_AddNumberToObject(o, "run", r->run);
    if (r->attack[0]) {
        cJSON_AddStringToObject(o, "attack", r->attack);
        cJSON_AddStringToObject(o, "attack_name", r->attack_name);
        cJSON_AddBoolToObject(o, "targeted", r->targeted == 1);
    }
    if (r->semantics[0]) cJSON_AddStringToObject(o, "semantics", r->semantics);
    cJSON_AddNumberToObject(o, "n", r->n);
    cJSON_AddItemToObject(o, "clean_accuracy", num_or_null(r->clean_accuracy));
    cJSON_AddItemToObject(o, "accuracy", num_or_null(r->accuracy));
    cJSON_AddItemToObject(o, "asr", num_or_null(r->asr));
    cJSON_AddItemToObject(o, "seconds", num_or_null(r->seconds));
    cJSON_AddItemToObject(o, "passes_per_sample", num_or_null(r->passes));
    if (r->model_path[0]) {
        cJSON_AddStringToObject(o, "model_path", r->model_path);
        cJSON_AddStringToObject(o, "model_sha256", r->model_sha256);
    }
    cJSON_AddStringToObject(o, "version", r->version);
    cJSON_AddNumberToObject(o, "seed", (double)r->seed);
    cJSON_AddNumberToObject(o, "threads", r->threads);
    cJSON_AddStringToObject(o, "machine", r->machine);
    cJSON_AddStringToObject(o, "finished", r->finished);
    cJSON_AddItemToObject(o, "wall_seconds", num_or_null(r->wall_seconds));
    cJSON *cfg = r->config ? cJSON_Parse(r->config) : NULL;
    cJSON_AddItemToObject(o, "config", cfg ? cfg : cJSON_CreateNull());
    cJSON *x = r->extra ? cJSON_Parse(r->extra) : NULL;
    if (x) cJSON_AddItemToObject(o, "extra", x);
    if (per_sample) {
        if (r->clean_ok) cJSON_AddItemToObject(o, "clean_correct", bits_json(r->clean_ok, r->n));
        if (r->adv_ok) cJSON_AddItemToObject(o, "adv_correct", bits_json(r->adv_ok, r->n));
    }
    return o;
}

static void csv_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.10g", v);
}

static int export_csv(FILE *f, const StoreRow *rows, int n) {
    fputs("kind,key,hash,source,dataset,method,ipc,arch,train_attack,run,attack,attack_name,targeted,semantics,n,"
          "clean_correct,adv_correct,clean_accuracy,accuracy,asr,seconds,passes_per_sample,model_path,model_sha256,"
          "version,seed,threads,machine,finished,wall_seconds\n",
          f);
    for (int i = 0; i < n; i++) {
        const StoreRow *r = &rows[i];
        const char *s1[] = {r->kind, r->key, r->hash, r->source, r->dataset, r->method, r->ipc, r->arch, r->train_attack};
        for (int k = 0; k < 9; k++) metrics_csv_field(f, s1[k]), fputc(',', f);
        fprintf(f, "%d,", r->run);
        metrics_csv_field(f, r->attack), fputc(',', f);
        metrics_csv_field(f, r->attack_name), fputc(',', f);
        if (r->targeted >= 0) fprintf(f, "%s", r->targeted ? "true" : "false");
        fputc(',', f);
        metrics_csv_field(f, r->semantics), fputc(',', f);
        fprintf(f, "%d,%d,%d,", r->n, r->clean_correct, r->adv_correct);
        csv_num(f, r->clean_accuracy), fputc(',', f);
        csv_num(f, r->accuracy), fputc(',', f);
        csv_num(f, r->asr), fputc(',', f);
        csv_num(f, r->seconds), fputc(',', f);
        csv_num(f, r->passes), fputc(',', f);
        metrics_csv_field(f, r->model_path), fputc(',', f);
        metrics_csv_field(f, r->model_sha256), fputc(',', f);
        metrics_csv_field(f, r->version), fputc(',', f);
        fprintf(f, "%lld,%d,", r->seed, r->threads);
        metrics_csv_field(f, r->machine), fputc(',', f);
        metrics_csv_field(f, r->finished), fputc(',', f);
        csv_num(f, r->wall_seconds);
        fputc('\n', f);
    }
    return ferror(f) ? -1 : 0;
}

int cmd_store(int argc, char **argv) {
    const char *C = "store", *store = NULL, *format = "csv", *out = NULL, *match = NULL, *published = NULL;
    int per_sample = 0;
    const char **pos = calloc(argc + 1, sizeof(char *));
    int n_pos = 0;
    if (!pos) return cli_error(C, "out of memory");
    for (int i = 1; i < argc; i++) {
        const char *v;
        int missing = 0;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            fputs(usage_text, stdout);
            free(pos);
            return 0;
        } else if (cli_flag(argv, i, "--per-sample")) per_sample = 1;
        else if ((v = cli_opt(argc, argv, &i, "--store", &missing))) store = v;
        else if ((v = cli_opt(argc, argv, &i, "--format", &missing))) format = v;
        else if ((v = cli_opt(argc, argv, &i, "--out", &missing))) out = v;
        else if ((v = cli_opt(argc, argv, &i, "--match", &missing))) match = v;
        else if ((v = cli_opt(argc, argv, &i, "--published", &missing))) published = v;
        else if ((v = cli_opt(argc, argv, &i, "--threads", &missing))) {
            long t; // accepted as by every command; a store is read and written by one thread
            if (cli_parse_int(C, "--threads", v, 0, 256, &t)) goto usage;
        } else if (missing) goto usage;
        else if (!strncmp(argv[i], "--", 2)) {
            cli_usage_error(C, "unknown option '%s' (see beard store --help)", argv[i]);
            goto usage;
        } else pos[n_pos++] = argv[i];
    }
    if (n_pos == 0) {
        cli_usage_error(C, "give an action: ls, show, export, merge, check or import (see beard store --help)");
        goto usage;
    }
    const char *act = pos[0];
    int first = 1;
    if (!store && n_pos > 1) store = pos[first++];
    if (!store) {
        cli_usage_error(C, "%s: which store? (beard store %s STORE)", act, act);
        goto usage;
    }
    if (strcmp(act, "ls") && strcmp(act, "show") && strcmp(act, "export") && strcmp(act, "merge") && strcmp(act, "check") &&
        strcmp(act, "import")) {
        cli_usage_error(C, "unknown action '%s' (ls, show, export, merge, check, import)", act);
        goto usage;
    }
    if (strcmp(format, "csv") && strcmp(format, "json")) {
        cli_usage_error(C, "--format must be csv or json, not '%s'", format);
        goto usage;
    }
    Err e;
    Store *s;
    int status = 0;
    if (store_open(&s, store, !strcmp(act, "merge") || !strcmp(act, "import"), &e)) {
        free(pos);
        return cli_error(C, "%s", e.msg);
    }
    if (!strcmp(act, "merge")) {
        if (first >= n_pos) {
            store_close(s);
            cli_usage_error(C, "merge: give the stores to merge into %s", store);
            goto usage;
        }
        for (int i = first; i < n_pos && !status; i++) {
            int added, same, conflicts;
            if (store_merge(s, pos[i], &added, &same, &conflicts, &e)) status = cli_error(C, "%s", e.msg);
            else {
                printf("beard store: %s: %d rows added, %d already there, %d conflicting\n", pos[i], added, same, conflicts);
                if (conflicts) fprintf(stderr, "beard store: %s\n", e.msg);
            }
        }
    } else if (!strcmp(act, "check")) {
        StoreRow *rows;
        int n;
        if (store_integrity(s, &e) || store_load(s, &rows, &n, &e)) status = cli_error(C, "%s", e.msg);
        else {
            int kinds[4] = {0};
            for (int i = 0; i < n; i++)
                kinds[!strcmp(rows[i].kind, "train") ? 0 : !strcmp(rows[i].kind, "clean") ? 1 : !strcmp(rows[i].kind, "attack") ? 2 : 3]++;
            printf("%s: integrity ok; %d rows (%d train, %d clean, %d attack, %d other)\n", store, n, kinds[0], kinds[1],
                   kinds[2], kinds[3]);
            store_rows_free(rows, n);
        }
    } else if (!strcmp(act, "import")) {
        int n;
        if (!published) status = cli_usage_error(C, "import: give --published CSV");
        else if (store_import_published_csv(s, published, &n, &e)) status = cli_error(C, "%s", e.msg);
        else printf("beard store: %d published rows from %s\n", n, published);
    } else {
        StoreRow *rows;
        int n;
        if (store_load(s, &rows, &n, &e)) status = cli_error(C, "%s", e.msg);
        else if (!strcmp(act, "ls")) {
            int shown = 0;
            for (int i = 0; i < n; i++) {
                if (match && !strstr(rows[i].key, match)) continue;
                char acc[16] = "";
                if (isfinite(rows[i].accuracy)) snprintf(acc, sizeof(acc), "%6.2f%%", rows[i].accuracy);
                printf("%-7s %-9s %s  %-20s %.12s  %s\n", rows[i].kind, rows[i].source, acc, rows[i].finished, rows[i].hash,
                       rows[i].key);
                shown++;
            }
            fprintf(stderr, "beard store: %d of %d rows\n", shown, n);
        } else if (!strcmp(act, "show")) {
            if (first >= n_pos) status = cli_usage_error(C, "show: which key? (beard store ls lists them)");
            int found = 0;
            for (int i = 0; i < n && !status; i++) {
                if (strcmp(rows[i].key, pos[first])) continue;
                cJSON *o = row_json(&rows[i], per_sample);
                char *t = cJSON_Print(o);
                puts(t);
                free(t);
                cJSON_Delete(o);
                found++;
            }
            if (!status && !found) status = cli_error(C, "no row with key %s in %s", pos[first], store);
        } else { // export
            FILE *f = stdout;
            char *mem = NULL;
            size_t mlen = 0;
            if (out) f = open_memstream(&mem, &mlen);
            if (!f) status = cli_error(C, "out of memory");
            else if (!strcmp(format, "json")) {
                cJSON *a = cJSON_CreateArray();
                for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, row_json(&rows[i], per_sample));
                char *t = cJSON_Print(a);
                fputs(t, f), fputc('\n', f);
                free(t);
                cJSON_Delete(a);
            } else if (export_csv(f, rows, n)) status = cli_error(C, "cannot write the export");
            if (out && f) {
                fclose(f);
                if (!status && file_write_all(out, mem, mlen, &e)) status = cli_error(C, "%s", e.msg);
                free(mem);
            }
        }
        if (n >= 0 && rows) store_rows_free(rows, n);
    }
    store_close(s);
    free(pos);
    return status;
usage:
    free(pos);
    return 2;
}

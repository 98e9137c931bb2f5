/*
 * site.c: the leaderboard as files: the static HTML site (one self-contained page with
 * inline CSS and script, figures as SVG files beside it: it works offline from the file
 * system, no CDN), the figures (figures.c, cairo), and the Markdown, CSV and JSON.
 *
 * The page's tables carry every number in a data-v attribute (the full value; empty for
 * n/a) so that sorting is numeric and n/a sorts last; a filter box per board hides rows
 * that do not contain its text. The script is a few lines of plain JavaScript.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../evaluate/beardlog.h"
#include "../io/file.h"
#include "figures.h"
#include "leaderboard.h"

static const char *sem_name(int s) { return s == LB_SEM_PIXEL ? "pixel" : "beard"; }

static void entry_label(const LbEntry *en, char *buf, size_t n) {
    snprintf(buf, n, "%s", en->method);
    if (strcmp(en->train_attack, "None")) snprintf(buf + strlen(buf), n - strlen(buf), " + %s-AT", en->train_attack);
    if (en->reference) snprintf(buf + strlen(buf), n - strlen(buf), " (full-size)");
    if (!strcmp(en->source, "BEARD log")) snprintf(buf + strlen(buf), n - strlen(buf), " (BEARD log)");
}

static void ident(const char *s, char *out, size_t n) {
    size_t k = 0;
    for (; *s && k + 1 < n; s++) out[k++] = isalnum((unsigned char)*s) ? *s : '_';
    out[k] = 0;
}

// ----------------------------------------------------------------------------
// figures

static int add_fig(LbFigure *figs, int max, int *n, const char *name, const char *ds, const char *caption) {
    if (*n >= max) return 0;
    snprintf(figs[*n].name, sizeof(figs[*n].name), "%s", name);
    snprintf(figs[*n].dataset, sizeof(figs[*n].dataset), "%s", ds);
    snprintf(figs[*n].caption, sizeof(figs[*n].caption), "%s", caption);
    (*n)++;
    return 1;
}

// draws one chart into fdir/<name>.svg (and .png) and lists it with its caption
static int emit(const FigChart *c, int bars, const char *fdir, const char *name, const char *dataset, const char *caption,
                int png, LbFigure *figs, int max, int *n, Err *e) {
    char path[1300];
    snprintf(path, sizeof(path), "%s/%s", fdir, name);
    if (bars ? fig_bars(c, path, png, e) : fig_lines(c, path, png, e)) return -1;
    add_fig(figs, max, n, name, dataset, caption);
    return 0;
}

static int same_model(const LbEntry *a, const LbEntry *b) {
    return !strcmp(a->method, b->method) && !strcmp(a->arch, b->arch) && !strcmp(a->train_attack, b->train_attack) &&
           !strcmp(a->source, b->source);
}

int leaderboard_figures(const Leaderboard *lb, const char *dir, int png, LbFigure *figs, int max, int *n, Err *e) {
    *n = 0;
    char fdir[1100];
    snprintf(fdir, sizeof(fdir), "%s/fig", dir);
    if (file_mkdirs(fdir, e)) return -1;
    for (int b = 0; b < lb->n_boards; b++) {
        const LbBoard *u = &lb->boards[b];
        if (strcmp(u->ipc, "all")) continue;
        char dsid[40];
        ident(u->dataset, dsid, sizeof(dsid));
        // the measured rows of the unified board (published figures stay in the tables)
        const LbEntry *rows[64];
        int nr = 0;
        for (int k = 0; k < u->n_entries && nr < 64; k++)
            if (!u->entries[k].published) rows[nr++] = &u->entries[k];
        if (!nr) continue;
        char labels[64][160];
        const char *cats[64];
        for (int k = 0; k < nr; k++) entry_label(rows[k], labels[k], sizeof(labels[k])), cats[k] = labels[k];
        for (int s = 0; s < 2; s++) {
            // Figure 4: RRM, AEM, CREI per method
            for (int m = 1; m >= 0; m--) {
                // the rows measured in this semantics and mode
                double v[3][64];
                const char *fc[64];
                int any = 0;
                for (int k = 0; k < nr; k++) {
                    const LbFig *f = &rows[k]->fig[s][m];
                    if (!f->ok) continue;
                    v[0][any] = f->rr.v, v[1][any] = f->ae.v, v[2][any] = f->crei.v;
                    fc[any++] = cats[k];
                }
                if (!any) continue;
                FigChart c;
                memset(&c, 0, sizeof(c));
                snprintf(c.title, sizeof(c.title), "RRM, AEM and CREI on %s (%s semantics, %s)", u->dataset, sem_name(s),
                         metrics_mode_name(m));
                snprintf(c.ylabel, sizeof(c.ylabel), "%%");
                snprintf(c.xlabel, sizeof(c.xlabel), "method (all IPCs pooled)");
                c.categories = fc, c.n_categories = any;
                const char *names[3] = {"RRM", "AEM", "CREI"};
                for (int i = 0; i < 3; i++) {
                    snprintf(c.series[i].name, sizeof(c.series[i].name), "%s", names[i]);
                    c.series[i].y = v[i], c.series[i].n = any;
                }
                c.n_series = 3;
                c.ymin = c.ymax = NAN;
                char name[128], cap[256];
                snprintf(name, sizeof(name), "fig4_%s_%s_%s", dsid, sem_name(s), metrics_mode_name(m));
                snprintf(cap, sizeof(cap), "Figure 4 (as in BEARD): %s", c.title);
                if (emit(&c, 1, fdir, name, u->dataset, cap, png, figs, max, n, e)) return -1;
            }
            // Figure 5: CREI against IPC, the full-size model as a dashed line
            {
                FigChart c;
                memset(&c, 0, sizeof(c));
                double xs[FIG_MAX_SERIES][16], ys[FIG_MAX_SERIES][16], ref[FIG_MAX_SERIES];
                int lines = 0;
                for (int k = 0; k < nr && c.n_series < FIG_MAX_SERIES; k++) {
                    const LbEntry *en = rows[k];
                    if (en->reference) {
                        double v = en->fig[s][MODE_UNTARGETED].crei.v;
                        if (!isfinite(v)) continue;
                        FigSeries *se = &c.series[c.n_series];
                        entry_label(en, se->name, sizeof(se->name));
                        ref[c.n_series] = v;
                        se->y = &ref[c.n_series], se->n = 1, se->hline = 1;
                        c.n_series++;
                        continue;
                    }
                    int np = 0;
                    for (int b2 = 0; b2 < lb->n_boards && np < 16; b2++) {
                        const LbBoard *ib = &lb->boards[b2];
                        if (strcmp(ib->dataset, u->dataset) || !strcmp(ib->ipc, "all")) continue;
                        for (int q = 0; q < ib->n_entries; q++)
                            if (!ib->entries[q].published && same_model(&ib->entries[q], en) &&
                                isfinite(ib->entries[q].fig[s][MODE_UNTARGETED].crei.v)) {
                                xs[c.n_series][np] = atof(ib->ipc);
                                ys[c.n_series][np] = ib->entries[q].fig[s][MODE_UNTARGETED].crei.v;
                                np++;
                            }
                    }
                    if (!np) continue;
                    FigSeries *se = &c.series[c.n_series];
                    entry_label(en, se->name, sizeof(se->name));
                    se->x = xs[c.n_series], se->y = ys[c.n_series], se->n = np;
                    c.n_series++, lines++;
                }
                if (lines) {
                    snprintf(c.title, sizeof(c.title), "CREI against IPC on %s (%s semantics, untargeted)", u->dataset,
                             sem_name(s));
                    snprintf(c.xlabel, sizeof(c.xlabel), "images per class (log scale)");
                    snprintf(c.ylabel, sizeof(c.ylabel), "CREI (%%)");
                    c.xlog = 1;
                    c.ymin = c.ymax = NAN;
                    char name[128], cap[256];
                    snprintf(name, sizeof(name), "fig5_%s_%s", dsid, sem_name(s));
                    snprintf(cap, sizeof(cap), "Figure 5 (as in BEARD): %s; dashed: the full-size model", c.title);
                    if (emit(&c, 0, fdir, name, u->dataset, cap, png, figs, max, n, e)) return -1;
                }
            }
            // Figure 6: CREI with and without adversarial training
            {
                char methods[64][100], trains[FIG_MAX_SERIES][48];
                int nm = 0, nt = 0;
                for (int k = 0; k < nr; k++) {
                    if (strcmp(rows[k]->source, "beard")) continue;
                    char key[100];
                    snprintf(key, sizeof(key), "%s/%s", rows[k]->method, rows[k]->arch);
                    int have = 0;
                    for (int i = 0; i < nm; i++) have |= !strcmp(methods[i], key);
                    if (!have && nm < 64) snprintf(methods[nm++], sizeof(methods[0]), "%s", key);
                    have = 0;
                    for (int i = 0; i < nt; i++) have |= !strcmp(trains[i], rows[k]->train_attack);
                    if (!have && nt < FIG_MAX_SERIES) {
                        snprintf(trains[nt++], sizeof(trains[0]), "%s", rows[k]->train_attack);
                        // "None" first
                        if (!strcmp(rows[k]->train_attack, "None") && nt > 1) {
                            char t[48];
                            memcpy(t, trains[nt - 1], 48), memmove(trains[1], trains[0], 48 * (size_t)(nt - 1)), memcpy(trains[0], t, 48);
                        }
                    }
                }
                if (nt >= 2 && nm >= 1) {
                    FigChart c;
                    memset(&c, 0, sizeof(c));
                    static double v[FIG_MAX_SERIES][64];
                    const char *mc[64];
                    for (int i = 0; i < nm; i++) mc[i] = methods[i];
                    for (int t = 0; t < nt; t++) {
                        for (int i = 0; i < nm; i++) {
                            v[t][i] = NAN;
                            for (int k = 0; k < nr; k++) {
                                char key[100];
                                snprintf(key, sizeof(key), "%s/%s", rows[k]->method, rows[k]->arch);
                                if (!strcmp(rows[k]->source, "beard") && !strcmp(key, methods[i]) &&
                                    !strcmp(rows[k]->train_attack, trains[t]))
                                    v[t][i] = rows[k]->fig[s][MODE_UNTARGETED].crei.v;
                            }
                        }
                        snprintf(c.series[t].name, sizeof(c.series[t].name), "%s", strcmp(trains[t], "None") ? trains[t] : "no adversarial training");
                        if (strcmp(trains[t], "None")) snprintf(c.series[t].name + strlen(c.series[t].name), sizeof(c.series[t].name) - strlen(c.series[t].name), " training");
                        c.series[t].y = v[t], c.series[t].n = nm;
                    }
                    c.n_series = nt;
                    c.categories = mc, c.n_categories = nm;
                    snprintf(c.title, sizeof(c.title), "CREI with and without adversarial training, %s (%s semantics, untargeted)",
                             u->dataset, sem_name(s));
                    snprintf(c.xlabel, sizeof(c.xlabel), "method / architecture");
                    snprintf(c.ylabel, sizeof(c.ylabel), "CREI (%%)");
                    c.ymin = c.ymax = NAN;
                    char name[128], cap[256];
                    snprintf(name, sizeof(name), "fig6_%s_%s", dsid, sem_name(s));
                    snprintf(cap, sizeof(cap), "Figure 6 (as in BEARD): %s", c.title);
                    if (emit(&c, 1, fdir, name, u->dataset, cap, png, figs, max, n, e)) return -1;
                }
            }
            // robust accuracy against eps, per attack that the grid ran at several eps
            for (int c0 = 0; c0 < u->n_columns; c0++) {
                const char *an = u->columns[c0].attack_name;
                int first = 1, cols[32], ncol = 0;
                for (int c1 = 0; c1 < c0; c1++) first &= strcmp(u->columns[c1].attack_name, an) != 0;
                if (!first) continue;
                for (int c1 = 0; c1 < u->n_columns && ncol < 31; c1++)
                    if (!strcmp(u->columns[c1].attack_name, an) && isfinite(u->columns[c1].eps)) cols[ncol++] = c1;
                if (ncol < 2) continue;
                FigChart c;
                memset(&c, 0, sizeof(c));
                static double xs[FIG_MAX_SERIES][33], ys[FIG_MAX_SERIES][33];
                for (int k = 0; k < nr && c.n_series < FIG_MAX_SERIES; k++) {
                    int np = 0, any = 0;
                    xs[c.n_series][np] = 0, ys[c.n_series][np] = rows[k]->clean[s].v, np++; // eps 0: clean
                    for (int q = 0; q < ncol; q++) {
                        xs[c.n_series][np] = u->columns[cols[q]].eps;
                        ys[c.n_series][np] = lb_acc(u, rows[k], cols[q], s, MODE_UNTARGETED)->v;
                        any |= isfinite(ys[c.n_series][np]);
                        np++;
                    }
                    if (!any) continue;
                    FigSeries *se = &c.series[c.n_series];
                    entry_label(rows[k], se->name, sizeof(se->name));
                    se->x = xs[c.n_series], se->y = ys[c.n_series], se->n = np;
                    c.n_series++;
                }
                if (!c.n_series) continue;
                snprintf(c.title, sizeof(c.title), "Robust accuracy against eps, %s on %s (%s semantics, untargeted)", an,
                         u->dataset, sem_name(s));
                snprintf(c.xlabel, sizeof(c.xlabel), "eps (%s units; 0: clean)",
                         s == LB_SEM_BEARD ? "normalised-space, as BEARD" : "pixel");
                snprintf(c.ylabel, sizeof(c.ylabel), "robust accuracy (%%)");
                c.ymin = 0, c.ymax = NAN;
                char name[128], cap[256], aid[40];
                ident(an, aid, sizeof(aid));
                snprintf(name, sizeof(name), "figeps_%s_%s_%s", dsid, sem_name(s), aid);
                snprintf(cap, sizeof(cap), "%s (mean over IPCs)", c.title);
                if (emit(&c, 0, fdir, name, u->dataset, cap, png, figs, max, n, e)) return -1;
            }
        }
    }
    return 0;
}

// ----------------------------------------------------------------------------
// HTML

static void esc(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

// a number cell: the value (2 decimals), its spread in small print, the full value in data-v
static void td_num(FILE *f, const LbNum *x) {
    if (!isfinite(x->v)) {
        fputs("<td class=\"na\" data-v=\"\">n/a</td>", f);
        return;
    }
    fprintf(f, "<td data-v=\"%.10g\">%.2f", x->v, x->v);
    if (isfinite(x->sd)) fprintf(f, "<small> &plusmn;%.2f</small>", x->sd);
    else if (isfinite(x->lo)) fprintf(f, "<small> [%.2f, %.2f]</small>", x->lo, x->hi);
    fputs("</td>", f);
}

static const char *css =
    "body{font:14px/1.45 'DejaVu Sans',Helvetica,Arial,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}"
    "header{background:#1f3a5f;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:24px}"
    "header p{margin:0;opacity:.85}main{padding:12px 28px 40px}"
    "nav{padding:10px 28px;background:#e9eef5;border-bottom:1px solid #cfd8e3}nav a{margin-right:14px;color:#1f3a5f}"
    "section.board{margin:28px 0 40px}h2{border-bottom:2px solid #1f3a5f;padding-bottom:4px}"
    ".wrap{overflow-x:auto;max-width:100%}table{border-collapse:collapse;background:#fff;font-size:13px}"
    "th,td{border:1px solid #d6dbe1;padding:4px 7px;text-align:right;white-space:nowrap}"
    "td.t,th.t{text-align:left}thead th{background:#eef2f7;cursor:pointer;user-select:none}"
    "thead tr.groups th{cursor:default;background:#dde5ef;text-align:center}"
    "th[data-dir=asc]::after{content:' \\25B2'}th[data-dir=desc]::after{content:' \\25BC'}"
    "tr.reference td{background:#f3f8ee}tr.log td{background:#f7f4ec}tr.published td{background:#f1f1f1;font-style:italic}"
    "td.na{color:#999}small{color:#666}.meta{color:#555}input.filter{margin:6px 0 8px;padding:4px 8px;width:260px}"
    "figure{display:inline-block;margin:10px 18px 10px 0;background:#fff;border:1px solid #ddd;padding:6px}"
    "figure img{width:620px;height:auto}figcaption{font-size:12px;color:#444;max-width:620px}"
    ".notes{background:#fff;border:1px solid #ddd;padding:8px 16px;margin-top:14px}";

static const char *script =
    "(function(){\n"
    "function val(td){var v=td.getAttribute('data-v');if(v===null)return td.textContent.trim().toLowerCase();"
    "return v===''?null:parseFloat(v);}\n"
    "document.querySelectorAll('table.sortable').forEach(function(t){\n"
    " var hr=t.tHead.rows[t.tHead.rows.length-1].cells;\n"
    " Array.prototype.forEach.call(hr,function(th,i){th.addEventListener('click',function(){\n"
    "  var num=th.getAttribute('data-type')==='num',cur=th.getAttribute('data-dir');\n"
    "  var dir=cur?(cur==='asc'?'desc':'asc'):(num?'desc':'asc');\n"
    "  Array.prototype.forEach.call(hr,function(h){h.removeAttribute('data-dir');});th.setAttribute('data-dir',dir);\n"
    "  var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows);\n"
    "  rows.sort(function(p,q){var x=val(p.cells[i]),y=val(q.cells[i]);\n"
    "   if(x===null&&y===null)return 0;if(x===null)return 1;if(y===null)return -1;\n"
    "   var c=(typeof x==='number'&&typeof y==='number')?x-y:String(x).localeCompare(String(y));\n"
    "   return dir==='asc'?c:-c;});\n"
    "  rows.forEach(function(r){b.appendChild(r);});});});});\n"
    "document.querySelectorAll('input.filter').forEach(function(inp){inp.addEventListener('input',function(){\n"
    " var q=inp.value.toLowerCase();inp.getAttribute('data-tables').split(' ').forEach(function(id){\n"
    "  var t=document.getElementById(id);if(!t)return;Array.prototype.forEach.call(t.tBodies[0].rows,function(r){\n"
    "   r.style.display=r.textContent.toLowerCase().indexOf(q)>=0?'':'none';});});});});\n"
    "})();\n";

static const int groups[4][2] = {{LB_SEM_BEARD, MODE_UNTARGETED}, {LB_SEM_PIXEL, MODE_UNTARGETED},
                                 {LB_SEM_BEARD, MODE_TARGETED}, {LB_SEM_PIXEL, MODE_TARGETED}};

static const char *row_class(const LbEntry *en) {
    return en->published ? "published" : en->reference ? "reference" : strcmp(en->source, "beard") ? "log" : "ranked";
}

static void board_html(FILE *f, const Leaderboard *lb, const LbBoard *bd, const LbFigure *figs, int n_figs) {
    char id[80], ds[40], ip[20];
    ident(bd->dataset, ds, sizeof(ds));
    ident(bd->ipc, ip, sizeof(ip));
    snprintf(id, sizeof(id), "%s-%s", ds, ip);
    int unified = !strcmp(bd->ipc, "all");
    fprintf(f, "<section class=\"board\" id=\"sec-%s\">\n<h2>", id);
    esc(f, bd->dataset);
    if (unified) fputs(" &mdash; unified (all IPCs)", f);
    else fprintf(f, " &mdash; IPC %s", bd->ipc);
    fputs("</h2>\n<p class=\"meta\">", f);
    if (bd->n_test) fprintf(f, "Measured on %d test images. ", bd->n_test);
    fputs("Ranked by CREI (beard semantics, untargeted), as BEARD ranks; click a column to sort by it. Reference rows "
          "(the full-size model, BEARD's own logs, published figures) are not ranked.</p>\n",
          f);
    fprintf(f, "<input class=\"filter\" placeholder=\"filter rows (method, training, source)\" data-tables=\"board-%s attacks-%s\">\n",
            id, id);
    fprintf(f, "<div class=\"wrap\"><table class=\"sortable lb\" id=\"board-%s\">\n<thead><tr class=\"groups\"><th colspan=\"7\"></th>", id);
    for (int g = 0; g < 4; g++)
        fprintf(f, "<th colspan=\"5\">%s semantics, %s</th>", sem_name(groups[g][0]), metrics_mode_name(groups[g][1]));
    fputs("</tr>\n<tr><th data-type=\"num\" data-key=\"rank\">Rank</th><th class=\"t\" data-key=\"method\">Method</th>"
          "<th class=\"t\">Arch</th><th class=\"t\">Training</th><th class=\"t\">Source</th><th class=\"t\">IPC</th>"
          "<th data-type=\"num\" data-key=\"clean\">Clean</th>",
          f);
    for (int g = 0; g < 4; g++) {
        const char *sn = sem_name(groups[g][0]), *mn = metrics_mode_name(groups[g][1]);
        fprintf(f, "<th data-type=\"num\" data-key=\"crei-%s-%s\">CREI</th><th data-type=\"num\" data-key=\"rrm-%s-%s\">RRM</th>"
                   "<th data-type=\"num\" data-key=\"aem-%s-%s\">AEM</th><th data-type=\"num\" data-key=\"aemp-%s-%s\" "
                   "title=\"AE from forward+backward passes per sample: machine-independent\">AEM<sub>passes</sub></th>"
                   "<th data-type=\"num\" data-key=\"creip-%s-%s\">CREI<sub>passes</sub></th>",
                sn, mn, sn, mn, sn, mn, sn, mn, sn, mn);
    }
    fputs("</tr></thead>\n<tbody>\n", f);
    for (int k = 0; k < bd->n_entries; k++) {
        const LbEntry *en = &bd->entries[k];
        fprintf(f, "<tr class=\"%s\" data-method=\"", row_class(en));
        esc(f, en->method);
        fputs("\">", f);
        if (en->rank) fprintf(f, "<td data-v=\"%d\">%d</td>", en->rank, en->rank);
        else fprintf(f, "<td data-v=\"\">%s</td>", en->published ? "pub" : "ref");
        fputs("<td class=\"t\">", f);
        esc(f, en->method);
        if (en->reference) fputs(" <small>(full-size reference)</small>", f);
        fputs("</td><td class=\"t\">", f);
        esc(f, en->arch);
        fputs("</td><td class=\"t\">", f);
        esc(f, strcmp(en->train_attack, "None") ? en->train_attack : "none");
        fputs("</td><td class=\"t\">", f);
        esc(f, en->source);
        fputs("</td><td class=\"t\">", f);
        esc(f, en->ipcs);
        fputs("</td>", f);
        td_num(f, &en->clean[LB_SEM_BEARD]);
        for (int g = 0; g < 4; g++) {
            const LbFig *fg = &en->fig[groups[g][0]][groups[g][1]];
            td_num(f, &fg->crei), td_num(f, &fg->rr), td_num(f, &fg->ae), td_num(f, &fg->ae_passes), td_num(f, &fg->crei_passes);
        }
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table></div>\n", f);
    // per attack
    if (bd->n_columns) {
        fprintf(f, "<h3>Robust accuracy per attack (%%%s)</h3>\n", unified ? ", mean over IPCs" : "");
        fprintf(f, "<div class=\"wrap\"><table class=\"sortable acc\" id=\"attacks-%s\">\n<thead><tr class=\"groups\"><th colspan=\"4\"></th>", id);
        for (int c = 0; c < bd->n_columns; c++) {
            fputs("<th colspan=\"4\">", f);
            esc(f, bd->columns[c].label);
            fputs("</th>", f);
        }
        fputs("</tr>\n<tr><th class=\"t\">Method</th><th class=\"t\">Training</th><th class=\"t\">Source</th>"
              "<th data-type=\"num\">Clean (pixel)</th>",
              f);
        for (int c = 0; c < bd->n_columns; c++)
            for (int g = 0; g < 4; g++)
                fprintf(f, "<th data-type=\"num\">%s %s</th>", sem_name(groups[g][0]), groups[g][1] == MODE_TARGETED ? "T" : "U");
        fputs("</tr></thead>\n<tbody>\n", f);
        for (int k = 0; k < bd->n_entries; k++) {
            const LbEntry *en = &bd->entries[k];
            if (en->published) continue;
            fprintf(f, "<tr class=\"%s\"><td class=\"t\">", row_class(en));
            esc(f, en->method);
            fputs("</td><td class=\"t\">", f);
            esc(f, strcmp(en->train_attack, "None") ? en->train_attack : "none");
            fputs("</td><td class=\"t\">", f);
            esc(f, en->source);
            fputs("</td>", f);
            td_num(f, &en->clean[LB_SEM_PIXEL]);
            for (int c = 0; c < bd->n_columns; c++)
                for (int g = 0; g < 4; g++) td_num(f, lb_acc(bd, en, c, groups[g][0], groups[g][1]));
            fputs("</tr>\n", f);
        }
        fputs("</tbody></table></div>\n", f);
    }
    if (unified) {
        int any = 0;
        for (int i = 0; i < n_figs; i++) {
            if (strcmp(figs[i].dataset, bd->dataset)) continue;
            if (!any) fputs("<h3>Figures</h3>\n<div class=\"figs\">\n", f);
            any = 1;
            fprintf(f, "<figure><img src=\"fig/%s.svg\" alt=\"", figs[i].name);
            esc(f, figs[i].caption);
            fputs("\"><figcaption>", f);
            esc(f, figs[i].caption);
            fputs("</figcaption></figure>\n", f);
        }
        if (any) fputs("</div>\n", f);
    }
    (void)lb;
    fputs("</section>\n", f);
}

int leaderboard_html(const Leaderboard *lb, FILE *f, const LbFigure *figs, int n_figs) {
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
               "<title>BEARD leaderboards (beard %s)</title>\n<style>%s</style></head>\n<body>\n",
            BEARD_VERSION, css);
    fprintf(f, "<header><h1>BEARD leaderboards</h1><p>The adversarial robustness of dataset distillation "
               "(BEARD, arXiv:2411.09265), measured by beard %s. Generated %s from ",
            BEARD_VERSION, lb->generated);
    esc(f, lb->store);
    fputs(".</p></header>\n<nav>", f);
    for (int b = 0; b < lb->n_boards; b++) {
        char ds[40], ip[20];
        ident(lb->boards[b].dataset, ds, sizeof(ds));
        ident(lb->boards[b].ipc, ip, sizeof(ip));
        fprintf(f, "<a href=\"#sec-%s-%s\">", ds, ip);
        esc(f, lb->boards[b].dataset);
        if (strcmp(lb->boards[b].ipc, "all")) fprintf(f, " IPC %s", lb->boards[b].ipc);
        else fputs(" unified", f);
        fputs("</a>", f);
    }
    fputs("</nav>\n<main>\n<div class=\"notes\"><p><b>Semantics.</b> <i>beard</i>: BEARD's own threat model, attacks on "
          "mean/std-normalised tensors with eps in normalised units and [0, 1] clamps in that space (its published "
          "numbers). <i>pixel</i>: the standard one, attacks on [0, 1] pixels, eps in pixel units. The same model, the "
          "same attacks, side by side.</p>\n<p><b>Metrics</b> (BEARD's toolkit): RR = 100 (1 &minus; (c &minus; mean a) / "
          "(c &minus; min a)), AE = 100 (mean t &minus; t<sub>c</sub>) / (max t &minus; t<sub>c</sub>), CREI = &alpha; RR + "
          "(1 &minus; &alpha;) AE",
          f);
    fprintf(f, ", &alpha; = %.2g (%s). The unified board pools every IPC (RRM, AEM); AEM<sub>passes</sub> uses forward+backward "
               "passes per sample instead of seconds. Brackets: bootstrap 95%% interval over test samples (%d resamples); "
               "&plusmn;: standard deviation over seeds.</p></div>\n",
            lb->opt.alpha, metrics_type_name(lb->opt.type), lb->opt.bootstrap);
    for (int b = 0; b < lb->n_boards; b++) board_html(f, lb, &lb->boards[b], figs, n_figs);
    fprintf(f, "</main>\n<script>\n%s</script>\n</body></html>\n", script);
    return ferror(f) ? -1 : 0;
}

// ----------------------------------------------------------------------------
// everything

typedef int (*Writer)(const Leaderboard *, FILE *);

static int write_via_memory(const char *path, const Leaderboard *lb, Writer w, const LbFigure *figs, int n_figs, Err *e) {
    char *mem = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&mem, &len);
    if (!f) return err_set(e, "out of memory");
    int rc = w ? w(lb, f) : leaderboard_html(lb, f, figs, n_figs);
    fclose(f);
    if (rc) rc = err_set(e, "cannot format %s", path);
    else rc = file_write_all(path, mem, len, e);
    free(mem);
    return rc;
}

int leaderboard_write(const Leaderboard *lb, const char *dir, int png, int *n_figures, Err *e) {
    if (file_mkdirs(dir, e)) return -1;
    LbFigure *figs = calloc(512, sizeof(LbFigure));
    if (!figs) return err_set(e, "out of memory");
    int nf = 0, rc = -1;
    char path[1200];
    if (leaderboard_figures(lb, dir, png, figs, 512, &nf, e)) goto done;
    snprintf(path, sizeof(path), "%s/index.html", dir);
    if (write_via_memory(path, lb, NULL, figs, nf, e)) goto done;
    snprintf(path, sizeof(path), "%s/leaderboard.md", dir);
    if (write_via_memory(path, lb, leaderboard_markdown, NULL, 0, e)) goto done;
    snprintf(path, sizeof(path), "%s/leaderboard.csv", dir);
    if (write_via_memory(path, lb, leaderboard_csv, NULL, 0, e)) goto done;
    cJSON *j = leaderboard_json(lb);
    char *txt = cJSON_Print(j);
    cJSON_Delete(j);
    snprintf(path, sizeof(path), "%s/leaderboard.json", dir);
    if (!txt || file_write_all(path, txt, strlen(txt), e)) {
        if (!txt) err_set(e, "out of memory");
        free(txt);
        goto done;
    }
    free(txt);
    *n_figures = nf;
    rc = 0;
done:
    free(figs);
    return rc;
}

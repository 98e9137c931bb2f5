/*
 * figures.c: see figures.h. One drawing routine per chart kind renders onto any cairo
 * surface; fig_bars/fig_lines run it once on an SVG surface and once more on a PNG one.
 */
#include "figures.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/file.h"

#define FIG_W 920.0
#define FIG_H 500.0

// Okabe and Ito's colour-blind-safe palette, then greys
static const double palette[][3] = {{0.000, 0.447, 0.698}, {0.902, 0.624, 0.000}, {0.000, 0.620, 0.451},
                                    {0.835, 0.369, 0.000}, {0.800, 0.475, 0.655}, {0.337, 0.706, 0.914},
                                    {0.941, 0.894, 0.259}, {0.000, 0.000, 0.000}, {0.45, 0.45, 0.45},
                                    {0.65, 0.65, 0.65}};
#define N_COLORS (int)(sizeof(palette) / sizeof(palette[0]))

static void color(cairo_t *cr, int i) {
    const double *c = palette[i % N_COLORS];
    cairo_set_source_rgb(cr, c[0], c[1], c[2]);
}

static void font(cairo_t *cr, double size, int bold) {
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double text_w(cairo_t *cr, const char *s) {
    cairo_text_extents_t ex;
    cairo_text_extents(cr, s, &ex);
    return ex.x_advance;
}

// text anchored at (x, y): ax 0 left, 0.5 centre, 1 right; baseline at y
static void text_at(cairo_t *cr, double x, double y, double ax, const char *s) {
    cairo_move_to(cr, x - ax * text_w(cr, s), y);
    cairo_show_text(cr, s);
}

static double nice_step(double range, int ticks) {
    double raw = range / ticks, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
}

typedef struct {
    double x0, y0, x1, y1; // plot area (y0 top)
    double ymin, ymax, step;
} Frame;

static double ymap(const Frame *f, double v) { return f->y1 - (v - f->ymin) / (f->ymax - f->ymin) * (f->y1 - f->y0); }

static void y_range(const FigChart *c, int bars, double *lo, double *hi, double *step_out) {
    double mn = INFINITY, mx = -INFINITY;
    for (int s = 0; s < c->n_series; s++)
        for (int i = 0; i < c->series[s].n; i++) {
            double v = c->series[s].y[i];
            if (!isfinite(v)) continue;
            mn = MIN(mn, v), mx = MAX(mx, v);
        }
    if (!isfinite(mn)) mn = 0, mx = 1;
    if (bars) mn = MIN(mn, 0), mx = MAX(mx, 0);
    if (isfinite(c->ymin)) mn = c->ymin;
    if (isfinite(c->ymax)) mx = c->ymax;
    if (mx - mn < 1e-9) mx = mn + 1;
    double step = nice_step(mx - mn, 5);
    *lo = floor(mn / step) * step;
    *hi = ceil(mx / step) * step;
    if (!isfinite(c->ymax) && *hi - mx < 0.02 * (*hi - *lo)) *hi += step; // room above the highest bar
    *step_out = step;
}

// title, y axis with grid, legend; returns the plot frame
static Frame frame_draw(cairo_t *cr, const FigChart *c, int bars, double bottom) {
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    // legend width decides the right margin
    font(cr, 12, 0);
    double lw = 0;
    for (int s = 0; s < c->n_series; s++) lw = MAX(lw, text_w(cr, c->series[s].name));
    Frame f = {.x0 = 72, .y0 = 52, .x1 = FIG_W - 36 - (c->n_series ? lw + 34 : 0), .y1 = FIG_H - bottom};
    y_range(c, bars, &f.ymin, &f.ymax, &f.step);
    font(cr, 15, 1);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text_at(cr, FIG_W / 2, 28, 0.5, c->title);
    // y grid and ticks
    font(cr, 11, 0);
    double step = f.step;
    for (double v = f.ymin; v <= f.ymax + step * 1e-6; v += step) {
        double y = ymap(&f, v);
        cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
        cairo_set_line_width(cr, 1);
        cairo_move_to(cr, f.x0, y), cairo_line_to(cr, f.x1, y);
        cairo_stroke(cr);
        char lab[32];
        snprintf(lab, sizeof(lab), "%g", fabs(v) < step * 1e-6 ? 0.0 : v);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        text_at(cr, f.x0 - 6, y + 4, 1, lab);
    }
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_set_line_width(cr, 1.2);
    cairo_move_to(cr, f.x0, f.y0), cairo_line_to(cr, f.x0, f.y1), cairo_line_to(cr, f.x1, f.y1);
    cairo_stroke(cr);
    // axis labels
    font(cr, 12, 0);
    cairo_save(cr);
    cairo_move_to(cr, 20, (f.y0 + f.y1) / 2 + text_w(cr, c->ylabel) / 2);
    cairo_rotate(cr, -M_PI / 2);
    cairo_show_text(cr, c->ylabel);
    cairo_restore(cr);
    text_at(cr, (f.x0 + f.x1) / 2, FIG_H - 12, 0.5, c->xlabel);
    // legend
    for (int s = 0; s < c->n_series; s++) {
        double y = f.y0 + 6 + 20 * s, x = f.x1 + 16;
        color(cr, s);
        if (bars) {
            cairo_rectangle(cr, x, y - 9, 12, 12);
            cairo_fill(cr);
        } else {
            cairo_set_line_width(cr, 2.2);
            if (c->series[s].dashed || c->series[s].hline) cairo_set_dash(cr, (double[]){6, 4}, 2, 0);
            cairo_move_to(cr, x - 2, y - 3), cairo_line_to(cr, x + 14, y - 3);
            cairo_stroke(cr);
            cairo_set_dash(cr, NULL, 0, 0);
        }
        cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
        text_at(cr, x + 20, y + 1, 0, c->series[s].name);
    }
    return f;
}

// category labels under the x axis, rotated when they do not fit
static void category_labels(cairo_t *cr, const Frame *f, const FigChart *c, double (*xpos)(const Frame *, int, int)) {
    font(cr, 11, 0);
    double slot = (f->x1 - f->x0) / MAX(c->n_categories, 1), widest = 0;
    for (int i = 0; i < c->n_categories; i++) widest = MAX(widest, text_w(cr, c->categories[i]));
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    for (int i = 0; i < c->n_categories; i++) {
        double x = xpos(f, i, c->n_categories);
        if (widest < slot - 4) text_at(cr, x, f->y1 + 16, 0.5, c->categories[i]);
        else {
            cairo_save(cr);
            cairo_move_to(cr, x + 4, f->y1 + 10);
            cairo_rotate(cr, -M_PI / 6);
            cairo_rel_move_to(cr, -text_w(cr, c->categories[i]), 0);
            cairo_show_text(cr, c->categories[i]);
            cairo_restore(cr);
        }
    }
}

static double cat_x(const Frame *f, int i, int n) { return f->x0 + (f->x1 - f->x0) * (i + 0.5) / MAX(n, 1); }

// room under the axis for the category labels: one line when they fit their slots, else
// enough for the rotated (30 degrees) widest one
static double label_room(cairo_t *cr, const FigChart *c) {
    if (!c->categories || !c->n_categories) return 62;
    font(cr, 12, 0);
    double lw = 0;
    for (int s = 0; s < c->n_series; s++) lw = MAX(lw, text_w(cr, c->series[s].name));
    double plot = FIG_W - 72 - 36 - (c->n_series ? lw + 34 : 0), slot = plot / c->n_categories, widest = 0;
    font(cr, 11, 0);
    for (int i = 0; i < c->n_categories; i++) widest = MAX(widest, text_w(cr, c->categories[i]));
    return widest < slot - 4 ? 62 : MIN(40 + widest * 0.5 + 14, FIG_H * 0.45);
}

static void draw_bars(cairo_t *cr, const FigChart *c) {
    Frame f = frame_draw(cr, c, 1, label_room(cr, c));
    double slot = (f.x1 - f.x0) / MAX(c->n_categories, 1), bw = slot * 0.8 / MAX(c->n_series, 1);
    for (int s = 0; s < c->n_series; s++)
        for (int i = 0; i < c->n_categories && i < c->series[s].n; i++) {
            double v = c->series[s].y[i];
            if (!isfinite(v)) continue;
            double x = f.x0 + slot * i + slot * 0.1 + bw * s, y = ymap(&f, v), y0 = ymap(&f, MAX(f.ymin, 0));
            color(cr, s);
            cairo_rectangle(cr, x, MIN(y, y0), bw * 0.92, fabs(y0 - y));
            cairo_fill(cr);
        }
    category_labels(cr, &f, c, cat_x);
}

static void draw_lines(cairo_t *cr, const FigChart *c) {
    int numeric = 0;
    double xmin = INFINITY, xmax = -INFINITY;
    for (int s = 0; s < c->n_series; s++)
        if (c->series[s].x && !c->series[s].hline) {
            numeric = 1;
            for (int i = 0; i < c->series[s].n; i++) {
                double x = c->series[s].x[i];
                if (!isfinite(x) || (c->xlog && x <= 0)) continue;
                xmin = MIN(xmin, x), xmax = MAX(xmax, x);
            }
        }
    if (!numeric) xmin = 0, xmax = MAX(c->n_categories - 1, 1);
    if (!(xmax > xmin)) xmax = xmin + 1;
    int lg = c->xlog && numeric && xmin > 0;
    Frame f = frame_draw(cr, c, 0, c->categories && !numeric ? label_room(cr, c) : 62);
    double pad = (f.x1 - f.x0) * 0.05;
    double ax0 = f.x0 + pad, ax1 = f.x1 - pad;
#define XMAP(xv) (ax0 + (lg ? (log(xv) - log(xmin)) / (log(xmax) - log(xmin)) : ((xv)-xmin) / (xmax - xmin)) * (ax1 - ax0))
    // x ticks
    font(cr, 11, 0);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    if (numeric) {
        // the data's own x values as ticks (eps values, IPCs): few and meaningful
        double seen[64];
        int ns = 0;
        for (int s = 0; s < c->n_series; s++)
            for (int i = 0; c->series[s].x && !c->series[s].hline && i < c->series[s].n; i++) {
                double x = c->series[s].x[i];
                int dup = !isfinite(x) || (lg && x <= 0);
                for (int k = 0; k < ns && !dup; k++) dup = fabs(seen[k] - x) < 1e-12;
                if (!dup && ns < 64) seen[ns++] = x;
            }
        for (int k = 0; k < ns; k++) {
            char lab[32];
            snprintf(lab, sizeof(lab), "%.4g", seen[k]);
            text_at(cr, XMAP(seen[k]), f.y1 + 16, 0.5, lab);
        }
    } else if (c->categories) {
        for (int i = 0; i < c->n_categories; i++) text_at(cr, XMAP((double)i), f.y1 + 16, 0.5, c->categories[i]);
    }
    for (int s = 0; s < c->n_series; s++) {
        const FigSeries *se = &c->series[s];
        color(cr, s);
        cairo_set_line_width(cr, 2.2);
        if (se->dashed || se->hline) cairo_set_dash(cr, (double[]){6, 4}, 2, 0);
        if (se->hline) {
            if (se->n > 0 && isfinite(se->y[0])) {
                double y = ymap(&f, se->y[0]);
                cairo_move_to(cr, f.x0, y), cairo_line_to(cr, f.x1, y);
                cairo_stroke(cr);
            }
            cairo_set_dash(cr, NULL, 0, 0);
            continue;
        }
        int pen = 0;
        for (int i = 0; i < se->n; i++) {
            double xv = se->x ? se->x[i] : i, yv = se->y[i];
            if (!isfinite(yv) || !isfinite(xv) || (lg && xv <= 0)) {
                pen = 0;
                continue;
            }
            if (pen) cairo_line_to(cr, XMAP(xv), ymap(&f, yv));
            else cairo_move_to(cr, XMAP(xv), ymap(&f, yv));
            pen = 1;
        }
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        for (int i = 0; i < se->n; i++) {
            double xv = se->x ? se->x[i] : i, yv = se->y[i];
            if (!isfinite(yv) || !isfinite(xv) || (lg && xv <= 0)) continue;
            cairo_arc(cr, XMAP(xv), ymap(&f, yv), 3.5, 0, 2 * M_PI);
            cairo_fill(cr);
        }
    }
#undef XMAP
}

typedef struct {
    unsigned char *b;
    size_t n, cap;
    int bad;
} Mem;

static cairo_status_t mem_write(void *closure, const unsigned char *data, unsigned int len) {
    Mem *m = closure;
    if (m->n + len > m->cap) {
        size_t cap = (m->n + len) * 2 + 4096;
        unsigned char *nb = realloc(m->b, cap);
        if (!nb) {
            m->bad = 1;
            return CAIRO_STATUS_WRITE_ERROR;
        }
        m->b = nb, m->cap = cap;
    }
    memcpy(m->b + m->n, data, len);
    m->n += len;
    return CAIRO_STATUS_SUCCESS;
}

// drawn into memory, then written as every beard file is (temporary name, rename)
static int render(const FigChart *c, const char *path, int png, void (*draw)(cairo_t *, const FigChart *), Err *e) {
    char p[1200];
    Mem m = {0};
    snprintf(p, sizeof(p), "%s.svg", path);
    cairo_surface_t *s = cairo_svg_surface_create_for_stream(mem_write, &m, FIG_W, FIG_H);
    cairo_t *cr = cairo_create(s);
    draw(cr, c);
    cairo_destroy(cr);
    cairo_surface_finish(s);
    cairo_status_t st = cairo_surface_status(s);
    cairo_surface_destroy(s);
    int rc = 0;
    if (st != CAIRO_STATUS_SUCCESS || m.bad) rc = err_set(e, "cannot draw %s: %s", p, cairo_status_to_string(st));
    else rc = file_write_all(p, m.b, m.n, e);
    free(m.b);
    if (rc || !png) return rc;
    memset(&m, 0, sizeof(m));
    snprintf(p, sizeof(p), "%s.png", path);
    s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)(2 * FIG_W), (int)(2 * FIG_H));
    cr = cairo_create(s);
    cairo_scale(cr, 2, 2);
    draw(cr, c);
    cairo_destroy(cr);
    st = cairo_surface_write_to_png_stream(s, mem_write, &m);
    cairo_surface_destroy(s);
    if (st != CAIRO_STATUS_SUCCESS || m.bad) rc = err_set(e, "cannot draw %s: %s", p, cairo_status_to_string(st));
    else rc = file_write_all(p, m.b, m.n, e);
    free(m.b);
    return rc;
}

int fig_bars(const FigChart *c, const char *path, int png, Err *e) { return render(c, path, png, draw_bars, e); }
int fig_lines(const FigChart *c, const char *path, int png, Err *e) { return render(c, path, png, draw_lines, e); }

void fig_shutdown(void) {
    cairo_debug_reset_static_data();
    FcFini();
}

/*
 * figures.h: the leaderboard's charts, drawn with cairo (Debian's libcairo2): grouped bar
 * charts and line charts, each written as SVG (cairo's SVG surface) and, on request, PNG
 * (its image surface) from the same drawing code.
 *
 * Why cairo and not PLplot or hand-written SVG: cairo is the well-kept 2-D library under
 * GTK and Firefox's history, renders text with fontconfig/FreeType (so labels are real
 * glyphs, embedded as paths: the SVG looks the same on a machine without the font), and
 * gives SVG and PNG from one set of calls. PLplot would bring global plotting state,
 * loadable output drivers (its SVG and cairo drivers are plug-ins) and a charting model
 * in which grouped bars with legends still have to be laid out by hand; the layout code
 * here (axes, ticks, legend) is that part, and cairo does the drawing.
 */
#ifndef BEARD_FIGURES_H
#define BEARD_FIGURES_H

#include "../core/common.h"

#define FIG_MAX_SERIES 16

typedef struct {
    char name[80];
    const double *y;  // (n): NAN for a missing value (no bar, a gap in a line)
    const double *x;  // line charts: (n) x values, NULL for 0, 1, 2, ...
    int n;
    int dashed;       // line charts: a dashed line
    int hline;        // line charts: a horizontal reference line at y[0] across the plot
} FigSeries;

typedef struct {
    char title[160];
    char xlabel[96], ylabel[96];
    const char *const *categories; // bar charts: the groups; line charts: tick labels at x = 0, 1, ... (or NULL)
    int n_categories;
    FigSeries series[FIG_MAX_SERIES];
    int n_series;
    double ymin, ymax; // NAN: from the data (bars start at 0)
    int xlog;          // line charts with numeric x: log axis
} FigChart;

// path without extension: writes path.svg, and path.png when png
int fig_bars(const FigChart *c, const char *path, int png, Err *e);
int fig_lines(const FigChart *c, const char *path, int png, Err *e);
// releases cairo's and fontconfig's caches (call once, when no figure is being drawn): what
// they keep for the process's lifetime would otherwise read as leaks under LeakSanitizer
void fig_shutdown(void);

#endif

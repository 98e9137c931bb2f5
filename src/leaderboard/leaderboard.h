/*
 * leaderboard.h: BEARD's leaderboards (arXiv:2411.09265; beard-leaderboard.github.io)
 * from the results store: per dataset the unified board (all IPCs together: RRM, AEM,
 * CREI as BEARD's toolkit combines them) and one board per IPC, every method (and its
 * adversarially trained variants) a row, ranked by CREI.
 *
 * What BEARD's boards show: rank by CREI, CREI, RRM, AEM, untargeted attacks, BEARD's
 * (normalised-space) threat model. What these show besides: targeted and untargeted,
 * beard and pixel semantics side by side; clean accuracy; robust accuracy per attack;
 * bootstrap 95% intervals (one seed; metrics.c resamples the test samples) or +- the
 * standard deviation over seeds (np.std, as BEARD's "+-"); AE from passes per sample
 * (machine-independent) next to the time-based AE; the full-size model (trained on the
 * whole real training set, method "Full" or a src_dataset training cell) as the
 * reference row; rows from BEARD's own logs ("BEARD log") and the published figures
 * ("published: <source>") as labelled reference rows, never ranked with measurements.
 *
 * Outputs (leaderboard_write): DIR/index.html, a static site that works offline from the
 * file system (no CDN; sortable, filterable tables; figures as SVG files in DIR/fig), and
 * DIR/leaderboard.md, .csv, .json; PNG figures too on request.
 */
#ifndef BEARD_LEADERBOARD_H
#define BEARD_LEADERBOARD_H

#include "../metrics/metrics.h"
#include "../store/store.h"

enum { LB_SEM_BEARD = 0, LB_SEM_PIXEL = 1 };

typedef struct {
    double v;      // the value (the mean over seeds); NAN when undefined
    double sd;     // std over seeds (NAN with one seed)
    double lo, hi; // bootstrap 95% interval (NAN without per-sample data, or with seeds)
} LbNum;

typedef struct {
    int ok;
    LbNum crei, rr, ae, ae_passes, crei_passes;
    int n_attacks;
    char note[256];
} LbFig;

typedef struct {
    char label[64];     // the attack's label in the grid ("PGD[eps=0.0156863]", "Deepfool")
    char attack_name[32];
    double eps;         // NAN when unknown
} LbColumn;

typedef struct {
    char method[64], arch[32], train_attack[48];
    char source[80];    // "beard", "BEARD log", "published: beard-leaderboard-2024"
    int reference;      // the full-size model
    int published;      // a published row (only fig[beard][untargeted] is set)
    int n_seeds;
    char ipcs[64];      // the IPCs the row pools ("1, 10, 50")
    LbFig fig[2][2];    // [semantics][mode]
    LbNum clean[2];     // [semantics]
    LbNum *acc;         // [column][semantics][mode]: n_columns * 4
    int rank;           // 1-based; 0 for reference and published rows
} LbEntry;

typedef struct {
    char dataset[32];
    char ipc[16];       // "all": the unified board
    int n_test;         // test images behind the measured rows (0 when none)
    int n_entries;
    LbEntry *entries;   // ranked first, then reference rows
    int n_columns;
    LbColumn *columns;
} LbBoard;

typedef struct {
    int n_boards;
    LbBoard *boards;
    MetricsOptions opt;
    char store[1024];
    char generated[32];
} Leaderboard;

// Builds the boards from the newest row per key (store_load_latest) and the published
// rows.
int leaderboard_build(Leaderboard *lb, const StoreRow *rows, int n_rows, const PublishedRow *pub, int n_pub,
                      const MetricsOptions *opt, Err *e);
void leaderboard_free(Leaderboard *lb);
// the entry's per-attack accuracy
const LbNum *lb_acc(const LbBoard *b, const LbEntry *en, int col, int sem, int mode);

// everything into dir (created): index.html, fig/*.svg (and .png with png), leaderboard.md,
// leaderboard.csv, leaderboard.json; *n_figures figures
int leaderboard_write(const Leaderboard *lb, const char *dir, int png, int *n_figures, Err *e);
// the parts
int leaderboard_markdown(const Leaderboard *lb, FILE *f);
int leaderboard_csv(const Leaderboard *lb, FILE *f);
cJSON *leaderboard_json(const Leaderboard *lb);
typedef struct {
    char name[128];     // file name without extension, under fig/
    char dataset[32];
    char caption[256];
} LbFigure;

// the figures of every dataset into dir/fig (SVG, and PNG with png): Figure 4 (RRM, AEM,
// CREI per method), Figure 5 (CREI against IPC, the full-size model dashed), Figure 6
// (CREI with and without adversarial training), robust accuracy against eps; up to max
// described in figs
int leaderboard_figures(const Leaderboard *lb, const char *dir, int png, LbFigure *figs, int max, int *n, Err *e);
// the site, given the figures written
int leaderboard_html(const Leaderboard *lb, FILE *f, const LbFigure *figs, int n_figs);

#endif

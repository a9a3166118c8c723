/* The files of `neuromask eval`: results.csv (one row per image and
 * method), curves.csv (each row's deletion and insertion curves), summary.md
 * (markdown tables, one row per method: means, paired differences to the
 * reference method, wins) and index.html (the same tables, the mean curves
 * as inline SVG, a colour legend and the maps side by side, sortable by any
 * metric; no external assets). Each is written to a temporary name and
 * renamed into place. Everything in them comes from an nm_eval_report, which
 * holds only what results.csv, curves.csv and the run's options say, so the
 * files can be rebuilt from those. */
#ifndef NM_EVAL_REPORT_H
#define NM_EVAL_REPORT_H

#include <stdio.h>

#include "eval/protocols.h"
#include "neuromask.h"

typedef struct nm_eval_row {
    int image;              /* index into nm_eval_report.images */
    int method;             /* index into nm_eval_report.methods */
    int target;             /* explained class */
    float prob;             /* the target's softmax probability on the image */
    double deletion[NM_PROTOCOL_COUNT];     /* deletion AUC per protocol (nm_protocol); NaN when not measured */
    double insertion[NM_PROTOCOL_COUNT];    /* insertion AUC per protocol; NaN when not measured */
    double road_morf, road_lerf;            /* ROAD: mean target probability over the fractions; NaN: not measured */
    double road_morf_top1, road_lerf_top1;  /* ROAD: share of the fractions where the target stays top-1 */
    int kept;               /* mask methods: top-1 of image * mask is the target (1/0); else -1 */
    double kept_prob;       /* mask methods: the target's probability on image * mask over prob; else NaN */
    double mask_area;       /* mask methods: fraction of the mask > 0.5; else mean of the map scaled to [0,1] */
    double roughness;       /* nm_map_roughness of the map */
    double spearman;        /* map on the trained vs the randomised model; NaN when not measured */
    double stability;       /* map of the image vs of the image plus tiny noise; NaN when not measured */
    double seconds;         /* the explanation alone */
    const char *overlay;    /* overlay PNG, relative to the output folder; NULL when none */
    /* per protocol, nm_eval_report.steps + 1 probabilities; NULL when not known */
    const float *deletion_curve[NM_PROTOCOL_COUNT], *insertion_curve[NM_PROTOCOL_COUNT];
} nm_eval_row;

typedef struct nm_eval_image {
    const char *path;       /* as given */
    const char *picture;    /* the image as the model sees it, PNG relative to the output folder */
    int label;              /* -1: unknown */
    int pred;               /* top-1 class */
} nm_eval_image;

/* Grid pointing game (eval --grid-pointing), per method: sums over the
 * composites' tiles (grid_pointing.csv has the tiles). */
typedef struct nm_eval_grid_stats {
    int tiles, hits, n_positive;
    double top_share, positive_share;   /* sums; positive_share over n_positive tiles */
} nm_eval_grid_stats;

typedef struct nm_eval_report {
    const char *model;
    int steps;              /* deletion / insertion steps */
    const char *deletion_fill;  /* the rise protocol's: "black" or "mean" */
    unsigned protocols;         /* the deletion / insertion protocols measured (bit nm_protocol) */
    int road;                   /* the ROAD columns were measured */
    int grid_composites;        /* grid pointing game: composites played (0: not played) */
    const nm_eval_grid_stats *grid; /* ... per method */
    int sanity;             /* the spearman column was measured */
    int stability;          /* the stability column was measured */
    int has_labels;
    int n_methods;
    const char *const *methods;     /* names; methods[0] is the reference of the paired differences */
    int n_images;
    const nm_eval_image *images;
    int n_rows;
    const nm_eval_row *rows;
    const char *const *class_names; /* NULL or n_classes names */
    int n_classes;
} nm_eval_report;

/* The first line of results.csv (without its newline); eval --resume reads
 * files that start with it. Per protocol P (nm_protocol order): deletion_P,
 * insertion_P and ins_del_P = insertion_P - deletion_P, empty when not
 * measured. ROAD: road_morf, road_lerf (mean probability of the target over
 * the fractions), road_lerf_morf (their difference as written), and the
 * top-1 shares. */
#define NM_EVAL_CSV_HEADER                                                                        \
    "image,method,target_class,label,correct,prob,"                                                \
    "deletion_rise,insertion_rise,ins_del_rise,deletion_black,insertion_black,ins_del_black,"     \
    "deletion_blur,insertion_blur,ins_del_blur,deletion_grey,insertion_grey,ins_del_grey,"        \
    "deletion_mean,insertion_mean,ins_del_mean,"                                                  \
    "road_morf,road_lerf,road_lerf_morf,road_morf_top1,road_lerf_top1,"                          \
    "kept,kept_prob,mask_area,roughness,spearman_random,stability,seconds"

/* Rounds the row's numbers to what results.csv holds, so that the reports of
 * a run and of its rows read back (eval --resume, merge) agree to the digit. */
void nm_eval_row_round(nm_eval_row *w);
/* One CSV field, quoted (RFC 4180) when it holds a comma, quote or newline. */
void nm_eval_csv_field(FILE *f, const char *s);
/* The same for n points of a curve (as curves.csv holds them). */
void nm_eval_curve_round(float *v, int n);
/* The first line of curves.csv; each further line is "image,method,CURVE,p0,...,pN" with CURVE
 * "deletion" or "insertion" for the rise protocol, "deletion_P" or "insertion_P" for protocol P. */
#define NM_EVAL_CURVES_HEADER "image,method,curve,p..."
/* CURVE of curves.csv for a half (0 deletion, 1 insertion) of protocol p, into buf. */
void nm_eval_curve_name(int insertion, int protocol, char *buf, size_t cap);

nm_status nm_eval_write_csv(const nm_eval_report *r, const char *path, nm_error *err);
/* The curves of the rows that have them. */
nm_status nm_eval_write_curves(const nm_eval_report *r, const char *path, nm_error *err);
nm_status nm_eval_write_summary(const nm_eval_report *r, const char *path, nm_error *err);
nm_status nm_eval_write_html(const nm_eval_report *r, const char *path, nm_error *err);

#endif

/* workbench/tabular.h - real tabular datasets for in-context classification: a folder of CSV
 * files, read, checked, standardized and split the way the paper's OpenML experiment does.
 *
 * Part of the looped-tf workbench (the demo's side of the tree, README "Layout"): include it
 * after looped_tf.h in the one file that defines LOOPED_TF_IMPLEMENTATION (demo.c, test.c); it
 * uses the header's private helpers (ltf__fail, LTF_MALLOC/LTF_FREE) and its rng. MIT licence,
 * as the header.
 *
 * The format (reference/export_tabular.py writes it): one dataset per FILE.csv; an optional
 * header line (a line with any cell that is not a number); then one row per line, every cell a
 * finite number, the last cell the class label, an integer; every row as many cells as the
 * first. Comma-separated, "\n" or "\r\n" line ends. The paper's protocol splits its work:
 * categorical columns and rows with missing values are dropped by the exporter (so an empty,
 * "NaN" or non-numeric cell here is an error, not silently a dropped row), and this loader
 *   - maps the labels' distinct values, sorted, to classes 0..K-1 (2 <= K <= LTF_TAB_MAX_CLASSES);
 *   - standardizes every feature with the mean and standard deviation over all rows (a constant
 *     feature becomes 0), as the paper's code does before it splits;
 *   - shuffles the rows with the seed and keeps the first 95% (at least 1 row less than all) for
 *     training, the rest for testing (the paper: 5% test, a fixed seed).
 * Every error names the file, the line (1-based) and what is wrong, in one line.
 */
#ifndef LTF_WORKBENCH_TABULAR_H
#define LTF_WORKBENCH_TABULAR_H

#define LTF_TAB_MAX_CLASSES 16
#define LTF_TAB_MAX_LINE (1 << 20)      /* bytes in one line, "\n" included */
#define LTF_TAB_MAX_ROWS 10000000
#define LTF_TAB_MAX_SETS 1024

typedef struct {
    char name[128];        /* the file's name without ".csv"                                 */
    int rows, features;    /* rows kept; features per row (columns but the label)            */
    int n_train;           /* rows 0..n_train-1 train, n_train..rows-1 test (after the shuffle) */
    int classes;           /* K                                                               */
    float *x;              /* [rows, features], standardized (mean 0, sd 1 over all rows)   */
    int *y;                /* [rows], classes 0..K-1                                          */
    double label_of[LTF_TAB_MAX_CLASSES];   /* class k is the label value label_of[k]         */
} ltf_tab_set;

typedef struct {
    ltf_tab_set *sets;     /* [n_sets], sorted by name                                        */
    int n_sets;
} ltf_tabular;

/* One file: 0, or -1 with "FILE:LINE: problem" in err. min_train: the fewest training rows
 * allowed (a prompt of n points needs n). */
int ltf_tab_load_file(const char *path, uint64_t seed, int min_train, ltf_tab_set *out, char err[LTF_ERR_LEN]);
/* Every *.csv of a folder (none: an error), each as ltf_tab_load_file. */
int ltf_tab_load_dir(const char *dir, uint64_t seed, int min_train, ltf_tabular *out, char err[LTF_ERR_LEN]);
void ltf_tab_set_free(ltf_tab_set *s);
void ltf_tab_free(ltf_tabular *t);
/* B prompts of n points for in-context classification (docs/MATH.md §13): each prompt from one
 * of the n_use sets use[] (drawn uniformly), its n rows drawn without replacement from that
 * set's training rows (test = 0) or test rows (test = 1); the features zero-padded in front to
 * d (the paper's get_batch pads so), ys the class indices. xs [B, n, d], ys [B, n]. 0, or -1
 * and err naming the set when it has fewer than n such rows or more than d features. */
int ltf_tab_sample(const ltf_tabular *t, const int *use, int n_use, int test, ltf_rng *rng, int B, int n, int d,
                   float *xs, float *ys, char err[LTF_ERR_LEN]);

/* ---- implementation ---- */

#include <dirent.h>

/* Reads one line into buf (cap bytes); 1 a line, 0 end of file, -1 a line too long, -2 a NUL byte. */
static int ltf__tab_line(FILE *f, char *buf, size_t cap, size_t *len) {
    size_t n = 0;
    int c;
    while ((c = getc(f)) != EOF) {
        if (c == 0) return -2;
        if (n + 1 >= cap) return -1;
        buf[n++] = (char)c;
        if (c == '\n') break;
    }
    buf[n] = 0;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = 0;
    *len = n;
    return n > 0 || c != EOF ? 1 : 0;
}

/* Splits line at commas into cells (pointers into line); returns the count, at most cap. */
static int ltf__tab_cells(char *line, char **cells, int cap) {
    int n = 0;
    for (char *p = line; n < cap; ) {
        cells[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma) break;
        *comma = 0;
        p = comma + 1;
    }
    return n;
}

/* A cell as a finite number: 0 and *v, or -1. Spaces around it are allowed. */
static int ltf__tab_number(const char *s, double *v) {
    while (*s == ' ' || *s == '\t') s++;
    if (!*s) return -1;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    if (end == s) return -1;
    while (*end == ' ' || *end == '\t') end++;
    if (*end || !isfinite(*v) || errno == ERANGE) return -1;
    return 0;
}

static int ltf__tab_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void ltf_tab_set_free(ltf_tab_set *s) {
    if (!s) return;
    LTF_FREE(s->x);
    LTF_FREE(s->y);
    memset(s, 0, sizeof *s);
}

/* The rows of an open CSV file: vals [rows, cols] (malloc'd, the caller frees it). 0, or -1. */
static int ltf__tab_read(FILE *f, const char *path, double **vals_out, int *rows_out, int *cols_out, char err[LTF_ERR_LEN]) {
    char *line = (char *)LTF_MALLOC(LTF_TAB_MAX_LINE);
    char **cells = (char **)LTF_MALLOC(sizeof(char *) * (LTF_MAX_DIMS + 2));
    double *vals = NULL, *row = (double *)LTF_MALLOC(sizeof(double) * (LTF_MAX_DIMS + 2));
    size_t cap_vals = 0, len = 0;
    int cols = 0, rows = 0, lineno = 0, rc = 0, got = 0;
    if (!line || !cells || !row) rc = ltf__fail(err, "%s: out of memory", path);
    while (rc == 0 && (got = ltf__tab_line(f, line, LTF_TAB_MAX_LINE, &len)) != 0) {
        lineno++;
        if (got == -1) { rc = ltf__fail(err, "%s:%d: line longer than %d bytes", path, lineno, LTF_TAB_MAX_LINE - 1); break; }
        if (got == -2) { rc = ltf__fail(err, "%s:%d: a NUL byte: not a text CSV file", path, lineno); break; }
        if (len == 0) { rc = ltf__fail(err, "%s:%d: an empty line", path, lineno); break; }
        int n = ltf__tab_cells(line, cells, LTF_MAX_DIMS + 2), bad = -1;
        if (n > LTF_MAX_DIMS + 1) {
            rc = ltf__fail(err, "%s:%d: more than %d columns (at most %d features, then the label)", path, lineno,
                           LTF_MAX_DIMS + 1, LTF_MAX_DIMS);
            break;
        }
        for (int i = 0; i < n && bad < 0; i++) if (ltf__tab_number(cells[i], &row[i]) != 0) bad = i;
        if (n < 2) { rc = ltf__fail(err, "%s:%d: 1 column: need at least one feature, then the label", path, lineno); break; }
        if (lineno == 1 && bad >= 0) { cols = n; continue; }   /* the header */
        if (cols == 0) cols = n;
        if (n != cols) { rc = ltf__fail(err, "%s:%d: %d cells, the first line has %d", path, lineno, n, cols); break; }
        if (bad >= 0) {
            rc = ltf__fail(err, "%s:%d: cell %d '%.40s' is not a finite number (the exporter drops categorical columns and "
                                "rows with missing values)", path, lineno, bad + 1, cells[bad]);
            break;
        }
        if (row[cols - 1] != floor(row[cols - 1])) {
            rc = ltf__fail(err, "%s:%d: label '%.40s' is not an integer class", path, lineno, cells[cols - 1]);
            break;
        }
        if (rows >= LTF_TAB_MAX_ROWS) { rc = ltf__fail(err, "%s:%d: more than %d rows", path, lineno, LTF_TAB_MAX_ROWS); break; }
        if ((size_t)(rows + 1) * cols > cap_vals) {
            size_t want = cap_vals ? 2 * cap_vals : (size_t)1024 * cols;
            double *grown = (double *)realloc(vals, want * sizeof(double));
            if (!grown) { rc = ltf__fail(err, "%s:%d: out of memory", path, lineno); break; }
            vals = grown; cap_vals = want;
        }
        memcpy(vals + (size_t)rows * cols, row, sizeof(double) * cols);
        rows++;
    }
    if (rc == 0 && ferror(f)) rc = ltf__fail(err, "%s: read error", path);
    if (rc == 0 && rows == 0) rc = ltf__fail(err, "%s:%d: no data rows", path, lineno);
    LTF_FREE(line); LTF_FREE(cells); LTF_FREE(row);
    if (rc != 0) { free(vals); vals = NULL; }
    *vals_out = vals; *rows_out = rows; *cols_out = cols;
    return rc;
}

/* Classes from the label column (the last of cols): the sorted distinct values. */
static int ltf__tab_classes(const double *vals, int rows, int cols, const char *path, ltf_tab_set *out, char err[LTF_ERR_LEN]) {
    double *lab = (double *)LTF_MALLOC(sizeof(double) * rows);
    if (!lab) return ltf__fail(err, "%s: out of memory", path);
    for (int r = 0; r < rows; r++) lab[r] = vals[(size_t)r * cols + cols - 1];
    qsort(lab, (size_t)rows, sizeof(double), ltf__tab_cmp);
    int K = 0;
    for (int r = 0; r < rows && K <= LTF_TAB_MAX_CLASSES; r++)
        if (r == 0 || lab[r] != lab[r - 1]) { if (K < LTF_TAB_MAX_CLASSES) out->label_of[K] = lab[r]; K++; }
    LTF_FREE(lab);
    if (K < 2) return ltf__fail(err, "%s: one class (label %g) in all %d rows: need at least 2", path, out->label_of[0], rows);
    if (K > LTF_TAB_MAX_CLASSES) return ltf__fail(err, "%s: more than %d classes in the label column", path, LTF_TAB_MAX_CLASSES);
    out->classes = K;
    return 0;
}

/* The standardization over all rows, the seeded shuffle and the 95/5 split. */
static int ltf__tab_split(const double *vals, int rows, int cols, uint64_t seed, const char *path, ltf_tab_set *out,
                          char err[LTF_ERR_LEN]) {
    int F = cols - 1;
    out->x = (float *)LTF_MALLOC(sizeof(float) * (size_t)rows * F);
    out->y = (int *)LTF_MALLOC(sizeof(int) * (size_t)rows);
    int *perm = (int *)LTF_MALLOC(sizeof(int) * (size_t)rows);
    double *mean = (double *)LTF_MALLOC(sizeof(double) * F), *sd = (double *)LTF_MALLOC(sizeof(double) * F);
    int rc = !out->x || !out->y || !perm || !mean || !sd ? ltf__fail(err, "%s: out of memory", path) : 0;
    if (rc == 0) {
        ltf_rng g;
        ltf_rng_seed(&g, seed);
        for (int r = 0; r < rows; r++) perm[r] = r;
        for (int r = rows - 1; r > 0; r--) {                  /* Fisher-Yates */
            int j = (int)(ltf_rng_uniform(&g) * (r + 1)), t = perm[r];
            perm[r] = perm[j]; perm[j] = t;
        }
        for (int j = 0; j < F; j++) {
            double s = 0, ss = 0;
            for (int r = 0; r < rows; r++) s += vals[(size_t)r * cols + j];
            mean[j] = s / rows;
            for (int r = 0; r < rows; r++) { double dv = vals[(size_t)r * cols + j] - mean[j]; ss += dv * dv; }
            sd[j] = sqrt(ss / rows);
        }
        for (int r = 0; r < rows; r++) {
            const double *v = vals + (size_t)perm[r] * cols;
            for (int j = 0; j < F; j++) out->x[(size_t)r * F + j] = sd[j] > 0 ? (float)((v[j] - mean[j]) / sd[j]) : 0.0f;
            int k = 0;
            while (k + 1 < out->classes && out->label_of[k] != v[cols - 1]) k++;
            out->y[r] = k;
        }
    }
    LTF_FREE(perm); LTF_FREE(mean); LTF_FREE(sd);
    return rc;
}

int ltf_tab_load_file(const char *path, uint64_t seed, int min_train, ltf_tab_set *out, char err[LTF_ERR_LEN]) {
    memset(out, 0, sizeof *out);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t blen = strlen(base);
    if (blen > 4 && strcmp(base + blen - 4, ".csv") == 0) blen -= 4;
    snprintf(out->name, sizeof out->name, "%.*s", (int)(blen < sizeof out->name ? blen : sizeof out->name - 1), base);
    FILE *f = fopen(path, "rb");
    if (!f) return ltf__fail(err, "%s: cannot open: %s", path, strerror(errno));
    double *vals = NULL;
    int rows = 0, cols = 0;
    int rc = ltf__tab_read(f, path, &vals, &rows, &cols, err);
    fclose(f);
    if (rc == 0) rc = ltf__tab_classes(vals, rows, cols, path, out, err);
    if (rc == 0) {
        out->rows = rows; out->features = cols - 1;
        out->n_train = rows - rows / 20;                      /* 95% */
        if (out->n_train == rows) out->n_train = rows - 1;    /* at least one test row */
        if (out->n_train < min_train || out->n_train < 1)
            rc = ltf__fail(err, "%s: %d rows give %d training rows; a prompt of n points needs at least %d", path, rows,
                           out->n_train, min_train > 1 ? min_train : 1);
    }
    if (rc == 0) rc = ltf__tab_split(vals, rows, cols, seed, path, out, err);
    free(vals);
    if (rc != 0) ltf_tab_set_free(out);
    return rc;
}

void ltf_tab_free(ltf_tabular *t) {
    if (!t) return;
    for (int i = 0; i < t->n_sets; i++) ltf_tab_set_free(&t->sets[i]);
    free(t->sets);
    memset(t, 0, sizeof *t);
}

static int ltf__tab_name_cmp(const void *a, const void *b) {
    return strcmp(((const ltf_tab_set *)a)->name, ((const ltf_tab_set *)b)->name);
}

int ltf_tab_load_dir(const char *dir, uint64_t seed, int min_train, ltf_tabular *out, char err[LTF_ERR_LEN]) {
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d) return ltf__fail(err, "%s: cannot open the folder: %s", dir, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".csv") != 0) continue;
        if (out->n_sets == LTF_TAB_MAX_SETS) { rc = ltf__fail(err, "%s: more than %d CSV files", dir, LTF_TAB_MAX_SETS); break; }
        ltf_tab_set *grown = (ltf_tab_set *)realloc(out->sets, sizeof *grown * (size_t)(out->n_sets + 1));
        if (!grown) { rc = ltf__fail(err, "%s: out of memory", dir); break; }
        out->sets = grown;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        rc = ltf_tab_load_file(path, seed, min_train, &out->sets[out->n_sets], err);
        if (rc == 0) out->n_sets++;
    }
    closedir(d);
    if (rc == 0 && out->n_sets == 0) rc = ltf__fail(err, "%s: no .csv files (one dataset per FILE.csv)", dir);
    if (rc != 0) { ltf_tab_free(out); return -1; }
    qsort(out->sets, (size_t)out->n_sets, sizeof *out->sets, ltf__tab_name_cmp);
    return 0;
}

int ltf_tab_sample(const ltf_tabular *t, const int *use, int n_use, int test, ltf_rng *rng, int B, int n, int d,
                   float *xs, float *ys, char err[LTF_ERR_LEN]) {
    if (n_use < 1 || n < 1) return ltf__fail(err, "sampling %d points from %d datasets: need at least 1 of each", n, n_use);
    int most = 0;
    for (int u = 0; u < n_use; u++) {
        const ltf_tab_set *s = &t->sets[use[u]];
        int avail = test ? s->rows - s->n_train : s->n_train;
        if (avail < n)
            return ltf__fail(err, "%s has %d %s rows: a prompt of n = %d points needs %d", s->name, avail,
                             test ? "test" : "training", n, n);
        if (s->features > d)
            return ltf__fail(err, "%s has %d features: more than d = %d", s->name, s->features, d);
        most = avail > most ? avail : most;
    }
    int *pick = (int *)LTF_MALLOC(sizeof(int) * (size_t)most);
    if (!pick) return ltf__fail(err, "out of memory for %d row indices", most);
    for (int p = 0; p < B; p++) {
        const ltf_tab_set *s = &t->sets[use[(int)(ltf_rng_uniform(rng) * n_use)]];
        int first = test ? s->n_train : 0, avail = test ? s->rows - s->n_train : s->n_train, pad = d - s->features;
        for (int i = 0; i < avail; i++) pick[i] = first + i;
        for (int i = 0; i < n; i++) {   /* the first n of a Fisher-Yates shuffle */
            int j = i + (int)(ltf_rng_uniform(rng) * (avail - i)), row = pick[j];
            pick[j] = pick[i]; pick[i] = row;
            float *x = xs + ((size_t)p * n + i) * d;
            for (int c = 0; c < pad; c++) x[c] = 0.0f;
            memcpy(x + pad, s->x + (size_t)row * s->features, sizeof(float) * (size_t)s->features);
            ys[(size_t)p * n + i] = (float)s->y[row];
        }
    }
    LTF_FREE(pick);
    return 0;
}

#endif /* LTF_WORKBENCH_TABULAR_H */

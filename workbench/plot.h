/* workbench/plot.h - dependency-free SVG line plots for the figures: error by k with bands,
 * error by loop iteration, loss by step, mask sweeps.
 *
 * Part of the looped-tf workbench (the demo's side of the tree, README "Layout"): include it
 * after looped_tf.h in the one file that defines LOOPED_TF_IMPLEMENTATION (demo.c, test.c); it
 * uses the header's private helpers (ltf__fail, LTF_MALLOC/LTF_FREE, the growing text buffer ltf__buf, ltf_write_atomic). MIT licence, as the header.
 */
#ifndef LTF_WORKBENCH_PLOT_H
#define LTF_WORKBENCH_PLOT_H

/* A dependency-free SVG line plot (800 x 500, sans-serif), for the figures of the paper:
 * error vs k with 90% bands, error vs loop iteration, loss vs step, mask sweeps.
 *   ltf_series s[2] = {{"looped", k, err, 41, lo, hi, 0}, {"least squares", k, ls, 41, NULL, NULL, 1}};
 *   ltf_plot p;
 *   memset(&p, 0, sizeof p);
 *   p.title = "..."; p.xlabel = "in-context examples k"; p.ylabel = "normalized error";
 *   p.log_y = 1; p.series = s; p.n_series = 2; p.hline = 1.0; p.hline_label = "zero estimator";
 *   if (ltf_plot_svg(&p, "fig.svg", err) != 0) puts(err);
 * A zero-initialised ltf_plot is a valid empty plot. Each series gets its own colour (Okabe-Ito,
 * colour-blind safe; series 9-16 repeat the colours with the dash flipped). Points with a
 * non-finite x or y, or a value <= 0 on a log axis, are skipped and break the line there. A
 * series of more than 2000 points is drawn (1 px wide) from the min and max y of each of 1000
 * buckets of consecutive points: a 500k-step loss curve keeps its spikes in a ~30 KB file. */
typedef struct {
    const char *label;          /* legend text (XML-escaped); NULL = not in the legend      */
    const double *x, *y;        /* n points, in the order the line visits them              */
    int n;
    const double *lo, *hi;      /* optional shaded band lo[i]..hi[i] at x[i]; both or NULL;
                                   a lo <= 0 on a log axis reaches down to the bottom edge  */
    int dashed;                 /* 1 = dashed line (baselines, say)                         */
} ltf_series;

typedef struct {
    const char *title, *xlabel, *ylabel;  /* NULL = none                                    */
    int log_x, log_y;           /* 1 = log10 axis with ticks at the decades                 */
    const ltf_series *series;
    int n_series;
    double y_min, y_max;        /* y range; both 0 = fit the data (and the reference line)   */
    double hline;               /* y of a dashed grey reference line, drawn only when ...    */
    const char *hline_label;    /* ... this is not NULL ("" = the line without legend entry) */
    const char *subtitle;       /* a grey line under the title (the run's settings); NULL = none */
    const int *colour;          /* [n_series] palette index of each series (the same model, the
                                   same colour in every figure); NULL = series k gets colour k */
    const double *vline;        /* [n_vline] x of dotted vertical marks (k = d, the trained b)  */
    const char *const *vline_label;   /* [n_vline] their labels, written at the top          */
    int n_vline;
} ltf_plot;

/* Writes the plot to path as SVG (atomically, through ltf_write_atomic). A plot with no
 * drawable point draws its axes and says "no data". -1 + message: NULL plot/path/x/y where
 * points are promised, n < 0, only one of lo/hi, a log axis whose data has no positive value,
 * a bad y range or reference line, or a failed write. */
int ltf_plot_svg(const ltf_plot *p, const char *path, char err[LTF_ERR_LEN]);

/* The canvas (800 x 500): the title on top; the framed plot area; y tick labels and the rotated
 * y label on its left; x tick labels and the x label below; the legend in a column to the
 * right of the plot area, outside it, so it never covers data. Lines, bands and the reference
 * line are clipped to the plot area. Axis ranges:
 *   linear: the data range rounded out to the tick step, a 1-2-5 step giving ~5 (y) or ~6 (x)
 *           ticks;
 *   log:    the data range padded by 4% of its decades; ticks at the decades, labelled 10^e
 *           (every 2nd, 3rd ... decade when there are more than 9), minor ticks at 2..9 x 10^e;
 *           an axis spanning at most 3 decades labels 1, 2, 5 x 10^e as plain numbers instead.
 * Decimation of long series (n > 2000): consecutive points fall in buckets of ceil(n / 1000);
 * each bucket contributes its lowest and highest point, in their order in the series, so a
 * spike survives that a plain stride would drop; a band bucket becomes its envelope (lowest
 * lo, highest hi). Buckets never cross a skipped point, so breaks stay where they are. */

#define LTF__W 800
#define LTF__H 500
#define LTF__MAX_TICKS 128
#define LTF__DECIMATE_ABOVE 2000       /* longer series are drawn from 1000 buckets        */
#define LTF__LEGEND_MAX_W 300.0        /* legend column width cap; longer labels are cut   */

/* Okabe & Ito (2008), colour-blind safe; yellow last: it reads poorly on white */
static const char *ltf__palette[8] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                      "#E69F00", "#56B4E9", "#000000", "#F0E442"};

/* Characters of UTF-8 text (continuation bytes 10xxxxxx don't start one). */
static size_t ltf__utf8_len(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Width of text in px, estimated: sans-serif averages ~0.6 em a character. */
static double ltf__text_w(const char *s, double font) { return 0.6 * font * (double)ltf__utf8_len(s); }

/* User text as XML character data: & < > " ' escaped, control characters (not allowed in
 * XML 1.0) become spaces; cut to max_chars characters with "..." when longer. */
static void ltf__buf_xml(ltf__buf *b, const char *s, size_t max_chars) {
    size_t chars = 0, total = ltf__utf8_len(s);
    if (max_chars < 4) max_chars = 4;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c & 0xC0) != 0x80 && total > max_chars && ++chars > max_chars - 3) {
            ltf__buf_printf(b, "...");
            return;
        }
        switch (c) {
        case '&': ltf__buf_printf(b, "&amp;"); break;
        case '<': ltf__buf_printf(b, "&lt;"); break;
        case '>': ltf__buf_printf(b, "&gt;"); break;
        case '"': ltf__buf_printf(b, "&quot;"); break;
        case '\'': ltf__buf_printf(b, "&apos;"); break;
        default:
            if (ltf__buf_reserve(b, 1) == 0) b->p[b->len++] = (char)(c < 0x20 ? ' ' : c);
        }
    }
    if (!b->oom) b->p[b->len] = '\0';
}

typedef struct {
    double v;          /* the value (not its log)                                   */
    int labelled;      /* 1 = major: label and grid line; 0 = short tick mark only   */
    int pow10;         /* 1 = label drawn as 10^exp10; 0 = text                      */
    int exp10;
    char text[32];
} ltf__tick;

typedef struct {
    int log;
    double t0, t1;     /* range in axis units: the value, or its log10              */
    double p0, p1;     /* pixels of t0 and t1                                       */
    ltf__tick tick[LTF__MAX_TICKS];
    int n_tick;
} ltf__axis;

static int ltf__ok(double v, int log) { return isfinite(v) && (!log || v > 0); }

/* Pixel of value v; kept within +-1e5 so far-off points still print as short numbers. */
static double ltf__map(const ltf__axis *a, double v) {
    double t = a->log ? log10(v) : v;
    double px = a->p0 + (t - a->t0) / (a->t1 - a->t0) * (a->p1 - a->p0);
    return px < -1e5 ? -1e5 : px > 1e5 ? 1e5 : px;
}

/* A tick at v, or NULL when the table is full or v can't be drawn (past the doubles: 10^309). */
static ltf__tick *ltf__add_tick(ltf__axis *a, double v, int labelled) {
    if (a->n_tick >= LTF__MAX_TICKS || !isfinite(v) || (a->log && v <= 0)) return NULL;
    ltf__tick *t = &a->tick[a->n_tick++];
    memset(t, 0, sizeof *t);
    t->v = v;
    t->labelled = labelled;
    return t;
}

/* The 1-2-5 step that cuts range into about `target` pieces. */
static double ltf__nice_step(double range, int target) {
    double raw = range / target, mag = pow(10.0, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0) * mag;
}

/* Tick label of a linear axis: as many decimals as the step needs; 250k / 1.5M on axes that
 * reach 10^4 / 10^6 in round steps (training steps); %g where decimals won't do. */
static void ltf__fmt_linear(char *out, double v, double step, double amax) {
    const char *suffix = "";
    if (amax >= 1e6 && step >= 1e5) { v /= 1e6; step /= 1e6; suffix = "M"; }
    else if (amax >= 1e4 && step >= 1e2) { v /= 1e3; step /= 1e3; suffix = "k"; }
    if (v == 0.0 && suffix[0]) { snprintf(out, 32, "0"); return; }
    if (step < 1e-5 || amax >= 1e9) { snprintf(out, 32, "%g%s", v, suffix); return; }
    int decimals = step >= 1.0 ? 0 : (int)ceil(-log10(step) - 1e-9);
    snprintf(out, 32, "%.*f%s", decimals, v, suffix);
}

/* Linear axis over [lo, hi]: exact = keep the range (the caller's), else round it out. A range
 * too narrow for doubles to resolve is widened either way. */
static void ltf__axis_linear(ltf__axis *a, double lo, double hi, int exact, int target) {
    if (hi - lo <= fmax(1e-12 * fmax(fabs(lo), fabs(hi)), 1e-290)) {   /* one value: widen */
        double d = fabs(lo) < 1e-280 ? 1.0 : 0.1 * fabs(lo);
        lo -= d; hi += d;
    }
    double step = ltf__nice_step(hi - lo, target);
    if (!exact) { lo = floor(lo / step + 1e-9) * step; hi = ceil(hi / step - 1e-9) * step; }
    a->log = 0; a->t0 = lo; a->t1 = hi; a->n_tick = 0;
    double first = ceil(lo / step - 1e-9), amax = fmax(fabs(lo), fabs(hi));
    for (int k = 0; k < 50 && (first + k) * step <= hi + 1e-9 * step; k++) {
        double v = (first + k) * step;
        if (fabs(v) < 1e-9 * step) v = 0.0;               /* no "-0" */
        ltf__tick *t = ltf__add_tick(a, v, 1);
        if (t) ltf__fmt_linear(t->text, v, step, amax);
    }
}

/* Log axis over [lo, hi], both > 0. */
static void ltf__axis_log(ltf__axis *a, double lo, double hi, int exact) {
    double t0 = log10(lo), t1 = log10(hi);
    if (t1 - t0 < 1e-9) { t0 -= 0.5; t1 += 0.5; }   /* one value: a decade around it */
    else if (!exact) {
        double m = 0.04 * (t1 - t0);
        t0 -= m; t1 += m;
    }
    a->log = 1; a->t0 = t0; a->t1 = t1; a->n_tick = 0;
    double span = t1 - t0;
    if (span < 0.5) {   /* within half a decade: no 1-2-5 tick may fall inside; step linearly */
        double v0 = pow(10.0, t0), v1 = pow(10.0, t1), step = ltf__nice_step(v1 - v0, 4);
        double first = ceil(v0 / step - 1e-9);
        for (int k = 0; k < 50 && (first + k) * step <= v1 * (1 + 1e-12); k++) {
            ltf__tick *t = ltf__add_tick(a, (first + k) * step, 1);
            if (t) snprintf(t->text, sizeof t->text, "%g", (first + k) * step);
        }
        return;
    }
    int plain = span <= 3.0;                               /* label 1, 2, 5 as numbers */
    int every = span > 9.0 ? (int)ceil(span / 8.0) : 1;     /* labelled decades          */
    int minors = span <= 8.0;
    for (int e = (int)floor(t0); e <= (int)ceil(t1); e++) {
        for (int m = 1; m <= 9; m++) {
            if (m > 1 && !minors) break;
            double t = e + log10((double)m);
            if (t < t0 - 1e-9 || t > t1 + 1e-9) continue;
            int major = m == 1 ? (e % every + every) % every == 0 : plain && (m == 2 || m == 5);
            if (m == 1 && !major && span > 40) continue;     /* no room for every decade */
            ltf__tick *tk = ltf__add_tick(a, m * pow(10.0, e), major);
            if (!tk) continue;
            if (plain) snprintf(tk->text, sizeof tk->text, "%g", tk->v);
            else { tk->pow10 = m == 1; tk->exp10 = e; }
        }
    }
}

/* Estimated width of a tick label at font size 11. */
static double ltf__tick_w(const ltf__tick *t) {
    if (!t->labelled) return 0.0;
    if (!t->pow10) return ltf__text_w(t->text, 11);
    char e[16];
    snprintf(e, sizeof e, "%d", t->exp10);
    return 0.6 * 11 * (2.0 + 0.75 * (double)strlen(e));
}

static void ltf__put_tick_label(ltf__buf *b, const ltf__tick *t) {
    if (t->pow10) {          /* 10 with a raised exponent; U+2212 is the typographic minus */
        ltf__buf_printf(b, "10<tspan dy=\"-0.5em\" font-size=\"80%%\">%s%d</tspan>",
                        t->exp10 < 0 ? "\xe2\x88\x92" : "", t->exp10 < 0 ? -t->exp10 : t->exp10);
    } else if (t->text[0] == '-') {
        ltf__buf_printf(b, "\xe2\x88\x92%s", t->text + 1);
    } else {
        ltf__buf_printf(b, "%s", t->text);
    }
}

/* Points of series s that can be drawn (the line and the band). */
static long ltf__drawable(const ltf_series *s, int log_x, int log_y) {
    long n = 0;
    for (int i = 0; i < s->n; i++) {
        if (!ltf__ok(s->x[i], log_x)) continue;
        n += ltf__ok(s->y[i], log_y) || (s->hi && ltf__ok(s->hi[i], log_y) && isfinite(s->lo[i]));
    }
    return n;
}

static int ltf__bucket(int n) { return n > LTF__DECIMATE_ABOVE ? (n + 999) / 1000 : 1; }

/* The line of a series as one path: a subpath (M ... L ...) per run of drawable points; a run
 * of one point gets a small circle (two arcs) so it shows as a dot. */
static void ltf__put_line(ltf__buf *b, const ltf_series *s, const ltf__axis *ax, const ltf__axis *ay) {
    int bs = ltf__bucket(s->n), run = 0, cnt = 0, lo_i = 0, hi_i = 0;
    double lo_x = 0, lo_y = 0, hi_x = 0, hi_y = 0;   /* bucket's lowest and highest point (px) */
    for (int i = 0; i <= s->n; i++) {
        int ok = i < s->n && ltf__ok(s->x[i], ax->log) && ltf__ok(s->y[i], ay->log);
        if (cnt > 0 && (!ok || i % bs == 0)) {       /* close the bucket: its points in order */
            int first_hi = hi_i < lo_i;
            double x1 = first_hi ? hi_x : lo_x, y1 = first_hi ? hi_y : lo_y;
            ltf__buf_printf(b, "%c%.1f %.1f", run++ ? 'L' : 'M', x1, y1);
            if (lo_i != hi_i) {
                ltf__buf_printf(b, "L%.1f %.1f", first_hi ? lo_x : hi_x, first_hi ? lo_y : hi_y);
                run++;
            }
            cnt = 0;
        }
        if (!ok) {
            if (run == 1) ltf__buf_printf(b, "m-1.5 0a1.5 1.5 0 1 0 3 0a1.5 1.5 0 1 0 -3 0");
            run = 0;
            continue;
        }
        double px = ltf__map(ax, s->x[i]), py = ltf__map(ay, s->y[i]);
        if (cnt == 0 || py > lo_y) { lo_x = px; lo_y = py; lo_i = i; }   /* larger py = lower */
        if (cnt == 0 || py < hi_y) { hi_x = px; hi_y = py; hi_i = i; }
        cnt++;
    }
}

/* The band of a series as one path: a closed polygon per run (along hi, back along lo). A lo
 * <= 0 on a log axis is drawn at the bottom edge. tmp holds a run's (x, top, bottom) px. */
static int ltf__put_band(ltf__buf *b, const ltf_series *s, const ltf__axis *ax, const ltf__axis *ay,
                         double **tmp, size_t *cap) {
    int bs = ltf__bucket(s->n), cnt = 0;
    size_t nv = 0;
    double x0 = 0, x1 = 0, top = 0, bot = 0, floor_px = ay->p0 + 2.0;
    for (int i = 0; i <= s->n; i++) {
        int ok = i < s->n && ltf__ok(s->x[i], ax->log) && ltf__ok(s->hi[i], ay->log) && isfinite(s->lo[i]);
        if (cnt > 0 && (!ok || i % bs == 0)) {       /* the bucket's envelope: 1 or 2 vertices */
            double *grown = (double *)ltf__grow(*tmp, cap, 3 * (nv + 2), sizeof(double));
            if (!grown) return -1;
            *tmp = grown;
            double *v = *tmp + 3 * nv;
            v[0] = x0; v[1] = top; v[2] = bot; nv++;
            if (cnt > 1) { v[3] = x1; v[4] = top; v[5] = bot; nv++; }
            cnt = 0;
        }
        if (!ok) {
            if (nv > 0) {
                const double *v = *tmp;
                for (size_t j = 0; j < nv; j++) ltf__buf_printf(b, "%c%.1f %.1f", j ? 'L' : 'M', v[3 * j], v[3 * j + 1]);
                for (size_t j = nv; j-- > 0;) ltf__buf_printf(b, "L%.1f %.1f", v[3 * j], v[3 * j + 2]);
                ltf__buf_printf(b, "Z");
            }
            nv = 0;
            continue;
        }
        double px = ltf__map(ax, s->x[i]), pt = ltf__map(ay, s->hi[i]);
        double pb = ay->log && s->lo[i] <= 0 ? floor_px : ltf__map(ay, s->lo[i]);
        if (cnt == 0) { x0 = px; top = pt; bot = pb; }
        x1 = px;
        top = pt < top ? pt : top;
        bot = pb > bot ? pb : bot;
        cnt++;
    }
    return 0;
}

/* A legend swatch at (x, y): the line (dashed or not) over the band's colour when it has one. */
static void ltf__put_swatch(ltf__buf *b, double x, double y, const char *colour, int dashed, int band) {
    if (band)
        ltf__buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"26\" height=\"10\" fill=\"%s\" fill-opacity=\"0.2\"/>",
                        x, y - 5, colour);
    ltf__buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>",
                    x, y, x + 26, y, colour, dashed ? " stroke-dasharray=\"6 3\"" : "");
}

static const char *ltf__colour(const ltf_plot *p, int k) {
    int c = p->colour ? p->colour[k] : k;
    return ltf__palette[(c < 0 ? -c : c) % 8];
}

int ltf_plot_svg(const ltf_plot *p, const char *path, char err[LTF_ERR_LEN]) {
    if (!p) return ltf__fail(err, "plot is NULL");
    if (!path || !path[0]) return ltf__fail(err, "path is NULL or empty");
    if (p->n_series < 0) return ltf__fail(err, "n_series = %d: must be >= 0", p->n_series);
    if (p->n_series > 0 && !p->series) return ltf__fail(err, "n_series = %d but series is NULL", p->n_series);
    int lx = p->log_x != 0, ly = p->log_y != 0, has_ref = p->hline_label != NULL;
    int user_y = !(p->y_min == 0.0 && p->y_max == 0.0);
    for (int k = 0; k < p->n_series; k++) {
        const ltf_series *s = &p->series[k];
        const char *name = s->label ? s->label : "";
        if (s->n < 0) return ltf__fail(err, "series %d (\"%.40s\"): n = %d: must be >= 0", k, name, s->n);
        if (s->n > 0 && (!s->x || !s->y))
            return ltf__fail(err, "series %d (\"%.40s\"): n = %d but %s is NULL", k, name, s->n, s->x ? "y" : "x");
        if (!s->lo != !s->hi)
            return ltf__fail(err, "series %d (\"%.40s\"): band needs both lo and hi (or neither); %s is NULL",
                             k, name, s->lo ? "hi" : "lo");
    }
    if (has_ref && !ltf__ok(p->hline, ly))
        return ltf__fail(err, "hline = %g: the reference line needs a finite y%s", p->hline, ly ? " > 0 (log y axis)" : "");
    if (user_y && !(isfinite(p->y_min) && isfinite(p->y_max) && p->y_min < p->y_max && (!ly || p->y_min > 0)))
        return ltf__fail(err, "y range %g..%g: need finite y_min < y_max%s (or both 0 to fit the data)",
                         p->y_min, p->y_max, ly ? ", y_min > 0 on a log axis" : "");

    /* data ranges over the drawable points; counts to tell "no data" from "nothing positive" */
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY, xmax_fin = -INFINITY, ymax_fin = -INFINITY;
    long n_draw = 0, n_finite = 0;
    for (int k = 0; k < p->n_series; k++) {
        const ltf_series *s = &p->series[k];
        for (int i = 0; i < s->n; i++) {
            double x = s->x[i], y = s->y[i];
            if (isfinite(x) && isfinite(y)) {
                n_finite++;
                xmax_fin = fmax(xmax_fin, x); ymax_fin = fmax(ymax_fin, y);
            }
            if (!ltf__ok(x, lx)) continue;
            int line = ltf__ok(y, ly), band = s->hi && ltf__ok(s->hi[i], ly) && isfinite(s->lo[i]);
            if (line) { ylo = fmin(ylo, y); yhi = fmax(yhi, y); }
            if (band) {
                yhi = fmax(yhi, s->hi[i]);
                if (ltf__ok(s->lo[i], ly)) ylo = fmin(ylo, s->lo[i]);
                ylo = fmin(ylo, s->hi[i]);
            }
            if (line || band) { n_draw++; xlo = fmin(xlo, x); xhi = fmax(xhi, x); }
        }
    }
    if (n_draw == 0 && n_finite > 0) {   /* points exist, but none on the log axes */
        if (ly && ymax_fin <= 0)
            return ltf__fail(err, "log y axis: no point has y > 0 (largest y = %g); use a linear axis", ymax_fin);
        if (lx && xmax_fin <= 0)
            return ltf__fail(err, "log x axis: no point has x > 0 (largest x = %g); use a linear axis", xmax_fin);
        return ltf__fail(err, "log x and y axes: no point has both x > 0 and y > 0");
    }
    if (n_draw == 0) { xlo = lx ? 1.0 : 0.0; xhi = lx ? 10.0 : 1.0; ylo = ly ? 0.1 : 0.0; yhi = 1.0; }
    if (has_ref) { ylo = fmin(ylo, p->hline); yhi = fmax(yhi, p->hline); }
    if (user_y) { ylo = p->y_min; yhi = p->y_max; }
    if (!isfinite(xhi - xlo) || !isfinite(yhi - ylo))
        return ltf__fail(err, "data span x %g..%g, y %g..%g: too wide for a linear axis", xlo, xhi, ylo, yhi);

    ltf__axis ax, ay;
    if (lx) ltf__axis_log(&ax, xlo, xhi, 0); else ltf__axis_linear(&ax, xlo, xhi, 0, 6);
    if (ly) ltf__axis_log(&ay, ylo, yhi, user_y); else ltf__axis_linear(&ay, ylo, yhi, user_y, 5);

    /* layout: margins from the widest y tick label and the legend's longest label */
    const char *title = p->title ? p->title : "", *xlabel = p->xlabel ? p->xlabel : "";
    const char *ylabel = p->ylabel ? p->ylabel : "", *no_data = " (no data)";
    double ytick_w = 0.0, xtick_last_w = 0.0, label_w = 0.0;
    for (int i = 0; i < ay.n_tick; i++) ytick_w = fmax(ytick_w, ltf__tick_w(&ay.tick[i]));
    for (int i = 0; i < ax.n_tick; i++) if (ax.tick[i].labelled) xtick_last_w = ltf__tick_w(&ax.tick[i]);
    int n_legend = 0;
    for (int k = 0; k < p->n_series; k++) {
        const ltf_series *s = &p->series[k];
        if (!s->label || !s->label[0]) continue;
        n_legend++;
        label_w = fmax(label_w, ltf__text_w(s->label, 12) +
                                (ltf__drawable(s, lx, ly) ? 0.0 : ltf__text_w(no_data, 12)));
    }
    if (has_ref && p->hline_label[0]) { n_legend++; label_w = fmax(label_w, ltf__text_w(p->hline_label, 12)); }
    double legend_w = n_legend ? fmin(LTF__LEGEND_MAX_W, 26 + 8 + label_w + 10) : 0.0;
    size_t legend_chars = legend_w < LTF__LEGEND_MAX_W ? (size_t)-1 : (size_t)((legend_w - 44) / (0.6 * 12));
    const char *subtitle = p->subtitle ? p->subtitle : "";
    double left = (ylabel[0] ? 34.0 : 10.0) + ytick_w + 10.0, top = (title[0] ? 42.0 : 16.0) + (subtitle[0] ? 16.0 : 0.0);
    double bottom = LTF__H - (xlabel[0] ? 56.0 : 34.0);
    double right = LTF__W - (n_legend ? legend_w + 18.0 : fmax(20.0, xtick_last_w / 2 + 8));
    ax.p0 = left; ax.p1 = right; ay.p0 = bottom; ay.p1 = top;

    ltf__buf b;
    memset(&b, 0, sizeof b);
    ltf__buf_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                        "font-family=\"sans-serif\" font-size=\"12\">\n", LTF__W, LTF__H, LTF__W, LTF__H);
    ltf__buf_printf(&b, "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", LTF__W, LTF__H);
    ltf__buf_printf(&b, "<defs><clipPath id=\"ltf-plot-area\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>"
                        "</clipPath></defs>\n", left, top - 1, right - left, bottom - top + 2);
    if (title[0]) {   /* centred over the plot area; a long one shrinks (to 11 px), then is cut */
        double font = fmin(15.0, fmax(11.0, (LTF__W - 16) / (0.65 * (double)ltf__utf8_len(title))));
        double w = fmin(0.65 * font * (double)ltf__utf8_len(title), LTF__W - 16.0), cx = (left + right) / 2;
        cx = fmin(fmax(cx, w / 2 + 8), LTF__W - w / 2 - 8);
        ltf__buf_printf(&b, "<text x=\"%.1f\" y=\"26\" text-anchor=\"middle\" font-size=\"%.1f\" font-weight=\"bold\">", cx, font);
        ltf__buf_xml(&b, title, (size_t)((LTF__W - 16) / (0.65 * font)));
        ltf__buf_printf(&b, "</text>\n");
    }
    if (subtitle[0]) {   /* 10 px grey, centred, cut to the canvas */
        ltf__buf_printf(&b, "<text class=\"subtitle\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"10\" fill=\"#666\">",
                        LTF__W / 2.0, title[0] ? 42 : 18);
        ltf__buf_xml(&b, subtitle, (size_t)((LTF__W - 16) / 6.0));
        ltf__buf_printf(&b, "</text>\n");
    }
    ltf__buf_printf(&b, "<g stroke=\"#e6e6e6\" stroke-width=\"1\">\n");   /* grid at labelled ticks */
    for (int i = 0; i < ax.n_tick; i++) {
        if (!ax.tick[i].labelled) continue;
        double x = ltf__map(&ax, ax.tick[i].v);
        ltf__buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x, top, x, bottom);
    }
    for (int i = 0; i < ay.n_tick; i++) {
        if (!ay.tick[i].labelled) continue;
        double y = ltf__map(&ay, ay.tick[i].v);
        ltf__buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", left, y, right, y);
    }
    ltf__buf_printf(&b, "</g>\n<g clip-path=\"url(#ltf-plot-area)\">\n");
    double *tmp = NULL;
    size_t tmp_cap = 0;
    for (int k = 0; k < p->n_series; k++) {   /* bands first: every line stays on top of them */
        const ltf_series *s = &p->series[k];
        if (!s->hi) continue;
        size_t start = b.len;
        ltf__buf_printf(&b, "<path class=\"band\" fill=\"%s\" fill-opacity=\"0.18\" stroke=\"none\" d=\"", ltf__colour(p, k));
        size_t d0 = b.len;
        if (ltf__put_band(&b, s, &ax, &ay, &tmp, &tmp_cap) != 0) b.oom = 1;
        if (b.len == d0) b.len = start; else ltf__buf_printf(&b, "\"/>\n");
    }
    if (tmp) LTF_FREE(tmp);
    if (has_ref) {
        double y = ltf__map(&ay, p->hline);
        ltf__buf_printf(&b, "<line class=\"ref\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#777\" "
                            "stroke-width=\"1.3\" stroke-dasharray=\"5 4\"/>\n", left, y, right, y);
    }
    for (int k = 0; k < p->n_series; k++) {
        const ltf_series *s = &p->series[k];
        int dashed = (s->dashed != 0) ^ ((k / 8) & 1);
        size_t start = b.len;
        double width = ltf__bucket(s->n) > 1 ? 1.0 : 1.8;   /* a dense decimated line: thin */
        ltf__buf_printf(&b, "<path class=\"line\" fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" stroke-linejoin=\"round\" "
                            "stroke-linecap=\"round\"%s d=\"", ltf__colour(p, k), width, dashed ? " stroke-dasharray=\"7 5\"" : "");
        size_t d0 = b.len;
        ltf__put_line(&b, s, &ax, &ay);
        if (b.len == d0) b.len = start; else ltf__buf_printf(&b, "\"/>\n");
    }
    ltf__buf_printf(&b, "</g>\n");
    /* points below the y axis (least squares at 1e-13 on a 1e-4 floor): a triangle at the floor */
    int below = 0;
    for (int k = 0; k < p->n_series; k++) {
        const ltf_series *s = &p->series[k];
        for (int i = 0; i < s->n; i++) {
            double y = s->y[i], x = s->x[i];
            if (!ltf__ok(x, lx) || !isfinite(y) || !(ly ? (y > 0 && log10(y) < ay.t0) : y < ay.t0)) continue;
            double px = ltf__map(&ax, x);
            if (px < left - 0.5 || px > right + 0.5) continue;
            ltf__buf_printf(&b, "<path class=\"floor\" d=\"M%.1f %.1fl-4 -7h8z\" fill=\"%s\"/>\n", px, bottom - 1, ltf__colour(p, k));
            below++;
        }
    }
    if (below)
        ltf__buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#555\">&#9660; below the axis</text>\n",
                        left + 6, bottom - 10);
    for (int v = 0; v < p->n_vline && p->vline; v++) {   /* dotted marks, labelled at the top */
        if (!ltf__ok(p->vline[v], lx)) continue;
        double x = ltf__map(&ax, p->vline[v]);
        if (x < left || x > right) continue;
        ltf__buf_printf(&b, "<line class=\"mark\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" "
                            "stroke-width=\"1\" stroke-dasharray=\"2 3\"/>\n", x, top, x, bottom);
        if (p->vline_label && p->vline_label[v]) {
            ltf__buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#555\">", x + 3, top + 11 + 11 * (v % 3));
            ltf__buf_xml(&b, p->vline_label[v], 24);
            ltf__buf_printf(&b, "</text>\n");
        }
    }
    ltf__buf_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>\n",
                    left, top, right - left, bottom - top);
    ltf__buf_printf(&b, "<g stroke=\"#444\">\n");   /* tick marks, outside the frame */
    for (int i = 0; i < ax.n_tick; i++) {
        double x = ltf__map(&ax, ax.tick[i].v);
        ltf__buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x, bottom, x, bottom + (ax.tick[i].labelled ? 5 : 3));
    }
    for (int i = 0; i < ay.n_tick; i++) {
        double y = ltf__map(&ay, ay.tick[i].v);
        ltf__buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", left - (ay.tick[i].labelled ? 5 : 3), y, left, y);
    }
    ltf__buf_printf(&b, "</g>\n<g class=\"xticks\" font-size=\"11\" fill=\"#222\" text-anchor=\"middle\">\n");
    for (int i = 0; i < ax.n_tick; i++) {
        if (!ax.tick[i].labelled) continue;
        ltf__buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\">", ltf__map(&ax, ax.tick[i].v), bottom + 19);
        ltf__put_tick_label(&b, &ax.tick[i]);
        ltf__buf_printf(&b, "</text>\n");
    }
    ltf__buf_printf(&b, "</g>\n<g class=\"yticks\" font-size=\"11\" fill=\"#222\" text-anchor=\"end\">\n");
    for (int i = 0; i < ay.n_tick; i++) {
        if (!ay.tick[i].labelled) continue;
        ltf__buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\">", left - 8, ltf__map(&ay, ay.tick[i].v) + 4);
        ltf__put_tick_label(&b, &ay.tick[i]);
        ltf__buf_printf(&b, "</text>\n");
    }
    ltf__buf_printf(&b, "</g>\n");
    if (xlabel[0]) {
        ltf__buf_printf(&b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"13\">", (left + right) / 2, LTF__H - 14);
        ltf__buf_xml(&b, xlabel, (size_t)-1);
        ltf__buf_printf(&b, "</text>\n");
    }
    if (ylabel[0]) {
        ltf__buf_printf(&b, "<text transform=\"translate(20 %.1f) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">", (top + bottom) / 2);
        ltf__buf_xml(&b, ylabel, (size_t)-1);
        ltf__buf_printf(&b, "</text>\n");
    }
    if (n_draw == 0)
        ltf__buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\" fill=\"#888\">no data</text>\n",
                        (left + right) / 2, (top + bottom) / 2);
    if (n_legend) {   /* one row per entry; rows that would leave the canvas are summed up */
        int rows = (int)((LTF__H - 12 - (top + 8)) / 20), row = 0;
        double lx0 = right + 18;
        ltf__buf_printf(&b, "<g class=\"legend\" font-size=\"12\" fill=\"#222\">\n");
        for (int k = 0; k <= p->n_series; k++) {
            int is_ref = k == p->n_series;
            const char *label = is_ref ? (has_ref ? p->hline_label : "") : p->series[k].label;
            if (!label || !label[0]) continue;
            double y = top + 8 + 20 * row;
            if (row == rows - 1 && n_legend > rows) {
                ltf__buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\">+%d more</text>\n", lx0, y + 4, n_legend - row);
                break;
            }
            if (is_ref) {
                ltf__buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#777\" stroke-width=\"1.3\" "
                                    "stroke-dasharray=\"5 4\"/>", lx0, y, lx0 + 26, y);
            } else {
                const ltf_series *s = &p->series[k];
                ltf__put_swatch(&b, lx0, y, ltf__colour(p, k), (s->dashed != 0) ^ ((k / 8) & 1), s->hi != NULL);
            }
            ltf__buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\">", lx0 + 34, y + 4);
            ltf__buf_xml(&b, label, legend_chars);
            if (!is_ref && !ltf__drawable(&p->series[k], lx, ly)) ltf__buf_printf(&b, "%s", no_data);
            ltf__buf_printf(&b, "</text>\n");
            row++;
        }
        ltf__buf_printf(&b, "</g>\n");
    }
    ltf__buf_printf(&b, "</svg>\n");
    int rc = b.oom ? ltf__fail(err, "out of memory building the SVG for %s", path) : ltf_write_atomic(path, b.p, b.len, err);
    if (b.p) LTF_FREE(b.p);
    return rc;
}

#endif /* LTF_WORKBENCH_PLOT_H */

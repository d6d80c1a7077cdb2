/* workbench/sweep.h - a grid of training runs: its points, their folders, and the table and
 * figures that gather them (demo sweep; the demo runs the points, in processes of its own).
 *
 * Part of the looped-tf workbench (the demo's side of the tree, README "Layout"): include it
 * after looped_tf.h and workbench/bands.h, plot.h in the one file that defines
 * LOOPED_TF_IMPLEMENTATION (demo.c, test.c); it uses the header's private helpers (ltf__fail,
 * LTF_MALLOC/LTF_FREE). MIT licence, as the header.
 *
 * A grid is "key=v1,v2,... key=v1,..." (up to LTF_SWEEP_KEYS keys, each a flag of demo train
 * without its dashes), crossed with seeds: point p (0-based) is the grid combination p / seeds
 * (the last key varying fastest) with seed seed0 + p % seeds. Its folder, under the sweep's:
 * "key1=v_key2=v/seed=s". The folder's run.json (written by demo train) says whether it is done
 * and holds its metrics, so a sweep that stopped, or whose points were run by GNU parallel or a
 * Slurm array, is gathered the same way.
 *
 * Linked keys: "model:L=looped:1,standard:12" varies two flags together (the values' parts go
 * to the key's parts in order), for comparisons that are not a product: a looped L=1 against a
 * standard L=12 is one key with two values, not four runs.
 */
#ifndef LTF_WORKBENCH_SWEEP_H
#define LTF_WORKBENCH_SWEEP_H

#define LTF_SWEEP_KEYS 3
#define LTF_SWEEP_VALUES 32
#define LTF_SWEEP_POINTS 4096

typedef struct {
    int n_keys;
    char key[LTF_SWEEP_KEYS][32];                       /* flag names without "--"         */
    int n_values[LTF_SWEEP_KEYS];
    char value[LTF_SWEEP_KEYS][LTF_SWEEP_VALUES][32];   /* as given                         */
    int seeds;                                          /* seeds per combination            */
    long seed0;
} ltf_sweep;

/* the metrics of one point, from its run.json (NAN: not there) */
typedef struct {
    char status[16];           /* "done", "running", "failed", "stopped"; "" = never started */
    double final_loss, err_2d, loop_err_b, loop_err_last;
} ltf_sweep_result;

int ltf_sweep_parse(ltf_sweep *s, const char *grid, int seeds, long seed0, char err[LTF_ERR_LEN]);
int ltf_sweep_points(const ltf_sweep *s);                 /* combinations x seeds             */
int ltf_sweep_combo(const ltf_sweep *s, int p);          /* the combination of point p       */
long ltf_sweep_seed(const ltf_sweep *s, int p);
const char *ltf_sweep_value(const ltf_sweep *s, int p, int k);   /* key k's value at point p */
int ltf_sweep_parts(const char *key_or_value);   /* its ':'-separated parts; -1: an empty one */
void ltf_sweep_part(const char *key_or_value, int i, char *out, size_t cap);   /* its part i */
void ltf_sweep_folder(const ltf_sweep *s, int p, char *out, size_t cap);   /* relative to the sweep's */
int ltf_sweep_read(const char *run_json, ltf_sweep_result *r);   /* 0; -1: no file (r says "") */

/* ---- implementation ---- */

static int ltf__sweep_name_ok(const char *v) {   /* a folder-name-safe value (':' links parts) */
    if (!*v || strcmp(v, ".") == 0 || strcmp(v, "..") == 0) return 0;
    for (; *v; v++)
        if (!((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') || (*v >= '0' && *v <= '9') || *v == '.' || *v == '-' ||
              *v == '+' || *v == ':')) return 0;
    return 1;
}

/* The parts of a linked key or value: "a:b" has 2; an empty part makes it -1. */
int ltf_sweep_parts(const char *s) {
    int n = 1;
    if (!*s || *s == ':' || s[strlen(s) - 1] == ':' || strstr(s, "::")) return -1;
    for (; *s; s++) n += *s == ':';
    return n;
}

/* Part i of "a:b:c" into out (cap bytes). */
void ltf_sweep_part(const char *s, int i, char *out, size_t cap) {
    for (; i > 0 && *s; s++) if (*s == ':') i--;
    size_t len = strcspn(s, ":");
    snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), s);
}

int ltf_sweep_parse(ltf_sweep *s, const char *grid, int seeds, long seed0, char err[LTF_ERR_LEN]) {
    memset(s, 0, sizeof *s);
    s->seeds = seeds; s->seed0 = seed0;
    if (seeds < 1 || seeds > 100) return ltf__fail(err, "--seeds %d: must be in 1..100", seeds);
    const char *p = grid;
    while (*p) {
        while (*p == ' ') p++;
        if (!*p) break;
        if (s->n_keys == LTF_SWEEP_KEYS) return ltf__fail(err, "--grid '%s': at most %d keys", grid, LTF_SWEEP_KEYS);
        const char *eq = strchr(p, '='), *end = strchr(p, ' ');
        if (!end) end = p + strlen(p);
        if (!eq || eq > end || eq == p || eq + 1 == end)
            return ltf__fail(err, "--grid '%s': '%.*s' is not key=v1,v2,...", grid, (int)(end - p), p);
        int k = s->n_keys;
        if ((size_t)(eq - p) >= sizeof s->key[0]) return ltf__fail(err, "--grid '%s': key too long", grid);
        memcpy(s->key[k], p, (size_t)(eq - p));
        if (ltf_sweep_parts(s->key[k]) < 1) return ltf__fail(err, "--grid '%s': key '%s' has an empty part", grid, s->key[k]);
        for (int j = 0; j < k; j++)
            if (strcmp(s->key[j], s->key[k]) == 0) return ltf__fail(err, "--grid '%s': key '%s' twice", grid, s->key[k]);
        const char *v = eq + 1;
        while (v < end) {
            const char *comma = (const char *)memchr(v, ',', (size_t)(end - v));
            const char *ve = comma ? comma : end;
            int i = s->n_values[k];
            if (i == LTF_SWEEP_VALUES) return ltf__fail(err, "--grid '%s': key '%s' has more than %d values", grid, s->key[k], LTF_SWEEP_VALUES);
            if (ve == v || (size_t)(ve - v) >= sizeof s->value[0][0])
                return ltf__fail(err, "--grid '%s': key '%s' has an empty or too long value", grid, s->key[k]);
            memcpy(s->value[k][i], v, (size_t)(ve - v));
            if (!ltf__sweep_name_ok(s->value[k][i]))
                return ltf__fail(err, "--grid '%s': value '%s' of '%s' is not allowed: letters, digits, '.', '-', '+'", grid,
                                 s->value[k][i], s->key[k]);
            if (ltf_sweep_parts(s->value[k][i]) != ltf_sweep_parts(s->key[k]))
                return ltf__fail(err, "--grid '%s': value '%s' of '%s' needs %d part(s) separated by ':', one per flag of the key",
                                 grid, s->value[k][i], s->key[k], ltf_sweep_parts(s->key[k]));
            for (int j = 0; j < i; j++)
                if (strcmp(s->value[k][j], s->value[k][i]) == 0)
                    return ltf__fail(err, "--grid '%s': value '%s' of '%s' twice", grid, s->value[k][i], s->key[k]);
            s->n_values[k]++;
            v = comma ? comma + 1 : end;
            if (comma && v == end) return ltf__fail(err, "--grid '%s': key '%s' ends with a comma", grid, s->key[k]);
        }
        s->n_keys++;
        p = end;
    }
    if (s->n_keys == 0) return ltf__fail(err, "--grid '%s': no key=values (e.g. --grid \"b=4,8 T=2,4\")", grid);
    if (ltf_sweep_points(s) > LTF_SWEEP_POINTS)
        return ltf__fail(err, "--grid '%s' with %d seeds: %d runs, at most %d", grid, seeds, ltf_sweep_points(s), LTF_SWEEP_POINTS);
    return 0;
}

int ltf_sweep_points(const ltf_sweep *s) {
    long n = s->seeds;
    for (int k = 0; k < s->n_keys; k++) n *= s->n_values[k];
    return n > LTF_SWEEP_POINTS * 100L ? LTF_SWEEP_POINTS * 100 : (int)n;
}
int ltf_sweep_combo(const ltf_sweep *s, int p) { return p / s->seeds; }
long ltf_sweep_seed(const ltf_sweep *s, int p) { return s->seed0 + p % s->seeds; }

const char *ltf_sweep_value(const ltf_sweep *s, int p, int k) {
    int c = ltf_sweep_combo(s, p);
    for (int j = s->n_keys - 1; j > k; j--) c /= s->n_values[j];
    return s->value[k][c % s->n_values[k]];
}

void ltf_sweep_folder(const ltf_sweep *s, int p, char *out, size_t cap) {
    size_t len = 0;
    out[0] = 0;
    for (int k = 0; k < s->n_keys && len < cap; k++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s=%s", k ? "_" : "", s->key[k], ltf_sweep_value(s, p, k));
    if (len < cap) snprintf(out + len, cap - len, "/seed=%ld", ltf_sweep_seed(s, p));
}

/* The number after "key": in a run.json (demo's own format: one key per line or field) */
static double ltf__json_number_after(const char *text, const char *key) {
    const char *at = strstr(text, key);
    if (!at) return NAN;
    at += strlen(key);
    while (*at == ' ' || *at == ':') at++;
    if (strncmp(at, "null", 4) == 0) return NAN;
    char *end;
    double v = strtod(at, &end);
    return end == at ? NAN : v;
}

int ltf_sweep_read(const char *run_json, ltf_sweep_result *r) {
    memset(r, 0, sizeof *r);
    r->final_loss = r->err_2d = r->loop_err_b = r->loop_err_last = NAN;
    FILE *f = fopen(run_json, "rb");
    if (!f) return -1;
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *st = strstr(buf, "\"status\": \"");
    if (st) {
        st += strlen("\"status\": \"");
        size_t len = strcspn(st, "\"");
        snprintf(r->status, sizeof r->status, "%.*s", (int)(len < sizeof r->status ? len : sizeof r->status - 1), st);
    }
    r->final_loss = ltf__json_number_after(buf, "\"final_loss\"");
    r->err_2d = ltf__json_number_after(buf, "\"error_at_k_2d\"");
    r->loop_err_b = ltf__json_number_after(buf, "\"loop_error_at_b\"");
    r->loop_err_last = ltf__json_number_after(buf, "\"loop_error_at_last_iteration\"");
    return 0;
}

/* A heatmap of values[r * cols + c] (NAN: an empty cell), rows down, columns across, colour on a
 * log scale from the smallest to the largest positive value (light = low error), each cell
 * labelled with its value. */
int ltf_sweep_heatmap_svg(const char *path, const char *title, const char *subtitle, const char *row_key,
                          const char (*row_vals)[32], int rows, const char *col_key, const char (*col_vals)[32], int cols,
                          const double *values, char err[LTF_ERR_LEN]) {
    ltf__buf b;
    double lo = INFINITY, hi = -INFINITY, cw = 70, ch = 34, x0 = 90, y0 = 70;
    memset(&b, 0, sizeof b);
    for (int i = 0; i < rows * cols; i++)
        if (isfinite(values[i]) && values[i] > 0) { lo = fmin(lo, values[i]); hi = fmax(hi, values[i]); }
    double W = fmax(x0 + cols * cw + 20, 600), H = y0 + rows * ch + 40;   /* wide enough for the subtitle */
    ltf__buf_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
                        "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n", W, H);
    ltf__buf_printf(&b, "<text x=\"%.1f\" y=\"22\" text-anchor=\"middle\" font-weight=\"bold\" font-size=\"14\">", W / 2);
    ltf__buf_xml(&b, title ? title : "", 80);
    ltf__buf_printf(&b, "</text>\n<text x=\"%.1f\" y=\"38\" text-anchor=\"middle\" font-size=\"10\" fill=\"#666\">", W / 2);
    ltf__buf_xml(&b, subtitle ? subtitle : "", 110);
    ltf__buf_printf(&b, "</text>\n<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", x0 + cols * cw / 2, y0 - 18);
    ltf__buf_xml(&b, col_key, 30);
    ltf__buf_printf(&b, "</text>\n<text x=\"14\" y=\"%.1f\">", y0 + rows * ch / 2);
    ltf__buf_xml(&b, row_key, 12);
    ltf__buf_printf(&b, "</text>\n");
    for (int c = 0; c < cols; c++) {
        ltf__buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", x0 + (c + 0.5) * cw, y0 - 4);
        ltf__buf_xml(&b, col_vals[c], 10);
        ltf__buf_printf(&b, "</text>\n");
    }
    for (int r = 0; r < rows; r++) {
        ltf__buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", x0 - 6, y0 + (r + 0.5) * ch + 4);
        ltf__buf_xml(&b, row_vals[r], 10);
        ltf__buf_printf(&b, "</text>\n");
        for (int c = 0; c < cols; c++) {
            double v = values[r * cols + c], t = hi > lo && v > 0 ? (log(v) - log(lo)) / (log(hi) - log(lo)) : 0.0;
            int ok = isfinite(v) && v > 0;
            int red = ok ? (int)(250 - 180 * t) : 235, green = ok ? (int)(245 - 200 * t) : 235, blue = ok ? (int)(235 - 120 * t) : 235;
            ltf__buf_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"rgb(%d,%d,%d)\" stroke=\"#fff\"/>",
                            x0 + c * cw, y0 + r * ch, cw, ch, red, green, blue);
            ltf__buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"%s\">", x0 + (c + 0.5) * cw,
                            y0 + (r + 0.5) * ch + 4, ok && t > 0.6 ? "#fff" : "#222");
            if (isfinite(v)) ltf__buf_printf(&b, "%.4g", v); else ltf__buf_printf(&b, "-");
            ltf__buf_printf(&b, "</text>\n");
        }
    }
    ltf__buf_printf(&b, "</svg>\n");
    int rc = b.oom ? ltf__fail(err, "out of memory building %s", path) : ltf_write_atomic(path, b.p, b.len, err);
    if (b.p) LTF_FREE(b.p);
    return rc;
}

#endif /* LTF_WORKBENCH_SWEEP_H */

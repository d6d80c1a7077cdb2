/* demo.c - train a looped transformer on in-context linear regression and evaluate it.
 *
 *   ./demo                 train the default small looped model on the CPU, print the table
 *   ./demo --help          every flag
 *
 * Prints one live progress line on stderr while training, then a table of normalized error by
 * number of in-context examples (model, least squares, averaging, 3-NN, zero) on stdout, and
 * writes the same table to OUT/eval.csv and the loss history to OUT/train_loss.csv.
 */
#define _POSIX_C_SOURCE 200809L
#define LOOPED_TF_IMPLEMENTATION
#include "looped_tf.h"

#include <errno.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ options */

typedef struct {
    ltf_config cfg;
    ltf_train_config tc;
    long steps;
    uint64_t seed;
    int eval_prompts, eval_loops;
    const char *out;
} options;

static void usage(FILE *f) {
    fprintf(f,
        "usage: demo [flags]\n"
        "Trains a looped (or standard) transformer on in-context linear regression, then prints\n"
        "its normalized error by number of in-context examples next to the classic baselines.\n"
        "\n"
        "model\n"
        "  --model looped|standard  kind of model                              (looped)\n"
        "  --d N                    task dimension n_dims                      (5)\n"
        "  --n N                    points per prompt                          (11)\n"
        "  --positions N            max points the model takes (wpe 2N+1 rows) (= --n)\n"
        "  --C N                    n_embd                                     (64)\n"
        "  --H N                    heads, must divide C                       (4)\n"
        "  --L N                    layers in the loop body / the stack        (1)\n"
        "  --b N                    loop iterations in training                (10)\n"
        "  --T N                    loss window: last T iterations             (5)\n"
        "  --mask none|last|first   keep only the last/first N pairs of the state (none)\n"
        "  --mask-n N               N for --mask                               (0)\n"
        "  --mask-when train|eval|both  where the mask applies                 (both)\n"
        "training\n"
        "  --steps N                training steps                             (3000)\n"
        "  --batch N                prompts per step                           (64)\n"
        "  --lr X                   Adam learning rate                         (1e-3)\n"
        "  --wd X                   decoupled weight decay                     (0)\n"
        "  --seed N                 seed of weights and data                   (42)\n"
        "evaluation and output\n"
        "  --eval-prompts N         test prompts                               (1280)\n"
        "  --eval-loops N           loop iterations at evaluation              (= --b)\n"
        "  --out DIR                output folder for the CSV files            (out)\n"
        "  --help                   this text\n"
        "Threads: OMP_NUM_THREADS (all cores by default).\n");
}

static int missing(const char *flag, const char *s) {
    if (s) return 0;
    fprintf(stderr, "demo: %s needs a value (see demo --help)\n", flag);
    return 1;
}

static int parse_long(const char *flag, const char *s, long lo, long hi, long *out) {
    char *end;
    if (missing(flag, s)) return -1;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || *s == '\0' || *end != '\0' || errno || v < lo || v > hi) {
        fprintf(stderr, "demo: %s '%s' is not allowed: need an integer in %ld..%ld\n", flag, s ? s : "", lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_float(const char *flag, const char *s, double lo, double hi, float *out) {
    char *end;
    if (missing(flag, s)) return -1;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || *s == '\0' || *end != '\0' || errno || !(v >= lo && v <= hi)) {
        fprintf(stderr, "demo: %s '%s' is not allowed: need a number in [%g, %g]\n", flag, s ? s : "", lo, hi);
        return -1;
    }
    *out = (float)v;
    return 0;
}

static int parse_choice(const char *flag, const char *s, const char *const *names, int count, int *out) {
    if (missing(flag, s)) return -1;
    for (int i = 0; s && i < count; i++)
        if (strcmp(s, names[i]) == 0) { *out = i; return 0; }
    fprintf(stderr, "demo: %s '%s' is not allowed: choose one of", flag, s ? s : "");
    for (int i = 0; i < count; i++) fprintf(stderr, " %s", names[i]);
    fprintf(stderr, "\n");
    return -1;
}

static int parse_args(int argc, char **argv, options *o) {
    static const char *const kinds[] = {"standard", "looped"};
    static const char *const masks[] = {"none", "last", "first"};
    static const char *const whens[] = {"", "train", "eval", "both"};
    long v, positions = -1, eval_loops = -1;
    ltf_config_default(&o->cfg);
    ltf_train_config_default(&o->tc);
    o->steps = 3000; o->seed = 42; o->eval_prompts = 1280; o->out = "out";
    for (int i = 1; i < argc; i += 2) {   /* every flag but --help takes one value */
        const char *f = argv[i], *a = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) { usage(stdout); exit(0); }
        else if (strcmp(f, "--model") == 0) rc = parse_choice(f, a, kinds, 2, &o->cfg.kind);
        else if (strcmp(f, "--d") == 0) { rc = parse_long(f, a, 1, 4096, &v); o->cfg.n_dims = (int)v; }
        else if (strcmp(f, "--n") == 0) { rc = parse_long(f, a, 1, 100000, &v); o->tc.n_points = (int)v; }
        else if (strcmp(f, "--positions") == 0) rc = parse_long(f, a, 1, 100000, &positions);
        else if (strcmp(f, "--C") == 0) { rc = parse_long(f, a, 1, 65536, &v); o->cfg.n_embd = (int)v; }
        else if (strcmp(f, "--H") == 0) { rc = parse_long(f, a, 1, 65536, &v); o->cfg.n_head = (int)v; }
        else if (strcmp(f, "--L") == 0) { rc = parse_long(f, a, 1, LTF_MAX_LAYERS, &v); o->cfg.n_layer = (int)v; }
        else if (strcmp(f, "--b") == 0) { rc = parse_long(f, a, 1, 100000, &v); o->cfg.n_loops = (int)v; }
        else if (strcmp(f, "--T") == 0) { rc = parse_long(f, a, 1, 100000, &v); o->cfg.loop_window = (int)v; }
        else if (strcmp(f, "--mask") == 0) rc = parse_choice(f, a, masks, 3, &o->cfg.mask_mode);
        else if (strcmp(f, "--mask-n") == 0) { rc = parse_long(f, a, 0, 100000, &v); o->cfg.mask_pairs = (int)v; }
        else if (strcmp(f, "--mask-when") == 0) rc = parse_choice(f, a, whens, 4, &o->cfg.mask_when);
        else if (strcmp(f, "--steps") == 0) rc = parse_long(f, a, 0, 100000000, &o->steps);
        else if (strcmp(f, "--batch") == 0) { rc = parse_long(f, a, 1, 1000000, &v); o->tc.batch_size = (int)v; }
        else if (strcmp(f, "--lr") == 0) rc = parse_float(f, a, 1e-12, 10, &o->tc.lr);
        else if (strcmp(f, "--wd") == 0) rc = parse_float(f, a, 0, 1e3, &o->tc.weight_decay);
        else if (strcmp(f, "--seed") == 0) { rc = parse_long(f, a, 0, 0x7fffffffL, &v); o->seed = (uint64_t)v; }
        else if (strcmp(f, "--eval-prompts") == 0) { rc = parse_long(f, a, 1, 10000000, &v); o->eval_prompts = (int)v; }
        else if (strcmp(f, "--eval-loops") == 0) rc = parse_long(f, a, 1, 1000000, &eval_loops);
        else if (strcmp(f, "--out") == 0) { if (a && *a) o->out = a; else rc = -1, fprintf(stderr, "demo: --out needs a folder name\n"); }
        else { fprintf(stderr, "demo: unknown flag '%s' (see demo --help)\n", f); return -1; }
        if (rc != 0) return -1;
    }
    if (o->cfg.mask_when == 0) o->cfg.mask_when = LTF_AT_BOTH;
    o->cfg.n_positions = positions > 0 ? (int)positions : o->tc.n_points;
    o->eval_loops = eval_loops > 0 ? (int)eval_loops : o->cfg.n_loops;
    char err[LTF_ERR_LEN];
    if (ltf_config_check(&o->cfg, err) != 0 || ltf_train_config_check(&o->tc, &o->cfg, err) != 0) {
        fprintf(stderr, "demo: %s\n", err);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ output */

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void fmt_time(char *buf, size_t n, double s) {
    if (s < 0 || !isfinite(s)) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

/* A progress line: redrawn in place on a terminal, a plain line every 5 s otherwise. */
typedef struct { int tty; double start, last_draw; } progress;

static void progress_draw(progress *p, long step, long steps, double loss, int final) {
    double t = now_s(), el = t - p->start;
    if (!final && t - p->last_draw < (p->tty ? 0.2 : 5.0)) return;
    p->last_draw = t;
    double rate = el > 0 ? step / el : 0;
    char eta[32], elapsed[32];
    fmt_time(eta, sizeof eta, rate > 0 ? (steps - step) / rate : 0);
    fmt_time(elapsed, sizeof elapsed, el);
    fprintf(stderr, "%sstep %ld/%ld  loss %.4f  %.1f steps/s  elapsed %s  ETA %s%s",
            p->tty ? "\r" : "", step, steps, loss, rate, elapsed, eta, p->tty ? "\033[K" : "\n");
    if (final && p->tty) fprintf(stderr, "\n");
    fflush(stderr);
}

/* Writes path atomically: to path.tmp, flushed and closed, then renamed over path. */
static int write_atomic(const char *path, const char *text) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) { fprintf(stderr, "demo: cannot write %s: %s\n", tmp, strerror(errno)); return -1; }
    int ok = fputs(text, f) >= 0;
    ok = (fflush(f) == 0) && ok;
    ok = (fsync(fileno(f)) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "demo: cannot write %s: %s\n", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

static void sb_printf(char **sb, const char *fmt, ...) {   /* append to a stb_ds char array */
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        size_t len = arrlenu(*sb);
        if (len > 0) len--;                                   /* drop the previous '\0' */
        arrsetlen(*sb, len + (size_t)n + 1);
        vsnprintf(*sb + len, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
}

static int make_dir(const char *path) {
    if (mkdir(path, 0755) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
    }
    fprintf(stderr, "demo: cannot create output folder '%s': %s\n", path, errno == EEXIST ? "a file has that name" : strerror(errno));
    return -1;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
    options o;
    if (parse_args(argc, argv, &o) != 0) return 2;
    if (make_dir(o.out) != 0) return 1;
    ltf_config *c = &o.cfg;
    int B = o.tc.batch_size, n = o.tc.n_points, d = c->n_dims;
    ltf_model m;
    char err[LTF_ERR_LEN];
    if (ltf_model_create(&m, c, o.seed, err) != 0) { fprintf(stderr, "demo: %s\n", err); return 1; }
    ltf_task task = ltf_task_linear_regression(d, d);
    ltf_rng data;
    ltf_rng_seed(&data, o.seed + 1);
    float *xs = (float *)malloc(sizeof(float) * (size_t)B * n * d), *ys = (float *)malloc(sizeof(float) * (size_t)B * n);
    if (!xs || !ys) { fprintf(stderr, "demo: out of memory for a batch of %d x %d points\n", B, n); return 1; }

    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    fprintf(stderr, "demo: %s model, d=%d n=%d C=%d H=%d L=%d", c->kind == LTF_LOOPED ? "looped" : "standard",
            d, n, c->n_embd, c->n_head, c->n_layer);
    if (c->kind == LTF_LOOPED) fprintf(stderr, " b=%d T=%d", c->n_loops, c->loop_window);
    fprintf(stderr, ", %zu params, batch %d, lr %g, %ld steps, %d thread%s, %.2f GFLOP/step\n",
            ltf_model_num_params(&m), B, (double)o.tc.lr, o.steps, threads, threads == 1 ? "" : "s",
            ltf_flops_per_step(c, B, n) / 1e9);

    /* training */
    float *history = NULL;   /* stb_ds array: loss of every step */
    progress p;
    p.tty = isatty(2); p.start = now_s(); p.last_draw = 0;
    double shown = 0;
    for (long s = 0; s < o.steps; s++) {
        float loss;
        ltf_task_sample(&task, &data, B, n, xs, ys);
        if (ltf_train_step(&m, &o.tc, xs, ys, B, n, &loss) != 0) {
            fprintf(stderr, "\ndemo: step %ld: %s\n", s, m.err);
            return 1;
        }
        arrput(history, loss);
        shown = s == 0 ? loss : 0.98 * shown + 0.02 * loss;     /* smoothed for reading */
        progress_draw(&p, s + 1, o.steps, shown, s + 1 == o.steps);
    }
    double train_s = now_s() - p.start;

    /* evaluation: the model and each baseline on the same test prompts (same seed) */
    enum { N_SHOWN = 4 };   /* the baselines in order[] below */
    double *err_k[1 + N_SHOWN];
    for (int i = 0; i <= N_SHOWN; i++) err_k[i] = (double *)malloc(sizeof(double) * n);
    ltf_rng eval_rng;
    ltf_rng_seed(&eval_rng, o.seed + 2);
    if (ltf_evaluate(&m, &task, &eval_rng, o.eval_prompts, n, o.eval_loops, err_k[0], NULL) != 0) {
        fprintf(stderr, "demo: evaluation: %s\n", m.err);
        return 1;
    }
    const int order[] = {LTF_BASE_LSQ, LTF_BASE_AVERAGING, LTF_BASE_KNN3, LTF_BASE_ZERO};
    for (int i = 0; i < N_SHOWN; i++) {
        ltf_rng_seed(&eval_rng, o.seed + 2);
        ltf_baseline_evaluate(order[i], &task, &eval_rng, o.eval_prompts, n, err_k[1 + i]);
    }

    char *csv = NULL, *loss_csv = NULL;
    printf("normalized error (squared error / d) by in-context examples k, %d test prompts, trained %ld steps in %.1f s\n",
           o.eval_prompts, o.steps, train_s);
    if (c->kind == LTF_LOOPED) printf("model evaluated at %d loop iterations\n", o.eval_loops);
    printf("%4s %12s %14s %12s %12s %12s\n", "k", "model", "least_squares", "averaging", "3nn", "zero");
    sb_printf(&csv, "k,model");
    for (int i = 0; i < N_SHOWN; i++) sb_printf(&csv, ",%s", ltf_baseline_name(order[i]));
    sb_printf(&csv, "\n");
    for (int k = 0; k < n; k++) {
        printf("%4d %12.4f %14.4f %12.4f %12.4f %12.4f%s\n", k, err_k[0][k], err_k[1][k], err_k[2][k], err_k[3][k],
               err_k[4][k], k == 2 * d ? "   <- k = 2d" : "");
        sb_printf(&csv, "%d", k);
        for (int i = 0; i <= N_SHOWN; i++) sb_printf(&csv, ",%.6g", err_k[i][k]);
        sb_printf(&csv, "\n");
    }
    sb_printf(&loss_csv, "step,loss\n");
    for (long s = 0; s < (long)arrlen(history); s++) sb_printf(&loss_csv, "%ld,%.6g\n", s, (double)history[s]);
    char path[4096];
    int rc = 0;
    snprintf(path, sizeof path, "%s/eval.csv", o.out);
    rc |= write_atomic(path, csv);
    printf("wrote %s", path);
    snprintf(path, sizeof path, "%s/train_loss.csv", o.out);
    rc |= write_atomic(path, loss_csv);
    printf(" and %s\n", path);

    arrfree(csv); arrfree(loss_csv); arrfree(history);
    for (int i = 0; i <= N_SHOWN; i++) free(err_k[i]);
    free(xs); free(ys);
    ltf_model_free(&m);
    return rc ? 1 : 0;
}

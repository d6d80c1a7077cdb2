/* workbench/probe.h - probing a trained model: can the iterative algorithm be read off its
 * states? (demo probe; the paper's model_probe.py asks the same with small MLP probes)
 *
 * Part of the looped-tf workbench (the demo's side of the tree, README "Layout"): include it
 * after looped_tf.h and workbench/baselines.h (for ltf_lstsq_minnorm) in the one file that
 * defines LOOPED_TF_IMPLEMENTATION (demo.c, test.c). MIT licence, as the header.
 *
 * The model is frozen. For every state s (the input E and the loop state after each iteration;
 * for the standard model the residual stream entering each layer: ltf_hidden_states) and every
 * prefix of i points, a probe reads the state at the y token of point i (the first token that
 * has seen points 1..i) and predicts
 *   (a) w_ols(i): the least-squares solution from points 1..i (minimum norm for i < d), i = 1..d;
 *   (b) g(i) = X_{1:i}^T y_{1:i} / n, the gradient target, i = 1..n.
 * The probe is ridge regression on the C numbers of the state plus a bias, fit on half of the
 * prompts and scored on the other half: error = sum ||probe - target||^2 / sum ||target -
 * mean||^2 (0: read off exactly; 1: no better than the mean), averaged over i. The paper's probes
 * are 2-layer MLPs over a learned softmax pooling of the sequence, trained by Adam for 10k
 * steps; a linear probe at one token costs seconds on a CPU and asks the stricter question.
 * The control (the paper's control_exp): probes fit on prompts whose w is fixed (all ones),
 * scored on the real test prompts: they cannot have learned the algorithm.
 */
#ifndef LTF_WORKBENCH_PROBE_H
#define LTF_WORKBENCH_PROBE_H

typedef struct {
    int states;                       /* S: loop iterations + 1, or layers + 1                  */
    double *ols, *grad;               /* [S] error of the probes for w_ols and for X^T y / n    */
    double *ols_control, *grad_control;   /* [S] probes fit on the control task (w = 1)         */
} ltf_probe_result;

/* Fits W [(nf + 1) x nt] minimizing ||[F 1] W - Y||^2 + lambda ||W||^2 (rows samples; the
 * bias is penalized too, lightly): Cholesky of the normal equations. 0, or -1. */
int ltf_ridge_fit(const double *F, const double *Y, int rows, int nf, int nt, double lambda, double *W);
/* The probe experiment on m (n points per prompt, n_loops iterations for a looped model,
 * n_prompts prompts of linear regression drawn from seed); r's arrays are allocated here
 * (ltf_probe_free). */
int ltf_probe_run(ltf_model *m, int n, int n_loops, int n_prompts, uint64_t seed, ltf_probe_result *r,
                  char err[LTF_ERR_LEN]);
void ltf_probe_free(ltf_probe_result *r);

/* ---- implementation ---- */

int ltf_ridge_fit(const double *F, const double *Y, int rows, int nf, int nt, double lambda, double *W) {
    int q = nf + 1;
    double *A = (double *)LTF_MALLOC(sizeof(double) * (size_t)q * q), *Bm = (double *)LTF_MALLOC(sizeof(double) * (size_t)q * nt);
    if (!A || !Bm) { LTF_FREE(A); LTF_FREE(Bm); return -1; }
    memset(A, 0, sizeof(double) * (size_t)q * q);
    memset(Bm, 0, sizeof(double) * (size_t)q * nt);
    for (int r = 0; r < rows; r++) {   /* A = [F 1]^T [F 1], Bm = [F 1]^T Y */
        const double *f = F + (size_t)r * nf;
        for (int a = 0; a < q; a++) {
            double fa = a < nf ? f[a] : 1.0;
            for (int b = 0; b <= a; b++) A[a * q + b] += fa * (b < nf ? f[b] : 1.0);
            for (int t = 0; t < nt; t++) Bm[a * nt + t] += fa * Y[(size_t)r * nt + t];
        }
    }
    for (int a = 0; a < q; a++) A[a * q + a] += lambda;
    for (int j = 0; j < q; j++) {   /* Cholesky, lower: A = L L^T */
        double s = A[j * q + j];
        for (int k = 0; k < j; k++) s -= A[j * q + k] * A[j * q + k];
        if (!(s > 0)) { LTF_FREE(A); LTF_FREE(Bm); return -1; }
        A[j * q + j] = sqrt(s);
        for (int i = j + 1; i < q; i++) {
            double v = A[i * q + j];
            for (int k = 0; k < j; k++) v -= A[i * q + k] * A[j * q + k];
            A[i * q + j] = v / A[j * q + j];
        }
    }
    for (int t = 0; t < nt; t++) {   /* L z = b, then L^T w = z */
        for (int i = 0; i < q; i++) {
            double v = Bm[i * nt + t];
            for (int k = 0; k < i; k++) v -= A[i * q + k] * W[k * nt + t];
            W[i * nt + t] = v / A[i * q + i];
        }
        for (int i = q - 1; i >= 0; i--) {
            double v = W[i * nt + t];
            for (int k = i + 1; k < q; k++) v -= A[k * q + i] * W[k * nt + t];
            W[i * nt + t] = v / A[i * q + i];
        }
    }
    LTF_FREE(A); LTF_FREE(Bm);
    return 0;
}

void ltf_probe_free(ltf_probe_result *r) {
    LTF_FREE(r->ols); LTF_FREE(r->grad); LTF_FREE(r->ols_control); LTF_FREE(r->grad_control);
    memset(r, 0, sizeof *r);
}

/* feat [S][P][n][C] (double) from the model's states at the y token of every point */
static int ltf__probe_features(ltf_model *m, const float *xs, const float *ys, int P, int n, int n_loops, int S,
                               double *feat, char *err) {
    int C = m->cfg.n_embd, d = m->cfg.n_dims, chunk = 64, N = 2 * n;
    float *states = (float *)LTF_MALLOC(sizeof(float) * (size_t)S * chunk * N * C);
    if (!states) return ltf__fail(err, "out of memory for the probe's states");
    for (int p0 = 0; p0 < P; p0 += chunk) {
        int B = P - p0 < chunk ? P - p0 : chunk;
        if (ltf_hidden_states(m, xs + (size_t)p0 * n * d, ys + (size_t)p0 * n, B, n, n_loops, states) != 0) {
            LTF_FREE(states);
            return ltf__fail(err, "%s", m->err);
        }
        for (int s = 0; s < S; s++)
            for (int b = 0; b < B; b++)
                for (int i = 0; i < n; i++) {
                    const float *h = states + (((size_t)s * B + b) * N + 2 * i + 1) * C;   /* y token of point i */
                    double *f = feat + (((size_t)s * P + p0 + b) * n + i) * C;
                    for (int c = 0; c < C; c++) f[c] = h[c];
                }
    }
    LTF_FREE(states);
    return 0;
}

/* targets [P][n][d] for the prefixes i < count: w_ols from the first i+1 points (kind 0) or
 * X^T y / n over them (kind 1) */
static void ltf__probe_targets(const float *xs, const float *ys, int P, int n, int d, int kind, int count, double *tg) {
    double *X = (double *)LTF_MALLOC(sizeof(double) * (size_t)n * d), *y = (double *)LTF_MALLOC(sizeof(double) * (size_t)n);
    for (int p = 0; p < P; p++) {
        for (int j = 0; j < n * d; j++) X[j] = xs[(size_t)p * n * d + j];
        for (int j = 0; j < n; j++) y[j] = ys[(size_t)p * n + j];
        for (int i = 0; i < count; i++) {
            double *t = tg + ((size_t)p * n + i) * d;
            if (kind == 0) ltf_lstsq_minnorm(i + 1, d, X, y, t);
            else
                for (int j = 0; j < d; j++) {
                    double s = 0;
                    for (int k = 0; k <= i; k++) s += X[k * d + j] * y[k];
                    t[j] = s / n;
                }
        }
    }
    LTF_FREE(X); LTF_FREE(y);
}

/* One probe per prefix i < count: fit on the fit rows (feature/target sets), score on the test
 * rows; the mean normalized error over i. */
static double ltf__probe_score(const double *fit_f, const double *fit_t, int fit_rows, const double *test_f,
                               const double *test_t, int test_rows, int n, int count, int C, int d) {
    double *F = (double *)LTF_MALLOC(sizeof(double) * (size_t)fit_rows * C), *T = (double *)LTF_MALLOC(sizeof(double) * (size_t)fit_rows * d);
    double *W = (double *)LTF_MALLOC(sizeof(double) * (size_t)(C + 1) * d), total = 0;
    for (int i = 0; i < count; i++) {
        double tr = 0, mean[64] = {0}, num = 0, den = 0;
        for (int r = 0; r < fit_rows; r++) {
            memcpy(F + (size_t)r * C, fit_f + ((size_t)r * n + i) * C, sizeof(double) * C);
            memcpy(T + (size_t)r * d, fit_t + ((size_t)r * n + i) * d, sizeof(double) * d);
            for (int c = 0; c < C; c++) tr += F[(size_t)r * C + c] * F[(size_t)r * C + c];
            for (int j = 0; j < d && j < 64; j++) mean[j] += T[(size_t)r * d + j] / fit_rows;
        }
        double lambda = 1e-3 * tr / C + 1e-9;   /* light: relative to the features' scale */
        if (ltf_ridge_fit(F, T, fit_rows, C, d, lambda, W) != 0) { total += 1.0; continue; }
        for (int r = 0; r < test_rows; r++) {
            const double *f = test_f + ((size_t)r * n + i) * C, *t = test_t + ((size_t)r * n + i) * d;
            for (int j = 0; j < d; j++) {
                double v = W[(size_t)C * d + j];
                for (int c = 0; c < C; c++) v += f[c] * W[(size_t)c * d + j];
                num += (v - t[j]) * (v - t[j]);
                den += (t[j] - mean[j < 64 ? j : 0]) * (t[j] - mean[j < 64 ? j : 0]);
            }
        }
        total += den > 0 ? num / den : 0.0;
    }
    LTF_FREE(F); LTF_FREE(T); LTF_FREE(W);
    return total / count;
}

int ltf_probe_run(ltf_model *m, int n, int n_loops, int n_prompts, uint64_t seed, ltf_probe_result *r, char err[LTF_ERR_LEN]) {
    int d = m->cfg.n_dims, C = m->cfg.n_embd, P = n_prompts, half = n_prompts / 2;
    int S = m->cfg.kind == LTF_STANDARD ? m->cfg.n_layer + 1 : n_loops + 1, rc = 0;
    memset(r, 0, sizeof *r);
    if (d > 64) return ltf__fail(err, "probe: d = %d: at most 64", d);
    if (n_prompts < 8) return ltf__fail(err, "probe: %d prompts: need at least 8", n_prompts);
    if (n < 1 || n > m->cfg.n_positions) return ltf__fail(err, "probe: n = %d: must be in 1..%d", n, m->cfg.n_positions);
    size_t pts = (size_t)P * n;
    float *xs = (float *)LTF_MALLOC(sizeof(float) * pts * d * 2), *ys = (float *)LTF_MALLOC(sizeof(float) * pts * 2);
    double *feat = (double *)LTF_MALLOC(sizeof(double) * (size_t)S * pts * C * 2);
    double *tg = (double *)LTF_MALLOC(sizeof(double) * pts * d * 4);
    r->ols = (double *)LTF_MALLOC(sizeof(double) * S); r->grad = (double *)LTF_MALLOC(sizeof(double) * S);
    r->ols_control = (double *)LTF_MALLOC(sizeof(double) * S); r->grad_control = (double *)LTF_MALLOC(sizeof(double) * S);
    if (!xs || !ys || !feat || !tg || !r->ols || !r->grad || !r->ols_control || !r->grad_control) {
        rc = ltf__fail(err, "out of memory for the probe (%d prompts, %d states)", P, S);
        goto done;
    }
    r->states = S;
    {
        ltf_rng rng;
        ltf_task task = ltf_task_linear_regression(d, d);
        float *cx = xs + pts * d, *cy = ys + pts;   /* the control: w = (1, ..., 1) */
        ltf_rng_seed(&rng, seed);
        ltf_task_sample(&task, &rng, P, n, xs, ys);
        ltf_task_sample(&task, &rng, P, n, cx, cy);
        for (size_t q = 0; q < pts; q++) {
            double s = 0;
            for (int j = 0; j < d; j++) s += cx[q * d + j];
            cy[q] = (float)s;
        }
        double *cfeat = feat + (size_t)S * pts * C;
        if (ltf__probe_features(m, xs, ys, P, n, n_loops, S, feat, err) != 0 ||
            ltf__probe_features(m, cx, cy, P, n, n_loops, S, cfeat, err) != 0) { rc = -1; goto done; }
        for (int kind = 0; kind < 2; kind++) {
            double *t_real = tg, *t_ctrl = tg + pts * d;
            int count = kind == 0 ? (d < n ? d : n) : n;   /* w_ols for i = 1..d, as the paper */
            ltf__probe_targets(xs, ys, P, n, d, kind, count, t_real);
            ltf__probe_targets(cx, cy, P, n, d, kind, count, t_ctrl);
            for (int s = 0; s < S; s++) {
                const double *fr = feat + (size_t)s * pts * C, *fc = cfeat + (size_t)s * pts * C;
                double e = ltf__probe_score(fr, t_real, half, fr + (size_t)half * n * C, t_real + (size_t)half * n * d,
                                            P - half, n, count, C, d);
                double ec = ltf__probe_score(fc, t_ctrl, P, fr + (size_t)half * n * C, t_real + (size_t)half * n * d,
                                             P - half, n, count, C, d);
                if (kind == 0) { r->ols[s] = e; r->ols_control[s] = ec; }
                else { r->grad[s] = e; r->grad_control[s] = ec; }
            }
        }
    }
done:
    LTF_FREE(xs); LTF_FREE(ys); LTF_FREE(feat); LTF_FREE(tg);
    if (rc != 0) ltf_probe_free(r);
    return rc;
}

#endif /* LTF_WORKBENCH_PROBE_H */

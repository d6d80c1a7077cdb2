/* workbench/baselines.h - the classic in-context predictors the paper compares against:
 * zero, least squares (minimum norm), averaging, 3-NN, Lasso, a greedy decision tree and a
 * 2-layer ReLU net trained by Adam, each fit per prompt on its k earlier points
 * (docs/MATH.md §8), and their normalized error by k over a task's prompts.
 *
 * Part of the looped-tf workbench (the demo's side of the tree, README "Layout"): include it
 * after looped_tf.h in the one file that defines LOOPED_TF_IMPLEMENTATION (demo.c, test.c); it
 * uses the header's private helpers (ltf__fail, LTF_MALLOC/LTF_FREE, ltf__fill_uniform) and its
 * op ltf_adam_update. MIT licence, as the header.
 */
#ifndef LTF_WORKBENCH_BASELINES_H
#define LTF_WORKBENCH_BASELINES_H


enum { LTF_BASE_ZERO = 0, LTF_BASE_LSQ, LTF_BASE_AVERAGING, LTF_BASE_KNN3,
       LTF_BASE_LASSO, LTF_BASE_TREE, LTF_BASE_RELU_NET, LTF_BASE_COUNT };
const char *ltf_baseline_name(int kind);
double ltf_baseline_predict(int kind, int k, int d, const float *xs, const float *ys, const float *x);
int    ltf_baseline_evaluate(int kind, const ltf_task *task, ltf_rng *rng, int n_prompts, int n,
                             double *err_by_k, float *err_by_prompt);
int    ltf_lstsq_minnorm(int k, int d, const double *X, const double *y, double *w);

/* Classification (docs/MATH.md §13): the class each predicts, or -1 (a K it does not take, no memory). */
enum { LTF_CLS_MAJORITY = 0, LTF_CLS_LOGREG, LTF_CLS_KNN3, LTF_CLS_TREE, LTF_CLS_COUNT };
const char *ltf_cls_baseline_name(int kind);
int    ltf_cls_baseline_predict(int kind, int k, int d, int K, const float *xs, const float *ys, const float *x);
int    ltf_logreg_fit(int k, int d, const float *xs, const float *ys, double *w);   /* w [d+1]; 0 or -1 */

/* docs/MATH.md §8. Each predicts y for query x from the k earlier points (xs [k, d], ys [k]) of
 * the same prompt only, and predicts 0 when k = 0.
 *   least squares: w = X^+ y, the minimum-norm solution when k < d. Solved by one-sided Jacobi
 *     SVD in double (X V = U S), w = sum_j v_j (u_j . y) / s_j^2 over s_j > 1e-10 s_max: no
 *     normal equations, so nothing blows up near k = d.
 *   averaging: w = mean_j y_j x_j.
 *   3-NN: mean y of the 3 earliest-closest earlier x (Euclidean; all of them when k < 3).
 *   Lasso (sparse regression; sklearn Lasso(alpha=0.01, fit_intercept=False)): w minimises
 *     (1/(2k)) |y - X w|^2 + alpha |w|_1. Cyclic coordinate descent in double from w = 0:
 *       w_j <- S(X_j . r_j, k alpha) / (X_j . X_j),  r_j = y - X w + X_j w_j (the residual
 *       without j),  S(z, t) = sign(z) max(|z| - t, 0),
 *     sweeping j = 0..d-1 until a sweep moves no w_j by 1e-6 or more (at most 10^6 sweeps).
 *     With k < d the weight can creep between nearly tied columns by a fixed step per sweep:
 *     ~10^4 sweeps for k = 1, |x_0| = 1, |x_3| = 1.02; up to 7e5 seen on the sparse task at
 *     d = 20, k = 1 (~50 ms; k = 40 takes ~8 us). A cap of 10^4 there leaves predictions off by
 *     up to 1.8. (sklearn's duality-gap stop, tol 1e-4, which the paper used, ends such cases
 *     early too; the mean error is the same within noise.)
 *   decision tree (sklearn DecisionTreeRegressor(max_depth=4), CART): a node splits on the
 *     (coordinate c, threshold t) minimising SSE(left) + SSE(right), left = {x_c <= t}, t the
 *     midpoint of two neighbouring distinct sorted values; a node is a leaf at depth 4, with
 *     fewer than 2 points, or when no split lowers its SSE; a leaf predicts its mean y. Only the
 *     path of the query is grown. Ties: lowest coordinate, then lowest threshold (sklearn
 *     breaks them by a random feature order).
 *   ReLU net (the paper's GDModel for relu_2nn): f(x) = relu(x W1 + b1) W2 + b2, 100 hidden,
 *     every weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as torch.nn.Linear, drawn
 *     from a seed hashed from (k, d, xs, ys) so the prediction is a pure function of its
 *     inputs. 100 Adam steps (lr 5e-3, betas 0.9/0.999, eps 1e-8, torch's bias correction)
 *     on the MSE of a minibatch of min(k, 100) distinct earlier points (all of them when
 *     k <= 100), in float as torch. Costs ~4 * 100 * min(k, 100) * 100 * d flops.        */

const char *ltf_baseline_name(int kind) {
    switch (kind) {
    case LTF_BASE_ZERO: return "zero";
    case LTF_BASE_LSQ: return "least_squares";
    case LTF_BASE_AVERAGING: return "averaging";
    case LTF_BASE_KNN3: return "3nn";
    case LTF_BASE_LASSO: return "lasso";
    case LTF_BASE_TREE: return "decision_tree";
    case LTF_BASE_RELU_NET: return "relu_net";
    default: return "?";
    }
}

int ltf_lstsq_minnorm(int k, int d, const double *X, const double *y, double *w) {
    double *U = (double *)LTF_MALLOC(sizeof(double) * (size_t)k * d);
    double *V = (double *)LTF_MALLOC(sizeof(double) * (size_t)d * d);
    if (!U || !V) { LTF_FREE(U); LTF_FREE(V); return -1; }
    memcpy(U, X, sizeof(double) * (size_t)k * d);   /* columns u_j = X[:, j], rotated in place */
    for (int i = 0; i < d * d; i++) V[i] = (i % (d + 1)) == 0 ? 1.0 : 0.0;
    for (int sweep = 0; sweep < 60; sweep++) {
        int rotated = 0;
        for (int p = 0; p < d - 1; p++)
            for (int q = p + 1; q < d; q++) {
                double al = 0, be = 0, ga = 0;
                for (int i = 0; i < k; i++) {
                    double up = U[i * d + p], uq = U[i * d + q];
                    al += up * up; be += uq * uq; ga += up * uq;
                }
                if (fabs(ga) <= 1e-15 * sqrt(al * be) || ga == 0.0) continue;
                rotated = 1;
                double zeta = (be - al) / (2.0 * ga);
                double tn = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1.0 + zeta * zeta));
                double cs = 1.0 / sqrt(1.0 + tn * tn), sn = cs * tn;
                for (int i = 0; i < k; i++) {
                    double up = U[i * d + p], uq = U[i * d + q];
                    U[i * d + p] = cs * up - sn * uq; U[i * d + q] = sn * up + cs * uq;
                }
                for (int i = 0; i < d; i++) {
                    double vp = V[i * d + p], vq = V[i * d + q];
                    V[i * d + p] = cs * vp - sn * vq; V[i * d + q] = sn * vp + cs * vq;
                }
            }
        if (!rotated) break;
    }
    double smax = 0.0;
    for (int j = 0; j < d; j++) {
        double s2 = 0;
        for (int i = 0; i < k; i++) s2 += U[i * d + j] * U[i * d + j];
        if (s2 > smax) smax = s2;
    }
    for (int j = 0; j < d; j++) w[j] = 0.0;
    for (int j = 0; j < d; j++) {
        double s2 = 0, uy = 0;
        for (int i = 0; i < k; i++) { s2 += U[i * d + j] * U[i * d + j]; uy += U[i * d + j] * y[i]; }
        if (s2 <= 1e-20 * smax || s2 == 0.0) continue;       /* s_j <= 1e-10 s_max: drop */
        for (int i = 0; i < d; i++) w[i] += V[i * d + j] * uy / s2;
    }
    LTF_FREE(U); LTF_FREE(V);
    return 0;
}

/* Lasso by coordinate descent (formula above). The columns are copied as rows of Xt [d, k] so
 * each coordinate reads contiguous memory; r = y - X w is kept up to date. */
static double ltf__lasso_predict(int k, int d, const float *xs, const float *ys, const float *x, double alpha) {
    double *Xt = (double *)LTF_MALLOC(sizeof(double) * ((size_t)d * k + k + 2 * (size_t)d));
    if (!Xt) return NAN;
    double *r = Xt + (size_t)d * k, *w = r + k, *sq = w + d, p = 0.0;
    for (int i = 0; i < k; i++) {
        r[i] = ys[i];
        for (int j = 0; j < d; j++) Xt[(size_t)j * k + i] = xs[(size_t)i * d + j];
    }
    for (int j = 0; j < d; j++) {
        w[j] = 0.0; sq[j] = 0.0;
        for (int i = 0; i < k; i++) sq[j] += Xt[(size_t)j * k + i] * Xt[(size_t)j * k + i];
    }
    double t = alpha * k;   /* the l1 threshold once the objective is multiplied by k */
    for (int sweep = 0; sweep < 1000000; sweep++) {
        double max_change = 0.0;
        for (int j = 0; j < d; j++) {
            if (sq[j] == 0.0) continue;   /* an all-zero column: w_j stays 0 */
            const double *xj = Xt + (size_t)j * k;
            double rho = sq[j] * w[j];
            for (int i = 0; i < k; i++) rho += xj[i] * r[i];
            double wj = (rho > t ? rho - t : rho < -t ? rho + t : 0.0) / sq[j];
            double change = wj - w[j];
            if (change == 0.0) continue;
            for (int i = 0; i < k; i++) r[i] -= change * xj[i];
            w[j] = wj;
            if (fabs(change) > max_change) max_change = fabs(change);
        }
        if (max_change < 1e-6) break;
    }
    for (int j = 0; j < d; j++) p += w[j] * x[j];
    LTF_FREE(Xt);
    return p;
}

/* one point of a tree node seen along coordinate c: (x_c, y); sorted by x_c, then y, so the
 * order (and so every prefix sum) is the same on every run */
typedef struct { double v, y; } ltf__vy;
static int ltf__vy_cmp(const void *a, const void *b) {
    const ltf__vy *p = (const ltf__vy *)a, *q = (const ltf__vy *)b;
    if (p->v != q->v) return p->v < q->v ? -1 : 1;
    return (p->y > q->y) - (p->y < q->y);
}

/* The CART tree (formula above), grown only along the query's path: at each node find the best
 * split, keep the points on the query's side, repeat. For a split with sums s_L, s_R over n_L,
 * n_R points SSE(left) + SSE(right) = sum y^2 - (s_L^2 / n_L + s_R^2 / n_R), so the best split
 * maximises the score s_L^2 / n_L + s_R^2 / n_R; it lowers the node's SSE by score - s^2 / n. */
static double ltf__tree_predict(int k, int d, const float *xs, const float *ys, const float *x, int max_depth) {
    int *idx = (int *)LTF_MALLOC(sizeof(int) * (size_t)k);
    ltf__vy *pts = (ltf__vy *)LTF_MALLOC(sizeof(ltf__vy) * (size_t)k);
    if (!idx || !pts) { LTF_FREE(idx); LTF_FREE(pts); return NAN; }
    int n = k;
    for (int i = 0; i < k; i++) idx[i] = i;
    for (int depth = 0; depth < max_depth && n >= 2; depth++) {
        double s = 0.0, sumsq = 0.0;
        float ymin = ys[idx[0]], ymax = ys[idx[0]];
        for (int i = 0; i < n; i++) {
            float y = ys[idx[i]];
            s += y; sumsq += (double)y * y;
            ymin = y < ymin ? y : ymin; ymax = y > ymax ? y : ymax;
        }
        if (ymin == ymax) break;                   /* pure node */
        int best_c = -1;
        double best_score = -1.0, best_t = 0.0;
        for (int c = 0; c < d; c++) {
            for (int i = 0; i < n; i++) { pts[i].v = xs[(size_t)idx[i] * d + c]; pts[i].y = ys[idx[i]]; }
            qsort(pts, (size_t)n, sizeof *pts, ltf__vy_cmp);
            double sl = 0.0;
            for (int i = 1; i < n; i++) {          /* left = pts[0..i-1] */
                sl += pts[i - 1].y;
                if (pts[i].v == pts[i - 1].v) continue;
                double sr = s - sl, score = sl * sl / i + sr * sr / (n - i);
                if (score > best_score) { best_score = score; best_c = c; best_t = pts[i - 1].v / 2.0 + pts[i].v / 2.0; }
            }
        }
        /* no threshold anywhere, or a gain at the level of the scores' rounding: leaf */
        if (best_c < 0 || best_score - s * s / n <= 1e-12 * sumsq) break;
        int go_left = (double)x[best_c] <= best_t, kept = 0;
        for (int i = 0; i < n; i++)
            if (((double)xs[(size_t)idx[i] * d + best_c] <= best_t) == go_left) idx[kept++] = idx[i];
        n = kept;
    }
    double mean = 0.0;
    for (int i = 0; i < n; i++) mean += ys[idx[i]];
    mean /= n;
    LTF_FREE(idx); LTF_FREE(pts);
    return mean;
}

/* f(x) for the ReLU net; W1 is stored [d, H] (input-major, torch's weight transposed) so the
 * hidden layer is d axpys of length H. Leaves the pre-activations in h. */
static float ltf__relu_net_forward(int d, int H, const float *W1, const float *b1, const float *W2, float b2,
                                   const float *x, float *h) {
    for (int j = 0; j < H; j++) h[j] = b1[j];
    for (int c = 0; c < d; c++) {
        float xc = x[c];
        const float *row = W1 + (size_t)c * H;
        for (int j = 0; j < H; j++) h[j] += xc * row[j];
    }
    float out = b2;
    for (int j = 0; j < H; j++) out += (h[j] > 0.0f ? h[j] : 0.0f) * W2[j];
    return out;
}

/* FNV-1a over k, d and the bits of xs and ys: the ReLU net's seed */
static uint64_t ltf__hash_data(int k, int d, const float *xs, const float *ys) {
    uint64_t h = 1469598103934665603ULL;
    uint32_t words[2];
    words[0] = (uint32_t)k; words[1] = (uint32_t)d;
    const unsigned char *parts[3];
    size_t lens[3];
    parts[0] = (const unsigned char *)words; lens[0] = sizeof words;
    parts[1] = (const unsigned char *)xs; lens[1] = sizeof(float) * (size_t)k * d;
    parts[2] = (const unsigned char *)ys; lens[2] = sizeof(float) * (size_t)k;
    for (int p = 0; p < 3; p++)
        for (size_t i = 0; i < lens[p]; i++) { h ^= parts[p][i]; h *= 1099511628211ULL; }
    return h;
}

/* The ReLU net baseline (formula above). Gradients are summed point by point (forward, then
 * backward at once), so the only activations held are one point's H pre-activations. */
static double ltf__relu_net_predict(int k, int d, const float *xs, const float *ys, const float *x) {
    const int H = 100, steps = 100, batch = 100;
    const float lr = 5e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    size_t P = (size_t)d * H + 2 * (size_t)H + 1;
    float *buf = (float *)LTF_MALLOC(sizeof(float) * (4 * P + H));
    int *perm = (int *)LTF_MALLOC(sizeof(int) * (size_t)k);
    if (!buf || !perm) { LTF_FREE(buf); LTF_FREE(perm); return NAN; }
    float *par = buf, *grad = buf + P, *m1 = grad + P, *m2 = m1 + P, *h = m2 + P;
    float *W1 = par, *b1 = W1 + (size_t)d * H, *W2 = b1 + H, *b2 = W2 + H;
    float *gW1 = grad, *gb1 = gW1 + (size_t)d * H, *gW2 = gb1 + H, *gb2 = gW2 + H;
    ltf_rng rng;
    ltf_rng_seed(&rng, ltf__hash_data(k, d, xs, ys));
    ltf__fill_uniform(&rng, W1, (size_t)d * H, 1.0 / sqrt((double)d));
    ltf__fill_uniform(&rng, b1, (size_t)H, 1.0 / sqrt((double)d));
    ltf__fill_uniform(&rng, W2, (size_t)H, 1.0 / sqrt((double)H));
    ltf__fill_uniform(&rng, b2, 1, 1.0 / sqrt((double)H));
    for (size_t i = 0; i < 2 * P; i++) m1[i] = 0.0f;   /* m1 and m2 */
    for (int i = 0; i < k; i++) perm[i] = i;
    int mb = k < batch ? k : batch;
    for (int step = 1; step <= steps; step++) {
        if (k > batch)   /* a fresh uniform subset of mb points: partial Fisher-Yates */
            for (int i = 0; i < mb; i++) {
                int j = i + (int)(ltf_rng_u32(&rng) % (uint32_t)(k - i));
                int tmp = perm[i]; perm[i] = perm[j]; perm[j] = tmp;
            }
        for (size_t i = 0; i < P; i++) grad[i] = 0.0f;
        for (int b = 0; b < mb; b++) {
            const float *xi = xs + (size_t)perm[b] * d;
            float out = ltf__relu_net_forward(d, H, W1, b1, W2, b2[0], xi, h);
            float g = 2.0f * (out - ys[perm[b]]) / (float)mb;   /* d MSE / d out */
            gb2[0] += g;
            for (int j = 0; j < H; j++) {
                float on = h[j] > 0.0f ? 1.0f : 0.0f;
                gW2[j] += g * on * h[j];                       /* g relu(h_j) */
                h[j] = g * W2[j] * on;                         /* h now holds d loss / d h */
                gb1[j] += h[j];
            }
            for (int c = 0; c < d; c++) {
                float xc = xi[c];
                float *row = gW1 + (size_t)c * H;
                for (int j = 0; j < H; j++) row[j] += xc * h[j];
            }
        }
        /* torch.optim.Adam, ltf_adam_update of the header without weight decay */
        float sz = (float)(lr / (1.0 - pow(beta1, step))), bc2 = (float)sqrt(1.0 - pow(beta2, step));
        ltf_adam_update(par, m1, m2, grad, P, sz, bc2, 1.0f, beta1, beta2, eps);
    }
    double p = ltf__relu_net_forward(d, H, W1, b1, W2, b2[0], x, h);
    LTF_FREE(buf); LTF_FREE(perm);
    return p;
}

/* the indices of the (up to) 3 earlier points nearest to x, nearest first (Euclidean; the
 * earlier point on ties); returns how many: min(k, 3) */
static int ltf__nearest3(int k, int d, const float *xs, const float *x, int best[3]) {
    double bd[3] = {INFINITY, INFINITY, INFINITY};
    best[0] = best[1] = best[2] = -1;
    for (int i = 0; i < k; i++) {
        double dist = 0.0;
        for (int j = 0; j < d; j++) { double e = (double)xs[i * d + j] - x[j]; dist += e * e; }
        for (int s = 0; s < 3; s++)
            if (dist < bd[s]) {   /* insert, keeping the earlier point on ties */
                for (int u = 2; u > s; u--) { bd[u] = bd[u - 1]; best[u] = best[u - 1]; }
                bd[s] = dist; best[s] = i;
                break;
            }
    }
    return k < 3 ? k : 3;
}

double ltf_baseline_predict(int kind, int k, int d, const float *xs, const float *ys, const float *x) {
    if (k == 0 || kind == LTF_BASE_ZERO) return 0.0;
    if (kind == LTF_BASE_AVERAGING) {
        double p = 0.0;
        for (int j = 0; j < d; j++) {
            double wj = 0.0;
            for (int i = 0; i < k; i++) wj += (double)ys[i] * xs[i * d + j];
            p += wj / k * x[j];
        }
        return p;
    }
    if (kind == LTF_BASE_KNN3) {
        int best[3], cnt = ltf__nearest3(k, d, xs, x, best);
        double p = 0.0;
        for (int s = 0; s < cnt; s++) p += ys[best[s]];
        return p / cnt;
    }
    if (kind == LTF_BASE_LSQ) {
        double *X = (double *)LTF_MALLOC(sizeof(double) * ((size_t)k * d + k + d));
        if (!X) return NAN;
        double *y = X + (size_t)k * d, *w = y + k, p = 0.0;
        for (int i = 0; i < k * d; i++) X[i] = xs[i];
        for (int i = 0; i < k; i++) y[i] = ys[i];
        if (ltf_lstsq_minnorm(k, d, X, y, w) != 0) p = NAN;
        else for (int j = 0; j < d; j++) p += w[j] * x[j];
        LTF_FREE(X);
        return p;
    }
    if (kind == LTF_BASE_LASSO) return ltf__lasso_predict(k, d, xs, ys, x, 0.01);
    if (kind == LTF_BASE_TREE) return ltf__tree_predict(k, d, xs, ys, x, 4);
    if (kind == LTF_BASE_RELU_NET) return ltf__relu_net_predict(k, d, xs, ys, x);
    return NAN;
}

/* Prompts are drawn in order from rng (so the test prompts equal the model's for the same
 * seed), in chunks of 256; the fits of a chunk run in parallel, one prompt per thread. */
int ltf_baseline_evaluate(int kind, const ltf_task *task, ltf_rng *rng, int n_prompts, int n,
                          double *err_by_k, float *err_by_prompt) {
    if (n_prompts < 1 || n < 1) return -1;
    int d = task->n_dims, chunk = n_prompts < 256 ? n_prompts : 256;
    float *xs = (float *)LTF_MALLOC(sizeof(float) * (size_t)chunk * n * d);
    float *ys = (float *)LTF_MALLOC(sizeof(float) * (size_t)chunk * n);
    double *sq = (double *)LTF_MALLOC(sizeof(double) * (size_t)chunk * n);
    for (int k = 0; k < n; k++) err_by_k[k] = 0.0;
    if (!xs || !ys || !sq) {
        for (int k = 0; k < n; k++) err_by_k[k] = NAN;
        LTF_FREE(xs); LTF_FREE(ys); LTF_FREE(sq);
        return -1;
    }
    for (int p0 = 0; p0 < n_prompts; p0 += chunk) {
        int B = n_prompts - p0 < chunk ? n_prompts - p0 : chunk;
        ltf_task_sample(task, rng, B, n, xs, ys);
#pragma omp parallel for schedule(dynamic, 1)
        for (int b = 0; b < B; b++) {
            const float *x = xs + (size_t)b * n * d, *y = ys + (size_t)b * n;
            for (int k = 0; k < n; k++) {
                double e = ltf_baseline_predict(kind, k, d, x, y, x + (size_t)k * d) - y[k];
                sq[(size_t)b * n + k] = e * e;
            }
        }
        for (int b = 0; b < B; b++)        /* summed in prompt order: same bits for any threads */
            for (int k = 0; k < n; k++) {
                double e2 = sq[(size_t)b * n + k];
                err_by_k[k] += e2;
                if (err_by_prompt) err_by_prompt[(size_t)(p0 + b) * n + k] = (float)(e2 / task->error_scale);
            }
    }
    for (int k = 0; k < n; k++) err_by_k[k] /= (double)n_prompts * task->error_scale;
    LTF_FREE(xs); LTF_FREE(ys); LTF_FREE(sq);
    return 0;
}

/* ---- classification (docs/MATH.md §13): labels 0..K-1, each fit per prompt on its k earlier
 * points, class 0 when k = 0.
 *   majority: the most frequent earlier label (ties: the lowest class).
 *   logistic regression (K = 2; sklearn LogisticRegression(C=1.0): intercept not penalised):
 *     w [d+1] (the last entry the intercept) minimises
 *       F(w) = sum_i log(1 + exp(-s_i z_i . w)) + (1/2) |w_0..d-1|^2,  z_i = (x_i, 1), s_i = 2 y_i - 1,
 *     by Newton's method in double from w = 0 (Cholesky solve of the (d+1)^2 Hessian, the step
 *     halved until F decreases), until no entry of the step reaches 1e-10 (at most 100 steps).
 *     All earlier labels equal: that label (F has no finite minimum then). Predicts 1 when
 *     z . w > 0.
 *   3-NN: the majority label of the 3 nearest earlier points (Euclidean; the earlier point on
 *     distance ties; vote ties: the lowest class), of all of them when k < 3.
 *   decision tree (K = 2): the CART tree above on the 0/1 labels (for two classes the split
 *     that minimises the squared error is the one that minimises Gini impurity), and the
 *     leaf's majority (class 0 on a tie), as sklearn's DecisionTreeClassifier(max_depth=4). */

const char *ltf_cls_baseline_name(int kind) {
    switch (kind) {
    case LTF_CLS_MAJORITY: return "majority";
    case LTF_CLS_LOGREG: return "logistic_regression";
    case LTF_CLS_KNN3: return "3nn";
    case LTF_CLS_TREE: return "decision_tree";
    default: return "?";
    }
}

static double ltf__logreg_objective(int k, int d, const float *xs, const float *ys, const double *w) {
    double f = 0.0;
    for (int j = 0; j < d; j++) f += 0.5 * w[j] * w[j];
    for (int i = 0; i < k; i++) {
        double m = w[d];
        for (int j = 0; j < d; j++) m += w[j] * xs[(size_t)i * d + j];
        m *= ys[i] > 0.5f ? 1.0 : -1.0;
        f += m > 0 ? log1p(exp(-m)) : -m + log1p(exp(m));   /* log(1 + e^-m), stable both ways */
    }
    return f;
}

/* Solves A x = b for a symmetric positive definite A [n, n] (overwritten by its Cholesky factor). */
static int ltf__cholesky_solve(int n, double *A, double *b) {
    for (int j = 0; j < n; j++) {
        double s = A[j * n + j];
        for (int q = 0; q < j; q++) s -= A[j * n + q] * A[j * n + q];
        if (!(s > 0.0)) return -1;
        A[j * n + j] = sqrt(s);
        for (int i = j + 1; i < n; i++) {
            double t = A[i * n + j];
            for (int q = 0; q < j; q++) t -= A[i * n + q] * A[j * n + q];
            A[i * n + j] = t / A[j * n + j];
        }
    }
    for (int i = 0; i < n; i++) {                     /* L y = b */
        for (int q = 0; q < i; q++) b[i] -= A[i * n + q] * b[q];
        b[i] /= A[i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {                /* L^T x = y */
        for (int q = i + 1; q < n; q++) b[i] -= A[q * n + i] * b[q];
        b[i] /= A[i * n + i];
    }
    return 0;
}

int ltf_logreg_fit(int k, int d, const float *xs, const float *ys, double *w) {
    int n = d + 1;
    double *H = (double *)LTF_MALLOC(sizeof(double) * ((size_t)n * n + 2 * (size_t)n));
    if (!H) return -1;
    double *g = H + (size_t)n * n, *w_new = g + n;
    for (int j = 0; j < n; j++) w[j] = 0.0;
    double f = ltf__logreg_objective(k, d, xs, ys, w);
    int rc = 0;
    for (int it = 0; it < 100; it++) {
        for (int a = 0; a < n * n; a++) H[a] = 0.0;
        for (int j = 0; j < n; j++) { g[j] = j < d ? w[j] : 0.0; if (j < d) H[j * n + j] = 1.0; }
        for (int i = 0; i < k; i++) {
            const float *x = xs + (size_t)i * d;
            double m = w[d];
            for (int j = 0; j < d; j++) m += w[j] * x[j];
            double p = 1.0 / (1.0 + exp(-m)), r = p - (ys[i] > 0.5f ? 1.0 : 0.0), h = p * (1.0 - p);
            for (int a = 0; a < n; a++) {
                double za = a < d ? x[a] : 1.0;
                g[a] += r * za;
                for (int b = 0; b <= a; b++) H[a * n + b] += h * za * (b < d ? x[b] : 1.0);
            }
        }
        for (int a = 0; a < n; a++) for (int b = a + 1; b < n; b++) H[a * n + b] = H[b * n + a];
        if (ltf__cholesky_solve(n, H, g) != 0) { rc = -1; break; }   /* g: the Newton step */
        double t = 1.0, big = 0.0, f_new = f;
        for (int half = 0; half < 40; half++, t *= 0.5) {
            for (int j = 0; j < n; j++) w_new[j] = w[j] - t * g[j];
            f_new = ltf__logreg_objective(k, d, xs, ys, w_new);
            if (f_new <= f) break;
        }
        for (int j = 0; j < n; j++) { big = fabs(w_new[j] - w[j]) > big ? fabs(w_new[j] - w[j]) : big; w[j] = w_new[j]; }
        f = f_new;
        if (big < 1e-10) break;
    }
    LTF_FREE(H);
    return rc;
}

/* the most frequent label of ys[idx[0..cnt-1]] (idx NULL: of ys[0..cnt-1]); ties: the lowest */
static int ltf__majority(const float *ys, const int *idx, int cnt, int K) {
    int best = 0, best_n = -1;
    for (int c = 0; c < K; c++) {
        int nc = 0;
        for (int i = 0; i < cnt; i++) nc += (int)ys[idx ? idx[i] : i] == c;
        if (nc > best_n) { best_n = nc; best = c; }
    }
    return best;
}

int ltf_cls_baseline_predict(int kind, int k, int d, int K, const float *xs, const float *ys, const float *x) {
    if (K < 2 || kind < 0 || kind >= LTF_CLS_COUNT || ((kind == LTF_CLS_LOGREG || kind == LTF_CLS_TREE) && K != 2)) return -1;
    if (k == 0) return 0;
    if (kind == LTF_CLS_MAJORITY) return ltf__majority(ys, NULL, k, K);
    if (kind == LTF_CLS_KNN3) {
        int best[3], cnt = ltf__nearest3(k, d, xs, x, best);
        return ltf__majority(ys, best, cnt, K);
    }
    if (kind == LTF_CLS_TREE) {
        double p = ltf__tree_predict(k, d, xs, ys, x, 4);   /* the leaf's fraction of class 1 */
        return isnan(p) ? -1 : p > 0.5 ? 1 : 0;
    }
    int first = (int)ys[0], same = 1;   /* logistic regression */
    for (int i = 1; i < k; i++) same &= (int)ys[i] == first;
    if (same) return first;
    double *w = (double *)LTF_MALLOC(sizeof(double) * (size_t)(d + 1));
    if (!w || ltf_logreg_fit(k, d, xs, ys, w) != 0) { LTF_FREE(w); return -1; }
    double m = w[d];
    for (int j = 0; j < d; j++) m += w[j] * x[j];
    LTF_FREE(w);
    return m > 0 ? 1 : 0;
}

#endif /* LTF_WORKBENCH_BASELINES_H */

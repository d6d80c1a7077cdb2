/* test.c - the tests of looped-tf. Plain C; ends with "N passed, M failed"; exit 1 on failure.
 *
 *   ./build.sh test            build and run everything
 *   ./test [filter]            run the tests whose name contains filter
 *
 * Gradient checks: five-point central differences,
 *     dL/dp ~ (8 (L(p+h) - L(p-h)) - (L(p+2h) - L(p-2h))) / 12h,
 * of a scalar loss summed in double (ops: L = sum(out * R) for a fixed random R; the model: its
 * training loss with Y_s frozen, the exact function training differentiates). The stencil's
 * truncation error is O(h^4); float32 rounding in the forward pass divided by h is the rest.
 * With h = 1e-2 (ops) and 3e-3 (whole model) the measured worst norm-wise relative error per
 * tensor is 5e-5 (ops) and 6e-4 (model), under the bar of 2e-3. Dropping one term is caught
 * with a wide margin; measured by editing the header: LayerNorm backward without its mean
 * term gives 0.24, softmax backward without its sum term 0.98, GELU backward without the
 * tanh-derivative term 0.21, a state mask whose gradient leaks into masked tokens 0.3 to 5.
 */
#ifndef _DEFAULT_SOURCE   /* nvcc -x cu has defined it already */
#define _DEFAULT_SOURCE   /* wait4 */
#endif
#include <stdlib.h>

/* The library allocates through these hooks (test alloc_failures): a count of live blocks for
 * leak checks, and failure injection: the g_alloc_fail_at-th LTF_MALLOC call returns NULL.
 * LTF_REALLOC (stb_ds's name tables) is counted, never failed: stb_ds cannot take a NULL. */
static long g_alloc_live, g_alloc_calls, g_alloc_fail_at;
static void *test_malloc(size_t n) {
    if (__atomic_add_fetch(&g_alloc_calls, 1, __ATOMIC_SEQ_CST) == g_alloc_fail_at) return NULL;
    void *p = malloc(n);
    if (p) __atomic_add_fetch(&g_alloc_live, 1, __ATOMIC_SEQ_CST);
    return p;
}
static void *test_realloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (!p && q) __atomic_add_fetch(&g_alloc_live, 1, __ATOMIC_SEQ_CST);
    return q;
}
static void test_free(void *p) {
    if (p) __atomic_sub_fetch(&g_alloc_live, 1, __ATOMIC_SEQ_CST);
    free(p);
}
#define LTF_MALLOC(n) test_malloc(n)
#define LTF_REALLOC(p, n) test_realloc(p, n)
#define LTF_FREE(p) test_free(p)
#define LOOPED_TF_IMPLEMENTATION
#include "looped_tf.h"
/* the workbench: what the experiments need beside the model (README "Layout") */
#include "workbench/baselines.h"   /* zero, least squares, averaging, 3-NN, Lasso, tree, ReLU net */
#include "workbench/bands.h"       /* bootstrap bands of the mean error over prompts             */
#include "workbench/plot.h"        /* SVG line plots                                             */
#include "workbench/speed.h"       /* FLOPs of a step, this machine's multiply-add peak          */
#include "workbench/probe.h"       /* probes of a frozen model's states                          */
#include "workbench/tabular.h"     /* CSV datasets for in-context classification                  */

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

static int g_pass, g_fail;
static const char *g_filter;

#define CHECK(cond, ...) do { \
        if (cond) g_pass++; \
        else { g_fail++; printf("  FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } \
    } while (0)

/* ------------------------------------------------------------------ helpers */

static ltf_rng g_rng;
static float *rand_buf(size_t n, float scale) {
    float *p = (float *)malloc(n * sizeof(float) + 1);
    for (size_t i = 0; i < n; i++) p[i] = (float)(scale * ltf_rng_normal(&g_rng));
    return p;
}
static float *zeros(size_t n) { return (float *)calloc(n + 1, sizeof(float)); }
static float *copy_of(const float *p, size_t n) { float *q = (float *)malloc(n * sizeof(float) + 1); memcpy(q, p, n * sizeof(float)); return q; }

static double rel_err(const float *a, const float *b, size_t n) {   /* ||a - b|| / ||b|| */
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) { num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]); den += (double)b[i] * b[i]; }
    return den == 0 ? sqrt(num) : sqrt(num / den);
}
static double rel_err_d(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) { num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]); den += b[i] * b[i]; }
    return den == 0 ? sqrt(num) : sqrt(num / den);
}

/* Finite differences of loss() with respect to every element of p; returns ||fd - g|| / ||fd||. */
typedef double (*loss_fn)(void *ctx);
static double fd_check(float *p, size_t n, const float *analytic, loss_fn loss, void *ctx, float h) {
    double *fd = (double *)malloc(n * sizeof(double) + 8);
    for (size_t i = 0; i < n; i++) {
        float keep = p[i];
        p[i] = keep + h; double l1 = loss(ctx);
        p[i] = keep - h; double m1 = loss(ctx);
        p[i] = keep + 2 * h; double l2 = loss(ctx);
        p[i] = keep - 2 * h; double m2 = loss(ctx);
        p[i] = keep;
        /* five-point stencil: error O(h^4); keep + h is rounded to a float, so divide by the
         * step actually taken */
        double hp = (double)(keep + h) - keep;
        fd[i] = (8.0 * (l1 - m1) - (l2 - m2)) / (12.0 * hp);
    }
    double e = rel_err_d(analytic, fd, n);
    free(fd);
    return e;
}

static double dot_d(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

#define FD_TOL 2e-3

/* ------------------------------------------------------------------ matrix multiply */

static void test_gemm(void) {
    /* fast vs plain on random shapes, including every edge (not multiples of the tiles) and all
     * four transpositions; the plain one is a straight triple loop */
    int shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {4, 32, 128}, {37, 65, 129}, {130, 33, 300}, {64, 192, 64}, {200, 256, 17},
                     {40, 600, 300}, {9, 1000, 50}, {300, 290, 260},   /* split by columns, rows, both big */
                     {50, 16, 70}, {22, 22, 16}, {31, 48, 9}};         /* one, two, three vectors wide */
    double worst = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                float *A = rand_buf((size_t)M * K, 1), *B = rand_buf((size_t)K * N, 1);
                float *C1 = rand_buf((size_t)M * N, 1), *C2 = (float *)malloc(sizeof(float) * M * N);
                memcpy(C2, C1, sizeof(float) * M * N);
                ptrdiff_t ar = ta ? 1 : K, ac = ta ? M : 1, br = tb ? 1 : N, bc = tb ? K : 1;
                ltf_gemm(M, N, K, A, ar, ac, B, br, bc, C1, N);
                ltf_gemm_plain(M, N, K, A, ar, ac, B, br, bc, C2, N);
                double e = rel_err(C1, C2, (size_t)M * N);
                if (e > worst) worst = e;
                CHECK(e < 1e-5, "gemm %dx%dx%d ta=%d tb=%d: rel err %.2e", M, N, K, ta, tb, e);
                free(A); free(B); free(C1); free(C2);
            }
    }
    printf("  gemm fast vs plain: worst rel err %.2e (bar 1e-5)\n", worst);
    /* set mode (a forward Linear): Cm = bias + A . B overwrites whatever Cm held, on every shape */
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = rand_buf((size_t)M * K, 1), *B = rand_buf((size_t)K * N, 1), *bias = rand_buf((size_t)N, 1);
        float *C1 = rand_buf((size_t)M * N, 1), *C2 = (float *)malloc(sizeof(float) * M * N);
        for (int i = 0; i < M; i++) memcpy(C2 + (size_t)i * N, bias, sizeof(float) * N);
        ltf__gemm(M, N, K, A, K, 1, B, 1, K, C1, N, 1, bias, 0);
        ltf_gemm_plain(M, N, K, A, K, 1, B, 1, K, C2, N);
        double e = rel_err(C1, C2, (size_t)M * N);
        CHECK(e < 1e-5, "gemm set mode %dx%dx%d: rel err %.2e", M, N, K, e);
        free(A); free(B); free(bias); free(C1); free(C2);
    }
#ifdef _OPENMP
    /* the threads split the work but never a sum: 1 thread and all threads agree bit for bit */
    int split[][3] = {{300, 70, 260}, {40, 600, 300}};
    for (int s = 0; s < 2; s++) {
        int M = split[s][0], N = split[s][1], K = split[s][2], nt = omp_get_max_threads();
        float *A = rand_buf((size_t)M * K, 1), *B = rand_buf((size_t)K * N, 1);
        float *C1 = rand_buf((size_t)M * N, 1), *C2 = (float *)malloc(sizeof(float) * M * N);
        memcpy(C2, C1, sizeof(float) * M * N);
        ltf_gemm(M, N, K, A, K, 1, B, 1, K, C1, N);
        omp_set_num_threads(1);
        ltf_gemm(M, N, K, A, K, 1, B, 1, K, C2, N);
        omp_set_num_threads(nt);
        CHECK(memcmp(C1, C2, sizeof(float) * M * N) == 0, "gemm %dx%dx%d: %d threads and 1 differ", M, N, K, nt);
        free(A); free(B); free(C1); free(C2);
    }
#endif
}

/* ------------------------------------------------------------------ bf16 mode */

/* x rounded to bfloat16 the slow way: the two neighbours (x truncated to 7 mantissa bits, and
 * one bf16 step away from zero), the nearer in double, the even one on a tie */
static float bf16_nearest(float x) {
    uint32_t b, lo_b, hi_b;
    memcpy(&b, &x, 4);
    lo_b = b & 0xffff0000u; hi_b = lo_b + 0x10000u;
    float lo, hi;
    memcpy(&lo, &lo_b, 4); memcpy(&hi, &hi_b, 4);
    double dl = fabs((double)x - lo), dh = fabs((double)hi - x);   /* hi = inf: dh = inf */
    if (dl == 0) return lo;   /* x is a bf16 number (or inf) */
    if (isinf(hi)) {   /* past bf16's largest: IEEE rounds to inf from half an ulp above it */
        double top = fabs((double)lo) + ldexp(1.0, 127 - 7) / 2;
        return fabs((double)x) >= top ? hi : lo;
    }
    if (dl != dh) return dl < dh ? lo : hi;
    return (lo_b & 0x10000u) ? hi : lo;
}

/* The fast GEMM's bf16 mode against a triple loop over operands rounded by bf16_nearest, with
 * the fast kernel's sum order (per KC block: s = 0, s += a b in k order, Cm += s): bit for bit */
static void gemm_bf16_reference(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col, const float *B,
                                ptrdiff_t b_row, ptrdiff_t b_col, float *Cm, int set, const float *bias) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float c = set ? (bias ? bias[j] : 0.0f) : Cm[i * N + j];
            for (int k0 = 0; k0 < K; k0 += LTF__KC) {
                float s = 0.0f;
                for (int k = k0; k < K && k < k0 + LTF__KC; k++)
                    s += bf16_nearest(A[i * a_row + k * a_col]) * bf16_nearest(B[k * b_row + j * b_col]);
                c += s;
            }
            Cm[i * N + j] = c;
        }
}

/* A product Cm = A[M, K] . B[K, N] (row-major) computed on rounded operands, against fp64 on the
 * unrounded ones: the worst element's error as a fraction of (2u + u^2 + K 2^-24) sum_k |a b|
 * (the operands' roundings, then K float32 additions), the mean signed error relative to
 * sum_k |a b| (in units of u), and the same mean for operands truncated to the bits `cut` leaves
 * (the control: truncation is biased) */
static void gemm_error_vs_fp64(const float *A, const float *B, const float *Cm, int M, int N, int K, uint32_t cut,
                               double u, double *worst, double *mean, double *mean_trunc) {
    double bound_k = 2 * u + u * u + K * ldexp(1.0, -24);
    *worst = *mean = *mean_trunc = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double exact = 0, mag = 0, trunc = 0;
            for (int k = 0; k < K; k++) {
                uint32_t ua, ub;
                memcpy(&ua, &A[i * K + k], 4); memcpy(&ub, &B[k * N + j], 4);
                ua &= ~cut; ub &= ~cut;
                float ta, tb;
                memcpy(&ta, &ua, 4); memcpy(&tb, &ub, 4);
                double a = A[i * K + k], b = B[k * N + j];
                exact += a * b; mag += fabs(a * b); trunc += (double)ta * tb;
            }
            double e = fabs(Cm[i * N + j] - exact) / (bound_k * mag);
            *worst = e > *worst ? e : *worst;
            *mean += (Cm[i * N + j] - exact) / mag / (M * N) / u;
            *mean_trunc += (trunc - exact) / mag / (M * N) / u;
        }
}

static ltf_config small_config(int kind, int L, int b, int T);

static void test_bf16(void) {
    char err[LTF_ERR_LEN];
    /* the rounding: ties to even, overflow to inf, NaN kept (a low-payload NaN must not carry
     * into inf), then 200000 random bit patterns against the slow rounding */
    const uint32_t cases[][2] = {{0x3f800000u, 0x3f800000u}, {0x3f808000u, 0x3f800000u}, {0x3f818000u, 0x3f820000u},
                                 {0x3f808001u, 0x3f810000u}, {0xbf818000u, 0xbf820000u}, {0x7f7fffffu, 0x7f800000u},
                                 {0x7f800000u, 0x7f800000u}, {0x80000000u, 0x80000000u}, {0x00008000u, 0x00000000u},
                                 {0x00018000u, 0x00020000u}, {0x7f7f7fffu, 0x7f7f0000u}};
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float x, r;
        memcpy(&x, &cases[i][0], 4);
        r = ltf__bf16_round(x);
        uint32_t rb;
        memcpy(&rb, &r, 4);
        CHECK(rb == cases[i][1], "bf16 round of 0x%08x: 0x%08x, wanted 0x%08x", (unsigned)cases[i][0], (unsigned)rb,
              (unsigned)cases[i][1]);
    }
    const uint32_t nans[] = {0x7f800001u, 0xff80ffffu, 0x7fc00000u, 0x7fffffffu};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        float x;
        memcpy(&x, &nans[i], 4);
        CHECK(isnan(ltf__bf16_round(x)), "bf16 round of the NaN 0x%08x is not NaN", (unsigned)nans[i]);
    }
    for (int i = 0; i < 200000; i++) {
        uint32_t b = ltf_rng_u32(&g_rng);
        float x, r1, r2;
        memcpy(&x, &b, 4);
        if (isnan(x)) continue;
        r1 = ltf__bf16_round(x); r2 = bf16_nearest(x);
        bad += memcmp(&r1, &r2, 4) != 0;
    }
    CHECK(bad == 0, "bf16 round differs from the slow nearest-even rounding on %d of 200000 floats", bad);

    CHECK(ltf_cpu_set_precision("fp16", err) == -1 && strstr(err, "'fp16'") && strstr(err, "bf16"), "bad precision: '%s'", err);
    CHECK(ltf_cpu_precision() == 0, "a refused precision changed the mode");

    /* the GEMM in bf16 mode: bit for bit the reference on every shape and transposition, in
     * both modes (+= and = bias + ...) */
    int shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {37, 65, 129}, {130, 33, 300}, {40, 600, 300}, {9, 1000, 50}, {22, 22, 16}};
    int differ = 0, cases_run = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        for (int t = 0; t < 5; t++) {   /* the four transpositions, then set mode with a bias */
            int ta = t & 1, tb = (t >> 1) & 1, set = t == 4;
            float *A = rand_buf((size_t)M * K, 1), *B = rand_buf((size_t)K * N, 1), *bias = rand_buf((size_t)N, 1);
            float *C1 = rand_buf((size_t)M * N, 1), *C2 = copy_of(C1, (size_t)M * N);
            ptrdiff_t ar = ta ? 1 : K, ac = ta ? M : 1, br = tb ? 1 : N, bc = tb ? K : 1;
            ltf__gemm(M, N, K, A, ar, ac, B, br, bc, C1, N, set, bias, 1);
            gemm_bf16_reference(M, N, K, A, ar, ac, B, br, bc, C2, set, bias);
            differ += memcmp(C1, C2, sizeof(float) * M * N) != 0;
            cases_run++;
            free(A); free(B); free(bias); free(C1); free(C2);
        }
    }
    CHECK(differ == 0, "bf16 GEMM: %d of %d shapes differ from the rounded triple loop", differ, cases_run);
    printf("  bf16 GEMM = the triple loop over rounded operands, bit for bit: %d of %d cases\n", cases_run - differ, cases_run);

    /* its error against fp64 on the unrounded operands: within (2u + u^2 + K 2^-24) sum |a b|,
     * u = 2^-8, for every element; on positive data (where errors cannot cancel in the
     * product) a mean signed error near 0 (rounding is unbiased), while truncated operands
     * (computed here as the control) are biased by about -1.4 u */
    int M = 70, N = 50, K = 300;
    double u = ldexp(1.0, -8);
    for (int positive = 0; positive < 2; positive++) {
        float *A = rand_buf((size_t)M * K, 1), *B = rand_buf((size_t)K * N, 1), *Cm = zeros((size_t)M * N);
        if (positive) {
            for (size_t i = 0; i < (size_t)M * K; i++) A[i] = 0.5f + (float)ltf_rng_uniform(&g_rng);
            for (size_t i = 0; i < (size_t)K * N; i++) B[i] = 0.5f + (float)ltf_rng_uniform(&g_rng);
        }
        ltf__gemm(M, N, K, A, K, 1, B, N, 1, Cm, N, 0, NULL, 1);
        double worst, mean, mean_trunc;
        gemm_error_vs_fp64(A, B, Cm, M, N, K, 0xffffu, u, &worst, &mean, &mean_trunc);
        printf("  bf16 GEMM vs fp64, %s data: worst error %.2f of the bound, mean signed error %+.3f u (truncated: %+.2f u)\n",
               positive ? "positive" : "signed", worst, mean, mean_trunc);
        CHECK(worst <= 1.0, "bf16 GEMM: an element's error is %.2f times the bound", worst);
        if (positive) {
            CHECK(fabs(mean) <= 0.1, "bf16 GEMM: mean signed error %.3g u: the rounding is biased", mean);
            CHECK(mean_trunc <= -1.0, "bf16 GEMM: the truncation control %.3g u does not separate", mean_trunc);
        }
        free(A); free(B); free(Cm);
    }

    /* one training pass in bf16 against fp32: loss and every gradient tensor within 2e-2
     * relative (measured: 5e-3), and not equal (the mode is on) */
    ltf_config c = small_config(LTF_LOOPED, 1, 4, 2);
    c.n_embd = 32; c.n_head = 4; c.n_dims = 5; c.n_positions = 9;
    ltf_model m32, m16;
    CHECK(ltf_model_create(&m32, &c, 7, err) == 0 && ltf_model_create(&m16, &c, 7, err) == 0, "create: %s", err);
    float *xs = rand_buf(4 * 9 * 5, 1), *ys = rand_buf(36, 1), l32, l16;
    ltf_forward_backward(&m32, xs, ys, 4, 9, &l32);
    CHECK(ltf_cpu_set_precision("bf16", err) == 0 && ltf_cpu_precision() == 1, "bf16: %s", err);
    ltf_forward_backward(&m16, xs, ys, 4, 9, &l16);
    CHECK(ltf_cpu_set_precision("fp32", err) == 0, "back to fp32: %s", err);
    double worst = 0;
    const char *name = "";
    for (ptrdiff_t k = 0; k < shlen(m32.tensors); k++) {
        ltf_tensor *t = &m32.tensors[k];
        if (strstr(t->key, "c_attn.bias")) continue;   /* the key bias: gradient 0 (softmax is shift-invariant) */
        double e = rel_err(m16.grads + t->offset, m32.grads + t->offset, t->size);
        if (e >= worst) { worst = e; name = t->key; }
    }
    double el = fabs((double)l16 - l32) / l32;
    printf("  bf16 training pass vs fp32: loss rel err %.1e, worst gradient %s rel err %.1e (bound 2e-2)\n", el, name, worst);
    CHECK(el <= 2e-2 && worst <= 2e-2, "bf16 pass: loss %.2e, gradient of %s %.2e", el, name, worst);
    CHECK(worst > 1e-5, "bf16 pass: gradients equal fp32's (%.1e): the mode did nothing", worst);
    free(xs); free(ys);
    ltf_model_free(&m32); ltf_model_free(&m16);
}

/* ------------------------------------------------------------------ plain twins */

/* The fast ops against their readable twins (the text a reader checks against docs/MATH.md):
 * attention per (batch, head) as matrix products vs the per-row loops, on shapes with 1 token,
 * odd lengths and 16- and 32-wide heads; residual + LayerNorm fused vs the two ops, bit for bit. */
static void test_plain_twins(void) {
    int shapes[][4] = {{1, 1, 16, 1}, {2, 7, 24, 3}, {3, 22, 64, 4}, {2, 33, 64, 2}, {1, 82, 256, 8}};   /* B, N, C, H */
    double wf = 0, wb = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int B = shapes[s][0], N = shapes[s][1], C = shapes[s][2], H = shapes[s][3];
        size_t rc = (size_t)B * N * C, bhnn = (size_t)B * H * N * N;
        float *qkv = rand_buf(3 * rc, 1), *dy = rand_buf(rc, 1);
        float *o1 = zeros(rc), *o2 = zeros(rc), *a1 = rand_buf(bhnn, 1), *a2 = rand_buf(bhnn, 1);
        float *dq1 = rand_buf(3 * rc, 1), *dq2 = (float *)malloc(sizeof(float) * 3 * rc), *s1 = zeros(bhnn), *s2 = zeros(bhnn);
        memcpy(dq2, dq1, sizeof(float) * 3 * rc);   /* backward adds into the same start */
        ltf_attention_forward(o1, a1, qkv, B, N, C, H);
        ltf_attention_forward_plain(o2, a2, qkv, B, N, C, H);
        double ef = rel_err(o1, o2, rc) > rel_err(a1, a2, bhnn) ? rel_err(o1, o2, rc) : rel_err(a1, a2, bhnn);
        ltf_attention_backward(dq1, s1, dy, qkv, a1, B, N, C, H);
        ltf_attention_backward_plain(dq2, s2, dy, qkv, a1, B, N, C, H);
        double eb = rel_err(dq1, dq2, 3 * rc);
        CHECK(ef < 1e-5 && eb < 1e-5, "attention B=%d N=%d C=%d H=%d: fast vs plain forward %.2e, backward %.2e", B, N, C, H, ef, eb);
        wf = ef > wf ? ef : wf; wb = eb > wb ? eb : wb;
        free(qkv); free(dy); free(o1); free(o2); free(a1); free(a2); free(dq1); free(dq2); free(s1); free(s2);
    }
    printf("  attention fast vs plain: forward %.2e, backward %.2e (bar 1e-5)\n", wf, wb);
    int BT = 37, C = 48;
    size_t n = (size_t)BT * C;
    float *a = rand_buf(n, 1), *c = rand_buf(n, 1), *w = rand_buf(C, 1), *b = rand_buf(C, 1);
    float *h1 = zeros(n), *h2 = zeros(n), *o1 = zeros(n), *o2 = zeros(n), *st1 = zeros(2 * BT), *st2 = zeros(2 * BT);
    ltf_residual_layernorm_forward(h1, o1, st1, st1 + BT, a, c, w, b, BT, C);
    ltf_residual_layernorm_forward_plain(h2, o2, st2, st2 + BT, a, c, w, b, BT, C);
    CHECK(memcmp(h1, h2, n * sizeof(float)) == 0 && memcmp(o1, o2, n * sizeof(float)) == 0 &&
          memcmp(st1, st2, 2 * BT * sizeof(float)) == 0, "residual + LayerNorm: fused and plain differ");
    free(a); free(c); free(w); free(b); free(h1); free(h2); free(o1); free(o2); free(st1); free(st2);
}

/* ------------------------------------------------------------------ op gradient checks */

typedef struct {
    int B, N, C, OC, H;
    float *inp, *w, *bias, *out, *R, *mean, *rstd, *att;
} op_ctx;

static double loss_matmul(void *v) {
    op_ctx *c = (op_ctx *)v;
    ltf_matmul_forward(c->out, c->inp, c->w, c->bias, c->B * c->N, c->C, c->OC);
    return dot_d(c->out, c->R, (size_t)c->B * c->N * c->OC);
}
static double loss_layernorm(void *v) {
    op_ctx *c = (op_ctx *)v;
    ltf_layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->bias, c->B * c->N, c->C);
    return dot_d(c->out, c->R, (size_t)c->B * c->N * c->C);
}
static double loss_attention(void *v) {
    op_ctx *c = (op_ctx *)v;
    ltf_attention_forward(c->out, c->att, c->inp, c->B, c->N, c->C, c->H);
    return dot_d(c->out, c->R, (size_t)c->B * c->N * c->C);
}
static double loss_gelu(void *v) {
    op_ctx *c = (op_ctx *)v;
    ltf_gelu_forward(c->out, c->inp, (size_t)c->N);
    return dot_d(c->out, c->R, (size_t)c->N);
}
static double loss_position(void *v) {
    op_ctx *c = (op_ctx *)v;
    ltf_position_forward(c->out, c->inp, c->w, c->B, c->N, c->C);
    return dot_d(c->out, c->R, (size_t)c->B * c->N * c->C);
}
static double loss_residual(void *v) {
    op_ctx *c = (op_ctx *)v;
    ltf_residual_forward(c->out, c->inp, c->w, (size_t)c->N);
    return dot_d(c->out, c->R, (size_t)c->N);
}

static void report(const char *what, double e) {
    printf("  %-34s worst rel err %.2e\n", what, e);
    CHECK(e < FD_TOL, "%s: finite-difference rel err %.2e >= %.0e", what, e, FD_TOL);
}

static void test_op_gradients(void) {
    op_ctx c;
    memset(&c, 0, sizeof c);
    {   /* Linear */
        c.B = 2; c.N = 5; c.C = 7; c.OC = 9;
        size_t BT = 10;
        c.inp = rand_buf(BT * c.C, 1); c.w = rand_buf((size_t)c.OC * c.C, 0.5f); c.bias = rand_buf(c.OC, 1);
        c.out = zeros(BT * c.OC); c.R = rand_buf(BT * c.OC, 1);
        float *di = rand_buf(BT * c.C, 1), *dw = rand_buf((size_t)c.OC * c.C, 1), *db = rand_buf(c.OC, 1);
        float *di0 = (float *)malloc(sizeof(float) * BT * c.C); memcpy(di0, di, sizeof(float) * BT * c.C);
        float *dw0 = (float *)malloc(sizeof(float) * c.OC * c.C); memcpy(dw0, dw, sizeof(float) * c.OC * c.C);
        float *db0 = (float *)malloc(sizeof(float) * c.OC); memcpy(db0, db, sizeof(float) * c.OC);
        ltf_matmul_backward(di, dw, db, c.R, c.inp, c.w, (int)BT, c.C, c.OC);
        /* backward ADDS: subtract the random starting values to get the gradient itself */
        for (size_t i = 0; i < BT * c.C; i++) di[i] -= di0[i];
        for (int i = 0; i < c.OC * c.C; i++) dw[i] -= dw0[i];
        for (int i = 0; i < c.OC; i++) db[i] -= db0[i];
        double e = fd_check(c.inp, BT * c.C, di, loss_matmul, &c, 1e-2f);
        double e2 = fd_check(c.w, (size_t)c.OC * c.C, dw, loss_matmul, &c, 1e-2f);
        double e3 = fd_check(c.bias, c.OC, db, loss_matmul, &c, 1e-2f);
        report("matmul d/dinp", e); report("matmul d/dweight", e2); report("matmul d/dbias", e3);
        free(c.inp); free(c.w); free(c.bias); free(c.out); free(c.R); free(di); free(dw); free(db); free(di0); free(dw0); free(db0);
    }
    {   /* LayerNorm */
        c.B = 3; c.N = 4; c.C = 16;
        size_t n = 12 * 16;
        c.inp = rand_buf(n, 2); c.w = rand_buf(c.C, 1); c.bias = rand_buf(c.C, 1);
        c.out = zeros(n); c.R = rand_buf(n, 1); c.mean = zeros(12); c.rstd = zeros(12);
        float *di = zeros(n), *dw = zeros(c.C), *db = zeros(c.C);
        loss_layernorm(&c);
        ltf_layernorm_backward(di, dw, db, c.R, c.inp, c.w, c.mean, c.rstd, 12, c.C);
        report("layernorm d/dinp", fd_check(c.inp, n, di, loss_layernorm, &c, 1e-2f));
        report("layernorm d/dweight", fd_check(c.w, c.C, dw, loss_layernorm, &c, 1e-2f));
        report("layernorm d/dbias", fd_check(c.bias, c.C, db, loss_layernorm, &c, 1e-2f));
        free(c.inp); free(c.w); free(c.bias); free(c.out); free(c.R); free(c.mean); free(c.rstd); free(di); free(dw); free(db);
    }
    {   /* causal attention */
        c.B = 2; c.N = 6; c.C = 12; c.H = 3;
        size_t nq = (size_t)c.B * c.N * 3 * c.C, no = (size_t)c.B * c.N * c.C, na = (size_t)c.B * c.H * c.N * c.N;
        c.inp = rand_buf(nq, 1); c.out = zeros(no); c.R = rand_buf(no, 1); c.att = zeros(na);
        float *dq = zeros(nq), *datt = zeros(na);
        loss_attention(&c);
        ltf_attention_backward(dq, datt, c.R, c.inp, c.att, c.B, c.N, c.C, c.H);
        report("attention d/dqkv", fd_check(c.inp, nq, dq, loss_attention, &c, 1e-2f));
        /* causality: output at token t must not depend on tokens > t */
        float *o1 = zeros(no);
        memcpy(o1, c.out, no * sizeof(float));
        for (int i = 0; i < 3 * c.C; i++) c.inp[(size_t)(c.N - 1) * 3 * c.C + i] += 1.0f;   /* last token of batch 0 */
        loss_attention(&c);
        double diff = 0;
        for (size_t i = 0; i < (size_t)(c.N - 1) * c.C; i++) diff += fabs(c.out[i] - o1[i]);
        CHECK(diff == 0.0, "attention is not causal: earlier outputs moved by %g", diff);
        free(c.inp); free(c.out); free(c.R); free(c.att); free(dq); free(datt); free(o1);
    }
    {   /* GELU */
        c.N = 200;
        c.inp = rand_buf(200, 2); c.out = zeros(200); c.R = rand_buf(200, 1);
        float *di = zeros(200);
        ltf_gelu_backward(di, c.inp, c.R, 200);
        report("gelu d/dinp", fd_check(c.inp, 200, di, loss_gelu, &c, 1e-2f));
        /* the tanh form, not erf: gelu(1) = 0.841192 (erf form gives 0.841345) */
        float one = 1.0f, g1;
        ltf_gelu_forward(&g1, &one, 1);
        CHECK(fabs(g1 - 0.8411920f) < 1e-6, "gelu(1) = %.7f, tanh form wants 0.8411920", g1);
        free(c.inp); free(c.out); free(c.R); free(di);
    }
    {   /* the chunked, vectorized GELU (clamp pass, then exponential pass) gives the floats of the
         * one-point formula with ltf__tanhf, bit for bit, ragged chunk and extreme inputs included;
         * (build.sh keeps the host compiler from fusing a*b+c: -ffp-contract=off under nvcc);
         * ltf__expf is within 2 ulp of libm's expf on [-87, 88] and keeps NaN */
        enum { NG = 2 * LTF__GELU_CHUNK + 37 };
        float *x = rand_buf(NG, 4), *y = zeros(NG), *dy = rand_buf(NG, 1), *dx = zeros(NG);
        const float odd[] = {0.0f, -0.0f, 30.0f, -30.0f, 1e30f, -1e30f, INFINITY, -INFINITY, NAN};
        for (int i = 0; i < (int)(sizeof odd / sizeof odd[0]); i++) x[7 * i + 3] = odd[i];
        ltf_gelu_forward(y, x, NG);
        ltf_gelu_backward(dx, x, dy, NG);
        int diff = 0;
        for (int i = 0; i < NG; i++) {
            float u = LTF__GELU_K * (x[i] + 0.044715f * x[i] * x[i] * x[i]), th = ltf__tanhf(u);
            float f = 0.5f * x[i] * (1.0f + th), du = LTF__GELU_K * (1.0f + 3.0f * 0.044715f * x[i] * x[i]);
            float g = 0.0f + (0.5f * (1.0f + th) + 0.5f * x[i] * (1.0f - th * th) * du) * dy[i];   /* dx += ... */
            diff += !(isnan(f) && isnan(y[i])) && memcmp(&f, &y[i], sizeof f) != 0;   /* NaN: any payload */
            diff += !(isnan(g) && isnan(dx[i])) && memcmp(&g, &dx[i], sizeof g) != 0;
        }
        CHECK(diff == 0, "chunked GELU differs from the one-point formula at %d of %d points", diff, NG);
        double worst = 0;
        for (float v = -87.0f; v <= 88.0f; v += 0.0137f) {
            double ulp = ldexp(1.0, ilogb(expf(v)) - 23);
            worst = fmax(worst, fabs((double)ltf__expf(v) - (double)expf(v)) / ulp);
        }
        CHECK(worst <= 2.0 && isnan(ltf__expf(NAN)), "ltf__expf: %.2f ulp from expf (allowed 2), exp(NaN) = %g", worst,
              ltf__expf(NAN));
        free(x); free(y); free(dy); free(dx);
    }
    {   /* residual and positions */
        c.N = 50;
        c.inp = rand_buf(50, 1); c.w = rand_buf(50, 1); c.out = zeros(50); c.R = rand_buf(50, 1);
        float *da = zeros(50), *db = zeros(50);
        ltf_residual_backward(da, db, c.R, 50);
        report("residual d/da", fd_check(c.inp, 50, da, loss_residual, &c, 1e-2f));
        report("residual d/db", fd_check(c.w, 50, db, loss_residual, &c, 1e-2f));
        free(c.inp); free(c.w); free(c.out); free(c.R); free(da); free(db);
        c.B = 3; c.N = 4; c.C = 5;
        c.inp = rand_buf(60, 1); c.w = rand_buf(9 * 5, 1); c.out = zeros(60); c.R = rand_buf(60, 1);
        float *di = zeros(60), *dwpe = zeros(45);
        ltf_position_backward(di, dwpe, c.R, 3, 4, 5);
        report("position d/dinp", fd_check(c.inp, 60, di, loss_position, &c, 1e-2f));
        report("position d/dwpe", fd_check(c.w, 45, dwpe, loss_position, &c, 1e-2f));
        double unused = 0;
        for (int i = 20; i < 45; i++) unused += fabs(dwpe[i]);
        CHECK(unused == 0.0, "rows of wpe past the sequence got gradient %g", unused);
        free(c.inp); free(c.w); free(c.out); free(c.R); free(di); free(dwpe);
    }
}

/* ------------------------------------------------------------------ whole-model gradient checks */

/* The loss whose gradient training computes: the window iterations started from Y_s, which
 * docs/MATH.md §4 holds constant. Y_s is computed once at the unperturbed weights and frozen, so the
 * differences see exactly the truncated loss (with b = T, Y_s = Y_0 = 0 and this is the loss). */
typedef struct { ltf_model *m; const float *xs, *ys, *Ys; int B, n; } model_ctx;

static double loss_model(void *v) {
    model_ctx *c = (model_ctx *)v;
    float loss;
    if (ltf_forward_loss_from(c->m, c->xs, c->ys, c->B, c->n, c->Ys, &loss) != 0) return NAN;
    return c->m->loss;   /* the double sum: float rounding of the loss would dominate small h */
}

/* random, non-trivial weights: LayerNorm weights away from 1, biases away from 0 */
static void randomize_model(ltf_model *m, float scale) {
    for (ptrdiff_t k = 0; k < shlen(m->tensors); k++) {
        ltf_tensor *t = &m->tensors[k];
        int is_ln_w = strstr(t->key, "ln_") && strstr(t->key, ".weight");
        for (size_t i = 0; i < t->size; i++)
            m->params[t->offset + i] = is_ln_w ? 1.0f + (float)(0.3 * (2 * ltf_rng_uniform(&g_rng) - 1))
                                                : (float)(scale * (2 * ltf_rng_uniform(&g_rng) - 1));
    }
}

static void model_gradcheck(const char *label, ltf_config cfg, int B, int n) {
    ltf_model m;
    char err[LTF_ERR_LEN];
    if (ltf_model_create(&m, &cfg, 7, err) != 0) { CHECK(0, "%s: %s", label, err); return; }
    randomize_model(&m, 0.5f);
    float *xs = rand_buf((size_t)B * n * cfg.n_dims, 1), *ys = rand_buf((size_t)B * n, 1), loss;
    for (int i = 0; cfg.n_classes && i < B * n; i++)   /* class indices (§13) */
        ys[i] = (float)(int)(ltf_rng_uniform(&g_rng) * cfg.n_classes);
    int rc = ltf_forward_backward(&m, xs, ys, B, n, &loss);
    CHECK(rc == 0, "%s: forward_backward failed: %s", label, m.err);
    float *g = (float *)malloc(sizeof(float) * m.n_params);
    memcpy(g, m.grads, sizeof(float) * m.n_params);
    float *Ys = zeros((size_t)B * 2 * n * cfg.n_embd);
    CHECK(ltf_window_start_state(&m, xs, ys, B, n, Ys) == 0, "%s: window state: %s", label, m.err);
    float l2 = NAN;
    ltf_forward_loss_from(&m, xs, ys, B, n, Ys, &l2);
    CHECK(l2 == loss, "%s: loss from the frozen Y_s %.9g differs from the training loss %.9g", label, l2, loss);
    model_ctx ctx = {&m, xs, ys, Ys, B, n};
    double worst = 0;
    const char *worst_name = "";
    for (ptrdiff_t k = 0; k < shlen(m.tensors); k++) {
        ltf_tensor *t = &m.tensors[k];
        double e = fd_check(m.params + t->offset, t->size, g + t->offset, loss_model, &ctx, 3e-3f);
        if (e > worst) { worst = e; worst_name = t->key; }
        CHECK(e < FD_TOL, "%s: %s rel err %.2e", label, t->key, e);
    }
    printf("  %-34s worst rel err %.2e (%s)\n", label, worst, worst_name);
    free(g); free(xs); free(ys); free(Ys);
    ltf_model_free(&m);
}

static ltf_config small_config(int kind, int L, int b, int T) {
    ltf_config c;
    ltf_config_default(&c);
    c.n_dims = 3; c.n_positions = 6; c.n_embd = 8; c.n_head = 2; c.n_layer = L;
    c.kind = kind; c.n_loops = b; c.loop_window = T;
    return c;
}

static void test_model_gradients(void) {
    model_gradcheck("standard L=2", small_config(LTF_STANDARD, 2, 1, 1), 2, 4);
    model_gradcheck("looped L=1 b=4 T=4", small_config(LTF_LOOPED, 1, 4, 4), 2, 4);
    model_gradcheck("looped L=2 b=5 T=2 (truncated)", small_config(LTF_LOOPED, 2, 5, 2), 2, 4);
    ltf_config c = small_config(LTF_LOOPED, 1, 5, 3);
    c.mask_mode = LTF_MASK_KEEP_LAST; c.mask_pairs = 2; c.mask_when = LTF_AT_BOTH;
    model_gradcheck("looped keep-last-2, mask at train", c, 2, 4);
    c.mask_mode = LTF_MASK_KEEP_FIRST; c.mask_pairs = 1; c.mask_when = LTF_AT_TRAIN;
    model_gradcheck("looped keep-first-1, mask at train", c, 2, 4);
    c.mask_mode = LTF_MASK_KEEP_LAST; c.mask_pairs = 1; c.mask_when = LTF_AT_EVAL;
    model_gradcheck("looped keep-last-1, mask at eval", c, 2, 4);
    /* the paper code's variants (docs/MATH.md §12) */
    c = small_config(LTF_LOOPED, 1, 4, 4); c.loop_func = LTF_LOOP_MUL;
    model_gradcheck("looped mul b=4 T=4", c, 2, 4);
    c = small_config(LTF_LOOPED, 2, 5, 2); c.loop_func = LTF_LOOP_MUL;
    model_gradcheck("looped mul L=2 b=5 T=2 (truncated)", c, 2, 4);
    c = small_config(LTF_STANDARD, 3, 1, 1); c.inject_every_block = 1;
    model_gradcheck("standard L=3 inject every block", c, 2, 4);
    c = small_config(LTF_STANDARD, 2, 1, 1); c.no_pos_emb = 1;
    model_gradcheck("standard L=2 no position embedding", c, 2, 4);
    c = small_config(LTF_LOOPED, 1, 5, 3); c.no_pos_emb = 1;
    model_gradcheck("looped b=5 T=3 no position embedding", c, 2, 4);
    model_gradcheck("tied L=1 applied 4 times", small_config(LTF_TIED, 1, 4, 4), 2, 4);
    c = small_config(LTF_TIED, 2, 3, 3); c.no_pos_emb = 1;
    model_gradcheck("tied L=2 applied 3 times, no pos", c, 2, 4);
    /* the classification read-out (docs/MATH.md §13) */
    c = small_config(LTF_LOOPED, 1, 5, 3); c.n_classes = 3;
    model_gradcheck("looped b=5 T=3, 3 classes", c, 2, 4);
    c = small_config(LTF_STANDARD, 2, 1, 1); c.n_classes = 2;
    model_gradcheck("standard L=2, 2 classes", c, 2, 4);
}

/* ------------------------------------------------------------------ PyTorch fixtures */

typedef struct { char *key; double *value; size_t count; } fx_entry;
typedef struct { ltf_config cfg; int B, n; fx_entry *t; } fixture;

static int fixture_load(const char *path, fixture *f) {
    FILE *fp = fopen(path, "r");
    char line[512], kind[32] = "", mask[32] = "", when[32] = "";
    memset(f, 0, sizeof *f);
    if (!fp) return -1;
    if (!fgets(line, sizeof line, fp) || strncmp(line, "looped-tf-fixture 1", 19) != 0) { fclose(fp); return -1; }
    ltf_config *c = &f->cfg;
    ltf_config_default(c);
    if (fscanf(fp, " config d=%d n_points=%d n_positions=%d C=%d H=%d L=%d kind=%31s b=%d T=%d B=%d mask=%31s mask_n=%d mask_when=%31s",
               &c->n_dims, &f->n, &c->n_positions, &c->n_embd, &c->n_head, &c->n_layer, kind, &c->n_loops,
               &c->loop_window, &f->B, mask, &c->mask_pairs, when) != 13) { fclose(fp); return -1; }
    c->kind = strcmp(kind, "looped") == 0 ? LTF_LOOPED : strcmp(kind, "tied") == 0 ? LTF_TIED : LTF_STANDARD;
    c->mask_mode = strcmp(mask, "last") == 0 ? LTF_MASK_KEEP_LAST : strcmp(mask, "first") == 0 ? LTF_MASK_KEEP_FIRST : LTF_MASK_NONE;
    c->mask_when = strcmp(when, "train") == 0 ? LTF_AT_TRAIN : strcmp(when, "eval") == 0 ? LTF_AT_EVAL : LTF_AT_BOTH;
    char func[32];   /* an optional line: the variants of docs/MATH.md §12 */
    if (fscanf(fp, " variants loop_func=%31s inject_every_block=%d no_pos_emb=%d", func, &c->inject_every_block,
               &c->no_pos_emb) == 3)
        c->loop_func = strcmp(func, "mul") == 0 ? LTF_LOOP_MUL : LTF_LOOP_ADD;
    if (fscanf(fp, " classes %d", &c->n_classes) != 1) c->n_classes = 0;   /* optional: §13 */
    sh_new_strdup(f->t);
    char name[200];
    size_t count;
    while (fscanf(fp, " tensor %199s %zu", name, &count) == 2) {
        fx_entry e;
        e.count = count;
        e.value = (double *)malloc(sizeof(double) * (count + 1));
        for (size_t i = 0; i < count; i++)
            if (fscanf(fp, "%lf", &e.value[i]) != 1) { fclose(fp); return -1; }
        e.key = name;
        shputs(f->t, e);
    }
    fclose(fp);
    return 0;
}

static void fixture_free(fixture *f) {
    for (ptrdiff_t i = 0; i < shlen(f->t); i++) free(f->t[i].value);
    shfree(f->t);
}

static float *to_float(const fx_entry *e) {
    float *p = (float *)malloc(sizeof(float) * (e->count + 1));
    for (size_t i = 0; i < e->count; i++) p[i] = (float)e->value[i];
    return p;
}

static void test_fixture(const char *file) {
    char path[256];
    fixture f;
    snprintf(path, sizeof path, "tests/fixtures/%s", file);
    if (fixture_load(path, &f) != 0) { CHECK(0, "cannot read fixture %s (run from the repository root)", path); return; }
    ltf_model m;
    char err[LTF_ERR_LEN];
    if (ltf_model_create(&m, &f.cfg, 1, err) != 0) { CHECK(0, "%s: %s", file, err); fixture_free(&f); return; }
    int loaded = 0;
    for (ptrdiff_t k = 0; k < shlen(m.tensors); k++) {
        ltf_tensor *t = &m.tensors[k];
        ptrdiff_t i = shgeti(f.t, t->key);
        CHECK(i >= 0 && f.t[i].count == t->size, "%s: tensor %s missing or misshapen in fixture", file, t->key);
        if (i < 0 || f.t[i].count != t->size) continue;
        for (size_t j = 0; j < t->size; j++) m.params[t->offset + j] = (float)f.t[i].value[j];
        loaded++;
    }
    CHECK(loaded == (int)shlen(m.tensors), "%s: loaded %d of %d tensors", file, loaded, (int)shlen(m.tensors));
    float *xs = to_float(shgetp(f.t, "xs")), *ys = to_float(shgetp(f.t, "ys")), loss;
    int rc = ltf_forward_backward(&m, xs, ys, f.B, f.n, &loss);
    CHECK(rc == 0, "%s: %s", file, m.err);
    double want = shgetp(f.t, "loss")->value[0];
    double le = fabs(loss - want) / fabs(want), worst = le;
    const char *worst_name = "loss";
    CHECK(le < 1e-4, "%s: loss %.9g, PyTorch %.9g (rel err %.2e)", file, loss, want, le);
    for (ptrdiff_t k = 0; k < shlen(m.tensors); k++) {
        ltf_tensor *t = &m.tensors[k];
        char gname[200];
        snprintf(gname, sizeof gname, "grad.%s", t->key);
        ptrdiff_t i = shgeti(f.t, gname);
        if (i < 0) { CHECK(0, "%s: no %s", file, gname); continue; }
        double e = rel_err_d(m.grads + t->offset, f.t[i].value, t->size);
        if (e > worst) { worst = e; worst_name = t->key; }
        CHECK(e < 1e-4, "%s: %s rel err %.2e", file, gname, e);
    }
    /* predictions of every loop iteration, evaluation rule */
    fx_entry *ep = shgetp(f.t, "eval_pred");
    int loops = f.cfg.kind == LTF_STANDARD ? 1 : f.cfg.n_loops, K = f.cfg.n_classes ? f.cfg.n_classes : 1;
    float *it = zeros(ep->count), *last = zeros((size_t)f.B * f.n * K);
    rc = ltf_predict(&m, xs, ys, f.B, f.n, loops, last, it);
    CHECK(rc == 0 && ep->count == (size_t)loops * f.B * f.n * K, "%s: predict failed or eval_pred size %zu", file, ep->count);
    double pe = rel_err_d(it, ep->value, ep->count);
    if (pe > worst) { worst = pe; worst_name = "eval_pred"; }
    CHECK(pe < 1e-4, "%s: predictions of every iteration rel err %.2e", file, pe);
    printf("  %-34s worst rel err %.2e (%s)\n", file, worst, worst_name);
    free(xs); free(ys); free(it); free(last);
    ltf_model_free(&m);
    fixture_free(&f);
}

static void test_pytorch_fixtures(void) {
    test_fixture("standard.txt");
    test_fixture("looped.txt");
    test_fixture("looped_L2.txt");
    test_fixture("looped_last2.txt");
    test_fixture("looped_first2.txt");
    test_fixture("looped_mul.txt");
    test_fixture("standard_every.txt");
    test_fixture("looped_nopos.txt");
    test_fixture("tied.txt");
    test_fixture("looped_cls3.txt");
}

/* ------------------------------------------------------------------ structure */

static void test_names_and_init(void) {
    ltf_config c;
    ltf_config_default(&c);
    c.n_dims = 20; c.n_positions = 41; c.n_embd = 256; c.n_head = 8; c.n_layer = 1;
    ltf_model m;
    char err[LTF_ERR_LEN];
    CHECK(ltf_model_create(&m, &c, 42, err) == 0, "create: %s", err);
    /* docs/MATH.md §6: the block stack without wpe, read_in, read_out has 0.79M params for L=1 */
    size_t stack = m.n_params;
    const char *outside[] = {"_read_in.weight", "_read_in.bias", "_backbone.transformer.wpe.weight",
                             "_read_out.weight", "_read_out.bias"};
    for (int i = 0; i < 5; i++) stack -= ltf_model_find(&m, outside[i])->size;
    CHECK(stack == 790272, "block stack has %zu params, docs/MATH.md §6 says 0.79M (790272)", stack);
    ltf_tensor *t = ltf_model_find(&m, "_backbone.transformer.h.0.attn.c_attn.weight");
    CHECK(t && t->ndim == 2 && t->shape[0] == 768 && t->shape[1] == 256, "c_attn.weight shape [768, 256]");
    t = ltf_model_find(&m, "_backbone.transformer.wpe.weight");
    CHECK(t && t->shape[0] == 83 && t->shape[1] == 256, "wpe has 2*41+1 = 83 rows");
    CHECK(ltf_model_find(&m, "_backbone.transformer.h.1.ln_1.weight") == NULL, "no layer 1 in an L=1 model");
    /* tensors tile the buffer in order, no gaps */
    size_t off = 0;
    for (ptrdiff_t k = 0; k < shlen(m.tensors); k++) { CHECK(m.tensors[k].offset == off, "gap before %s", m.tensors[k].key); off += m.tensors[k].size; }
    CHECK(off == m.n_params, "tensors cover %zu of %zu floats", off, m.n_params);
    /* init statistics (docs/MATH.md §5) */
    #define STAT(name, want_mean, want_std, tol) do { \
        ltf_tensor *tt = ltf_model_find(&m, name); double s = 0, s2 = 0; \
        for (size_t i = 0; i < tt->size; i++) { double v = m.params[tt->offset + i]; s += v; s2 += v * v; } \
        double mu = s / tt->size, sd = sqrt(s2 / tt->size - mu * mu); \
        CHECK(fabs(mu - (want_mean)) < (tol) && fabs(sd - (want_std)) < (tol), "%s: mean %.4f std %.4f, want %.4f %.4f", name, mu, sd, (double)(want_mean), (double)(want_std)); \
    } while (0)
    STAT("_backbone.transformer.h.0.attn.c_attn.weight", 0, 0.02, 1e-3);
    STAT("_backbone.transformer.h.0.mlp.c_fc.weight", 0, 0.02, 1e-3);
    STAT("_backbone.transformer.h.0.attn.c_proj.weight", 0, 0.02 / sqrt(2.0), 1e-3);
    STAT("_backbone.transformer.h.0.mlp.c_proj.weight", 0, 0.02 / sqrt(2.0), 1e-3);
    STAT("_backbone.transformer.wpe.weight", 0, 0.02, 1e-3);
    STAT("_backbone.transformer.h.0.ln_1.weight", 1, 0, 1e-9);
    STAT("_backbone.transformer.h.0.attn.c_attn.bias", 0, 0, 1e-9);
    STAT("_read_in.weight", 0, 1.0 / sqrt(20.0) / sqrt(3.0), 0.01);   /* U(-a, a): std a/sqrt(3) */
    STAT("_read_out.weight", 0, 1.0 / 16.0 / sqrt(3.0), 0.01);
    ltf_model_free(&m);
}

static void expect_config_error(ltf_config c, const char *needle) {
    char err[LTF_ERR_LEN] = "";
    int rc = ltf_config_check(&c, err);
    CHECK(rc == -1 && strstr(err, needle), "config should fail with '%s', got rc=%d '%s'", needle, rc, err);
    ltf_model m;
    CHECK(ltf_model_create(&m, &c, 1, err) == -1, "model_create accepted a bad config (%s)", needle);
}

static void test_config_validation(void) {
    ltf_config c;
    ltf_config_default(&c);
    char err[LTF_ERR_LEN];
    CHECK(ltf_config_check(&c, err) == 0, "default config rejected: %s", err);
    ltf_config b;
    b = c; b.n_embd = 10; b.n_head = 4; expect_config_error(b, "n_embd (C) = 10 is not divisible by n_head (H) = 4");
    b = c; b.loop_window = 11; expect_config_error(b, "loop_window (T) = 11 is larger than n_loops (b) = 10");
    b = c; b.n_dims = 0; expect_config_error(b, "n_dims (d) = 0");
    b = c; b.n_dims = -3; expect_config_error(b, "n_dims (d) = -3");
    b = c; b.n_embd = -64; expect_config_error(b, "n_embd (C) = -64");
    b = c; b.n_layer = 0; expect_config_error(b, "n_layer (L) = 0");
    b = c; b.n_loops = 0; expect_config_error(b, "n_loops (b) = 0");
    b = c; b.loop_window = 0; expect_config_error(b, "loop_window (T) = 0");
    b = c; b.n_head = 0; expect_config_error(b, "n_head (H) = 0");
    b = c; b.kind = 7; expect_config_error(b, "kind = 7");
    b = c; b.mask_mode = LTF_MASK_KEEP_LAST; b.mask_pairs = 12; expect_config_error(b, "mask_pairs (N) = 12");
    b = c; b.mask_mode = LTF_MASK_KEEP_LAST; b.mask_pairs = 2; b.mask_when = 0; expect_config_error(b, "mask_when = 0");
    b = c; b.kind = LTF_STANDARD; b.mask_mode = LTF_MASK_KEEP_FIRST; b.mask_pairs = 2; expect_config_error(b, "standard model");
    ltf_train_config t;
    ltf_train_config_default(&t);
    CHECK(ltf_train_config_check(&t, &c, err) == 0, "default train config rejected: %s", err);
    t.n_points = 12;
    CHECK(ltf_train_config_check(&t, &c, err) == -1 && strstr(err, "n_points = 12"), "more points than positions: '%s'", err);
    ltf_train_config_default(&t); t.lr = NAN;
    CHECK(ltf_train_config_check(&t, &c, err) == -1 && strstr(err, "lr = nan"), "lr NaN: '%s'", err);
    ltf_train_config_default(&t); t.batch_size = 0;
    CHECK(ltf_train_config_check(&t, &c, err) == -1 && strstr(err, "batch_size = 0"), "batch 0: '%s'", err);
    /* a model refuses a prompt longer than its positions, with a message, no crash */
    ltf_model m;
    ltf_model_create(&m, &c, 1, err);
    float xs[12 * 5] = {0}, ys[12] = {0}, loss;
    CHECK(ltf_forward_backward(&m, xs, ys, 1, 12, &loss) == -1 && strstr(m.err, "n = 12 points"), "n > positions: '%s'", m.err);
    ltf_model_free(&m);
}

/* ------------------------------------------------------------------ training machinery */

static void test_adam(void) {
    ltf_config c = small_config(LTF_STANDARD, 1, 1, 1);
    ltf_model m;
    char err[LTF_ERR_LEN];
    ltf_model_create(&m, &c, 1, err);
    ltf_train_config t;
    ltf_train_config_default(&t);
    t.lr = 1e-2f;
    memset(m.grads, 0, sizeof(float) * m.n_params);
    m.params[0] = 0.5f; m.grads[0] = 0.3f;
    float p1 = m.params[1];
    CHECK(ltf_adam_step(&m, &t) == 0, "adam: %s", m.err);
    /* step 1: m = 0.03, v = 9e-5, mhat = 0.3, vhat = 0.09: p = 0.5 - 0.01 * 0.3 / (0.3 + 1e-8) */
    CHECK(fabs(m.params[0] - 0.4900000003) < 1e-7, "Adam step 1: %.10f, want 0.4900000003", m.params[0]);
    CHECK(m.params[1] == p1, "zero gradient moved a parameter");
    m.grads[0] = -0.2f;
    ltf_adam_step(&m, &t);
    /* step 2 (by hand): m = 0.007, v = 1.3091e-4, mhat = 0.007/0.19, vhat = 1.3091e-4/0.001999 */
    CHECK(fabs(m.params[0] - 0.4885547951) < 2e-7, "Adam step 2: %.10f, want 0.4885547951", m.params[0]);
    /* decoupled weight decay: p *= 1 - lr*wd, then the Adam update (zero here: g = 0 from start) */
    ltf_model_free(&m);
    ltf_model_create(&m, &c, 1, err);
    memset(m.grads, 0, sizeof(float) * m.n_params);
    m.params[0] = 2.0f;
    t.weight_decay = 0.5f;
    ltf_adam_step(&m, &t);
    CHECK(fabs(m.params[0] - 2.0f * (1 - 0.01f * 0.5f)) < 1e-6, "AdamW decay: %.7f, want 1.99", m.params[0]);
    ltf_model_free(&m);
}

static void run_steps(ltf_model *m, const ltf_train_config *t, uint64_t seed, int steps, float *losses) {
    ltf_rng r;
    ltf_task task = ltf_task_linear_regression(m->cfg.n_dims, m->cfg.n_dims);
    ltf_rng_seed(&r, seed);
    size_t B = (size_t)t->batch_size, n = (size_t)t->n_points;
    float *xs = (float *)malloc(sizeof(float) * B * n * m->cfg.n_dims), *ys = (float *)malloc(sizeof(float) * B * n);
    for (int s = 0; s < steps; s++) {
        ltf_task_sample(&task, &r, (int)B, (int)n, xs, ys);
        if (ltf_train_step(m, t, xs, ys, (int)B, (int)n, &losses[s]) != 0) { printf("  step failed: %s\n", m->err); break; }
    }
    free(xs); free(ys);
}

static void test_determinism(void) {
    ltf_rng a, b;
    ltf_rng_seed(&a, 123); ltf_rng_seed(&b, 123);
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= ltf_rng_u32(&a) == ltf_rng_u32(&b);
    CHECK(same, "same seed, different RNG stream");
    ltf_rng_seed(&a, 42);
    uint32_t first = ltf_rng_u32(&a);
    ltf_rng_seed(&b, 43);
    CHECK(first != ltf_rng_u32(&b), "seeds 42 and 43 give the same first draw");
    /* same seed, same bits: two models trained 5 steps */
    ltf_config c;
    ltf_config_default(&c);
    ltf_train_config t;
    ltf_train_config_default(&t);
    t.batch_size = 8;
    ltf_model m1, m2;
    char err[LTF_ERR_LEN];
    ltf_model_create(&m1, &c, 42, err); ltf_model_create(&m2, &c, 42, err);
    float l1[5], l2[5];
    run_steps(&m1, &t, 9, 5, l1); run_steps(&m2, &t, 9, 5, l2);
    CHECK(memcmp(m1.params, m2.params, sizeof(float) * m1.n_params) == 0, "same seed, different parameters after 5 steps");
    CHECK(memcmp(l1, l2, sizeof l1) == 0, "same seed, different losses");
    ltf_model_free(&m2);
    ltf_model_create(&m2, &c, 43, err);
    CHECK(memcmp(m1.params, m2.params, sizeof(float) * m1.n_params) != 0, "seed 43 gives seed 42's weights");
    ltf_model_free(&m1); ltf_model_free(&m2);
}

static void test_training_learns(void) {
    /* Adam on one fixed batch of 16 prompts: the model must fit it, so the loss falls far.
     * (Fresh batches of linear regression sit on a plateau for the first ~1000 steps.) */
    ltf_config c = small_config(LTF_LOOPED, 1, 4, 2);
    c.n_embd = 32;
    ltf_train_config t;
    ltf_train_config_default(&t);
    ltf_model m;
    char err[LTF_ERR_LEN];
    ltf_model_create(&m, &c, 42, err);
    int B = 16, n = 6;
    float *xs = rand_buf((size_t)B * n * 3, 1), *ys = rand_buf((size_t)B * n, 1), loss = 0, first = 0;
    long allocs = 0;
    for (int s = 0; s < 300; s++) {
        if (ltf_train_step(&m, &t, xs, ys, B, n, &loss) != 0) { CHECK(0, "step %d: %s", s, m.err); break; }
        if (s == 0) { first = loss; allocs = g_alloc_calls; }
    }
    printf("  300 Adam steps on one batch: loss %.4f -> %.4f\n", first, loss);
    CHECK(loss < 0.3f * first, "loss did not fall: %.4f -> %.4f", first, loss);
    /* the first step sized the buffers; the other 299 must not allocate */
    CHECK(g_alloc_calls == allocs, "steps 2..300 allocated %ld times", g_alloc_calls - allocs);
    free(xs); free(ys);
    ltf_model_free(&m);
}

/* ltf_cpu_profile: the op counts and the multiplies' work of one training pass, known from the
 * loop (b block applications forward, T backward, 4 Linear layers each, and the read-in's
 * multiply and its weight gradient once), nothing counted while
 * off, the list sorted and cut to cap, and the same bits with the profile on */
static void test_cpu_profile(void) {
    int b = 4, T = 2, B = 8, n = 5, d = 3;
    ltf_config c = small_config(LTF_LOOPED, 1, b, T);
    ltf_train_config t;
    ltf_train_config_default(&t);
    ltf_model m[2];
    char err[LTF_ERR_LEN];
    float *xs = rand_buf((size_t)B * n * d, 1), *ys = rand_buf((size_t)B * n, 1), loss;
    for (int k = 0; k < 2; k++) CHECK(ltf_model_create(&m[k], &c, 7, err) == 0, "create: %s", err);
    ltf_cpu_profile(1);
    CHECK(ltf_train_step(&m[0], &t, xs, ys, B, n, &loss) == 0, "step: %s", m[0].err);
    ltf_cpu_profile(0);
    CHECK(ltf_train_step(&m[0], &t, xs, ys, B, n, &loss) == 0, "step: %s", m[0].err);   /* not counted */
    for (int s = 0; s < 2; s++) CHECK(ltf_train_step(&m[1], &t, xs, ys, B, n, &loss) == 0, "step: %s", m[1].err);
    CHECK(memcmp(m[0].params, m[1].params, sizeof(float) * m[0].n_params) == 0, "the profile changed the bits");
    ltf_op_time ops[32];
    int k = ltf_cpu_profile_read(ops, 32), found = 0;
    double rows = (double)B * 2 * n, C = c.n_embd, mm = 2.0 * rows * 12 * C * C * 1e-9;   /* 4 Linears: 12 C^2 */
    double in = 2.0 * rows * d * C * 1e-9;                                                 /* read-in: d -> C */
    struct { const char *name; long calls; double gflop; } want[] = {
        {"matmul forward (+ bias)", 4L * b + 1, b * mm + in}, {"matmul backward: dinp", 4L * T, T * mm},
        {"matmul backward: dw", 4L * T + 1, T * mm + in}, {"attention forward", b, -1}, {"attention backward", T, -1},
        {"adam", 1, 0}};
    for (int i = 0; i < k; i++) {
        CHECK(ops[i].ms >= 0 && (i == 0 || ops[i].ms <= ops[i - 1].ms), "%s: %.3f ms, out of order", ops[i].name, ops[i].ms);
        for (size_t j = 0; j < sizeof want / sizeof want[0]; j++) {
            if (strcmp(ops[i].name, want[j].name) != 0) continue;
            found++;
            CHECK(ops[i].calls == want[j].calls, "%s: %ld calls, expected %ld", ops[i].name, ops[i].calls, want[j].calls);
            CHECK(want[j].gflop < 0 ? ops[i].gflop > 0 : fabs(ops[i].gflop - want[j].gflop) <= 1e-12 * (1 + want[j].gflop),
                  "%s: %.9f GFLOP, expected %.9f", ops[i].name, ops[i].gflop, want[j].gflop);
        }
    }
    CHECK(found == (int)(sizeof want / sizeof want[0]), "%d of the %d ops expected in the profile", found,
          (int)(sizeof want / sizeof want[0]));
    CHECK(ltf_cpu_profile_read(ops, 2) == 2, "cap 2 not respected");
    ltf_cpu_profile(1);
    CHECK(ltf_cpu_profile_read(ops, 32) == 0, "ltf_cpu_profile(1) did not clear the profile");
    ltf_cpu_profile(0);
    printf("  one pass, b = %d, T = %d: %d ops timed, the multiplies' calls and GFLOP as the loop has them\n", b, T, k);
    for (int i = 0; i < 2; i++) ltf_model_free(&m[i]);
    free(xs); free(ys);
}

static void test_threads_same_bits(void) {
    /* the threads split rows, columns and heads but never a sum: 3 training steps on all
     * threads and on one give the same parameters bit for bit */
#ifdef _OPENMP
    ltf_config c = small_config(LTF_LOOPED, 1, 4, 2);
    c.n_embd = 64;
    ltf_train_config t;
    ltf_train_config_default(&t);
    ltf_model m[2];
    char err[LTF_ERR_LEN];
    int B = 64, n = 6, nt = omp_get_max_threads();   /* 768 rows x 64: every op takes its threaded path */
    ltf_rng saved = g_rng;   /* own data: the later tests keep the draws they were tuned on */
    float *xs = rand_buf((size_t)B * n * 3, 1), *ys = rand_buf((size_t)B * n, 1), loss;
    g_rng = saved;
    for (int k = 0; k < 2; k++) {
        ltf_model_create(&m[k], &c, 5, err);
        omp_set_num_threads(k == 0 ? nt : 1);
        for (int s = 0; s < 3; s++) CHECK(ltf_train_step(&m[k], &t, xs, ys, B, n, &loss) == 0, "step: %s", m[k].err);
    }
    omp_set_num_threads(nt);
    CHECK(memcmp(m[0].params, m[1].params, sizeof(float) * m[0].n_params) == 0,
          "%d threads and 1 thread trained different parameters", nt);
    printf("  3 steps on %d threads and on 1: parameters %s\n", nt,
           memcmp(m[0].params, m[1].params, sizeof(float) * m[0].n_params) ? "differ" : "bit-identical");
    for (int k = 0; k < 2; k++) ltf_model_free(&m[k]);
    free(xs); free(ys);
#else
    printf("  skipped: built without OpenMP\n");
#endif
}

static void test_nan_loses_nothing(void) {
    ltf_config c = small_config(LTF_LOOPED, 1, 3, 2);
    ltf_model m;
    char err[LTF_ERR_LEN];
    ltf_model_create(&m, &c, 3, err);
    ltf_train_config t;
    ltf_train_config_default(&t);
    float *xs = rand_buf(2 * 4 * 3, 1), *ys = rand_buf(8, 1), loss;
    float *before = (float *)malloc(sizeof(float) * m.n_params);
    memcpy(before, m.params, sizeof(float) * m.n_params);
    ys[3] = NAN;
    int rc = ltf_train_step(&m, &t, xs, ys, 2, 4, &loss);
    CHECK(rc == -1 && strstr(m.err, "NaN"), "NaN target: rc %d, '%s'", rc, m.err);
    CHECK(memcmp(before, m.params, sizeof(float) * m.n_params) == 0 && m.adam_t == 0, "a NaN step changed the parameters");
    ys[3] = 0; xs[0] = INFINITY;
    rc = ltf_train_step(&m, &t, xs, ys, 2, 4, &loss);
    CHECK(rc == -1 && memcmp(before, m.params, sizeof(float) * m.n_params) == 0, "Inf input: rc %d, '%s'", rc, m.err);
    free(xs); free(ys); free(before);
    ltf_model_free(&m);
}

/* Peak resident memory of one training step, measured in a fresh process: this binary re-run
 * as "test --peak-child b T" (fork + exec, so the child starts with a clean OpenMP runtime;
 * a forked child of a process that already used OpenMP can deadlock in libgomp). */
static int peak_child_main(int b, int T) {
    ltf_config c;
    ltf_config_default(&c);
    c.n_loops = b; c.loop_window = T;
    ltf_model m;
    char err[LTF_ERR_LEN];
    if (ltf_model_create(&m, &c, 1, err) != 0) return 2;
    ltf_train_config t;
    ltf_train_config_default(&t);
    float *xs = (float *)malloc(sizeof(float) * 64 * 11 * 5), *ys = (float *)malloc(sizeof(float) * 64 * 11), loss;
    ltf_rng r;
    ltf_rng_seed(&r, 1);
    ltf_task task = ltf_task_linear_regression(5, 5);
    ltf_task_sample(&task, &r, 64, 11, xs, ys);
    int rc = ltf_train_step(&m, &t, xs, ys, 64, 11, &loss) == 0 ? 0 : 3;
    free(xs); free(ys);
    ltf_model_free(&m);   /* leak-free under -fsanitize=address too */
    return rc;
}

static long child_peak_kb(int b, int T) {
    char bs[16], ts[16];
    snprintf(bs, sizeof bs, "%d", b);
    snprintf(ts, sizeof ts, "%d", T);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "test", "--peak-child", bs, ts, (char *)NULL);
        _exit(4);
    }
    int status;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
    return ru.ru_maxrss;
}

/* Under AddressSanitizer the peak RSS is the sanitizer's (shadow memory, quarantine), and the
 * b=200 step takes a minute: ./build.sh sanitize skips this one. */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_UNDER_ASAN 1
#endif
#endif
static void test_memory_independent_of_b(void) {
#ifdef TEST_UNDER_ASAN
    printf("  skipped under AddressSanitizer: RSS measures the sanitizer\n");
    return;
#endif
    long p20 = child_peak_kb(20, 15), p200 = child_peak_kb(200, 15);
    double ratio = (double)p200 / (double)p20;
    printf("  peak RSS of a training step (default model, B=64, T=15): b=20 %ld KB, b=200 %ld KB (ratio %.3f)\n", p20, p200, ratio);
    CHECK(p20 > 0 && p200 > 0 && fabs(ratio - 1.0) < 0.10, "peak memory b=200 vs b=20 differs by %.1f%%", 100 * (ratio - 1));
}

/* ------------------------------------------------------------------ tasks, curriculum and evaluation */

/* Nonzero coordinates (|w_j| > 1e-4) of the least-squares fit of one prompt of n <= 40 points,
 * d <= 8: the sparse task's w, recovered exactly from n > d noiseless points. */
static int lstsq_nonzeros(const float *xs, const float *ys, int n, int d) {
    double X[40 * 8], y[40], w[8];
    for (int i = 0; i < n * d; i++) X[i] = xs[i];
    for (int i = 0; i < n; i++) y[i] = ys[i];
    ltf_lstsq_minnorm(n, d, X, y, w);
    int nz = 0;
    for (int j = 0; j < d; j++) nz += fabs(w[j]) > 1e-4;
    return nz;
}

static void test_tasks(void) {
    int d = 8, n = 40, P = 2000;   /* P prompts: E[y^2] estimates within ~2% (1 sd) */
    float *xs = (float *)malloc(sizeof(float) * (size_t)P * n * d), *ys = (float *)malloc(sizeof(float) * (size_t)P * n);
    for (int kind = 0; kind < LTF_TASK_COUNT; kind++) {
        ltf_task t = ltf_task_make(kind, d, d);
        CHECK(ltf_task_kind_from_name(ltf_task_kind_name(kind)) == kind, "name round trip %s", t.name);
        /* normalization: the zero predictor scores ~1 on every task (docs/MATH.md §8) */
        double e[40];
        ltf_rng r;
        ltf_rng_seed(&r, 7 + kind);
        ltf_baseline_evaluate(LTF_BASE_ZERO, &t, &r, 3000, n, e, NULL);
        double mean = 0;
        for (int k = 0; k < n; k++) mean += e[k] / n;
        CHECK(fabs(mean - 1.0) < 0.08, "%s: zero predictor error %.3f, want ~1", t.name, mean);
    }
    CHECK(ltf_task_kind_from_name("quadratic") == -1, "unknown task name gives -1");
    /* the dims curriculum: coordinates >= d_active are zero, except for the tree (paper's code) */
    for (int kind = 0; kind < LTF_TASK_COUNT; kind++) {
        ltf_task t = ltf_task_make(kind, d, 3);
        ltf_task_sample(&t, &g_rng, P, n, xs, ys);
        double tail = 0, y2 = 0;
        for (size_t i = 0; i < (size_t)P * n; i++) {
            for (int j = 3; j < d; j++) tail += fabs(xs[i * d + j]);
            y2 += (double)ys[i] * ys[i] / ((double)P * n);
        }
        if (kind == LTF_TASK_DECISION_TREE) CHECK(tail > 0, "tree ignores the dims curriculum (x not truncated)");
        else CHECK(tail == 0, "%s: x truncated to d_active (tail %g)", t.name, tail);
        double want = 3.0;                                          /* 3 active coordinates      */
        if (kind == LTF_TASK_DECISION_TREE) want = 1.0;                 /* leaf values ~ N(0, 1)     */
        if (kind == LTF_TASK_SPARSE_LINEAR) want = 3.0 * 3.0 / d;       /* 3 of d kept, 3 active     */
        if (kind == LTF_TASK_NOISY_LINEAR) want = 3.0 + 0.01;           /* plus the noise variance   */
        CHECK(fabs(y2 - want) < 0.1 * want, "%s at d_active=3: E[y^2] = %.3f, want %.3f", t.name, y2, want);
    }
    /* sparse: w has exactly 3 nonzeros (d_active = d), recovered by least squares from n > d points */
    ltf_task sp = ltf_task_make(LTF_TASK_SPARSE_LINEAR, d, d);
    ltf_task_sample(&sp, &g_rng, 1, n, xs, ys);
    int nz = lstsq_nonzeros(xs, ys, n, d);
    CHECK(nz == 3, "sparse task: w has %d nonzeros, want 3", nz);
    double X[40 * 8], y[40], w[8];
    /* noisy: the residual of a least-squares fit has variance ~0.1^2 */
    ltf_task no = ltf_task_make(LTF_TASK_NOISY_LINEAR, d, d);
    double rss = 0;
    for (int p = 0; p < 50; p++) {
        ltf_task_sample(&no, &g_rng, 1, n, xs, ys);
        for (int i = 0; i < n * d; i++) X[i] = xs[i];
        for (int i = 0; i < n; i++) y[i] = ys[i];
        ltf_lstsq_minnorm(n, d, X, y, w);
        for (int i = 0; i < n; i++) { double r = y[i]; for (int j = 0; j < d; j++) r -= w[j] * X[i * d + j]; rss += r * r; }
    }
    double sigma2 = rss / (50.0 * (n - d));
    CHECK(fabs(sigma2 - 0.01) < 0.002, "noisy task: residual variance %.4f, want 0.01", sigma2);
    /* tree: one prompt takes at most 16 distinct values */
    ltf_task tr = ltf_task_make(LTF_TASK_DECISION_TREE, d, d);
    ltf_task_sample(&tr, &g_rng, 1, n, xs, ys);
    int distinct = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++) seen |= ys[j] == ys[i];
        distinct += !seen;
    }
    CHECK(distinct >= 2 && distinct <= 16, "tree prompt has %d distinct y values, want 2..16", distinct);
    free(xs); free(ys);
}

static void test_curriculum(void) {
    ltf_schedule s = {11, 41, 2, 5000};
    CHECK(ltf_schedule_value(&s, 0) == 11 && ltf_schedule_value(&s, 4999) == 11 && ltf_schedule_value(&s, 5000) == 13 &&
          ltf_schedule_value(&s, 74999) == 39 && ltf_schedule_value(&s, 75000) == 41 && ltf_schedule_value(&s, 10000000) == 41,
          "min(start + floor(i/interval)*inc, end)");
    ltf_config c = small_config(LTF_LOOPED, 1, 20, 15);
    c.n_dims = 20; c.n_positions = 101;
    ltf_curriculum cur;
    char err[LTF_ERR_LEN];
    ltf_curriculum_default(&cur, LTF_TASK_LINEAR, &c, 41);
    CHECK(cur.dims.start == 5 && cur.dims.end == 20 && cur.points.start == 11 && cur.points.end == 41 &&
          cur.loops.start == 15 && cur.loops.end == 20 && cur.loops.interval == 500, "paper curriculum (docs/MATH.md §6)");
    CHECK(ltf_schedule_value(&cur.loops, 1499) == 19 && ltf_schedule_value(&cur.loops, 1500) == 20, "loops 15 -> 20, +2 / 500");
    ltf_curriculum_default(&cur, LTF_TASK_RELU_2NN, &c, 101);
    CHECK(cur.points.start == 26 && cur.points.inc == 5, "ReLU/tree points 26 -> 101, +5");
    CHECK(ltf_curriculum_check(&cur, &c, err) == 0, "valid curriculum: %s", err);
    cur.loops.start = 3;
    CHECK(ltf_curriculum_check(&cur, &c, err) == -1 && strstr(err, "loops"), "loops below T rejected: %s", err);
    /* ltf_train_next follows the curriculum and restores b */
    ltf_config t = small_config(LTF_LOOPED, 1, 6, 2);
    t.n_positions = 8;
    ltf_model m;
    ltf_model_create(&m, &t, 3, err);
    ltf_train_config tc;
    ltf_train_config_default(&tc);
    tc.batch_size = 4;
    cur.dims = (ltf_schedule){1, t.n_dims, 1, 2};
    cur.points = (ltf_schedule){3, 8, 2, 2};
    cur.loops = (ltf_schedule){2, 6, 2, 1};
    ltf_train_state st;
    ltf_train_state_init(&st, LTF_TASK_LINEAR, &tc, &cur, 5);
    float *xs = (float *)malloc(sizeof(float) * 4 * 8 * t.n_dims), *ys = (float *)malloc(sizeof(float) * 4 * 8), loss;
    int ns[6], ok = 1;
    for (int i = 0; i < 6; i++) ok &= ltf_train_next(&m, &st, xs, ys, &loss, &ns[i]) == 0;
    CHECK(ok && st.step == 6 && m.cfg.n_loops == 6, "6 steps taken, b restored (%ld, %d)", st.step, m.cfg.n_loops);
    CHECK(ns[0] == 3 && ns[2] == 5 && ns[4] == 7 && ns[5] == 7, "points follow the curriculum: %d %d %d", ns[0], ns[2], ns[4]);
    /* and trains with the curriculum's b: one step at b = 4 equals ltf_train_step on a twin
     * whose config says b = 4, bit for bit (the same prompts: train_next leaves them in xs, ys) */
    ltf_model twin;
    ltf_model_create(&twin, &t, 3, err);
    memcpy(twin.params, m.params, sizeof(float) * m.n_params);
    memcpy(twin.adam_m, m.adam_m, sizeof(float) * m.n_params);
    memcpy(twin.adam_v, m.adam_v, sizeof(float) * m.n_params);
    twin.adam_t = m.adam_t;
    cur.loops = (ltf_schedule){4, 4, 0, 1};
    st.curriculum = cur;
    int n4 = 0;
    float loss_twin = 0;
    ltf_train_config tc4 = st.train;
    CHECK(ltf_train_next(&m, &st, xs, ys, &loss, &n4) == 0, "curriculum step at b = 4: %s", m.err);
    twin.cfg.n_loops = 4;
    tc4.n_points = n4;
    CHECK(ltf_train_step(&twin, &tc4, xs, ys, tc.batch_size, n4, &loss_twin) == 0, "twin step: %s", twin.err);
    CHECK(loss == loss_twin && memcmp(m.params, twin.params, sizeof(float) * m.n_params) == 0 && m.cfg.n_loops == 6,
          "train_next at b = 4 (loss %.9g) differs from a b = 4 step (loss %.9g)", loss, loss_twin);
    ltf_model_free(&twin);
    free(xs); free(ys);
    ltf_model_free(&m);
}

static void test_eval_loops(void) {
    /* evaluation runs any number of iterations on one scratch set; the prediction after iteration
     * b equals the last training-window prediction's forward; standard ignores n_loops */
    ltf_config c = small_config(LTF_LOOPED, 1, 3, 2);
    ltf_model m;
    char err[LTF_ERR_LEN];
    ltf_model_create(&m, &c, 3, err);
    randomize_model(&m, 0.3f);
    float *xs = rand_buf(2 * 4 * 3, 1), *ys = rand_buf(8, 1), last[8], *it = zeros(50 * 8);
    CHECK(ltf_predict(&m, xs, ys, 2, 4, 50, last, it) == 0, "predict 50 loops: %s", m.err);
    CHECK(memcmp(last, it + 49 * 8, sizeof last) == 0, "last prediction differs from iteration 50");
    float l3[8];
    ltf_predict(&m, xs, ys, 2, 4, 3, l3, NULL);
    CHECK(memcmp(l3, it + 2 * 8, sizeof l3) == 0, "3 loops differ from the 3rd of 50");
    CHECK(ltf_predict(&m, xs, ys, 2, 4, 0, last, NULL) == -1, "0 loops accepted");
    ltf_task task = ltf_task_linear_regression(3, 3);
    double ek[4] = {NAN, NAN, NAN, NAN}, ei[7] = {NAN};
    ltf_rng r;
    ltf_rng_seed(&r, 1);
    CHECK(ltf_evaluate(&m, &task, &r, 100, 4, 7, ek, ei, NULL) == 0, "evaluate: %s", m.err);
    CHECK(isfinite(ek[3]) && isfinite(ei[6]) && ei[6] > 0, "evaluate gives finite errors");
    ltf_task wrong = ltf_task_linear_regression(4, 4);
    CHECK(ltf_evaluate(&m, &wrong, &r, 100, 4, 7, ek, NULL, NULL) == -1 && strstr(m.err, "d = 4"), "task/model d mismatch: %s", m.err);
    free(xs); free(ys); free(it);
    ltf_model_free(&m);
}

/* ------------------------------------------------------------------ checkpoints */

static unsigned char *read_whole(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    *len = 0;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = (unsigned char *)malloc((size_t)n + 1);
    *len = fread(p, 1, (size_t)n, f);
    fclose(f);
    return p;
}

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

/* a fresh directory under /tmp for one test's files; the test removes what it wrote */
static void make_tmpdir(char dir[64]) {
    snprintf(dir, 64, "/tmp/ltf_test_XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); exit(2); }
}

/* A train state for the small looped config (d=3, b=3, T=2, 6 positions) whose curriculum moves
 * every step or two, so that a resume in the middle has to restore it. */
static ltf_train_state small_state(int task_kind, uint64_t seed) {
    ltf_train_state st;
    ltf_train_config tc;
    ltf_train_config_default(&tc);
    tc.batch_size = 4; tc.n_points = 5;
    ltf_curriculum cur = {{1, 3, 1, 1}, {2, 5, 1, 2}, {2, 3, 1, 3}};   /* dims, points, loops */
    ltf_train_state_init(&st, task_kind, &tc, &cur, seed);
    return st;
}

/* `steps` curriculum steps (ltf_train_next) on fresh prompts drawn from st->data_rng. */
static void train_steps(ltf_model *m, ltf_train_state *st, int steps) {
    int d = m->cfg.n_dims, B = st->train.batch_size, n = st->train.n_points;
    float *xs = (float *)malloc(sizeof(float) * (size_t)(B * n * d)), *ys = (float *)malloc(sizeof(float) * (size_t)(B * n));
    float loss;
    for (int s = 0; s < steps; s++)
        if (ltf_train_next(m, st, xs, ys, &loss, NULL) != 0) { CHECK(0, "train step: %s", m->err); break; }
    free(xs); free(ys);
}

static int same_state(const ltf_train_state *a, const ltf_train_state *b) {
    const ltf_schedule *sa[3] = {&a->curriculum.dims, &a->curriculum.points, &a->curriculum.loops};
    const ltf_schedule *sb[3] = {&b->curriculum.dims, &b->curriculum.points, &b->curriculum.loops};
    int same = a->step == b->step && a->data_rng.state == b->data_rng.state && a->data_rng.inc == b->data_rng.inc
            && a->task_kind == b->task_kind && a->train.batch_size == b->train.batch_size
            && a->train.n_points == b->train.n_points
            && memcmp(&a->train.lr, &b->train.lr, 4) == 0 && memcmp(&a->train.beta1, &b->train.beta1, 4) == 0
            && memcmp(&a->train.beta2, &b->train.beta2, 4) == 0 && memcmp(&a->train.eps, &b->train.eps, 4) == 0
            && memcmp(&a->train.weight_decay, &b->train.weight_decay, 4) == 0;
    for (int k = 0; k < 3; k++)
        same &= sa[k]->start == sb[k]->start && sa[k]->end == sb[k]->end && sa[k]->inc == sb[k]->inc
             && sa[k]->interval == sb[k]->interval;
    return same;
}

static int same_floats(const float *a, const float *b, size_t n) { return memcmp(a, b, sizeof(float) * n) == 0; }

static void test_checkpoint_roundtrip(void) {
    char dir[64], full[128], wonly[128], err[LTF_ERR_LEN];
    make_tmpdir(dir);
    snprintf(full, sizeof full, "%s/full.safetensors", dir);
    snprintf(wonly, sizeof wonly, "%s/weights.safetensors", dir);
    ltf_config c = small_config(LTF_LOOPED, 2, 4, 3);
    c.mask_mode = LTF_MASK_KEEP_FIRST; c.mask_pairs = 2; c.mask_when = LTF_AT_TRAIN;
    ltf_model m, r;
    ltf_model_create(&m, &c, 5, err);
    randomize_model(&m, 0.7f);
    for (size_t i = 0; i < m.n_params; i++) {   /* any bit patterns a float can hold, denormals too */
        m.adam_m[i] = (float)ltf_rng_normal(&g_rng) * 1e-3f;
        m.adam_v[i] = (float)ltf_rng_uniform(&g_rng) * 1e-39f;
    }
    m.params[7] = -0.0f; m.params[8] = 1.17549435e-38f; m.params[9] = 3.40282347e38f;
    m.adam_t = 123457;
    ltf_train_state st = small_state(LTF_TASK_DECISION_TREE, 77), got;
    st.step = 2000000001L; st.data_rng.state = 0xFEDCBA9876543210ULL; st.data_rng.inc = 0xFFFFFFFFFFFFFFFFULL;
    st.train.lr = 3.3e-4f; st.train.beta1 = 0.8999999f; st.train.eps = 1e-30f; st.train.weight_decay = 0.1f;
    st.train.batch_size = 17; st.train.n_points = 6;
    ltf_curriculum cur = {{1, 3, 1, 2000}, {-5, 6, 2, 7}, {2, 4, 0, 0}};
    st.curriculum = cur;
    CHECK(ltf_checkpoint_save(&m, &st, full, err) == 0, "save: %s", err);
    CHECK(ltf_checkpoint_save(&m, NULL, wonly, err) == 0, "save weights-only: %s", err);
    memset(&got, 0, sizeof got);
    if (ltf_checkpoint_load(&r, &got, full, &c, err) != 0) { CHECK(0, "load: %s", err); return; }
    CHECK(memcmp(&r.cfg, &c, sizeof c) == 0, "config differs after load");
    CHECK(r.n_params == m.n_params && same_floats(r.params, m.params, m.n_params), "parameters differ after load");
    CHECK(same_floats(r.adam_m, m.adam_m, m.n_params) && same_floats(r.adam_v, m.adam_v, m.n_params),
          "Adam m/v differ after load");
    CHECK(r.adam_t == m.adam_t, "adam_t %ld, saved %ld", r.adam_t, m.adam_t);
    CHECK(same_state(&got, &st), "train state differs after load (step %ld rng %llx lr %.9g)", got.step,
          (unsigned long long)got.data_rng.state, (double)got.train.lr);
    ltf_model_free(&r);
    /* a full checkpoint loads weights-only too: fresh Adam */
    CHECK(ltf_checkpoint_load(&r, NULL, full, NULL, err) == 0 && same_floats(r.params, m.params, m.n_params)
          && r.adam_t == 0 && r.adam_m[0] == 0.0f, "full file, weights only: %s", err);
    ltf_model_free(&r);
    /* weights-only: loads without st, refuses with st and leaves st and the model untouched */
    CHECK(ltf_checkpoint_load(&r, NULL, wonly, &c, err) == 0 && same_floats(r.params, m.params, m.n_params),
          "weights-only load: %s", err);
    ltf_model_free(&r);
    ltf_train_state keep = got;
    int rc = ltf_checkpoint_load(&r, &got, wonly, &c, err);
    CHECK(rc == -1 && strstr(err, "no training state") && strstr(err, wonly), "weights-only with st: rc %d '%s'", rc, err);
    CHECK(memcmp(&keep, &got, sizeof got) == 0 && r.params == NULL && r.tensors == NULL, "failed load left state behind");
    /* a NaN weight is refused at save time, the old file stays */
    m.params[3] = NAN;
    rc = ltf_checkpoint_save(&m, NULL, wonly, err);
    CHECK(rc == -1 && strstr(err, "_read_in.weight") && strstr(err, "finite"), "NaN save: rc %d '%s'", rc, err);
    st.task_kind = 99; m.params[3] = 0;
    rc = ltf_checkpoint_save(&m, &st, full, err);
    CHECK(rc == -1 && strstr(err, "task_kind = 99"), "bad task save: rc %d '%s'", rc, err);
    remove(full); remove(wonly); rmdir(dir);
    ltf_model_free(&m);
}

/* The variants' config fields survive a round trip; a file written before they existed (the
 * three keys absent) loads as the plain model; a file with a combination the config refuses
 * does not load. */
static void test_checkpoint_variants(void) {
    char dir[64], path[128], err[LTF_ERR_LEN];
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/v.safetensors", dir);
    ltf_model m, r;
    for (int v = 0; v < 4; v++) {
        ltf_config c = small_config(v == 1 ? LTF_STANDARD : v == 2 ? LTF_TIED : LTF_LOOPED, 1, 3, 3);
        if (v == 0) c.loop_func = LTF_LOOP_MUL;
        if (v == 1) c.inject_every_block = 1;
        if (v == 2) c.no_pos_emb = 1;
        ltf_model_create(&m, &c, 3, err);
        CHECK(ltf_checkpoint_save(&m, NULL, path, err) == 0, "save variant %d: %s", v, err);
        if (v == 3) {   /* blank the three keys out of the JSON header (spaces are JSON whitespace) */
            FILE *f = fopen(path, "r+b");
            static char buf[1 << 16];
            size_t len = fread(buf, 1, sizeof buf, f);
            const char *keys = ",\"loop_func\":\"0\",\"inject_every_block\":\"0\",\"no_pos_emb\":\"0\"";
            char *at = NULL;
            for (size_t i = 0; !at && i + strlen(keys) <= len; i++)
                if (memcmp(buf + i, keys, strlen(keys)) == 0) at = buf + i;
            CHECK(at != NULL, "the variant keys are not in the header");
            if (at) { memset(at, ' ', strlen(keys)); fseek(f, 0, SEEK_SET); fwrite(buf, 1, len, f); }
            fclose(f);
        }
        if (ltf_checkpoint_load(&r, NULL, path, NULL, err) != 0) { CHECK(0, "load variant %d: %s", v, err); continue; }
        CHECK(memcmp(&r.cfg, &c, sizeof c) == 0, "variant %d: config differs after load", v);
        ltf_model_free(&r);
        ltf_model_free(&m);
    }
    /* loop_func mul on the standard model: refused at load with the reason */
    ltf_config c = small_config(LTF_STANDARD, 1, 1, 1);
    ltf_model_create(&m, &c, 3, err);
    m.cfg.loop_func = LTF_LOOP_MUL;   /* as a file from elsewhere could say */
    ltf_checkpoint_save(&m, NULL, path, err);
    int rc = ltf_checkpoint_load(&r, NULL, path, NULL, err);
    CHECK(rc != 0 && strstr(err, "loop_func mul needs the looped model"), "a standard model with loop_func mul loaded (%s)", err);
    if (rc == 0) ltf_model_free(&r);
    ltf_model_free(&m);
    remove(path); rmdir(dir);
}

/* A task whose labels are classes (docs/MATH.md §13): y = 1 if x_0 > 0 else 0 */
static void sample_sign_class(const ltf_task *t, ltf_rng *rng, int B, int n, float *xs, float *ys) {
    for (int i = 0; i < B * n; i++) {
        for (int j = 0; j < t->n_dims; j++) xs[(size_t)i * t->n_dims + j] = (float)ltf_rng_normal(rng);
        ys[i] = xs[(size_t)i * t->n_dims] > 0 ? 1.0f : 0.0f;
    }
}

/* The classification read-out's edges: labels that are not class indices are refused with the
 * value; ltf_evaluate reports the error rate of the largest logit, as ltf_predict's logits say. */
static void test_classification(void) {
    ltf_config c = small_config(LTF_LOOPED, 1, 3, 2);
    c.n_classes = 2;
    ltf_model m;
    char err[LTF_ERR_LEN];
    if (ltf_model_create(&m, &c, 4, err) != 0) { CHECK(0, "create: %s", err); return; }
    float xs[2 * 3 * 3], ys[2 * 3], loss;
    for (int i = 0; i < 18; i++) xs[i] = (float)ltf_rng_normal(&g_rng);
    const float bad[4] = {0.5f, 2.0f, -1.0f, NAN};
    const char *want[4] = {"ys[4] = 0.5", "ys[4] = 2", "ys[4] = -1", "ys[4] = nan"};
    for (int b = 0; b < 4; b++) {
        for (int i = 0; i < 6; i++) ys[i] = (float)(i % 2);
        ys[4] = bad[b];
        int rc = ltf_forward_backward(&m, xs, ys, 2, 3, &loss);
        CHECK(rc != 0 && strstr(m.err, want[b]) && strstr(m.err, "0..1"), "label %g: rc %d, '%s'", (double)bad[b], rc, m.err);
    }
    ltf_task task = ltf_task_linear_regression(3, 3);
    task.name = "sign_class"; task.sample = sample_sign_class;
    ltf_rng r1, r2;
    ltf_rng_seed(&r1, 9); ltf_rng_seed(&r2, 9);
    enum { P = 40, NP = 5 };
    double by_k[NP], manual[NP] = {0};
    CHECK(ltf_evaluate(&m, &task, &r1, P, NP, 3, by_k, NULL, NULL) == 0, "evaluate: %s", m.err);
    float px[P * NP * 3], py[P * NP], logits[P * NP * 2];
    task.sample(&task, &r2, P, NP, px, py);
    CHECK(ltf_predict(&m, px, py, P, NP, 3, logits, NULL) == 0, "predict: %s", m.err);
    for (int i = 0; i < P * NP; i++) manual[i % NP] += (logits[2 * i + 1] > logits[2 * i] ? 1 : 0) != (int)py[i];
    double worst = 0;
    for (int k = 0; k < NP; k++) if (fabs(by_k[k] - manual[k] / P) > worst) worst = fabs(by_k[k] - manual[k] / P);
    CHECK(worst == 0.0, "ltf_evaluate's error rate differs from the logits' argmax by %g", worst);
    ltf_train_state st = small_state(LTF_TASK_LINEAR, 3);
    CHECK(ltf_train_next(&m, &st, px, py, &loss, NULL) != 0 && strstr(m.err, "ltf_train_step"),
          "ltf_train_next with a classification model: '%s'", m.err);
    printf("  4 bad labels refused; error rate by k from the logits (k=0: %.3f)\n", by_k[0]);
    ltf_model_free(&m);
}

static void test_checkpoint_resume(void) {
    /* K+K steps in one go == K steps, save, free, load, K more: bit for bit, with the curriculum
     * (d_active, n and b all change between step K-1 and K+1) */
    enum { K = 3 };
    char dir[64], path[128], err[LTF_ERR_LEN];
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/resume.safetensors", dir);
    ltf_config c = small_config(LTF_LOOPED, 1, 3, 2);
    ltf_model a, b;
    ltf_train_state sa = small_state(LTF_TASK_NOISY_LINEAR, 11), sb = sa;
    ltf_model_create(&a, &c, 21, err);
    ltf_model_create(&b, &c, 21, err);
    train_steps(&a, &sa, 2 * K);
    train_steps(&b, &sb, K);
    float *mid = (float *)malloc(sizeof(float) * b.n_params);
    memcpy(mid, b.params, sizeof(float) * b.n_params);
    CHECK(ltf_checkpoint_save(&b, &sb, path, err) == 0, "save: %s", err);
    ltf_model_free(&b);
    memset(&sb, 0, sizeof sb);
    if (ltf_checkpoint_load(&b, &sb, path, &c, err) != 0) { CHECK(0, "load: %s", err); free(mid); return; }
    train_steps(&b, &sb, K);
    CHECK(!same_floats(mid, b.params, b.n_params), "the last K steps did not move the parameters");
    CHECK(same_floats(a.params, b.params, a.n_params), "resumed parameters differ from the uninterrupted run");
    CHECK(same_floats(a.adam_m, b.adam_m, a.n_params) && same_floats(a.adam_v, b.adam_v, a.n_params)
          && a.adam_t == b.adam_t, "resumed Adam state differs (adam_t %ld vs %ld)", b.adam_t, a.adam_t);
    CHECK(same_state(&sa, &sb) && sb.step == 2 * K, "resumed train state differs (step %ld)", sb.step);
    free(mid);
    remove(path); rmdir(dir);
    ltf_model_free(&a); ltf_model_free(&b);
}

/* ---- corrupting a valid checkpoint in memory: its header is JSON text, its data follows ---- */

typedef struct { unsigned char *p; size_t len; } blob;

static char *blob_json(blob f) {   /* the header as a C string */
    size_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | f.p[i];
    char *s = (char *)malloc(n + 1);
    memcpy(s, f.p + 8, n);
    s[n] = 0;
    return s;
}
static size_t blob_data_start(blob f) {
    size_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | f.p[i];
    return 8 + n;
}
/* a new file: f's data under another header */
static blob blob_with_json(blob f, const char *json) {
    size_t ds = blob_data_start(f), n = strlen(json);
    blob g;
    g.len = 8 + n + (f.len - ds);
    g.p = (unsigned char *)malloc(g.len + 1);
    for (int i = 0; i < 8; i++) g.p[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(g.p + 8, json, n);
    memcpy(g.p + 8 + n, f.p + ds, f.len - ds);
    return g;
}
/* f with the first `old` in its header replaced by `new_` */
static blob blob_replace(blob f, const char *old, const char *new_) {
    char *j = blob_json(f), *at = strstr(j, old);
    if (!at) { printf("  (test bug: '%s' not in the header)\n", old); g_fail++; }
    size_t lo = at ? (size_t)(at - j) : 0, lold = at ? strlen(old) : 0;
    char *k = (char *)malloc(strlen(j) + strlen(new_) + 1);
    memcpy(k, j, lo);
    strcpy(k + lo, new_);
    strcat(k, j + lo + lold);
    blob g = blob_with_json(f, k);
    free(j); free(k);
    return g;
}
/* f without the entry "key":{...} (and one comma next to it) */
static blob blob_remove_entry(blob f, const char *key) {
    char *j = blob_json(f), needle[160];
    snprintf(needle, sizeof needle, "\"%s\":{", key);
    char *a = strstr(j, needle), *b = a ? strchr(a, '}') + 1 : NULL;
    if (!a) { printf("  (test bug: '%s' not in the header)\n", key); g_fail++; free(j); return blob_with_json(f, "{}"); }
    if (*b == ',') b++;
    else if (a[-1] == ',') a--;
    memmove(a, b, strlen(b) + 1);
    blob g = blob_with_json(f, j);
    free(j);
    return g;
}

/* load_mem must fail, say `needle`, free the model and leave st alone */
static int g_rejects;
static void expect_reject(const char *label, blob f, const ltf_config *expect, int with_state, const char *needle) {
    ltf_model m;
    ltf_train_state st, keep;
    char err[LTF_ERR_LEN] = "";
    memset(&st, 0x5a, sizeof st);
    keep = st;
    memset(&m, 0x5a, sizeof m);
    int rc = ltf_checkpoint_load_mem(&m, with_state ? &st : NULL, f.p, f.len, expect, err);
    g_rejects++;
    CHECK(rc == -1 && strstr(err, needle), "%s: rc %d, error '%s' lacks '%s'", label, rc, err, needle);
    CHECK(m.params == NULL && m.tensors == NULL && memcmp(&st, &keep, sizeof st) == 0, "%s: failed load left state", label);
    if (rc == 0) ltf_model_free(&m);
}

static blob checkpoint_blob(const ltf_model *m, const ltf_train_state *st) {
    char dir[64], path[128], err[LTF_ERR_LEN];
    blob f;
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/c.safetensors", dir);
    if (ltf_checkpoint_save(m, st, path, err) != 0) printf("  save failed: %s\n", err);
    f.p = read_whole(path, &f.len);
    remove(path); rmdir(dir);
    return f;
}

/* the text our writer uses for one tensor entry */
static void entry_text(char *out, size_t cap, ltf_model *m, const char *name, const char *shape, size_t begin, size_t end) {
    ltf_tensor *t = ltf_model_find(m, name);
    char sh[64];
    if (t->ndim == 2) snprintf(sh, sizeof sh, "%d,%d", t->shape[0], t->shape[1]);
    else snprintf(sh, sizeof sh, "%d", t->shape[0]);
    snprintf(out, cap, "\"%s\":{\"dtype\":\"F32\",\"shape\":[%s],\"data_offsets\":[%zu,%zu]}", name, shape ? shape : sh, begin, end);
}

static void test_checkpoint_rejects(void) {
    ltf_config c = small_config(LTF_LOOPED, 1, 3, 2);
    ltf_model m;
    char err[LTF_ERR_LEN], old[256], new_[256];
    ltf_model_create(&m, &c, 4, err);
    ltf_train_state st = small_state(LTF_TASK_LINEAR, 3);
    blob w = checkpoint_blob(&m, NULL), full = checkpoint_blob(&m, &st), g;
    ltf_model r;
    CHECK(w.p && ltf_checkpoint_load_mem(&r, NULL, w.p, w.len, &c, err) == 0, "the valid file does not load: %s", err);
    ltf_model_free(&r);
    CHECK(w.p && blob_data_start(w) % 8 == 0, "data block starts at %zu, not 8-byte aligned", blob_data_start(w));
#define REJECT(label, blob_expr, expect, with_state, needle) \
    do { g = blob_expr; expect_reject(label, g, expect, with_state, needle); free(g.p); } while (0)
    blob cut = {w.p, 5};
    expect_reject("5 bytes", cut, NULL, 0, "shorter than the 8-byte");
    g.len = w.len; g.p = (unsigned char *)malloc(w.len);
    memcpy(g.p, w.p, w.len);
    g.p[0] = (unsigned char)(w.len - 7); g.p[1] = (unsigned char)((w.len - 7) >> 8);
    expect_reject("header length > file", g, NULL, 0, "larger than the file");
    g.p[5] = 1;                                            /* 2^40 */
    expect_reject("absurd header length", g, NULL, 0, "100 MB");
    free(g.p);
    REJECT("invalid JSON ':'", blob_replace(w, "\"format\":", "\"format\";"), NULL, 0, "invalid JSON");
    REJECT("invalid JSON string", blob_replace(w, "\"looped-tf\"", "\"looped\x01tf\""), NULL, 0, "control character");
    REJECT("invalid JSON escape", blob_replace(w, "\"looped-tf\"", "\"looped\\xtf\""), NULL, 0, "invalid escape");
    REJECT("invalid JSON end", blob_replace(w, "]}}", "]}"), NULL, 0, "the header ends");
    REJECT("invalid JSON trailing", blob_replace(w, "]}}", "]}}}"), NULL, 0, "after the header object");
    REJECT("invalid JSON nesting", blob_replace(w, "\"format_version\":\"1\"", "\"format_version\":[[[[[[[[1]]]]]]]]"),
           NULL, 0, "must be a string");
    REJECT("invalid JSON number", blob_replace(w, "\"shape\":[1]", "\"shape\":[1.0]"), NULL, 0, "fraction");
    REJECT("negative shape", blob_replace(w, "\"shape\":[1]", "\"shape\":[-1]"), NULL, 0, "non-negative integer");
    REJECT("huge integer", blob_replace(w, "\"shape\":[1]", "\"shape\":[99999999999999999999]"), NULL, 0, "2^64");
    REJECT("escapes decode", blob_replace(w, "\"looped-tf\"", "\"looped\\u002dtf\\u00e9\""), NULL, 0, "looped-tf\?\?\"");
    REJECT("no __metadata__", blob_remove_entry(w, "__metadata__"), NULL, 0, "no \"__metadata__\"");
    REJECT("format", blob_replace(w, "looped-tf", "looped-tX"), NULL, 0, "\"format\" = \"looped-tX\"");
    REJECT("format_version", blob_replace(w, "\"format_version\":\"1\"", "\"format_version\":\"2\""), NULL, 0, "version 1");
    REJECT("config field missing", blob_replace(w, "\"n_head\":\"2\",", ""), NULL, 0, "no \"n_head\"");
    REJECT("config not an integer", blob_replace(w, "\"n_head\":\"2\"", "\"n_head\":\"2x\""), NULL, 0, "\"n_head\" = \"2x\"");
    REJECT("config fails the check", blob_replace(w, "\"n_head\":\"2\"", "\"n_head\":\"3\""), NULL, 0, "n_head (H) = 3");
    ltf_config other = c;
    other.n_loops = 7;
    expect_reject("config differs from expect", w, &other, 0, "n_loops = 3 in the checkpoint, expected 7");
    expect_reject("weights-only with st", w, NULL, 1, "has no training state (saved weights-only)");
    REJECT("missing tensor", blob_remove_entry(w, "_read_out.bias"), NULL, 0, "missing tensor '_read_out.bias'");
    REJECT("missing Adam tensor", blob_remove_entry(full, "optim.exp_avg_sq._read_out.bias"), NULL, 1,
           "missing tensor 'optim.exp_avg_sq._read_out.bias'");
    ltf_tensor *t = ltf_model_find(&m, "_read_in.weight");       /* [8, 3] */
    entry_text(old, sizeof old, &m, t->key, NULL, 0, 4 * t->size);
    entry_text(new_, sizeof new_, &m, t->key, "3,8", 0, 4 * t->size);
    REJECT("wrong shape", blob_replace(w, old, new_), NULL, 0, "shape [3, 8], expected [8, 3]");
    REJECT("dtype", blob_replace(w, "\"dtype\":\"F32\"", "\"dtype\":\"BF16\""), NULL, 0, "dtype \"BF16\"");
    REJECT("unknown key", blob_replace(w, "\"dtype\":\"F32\"", "\"dtype\":\"F32\",\"strides\":[1]"), NULL, 0, "unknown key 'strides'");
    entry_text(new_, sizeof new_, &m, t->key, NULL, 0, 4 * t->size + 4);
    REJECT("offsets not matching shape", blob_replace(w, old, new_), NULL, 0, "shape needs 96");
    entry_text(new_, sizeof new_, &m, t->key, NULL, 40, 4);
    REJECT("offsets reversed", blob_replace(w, old, new_), NULL, 0, "end before they begin");
    size_t dl = w.len - blob_data_start(w);
    entry_text(new_, sizeof new_, &m, t->key, NULL, dl - 4, dl - 4 + 4 * t->size);
    REJECT("offsets out of range", blob_replace(w, old, new_), NULL, 0, "past the end of the data");
    ltf_tensor *lw = ltf_model_find(&m, "_backbone.transformer.h.0.ln_1.weight");
    ltf_tensor *lb = ltf_model_find(&m, "_backbone.transformer.h.0.ln_1.bias");
    entry_text(old, sizeof old, &m, lb->key, NULL, 4 * lb->offset, 4 * (lb->offset + lb->size));
    entry_text(new_, sizeof new_, &m, lb->key, NULL, 4 * lw->offset, 4 * (lw->offset + lw->size));
    REJECT("overlapping offsets", blob_replace(w, old, new_), NULL, 0, "overlap");
    g = w; g.len -= 4;
    expect_reject("data shorter than declared", g, NULL, 0, "data shorter than declared");
    g.len = w.len + 8; g.p = (unsigned char *)calloc(g.len, 1);
    memcpy(g.p, w.p, w.len);
    expect_reject("trailing data", g, NULL, 0, "8 bytes after the last tensor");
    free(g.p);
    REJECT("duplicate tensor", blob_replace(w, old, "\"_read_out.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}"),
           NULL, 0, "duplicate tensor '_read_out.bias'");
    REJECT("unknown tensor", blob_replace(w, "{\"__metadata__\"", "{\"extra.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"__metadata__\""),
           NULL, 0, "unknown tensor 'extra.weight'");
    REJECT("Adam tensor without state", blob_replace(w, "{\"__metadata__\"", "{\"optim.exp_avg._read_out.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"__metadata__\""),
           NULL, 0, "no train state");
    g.len = w.len; g.p = (unsigned char *)malloc(w.len);
    memcpy(g.p, w.p, w.len);
    t = ltf_model_find(&m, "_backbone.transformer.wpe.weight");
    float bad = NAN;
    memcpy(g.p + blob_data_start(w) + 4 * (t->offset + 5), &bad, 4);   /* the test host is little-endian */
    expect_reject("NaN weight", g, NULL, 0, "wpe.weight' holds nan at index 5");
    free(g.p);
    g.len = full.len; g.p = (unsigned char *)malloc(full.len);
    memcpy(g.p, full.p, full.len);
    bad = INFINITY;
    memcpy(g.p + full.len - 4, &bad, 4);
    expect_reject("Inf in Adam v", g, NULL, 1, "optim.exp_avg_sq._read_out.bias' holds inf");
    free(g.p);
    REJECT("train state field", blob_replace(full, "\"lr\":\"", "\"lr\":\"x"), NULL, 1, "\"lr\" = \"x");
    REJECT("train state task", blob_replace(full, "linear_regression", "linear_regressiom"), NULL, 1, "linear_regressiom");
    REJECT("train config check", blob_replace(full, "\"batch_size\":\"4\"", "\"batch_size\":\"0\""), NULL, 1, "batch_size = 0");
#undef REJECT
    printf("  %d corrupt files, each rejected with a message that names the problem\n", g_rejects);
    free(w.p); free(full.p);
    ltf_model_free(&m);
}

/* No input crashes or reads out of bounds (run it under -fsanitize=address to see that):
 * every truncation of a file, and random byte edits of its header and data. */
static void test_checkpoint_garbage(void) {
    ltf_config c = small_config(LTF_STANDARD, 1, 1, 1);
    c.n_dims = 2; c.n_positions = 2; c.n_embd = 4; c.n_head = 1;
    ltf_model m, r;
    char err[LTF_ERR_LEN];
    ltf_model_create(&m, &c, 4, err);
    ltf_train_state st = small_state(LTF_TASK_LINEAR, 3);
    st.train.n_points = 2;
    blob f = checkpoint_blob(&m, &st);
    int loaded = 0, rejected = 0, odd = 0;
    for (size_t n = 0; n < f.len; n++) {
        unsigned char *p = (unsigned char *)malloc(n + 1);   /* exact size: ASan sees any over-read */
        memcpy(p, f.p, n);
        int rc = ltf_checkpoint_load_mem(&r, &st, p, n, NULL, err);
        rc == 0 ? loaded++ : rejected++;
        odd += rc == 0 || r.params != NULL || !err[0];
        if (rc == 0) ltf_model_free(&r);
        free(p);
    }
    CHECK(rejected == (int)f.len && odd == 0, "truncations: %d loaded, %d rejected, %d odd", loaded, rejected, odd);
    size_t ds = blob_data_start(f);
    rejected = 0;
    for (size_t n = 0; n < ds - 8; n++) {           /* every prefix of the JSON as the whole header */
        unsigned char *p = (unsigned char *)malloc(8 + n);
        for (int i = 0; i < 8; i++) p[i] = (unsigned char)((uint64_t)n >> (8 * i));
        memcpy(p + 8, f.p + 8, n);
        rejected += ltf_checkpoint_load_mem(&r, NULL, p, 8 + n, NULL, err) == -1 && r.params == NULL;
        free(p);
    }
    CHECK(rejected == (int)(ds - 8), "cut headers: %d of %zu rejected", rejected, ds - 8);
    unsigned char *p = (unsigned char *)malloc(f.len);
    loaded = rejected = 0;
    ltf_rng rng;
    ltf_rng_seed(&rng, 99);
    for (int it = 0; it < 3000; it++) {
        memcpy(p, f.p, f.len);
        int edits = 1 + (int)(ltf_rng_u32(&rng) % 3);
        for (int k = 0; k < edits; k++) {
            size_t at = (it % 4 == 3) ? ltf_rng_u32(&rng) % f.len : 8 + ltf_rng_u32(&rng) % (ds - 8);
            static const char interesting[] = "{}[]\",:\\0123456789-.eE u";
            p[at] = (ltf_rng_u32(&rng) & 1) ? (unsigned char)ltf_rng_u32(&rng)
                                            : (unsigned char)interesting[ltf_rng_u32(&rng) % (sizeof interesting - 1)];
        }
        int rc = ltf_checkpoint_load_mem(&r, &st, p, f.len, NULL, err);
        rc == 0 ? loaded++ : rejected++;
        if (rc == 0) ltf_model_free(&r);
        else odd += r.params != NULL || !err[0];
    }
    printf("  3000 random edits: %d still load, %d rejected with a message\n", loaded, rejected);
    CHECK(odd == 0 && rejected > 2000, "random edits: %d rejected, %d odd", rejected, odd);
    free(p); free(f.p);
    ltf_model_free(&m);
}

static void test_checkpoint_atomic(void) {
    char dir[64], path[128], tmp[136], nodir[160], err[LTF_ERR_LEN];
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/model.safetensors", dir);
    ltf_config c = small_config(LTF_LOOPED, 1, 3, 2);
    ltf_model a, b;
    ltf_model_create(&a, &c, 1, err);
    ltf_model_create(&b, &c, 2, err);
    int rc = ltf_checkpoint_save(&a, NULL, nodir, err);
    CHECK(rc == -1 && strstr(err, "cannot write") && strstr(err, "no/such/dir"), "missing directory: rc %d '%s'", rc, err);
    CHECK(!file_exists(nodir), "a file appeared in a missing directory");
    blob fa = checkpoint_blob(&a, NULL), fb = checkpoint_blob(&b, NULL), now;
    CHECK(ltf_checkpoint_save(&a, NULL, path, err) == 0, "save a: %s", err);
    CHECK(ltf_checkpoint_save(&b, NULL, path, err) == 0, "save b over a: %s", err);
    now.p = read_whole(path, &now.len);
    CHECK(now.len == fb.len && memcmp(now.p, fb.p, fb.len) == 0 && !file_exists(tmp), "saving over a checkpoint did not replace it whole");
    free(now.p);
    mkdir(tmp, 0700);                     /* path.tmp cannot be opened as a file: the save fails */
    rc = ltf_checkpoint_save(&a, NULL, path, err);
    CHECK(rc == -1 && strstr(err, tmp), "save with path.tmp a directory: rc %d '%s'", rc, err);
    now.p = read_whole(path, &now.len);
    CHECK(now.len == fb.len && memcmp(now.p, fb.p, fb.len) == 0, "a failed save damaged the old checkpoint");
    CHECK(fa.len == fb.len && memcmp(fa.p, fb.p, fa.len) != 0, "models a and b save the same bytes");
    free(now.p); free(fa.p); free(fb.p);
    rmdir(tmp); remove(path); rmdir(dir);
    ltf_model_free(&a); ltf_model_free(&b);
    rc = ltf_checkpoint_load(&a, NULL, path, NULL, err);
    CHECK(rc == -1 && strstr(err, "cannot read") && strstr(err, path) && a.params == NULL,
          "load of a missing file: rc %d '%s'", rc, err);
}

/* PyTorch reads our file: reference/check_checkpoint.py loads it with safetensors, strict
 * load_state_dict into reference/looped_tf_ref.py, and compares its predictions with ours.
 * The script exits 77 when torch or safetensors is missing (one Python start, not two). */
/* Writes B=2 prompts, the C predictions of m for them, and runs reference/check_checkpoint.py on
 * the checkpoint at path: returns its exit code (77/127: PyTorch or python3 missing). */
static int pytorch_xcheck(ltf_model *m, const char *path, int n, int loops) {
    char prompt[600], cmd[1400];
    int B = 2, d = m->cfg.n_dims;
    snprintf(prompt, sizeof prompt, "%s.prompt", path);
    int K = m->cfg.n_classes ? m->cfg.n_classes : 1, P = B * n * K;   /* outputs per point */
    float *xs = rand_buf((size_t)B * n * d, 1), *ys = rand_buf((size_t)B * n, 1), *pred = zeros((size_t)P);
    for (int i = 0; m->cfg.n_classes && i < B * n; i++) ys[i] = (float)(i % K);   /* class indices */
    CHECK(ltf_predict(m, xs, ys, B, n, loops, pred, NULL) == 0, "predict: %s", m->err);
    FILE *f = fopen(prompt, "w");
    fprintf(f, "looped-tf-prompt 1\n%d %d %d %d\n", B, n, d, loops);
    for (int i = 0; i < B * n * d; i++) fprintf(f, "%.9e%c", xs[i], i + 1 < B * n * d ? ' ' : '\n');
    for (int i = 0; i < B * n; i++) fprintf(f, "%.9e%c", ys[i], i + 1 < B * n ? ' ' : '\n');
    for (int i = 0; i < P; i++) fprintf(f, "%.9e%c", pred[i], i + 1 < P ? ' ' : '\n');
    fclose(f);
    snprintf(cmd, sizeof cmd, "python3 reference/check_checkpoint.py %s %s", path, prompt);
    fflush(stdout);
    int st_code = system(cmd), rc = WIFEXITED(st_code) ? WEXITSTATUS(st_code) : -1;
    remove(prompt);
    free(xs); free(ys); free(pred);
    return rc;
}

static void test_checkpoint_pytorch(void) {
    char dir[64], path[128], cmd[400], err[LTF_ERR_LEN];
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/xcheck.safetensors", dir);
    ltf_config c = small_config(LTF_LOOPED, 2, 4, 2);
    c.n_embd = 16; c.mask_mode = LTF_MASK_KEEP_LAST; c.mask_pairs = 2; c.mask_when = LTF_AT_BOTH;
    ltf_model m;
    ltf_model_create(&m, &c, 8, err);
    randomize_model(&m, 0.3f);
    ltf_train_state st = small_state(LTF_TASK_LINEAR, 5);
    train_steps(&m, &st, 2);                                   /* Adam state in the file too */
    CHECK(ltf_checkpoint_save(&m, &st, path, err) == 0, "save: %s", err);
    int rc = pytorch_xcheck(&m, path, 5, 6);
    ltf_model_free(&m);
    remove(path);
    if (rc == 77 || rc == 127) { printf("  skipped: PyTorch/safetensors not installed\n"); rmdir(dir); return; }
    CHECK(rc == 0, "reference/check_checkpoint.py failed (exit %d)", rc);
    /* the variants (docs/MATH.md §12) load into the reference under the same names */
    for (int v = 0; v < 4; v++) {
        ltf_config cv = small_config(v == 0 ? LTF_LOOPED : v == 1 ? LTF_STANDARD : v == 2 ? LTF_TIED : LTF_LOOPED,
                                     v == 1 ? 3 : 1, 4, 4);
        cv.n_embd = 16;
        if (v == 0) cv.loop_func = LTF_LOOP_MUL;
        if (v == 3) cv.n_classes = 4;   /* §13: the logits are compared */
        if (v == 1) cv.inject_every_block = 1;
        if (v == 2) cv.no_pos_emb = 1;
        ltf_model_create(&m, &cv, 9, err);
        randomize_model(&m, 0.3f);
        CHECK(ltf_checkpoint_save(&m, NULL, path, err) == 0, "save variant %d: %s", v, err);
        rc = pytorch_xcheck(&m, path, 5, 6);
        CHECK(rc == 0, "reference/check_checkpoint.py failed on variant %d (exit %d)", v, rc);
        ltf_model_free(&m);
        remove(path);
    }
    /* a checkpoint written by the demo (./demo, built next to ./test by build.sh) */
    if (access("./demo", X_OK) != 0) { printf("  skipped: ./demo not built, its checkpoint not checked\n"); rmdir(dir); return; }
    snprintf(cmd, sizeof cmd, "./demo --steps 20 --C 16 --b 4 --T 2 --eval-prompts 16 --fixed-point 0 --out %s > /dev/null 2>&1", dir);
    CHECK(system(cmd) == 0, "%s failed", cmd);
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    ltf_train_state ds;
    if (ltf_checkpoint_load(&m, &ds, path, NULL, err) != 0) { CHECK(0, "the demo's checkpoint does not load: %s", err); return; }
    rc = pytorch_xcheck(&m, path, ds.curriculum.points.end, m.cfg.n_loops);
    CHECK(rc == 0, "reference/check_checkpoint.py on the demo's checkpoint failed (exit %d)", rc);
    ltf_model_free(&m);
    char other[4][32] = {"eval.csv", "eval.svg", "train_loss.csv", "train_loss.svg"};
    for (int i = 0; i < 4; i++) { snprintf(cmd, sizeof cmd, "%s/%s", dir, other[i]); remove(cmd); }
    remove(path); rmdir(dir);
}

/* ------------------------------------------------------------------ workbench: baselines, bands, plots, FMA peak */

static void test_baselines(void) {
    /* least squares recovers w exactly from k >= d points; with k < d it is the minimum-norm
     * solution: for one point x1 it predicts y1 (x1 . x) / |x1|^2 */
    int d = 4;
    float w[4] = {0.5f, -1.0f, 2.0f, 0.25f}, xs[8 * 4], ys[8];
    for (int i = 0; i < 8; i++) {
        ys[i] = 0;
        for (int j = 0; j < d; j++) { xs[i * d + j] = (float)ltf_rng_normal(&g_rng); ys[i] += w[j] * xs[i * d + j]; }
    }
    double want = 0;
    for (int j = 0; j < d; j++) want += w[j] * xs[7 * d + j];
    double p = ltf_baseline_predict(LTF_BASE_LSQ, 4, d, xs, ys, xs + 7 * d);
    CHECK(fabs(p - want) < 1e-4, "lstsq k=d: %.6f want %.6f", p, want);
    p = ltf_baseline_predict(LTF_BASE_LSQ, 7, d, xs, ys, xs + 7 * d);
    CHECK(fabs(p - want) < 1e-4, "lstsq k>d: %.6f want %.6f", p, want);
    double n1 = 0, dx = 0;
    for (int j = 0; j < d; j++) { n1 += xs[j] * xs[j]; dx += xs[j] * xs[7 * d + j]; }
    p = ltf_baseline_predict(LTF_BASE_LSQ, 1, d, xs, ys, xs + 7 * d);
    CHECK(fabs(p - ys[0] * dx / n1) < 1e-4, "lstsq min-norm k=1: %.6f want %.6f", p, ys[0] * dx / n1);
    /* rank-deficient: two identical points, k=2 < d: min-norm of a duplicate is the same as one */
    float dup[8];
    memcpy(dup, xs, 4 * sizeof(float)); memcpy(dup + 4, xs, 4 * sizeof(float));
    float ydup[2] = {ys[0], ys[0]};
    p = ltf_baseline_predict(LTF_BASE_LSQ, 2, d, dup, ydup, xs + 7 * d);
    CHECK(fabs(p - ys[0] * dx / n1) < 1e-4 && isfinite(p), "lstsq duplicate points: %.6f want %.6f", p, ys[0] * dx / n1);
    CHECK(ltf_baseline_predict(LTF_BASE_LSQ, 0, d, xs, ys, xs) == 0.0, "k=0 predicts 0");
    /* averaging: w = mean y_j x_j */
    float ax[2 * 2] = {1, 0, 0, 2}, ay[2] = {3, 4}, q[2] = {1, 1};
    p = ltf_baseline_predict(LTF_BASE_AVERAGING, 2, 2, ax, ay, q);
    CHECK(fabs(p - 5.5) < 1e-9, "averaging: %.6f want 5.5 (w = (1.5, 4))", p);
    /* 3-NN: the 3 closest of 4 points on a line */
    float kx[4] = {0, 1, 5, 2}, ky[4] = {1, 2, 100, 3}, kq[1] = {0.4f};
    p = ltf_baseline_predict(LTF_BASE_KNN3, 4, 1, kx, ky, kq);
    CHECK(fabs(p - 2.0) < 1e-9, "3nn: %.6f want 2", p);
    p = ltf_baseline_predict(LTF_BASE_KNN3, 2, 1, kx, ky, kq);
    CHECK(fabs(p - 1.5) < 1e-9, "3nn with k=2 averages both: %.6f want 1.5", p);
    /* normalized error on linear regression: zero predictor ~1, least squares ~0 past k = d */
    ltf_task task = ltf_task_linear_regression(5, 5);
    double e[11];
    ltf_rng r;
    ltf_rng_seed(&r, 3);
    ltf_baseline_evaluate(LTF_BASE_ZERO, &task, &r, 2000, 11, e, NULL);
    CHECK(fabs(e[5] - 1.0) < 0.1, "zero predictor normalized error %.3f, want ~1", e[5]);
    ltf_baseline_evaluate(LTF_BASE_LSQ, &task, &r, 200, 11, e, NULL);
    CHECK(e[6] < 1e-8 && e[2] > 0.3, "least squares error at k=6 %.2e (want ~0), k=2 %.3f", e[6], e[2]);
}

static void test_baselines_extra(void) {
    /* Lasso. The prediction is w . x, so the query e_j reads w_j off. */
    float e[10][10];
    for (int i = 0; i < 10; i++) for (int j = 0; j < 10; j++) e[i][j] = i == j ? 1.0f : 0.0f;
    /* 1-d: w = S(x.y / k, alpha) / (x.x / k), S the soft threshold */
    float lx[6] = {0.5f, -1.0f, 2.0f, 0.3f, -0.7f, 1.1f}, ly[6];
    double xy = 0, xx = 0;
    for (int i = 0; i < 6; i++) { ly[i] = 0.8f * lx[i] + 0.1f * (i % 2 ? 1 : -1); xy += (double)lx[i] * ly[i]; xx += (double)lx[i] * lx[i]; }
    double want = (xy / 6 - 0.01) / (xx / 6);
    double p = ltf_baseline_predict(LTF_BASE_LASSO, 6, 1, lx, ly, e[0]);
    CHECK(fabs(p - want) < 1e-9, "lasso 1-d: w = %.9f, soft threshold gives %.9f", p, want);
    float small_y[6];   /* |x.y / k| < alpha: w = 0 exactly */
    for (int i = 0; i < 6; i++) small_y[i] = 0.001f * lx[i];
    p = ltf_baseline_predict(LTF_BASE_LASSO, 6, 1, lx, small_y, e[0]);
    CHECK(p == 0.0, "lasso 1-d below the threshold: w = %g, want 0", p);
    /* orthogonal design, X^T X = k I (rows of a Hadamard matrix): w_j = S(w_true_j, alpha) */
    float hx[8 * 4], hy[8], wt[4] = {2.0f, 0.0f, -0.5f, 0.005f}, ww[4] = {1.99f, 0.0f, -0.49f, 0.0f};
    for (int i = 0; i < 8; i++) {
        hy[i] = 0;
        for (int j = 0; j < 4; j++) {
            int bit = j > 0 && ((i >> (j - 1)) & 1);   /* columns: all 1, then the 3 bits of i as +-1 */
            hx[i * 4 + j] = bit ? -1.0f : 1.0f;
            hy[i] += wt[j] * hx[i * 4 + j];
        }
    }
    for (int j = 0; j < 4; j++) {
        p = ltf_baseline_predict(LTF_BASE_LASSO, 8, 4, hx, hy, e[j]);
        CHECK(fabs(p - ww[j]) < 1e-6, "lasso orthogonal design: w_%d = %.7f, want %.7f", j, p, (double)ww[j]);
    }
    /* one point: the optimum puts all weight on the largest |x_j|, w_3 = S(x_3 y, alpha) / x_3^2;
     * coordinate descent first loads x_0 and creeps to x_3 over ~10^4 sweeps */
    float px[5] = {1.0f, -0.3f, 0.5f, 1.02f, 0.2f}, py = 2.0f;
    for (int j = 0; j < 5; j++) {
        double wj = j == 3 ? ((double)px[3] * py - 0.01) / ((double)px[3] * px[3]) : 0.0;
        p = ltf_baseline_predict(LTF_BASE_LASSO, 1, 5, px, &py, e[j]);
        CHECK(fabs(p - wj) < 1e-5, "lasso k=1: w_%d = %.7f, want %.7f (all weight on the largest |x_j|)", j, p, wj);
    }
    /* k < d: the answer must satisfy the optimality conditions X_j . (y - X w) / k = alpha sign(w_j)
     * where w_j != 0 and |X_j . (y - X w) / k| <= alpha where w_j = 0 */
    enum { LK = 6, LD = 10 };
    float *gx = rand_buf(LK * LD, 1), gy[LK];
    double w[LD], worst = 0;
    for (int i = 0; i < LK; i++) gy[i] = 1.5f * gx[i * LD + 2] - 0.8f * gx[i * LD + 7];
    for (int j = 0; j < LD; j++) w[j] = ltf_baseline_predict(LTF_BASE_LASSO, LK, LD, gx, gy, e[j]);
    for (int j = 0; j < LD; j++) {
        double g = 0;
        for (int i = 0; i < LK; i++) {
            double r = gy[i];
            for (int c = 0; c < LD; c++) r -= gx[i * LD + c] * w[c];
            g += gx[i * LD + j] * r / LK;
        }
        double viol = w[j] != 0 ? fabs(g - (w[j] > 0 ? 0.01 : -0.01)) : (fabs(g) > 0.01 ? fabs(g) - 0.01 : 0);
        if (viol > worst) worst = viol;
    }
    CHECK(worst < 1e-5, "lasso k < d: optimality conditions off by %.2e", worst);
    free(gx);
    CHECK(ltf_baseline_predict(LTF_BASE_LASSO, 0, 4, hx, hy, e[0]) == 0.0, "lasso k=0 predicts 0");

    /* decision tree. A depth-2 step function of 3 coordinates is recovered exactly: the root splits
     * on x0 (it separates {0, 1} from {10, 11}), each child on its own coordinate, then pure leaves. */
    enum { TK = 200 };
    float tx[TK * 3], ty[TK];
    for (int i = 0; i < TK * 3; i++) tx[i] = (float)(2.0 * ltf_rng_uniform(&g_rng) - 1.0);
#define STEP(v) ((v)[0] > 0.3f ? ((v)[2] > -0.2f ? 11.0f : 10.0f) : ((v)[1] > 0.5f ? 1.0f : 0.0f))
    for (int i = 0; i < TK; i++) ty[i] = STEP(tx + 3 * i);
    float tq[4][3] = {{0.8f, 0.0f, 0.5f}, {0.8f, 0.9f, -0.7f}, {-0.5f, 0.9f, 0.0f}, {-0.5f, 0.1f, 0.9f}};
    for (int q = 0; q < 4; q++) {
        p = ltf_baseline_predict(LTF_BASE_TREE, TK, 3, tx, ty, tq[q]);
        CHECK(p == STEP(tq[q]), "tree on a depth-2 step function: query %d predicts %g, want %g", q, p, (double)STEP(tq[q]));
    }
#undef STEP
    /* y = x on 0..63: every split halves its node, so depth 4 leaves hold 4 points: the query 4.2
     * lands in {4, 5, 6, 7} and predicts its mean 5.5 (depth 5 would give 4.5) */
    float sx[64], sy[64], sq1 = 4.2f, sq2 = 63.0f;
    for (int i = 0; i < 64; i++) sx[i] = sy[i] = (float)i;
    p = ltf_baseline_predict(LTF_BASE_TREE, 64, 1, sx, sy, &sq1);
    CHECK(p == 5.5, "tree depth 4 on y = x: predicts %g at 4.2, want the leaf mean 5.5", p);
    p = ltf_baseline_predict(LTF_BASE_TREE, 64, 1, sx, sy, &sq2);
    CHECK(p == 61.5, "tree depth 4 on y = x: predicts %g at 63, want 61.5", p);
    float cy[TK];
    for (int i = 0; i < TK; i++) cy[i] = 0.7f;
    p = ltf_baseline_predict(LTF_BASE_TREE, TK, 3, tx, cy, tq[0]);
    CHECK(fabs(p - 0.7f) < 1e-6, "tree on constant y = 0.7 predicts %.7f", p);
    p = ltf_baseline_predict(LTF_BASE_TREE, 1, 3, tx, ty, tq[0]);
    CHECK(p == ty[0], "tree on one point predicts its y: %g want %g", p, (double)ty[0]);
    CHECK(ltf_baseline_predict(LTF_BASE_TREE, 0, 3, tx, ty, tq[0]) == 0.0, "tree k=0 predicts 0");

    /* ReLU net, against PyTorch: 13 exact points of y = x0 - x1 / 2 + 2 relu(x2); torch 2.15's
     * nn.Linear/ReLU + Adam(lr 5e-3) + MSELoss, 100 full-batch steps from the same initial
     * weights (drawn here, copied into torch), predict -0.631737709 at the 13th point (this code:
     * -0.631737769; untrained -0.176). Any wrong term of the backward pass or of Adam moves it. */
    enum { GK = 12, GD = 3 };
    float gxs[(GK + 1) * GD], gys[GK + 1];
    for (int i = 0; i <= GK; i++) {
        for (int j = 0; j < GD; j++) gxs[i * GD + j] = (float)((i * 7 + j * 5) % 13 - 6) / 4.0f;
        gys[i] = gxs[i * GD] - 0.5f * gxs[i * GD + 1] + 2.0f * (gxs[i * GD + 2] > 0 ? gxs[i * GD + 2] : 0.0f);
    }
    p = ltf_baseline_predict(LTF_BASE_RELU_NET, GK, GD, gxs, gys, gxs + GK * GD);
    CHECK(fabs(p - -0.631737709) < 1e-5, "relu net: %.9f, PyTorch from the same start -0.631737709", p);
    /* it fits a linear target on its k = 50 training points, and is deterministic */
    enum { NK = 50, ND = 5 };
    float *nx = rand_buf((NK + 1) * ND, 1), ny[NK + 1], nw[ND] = {1.0f, -0.5f, 0.3f, 2.0f, -1.2f};
    double se = 0, var = 0;
    for (int i = 0; i <= NK; i++) { ny[i] = 0; for (int j = 0; j < ND; j++) ny[i] += nw[j] * nx[i * ND + j]; }
    for (int i = 0; i < 10; i++) {
        double q = ltf_baseline_predict(LTF_BASE_RELU_NET, NK, ND, nx, ny, nx + i * ND);
        se += (q - ny[i]) * (q - ny[i]); var += (double)ny[i] * ny[i];
    }
    CHECK(se / var < 0.01, "relu net training error / |y|^2 = %.4f on a linear target, want < 0.01", se / var);
    double p1 = ltf_baseline_predict(LTF_BASE_RELU_NET, NK, ND, nx, ny, nx + NK * ND);
    double p2 = ltf_baseline_predict(LTF_BASE_RELU_NET, NK, ND, nx, ny, nx + NK * ND);
    CHECK(memcmp(&p1, &p2, sizeof p1) == 0 && isfinite(p1), "relu net not repeatable: %.17g then %.17g", p1, p2);
    /* k > 100 draws minibatches of 100 from the seeded RNG: still repeatable */
    float *bx = rand_buf(121 * 2, 1), by[121];
    for (int i = 0; i < 121; i++) by[i] = bx[2 * i] > 0 ? bx[2 * i] : 0.0f;
    p1 = ltf_baseline_predict(LTF_BASE_RELU_NET, 120, 2, bx, by, bx + 240);
    p2 = ltf_baseline_predict(LTF_BASE_RELU_NET, 120, 2, bx, by, bx + 240);
    CHECK(memcmp(&p1, &p2, sizeof p1) == 0 && fabs(p1 - by[120]) < 0.1,
          "relu net k=120 (minibatches): %.6f then %.6f, target %.6f", p1, p2, (double)by[120]);
    free(bx);
    CHECK(ltf_baseline_predict(LTF_BASE_RELU_NET, 0, ND, nx, ny, nx) == 0.0, "relu net k=0 predicts 0");
    free(nx);
    CHECK(strcmp(ltf_baseline_name(LTF_BASE_LASSO), "lasso") == 0 && strcmp(ltf_baseline_name(LTF_BASE_TREE), "decision_tree") == 0 &&
          strcmp(ltf_baseline_name(LTF_BASE_RELU_NET), "relu_net") == 0, "baseline names");
}

/* The classification baselines (docs/MATH.md §13) on cases with a known answer; the logistic
 * regression's fit has a zero gradient, and equals scikit-learn's where it is installed. */
static void test_cls_baselines(void) {
    const float maj[4] = {1, 0, 1, 2}, tie[2] = {1, 0};
    CHECK(ltf_cls_baseline_predict(LTF_CLS_MAJORITY, 4, 1, 3, maj, maj, maj) == 1, "majority of 1,0,1,2");
    CHECK(ltf_cls_baseline_predict(LTF_CLS_MAJORITY, 2, 1, 2, tie, tie, tie) == 0, "majority tie: the lowest class");
    const float line[5] = {0, 1, 2, 10, 11}, lab[5] = {0, 0, 0, 1, 1}, q1 = 10.5f, q0 = 1.0f, q7 = 7.0f, qm = -2.0f;
    CHECK(ltf_cls_baseline_predict(LTF_CLS_KNN3, 5, 1, 2, line, lab, &q1) == 1 &&
          ltf_cls_baseline_predict(LTF_CLS_KNN3, 5, 1, 2, line, lab, &q0) == 0, "3-NN on a line");
    CHECK(ltf_cls_baseline_predict(LTF_CLS_TREE, 5, 1, 2, line, lab, &q7) == 1 &&
          ltf_cls_baseline_predict(LTF_CLS_TREE, 5, 1, 2, line, lab, &q0) == 0, "tree on a line");
    CHECK(ltf_cls_baseline_predict(LTF_CLS_LOGREG, 5, 1, 2, line, lab, &q7) == 1 &&
          ltf_cls_baseline_predict(LTF_CLS_LOGREG, 5, 1, 2, line, lab, &qm) == 0, "logistic regression on a line");
    CHECK(ltf_cls_baseline_predict(LTF_CLS_LOGREG, 5, 1, 3, line, lab, &q7) == -1 &&
          ltf_cls_baseline_predict(LTF_CLS_TREE, 5, 1, 3, line, lab, &q7) == -1, "K = 3: refused by the binary ones");
    CHECK(ltf_cls_baseline_predict(LTF_CLS_KNN3, 0, 1, 2, line, lab, &q7) == 0, "k = 0: class 0");
    /* logistic regression: noisy labels of a linear rule, k = 30, d = 4 */
    enum { KP = 30, DP = 4 };
    float X[KP * DP], Y[KP];
    for (int i = 0; i < KP; i++) {
        double m = 0.3;
        for (int j = 0; j < DP; j++) { X[i * DP + j] = (float)ltf_rng_normal(&g_rng); m += (j + 1) * 0.5 * X[i * DP + j]; }
        Y[i] = m + ltf_rng_normal(&g_rng) > 0 ? 1.0f : 0.0f;
    }
    double w[DP + 1], g[DP + 1], gmax = 0;
    CHECK(ltf_logreg_fit(KP, DP, X, Y, w) == 0, "logreg fit failed");
    for (int j = 0; j <= DP; j++) g[j] = j < DP ? w[j] : 0.0;
    for (int i = 0; i < KP; i++) {
        double m = w[DP];
        for (int j = 0; j < DP; j++) m += w[j] * X[i * DP + j];
        double r = 1.0 / (1.0 + exp(-m)) - Y[i];
        for (int j = 0; j <= DP; j++) g[j] += r * (j < DP ? X[i * DP + j] : 1.0);
    }
    for (int j = 0; j <= DP; j++) gmax = fabs(g[j]) > gmax ? fabs(g[j]) : gmax;
    CHECK(gmax < 1e-8, "logistic regression: gradient at the fit %.2e", gmax);
    char dir[64], path[128], cmd[700];
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/lr.txt", dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < KP; i++) {
        for (int j = 0; j < DP; j++) fprintf(f, "%.9g ", X[i * DP + j]);
        fprintf(f, "%g\n", Y[i]);
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "python3 -c \"import numpy as np; from sklearn.linear_model import LogisticRegression as L; "
             "a = np.loadtxt('%s'); m = L(C=1.0, tol=1e-10, max_iter=10000).fit(a[:, :-1], a[:, -1]); "
             "print(*m.coef_[0], m.intercept_[0])\" 2> /dev/null", path);
    FILE *p = popen(cmd, "r");
    double sk[DP + 1];
    int got = 0;
    while (p && got <= DP && fscanf(p, "%lf", &sk[got]) == 1) got++;
    if (p) pclose(p);
    if (got == DP + 1) {
        double e = 0;
        for (int j = 0; j <= DP; j++) e = fabs(sk[j] - w[j]) > e ? fabs(sk[j] - w[j]) : e;
        CHECK(e < 1e-5, "logistic regression vs scikit-learn: max coefficient difference %.2e", e);
        printf("  logistic regression: gradient at the fit %.1e; scikit-learn's coefficients within %.1e\n", gmax, e);
    } else printf("  logistic regression: gradient at the fit %.1e; scikit-learn comparison skipped (pip install scikit-learn)\n", gmax);
    remove(path); rmdir(dir);
}

static void test_bootstrap(void) {
    int P = 500, n = 3;
    float *e = (float *)malloc(sizeof(float) * P * n);
    double lo[3], hi[3], mean = 0, sd = 0;
    for (int p = 0; p < P; p++) { e[p * n] = 0.5f; e[p * n + 1] = (float)ltf_rng_uniform(&g_rng); e[p * n + 2] = p == 0 ? 100.0f : 0.0f; }
    for (int p = 0; p < P; p++) mean += e[p * n + 1] / P;
    for (int p = 0; p < P; p++) sd += (e[p * n + 1] - mean) * (e[p * n + 1] - mean) / (P - 1);
    sd = sqrt(sd / P);   /* standard error of the mean */
    CHECK(ltf_bootstrap_band(e, P, n, 1000, 0.9, 1, lo, hi) == 0, "bootstrap runs");
    CHECK(lo[0] == 0.5 && hi[0] == 0.5, "constant errors give a zero-width band");
    CHECK(lo[1] < mean && mean < hi[1] && fabs((hi[1] - lo[1]) / (2 * 1.645 * sd) - 1) < 0.15,
          "band [%g, %g] around %g has the normal width %g", lo[1], hi[1], mean, 2 * 1.645 * sd);
    CHECK(lo[2] == 0.0 && hi[2] > 0.0, "one outlier prompt: lower end 0, upper end above");
    CHECK(ltf_bootstrap_band(e, 0, n, 10, 0.9, 1, lo, hi) == -1 && ltf_bootstrap_band(e, P, n, 10, 1.5, 1, lo, hi) == -1,
          "bad arguments rejected");
    free(e);
}

/* plots: the SVG must be well-formed enough for a browser, carry every label escaped, break lines
 * at NaN, keep a spike through decimation, refuse bad input with a message, leave no .tmp. */
static char *plots_read(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = (char *)malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = '\0';
    fclose(f);
    return s;
}

static int plots_count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* The d attribute of the k-th <path class="line">: subpaths (M), vertices (M/L), y extent (px). */
static int plots_line(const char *svg, int k, int *subpaths, int *vertices, double *min_y, double *max_y) {
    const char *p = svg;
    for (int i = 0; i <= k; i++) {
        p = strstr(p, "class=\"line\"");
        if (!p) return -1;
        p++;
    }
    p = strstr(p, " d=\"") + 4;
    *subpaths = *vertices = 0;
    *min_y = INFINITY;
    *max_y = -INFINITY;
    while (*p && *p != '"') {
        char c = *p++;
        if (c != 'M' && c != 'L') continue;
        char *end;
        strtod(p, &end);
        double y = strtod(end, &end);
        p = end;
        *subpaths += c == 'M';
        (*vertices)++;
        if (y < *min_y) *min_y = y;
        if (y > *max_y) *max_y = y;
    }
    return 0;
}

/* A decade label as the plot writes it: 10 with a raised exponent, or the plain number. */
static int plots_has_decade(const char *svg, int e) {
    char sup[96], plain[32];
    snprintf(sup, sizeof sup, ">10<tspan dy=\"-0.5em\" font-size=\"80%%\">%s%d</tspan>", e < 0 ? "\xe2\x88\x92" : "", abs(e));
    snprintf(plain, sizeof plain, ">%g<", pow(10.0, e));
    return strstr(svg, sup) || strstr(svg, plain);
}

static void test_plots(void) {
    char path[64], tmp[80], err[LTF_ERR_LEN];
    snprintf(path, sizeof path, "/tmp/ltf_test_plots_%d.svg", (int)getpid());
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    remove(path);
    double k[10], a[10], lo[10], hi[10], b[10], c[10];
    for (int i = 0; i < 10; i++) {   /* errors from 1 down to 1e-3 */
        k[i] = i;
        a[i] = pow(10.0, -i / 3.0);
        lo[i] = 0.8 * a[i]; hi[i] = 1.2 * a[i];
        b[i] = 0.5 * a[i];
        c[i] = 0.9;
    }
    b[4] = NAN;                       /* breaks series 1 into two runs */
    c[7] = INFINITY;                  /* and series 2 */
    ltf_series s[3] = {{"looped <b=20>", k, a, 10, lo, hi, 0}, {"least \"squares\"", k, b, 10, NULL, NULL, 1},
                       {"3-NN & avg", k, c, 10, NULL, NULL, 0}};
    ltf_plot p;
    memset(&p, 0, sizeof p);
    p.title = "error vs k: a < b & c > 'd'"; p.xlabel = "in-context examples k"; p.ylabel = "normalized error";
    p.log_y = 1; p.series = s; p.n_series = 3; p.hline = 1.0; p.hline_label = "zero estimator";
    CHECK(ltf_plot_svg(&p, path, err) == 0, "plot: %s", err);
    char *svg = plots_read(path);
    CHECK(svg != NULL, "no file %s", path);
    if (!svg) return;
    size_t len = strlen(svg);
    CHECK(strncmp(svg, "<svg", 4) == 0, "does not start with <svg");
    CHECK(len > 7 && strstr(svg + len - 8, "</svg>"), "does not end with </svg>");
    CHECK(plots_count(svg, "<g ") + plots_count(svg, "<g>") == plots_count(svg, "</g>"), "unbalanced <g>: %d open, %d close",
          plots_count(svg, "<g ") + plots_count(svg, "<g>"), plots_count(svg, "</g>"));
    CHECK(plots_count(svg, "<text") == plots_count(svg, "</text>"), "unbalanced <text>");
    CHECK(strstr(svg, ">error vs k: a &lt; b &amp; c &gt; &apos;d&apos;<") != NULL, "escaped title missing");
    CHECK(strstr(svg, ">looped &lt;b=20&gt;<") && strstr(svg, ">least &quot;squares&quot;<") &&
          strstr(svg, ">3-NN &amp; avg<") && strstr(svg, ">zero estimator<") &&
          strstr(svg, ">in-context examples k<") && strstr(svg, ">normalized error<"), "a label is missing or unescaped");
    CHECK(plots_count(svg, "class=\"line\"") == 3 && plots_count(svg, "class=\"band\"") == 1 &&
          plots_count(svg, "class=\"ref\"") == 1, "%d lines (want 3), %d bands (want 1), %d reference lines (want 1)",
          plots_count(svg, "class=\"line\""), plots_count(svg, "class=\"band\""), plots_count(svg, "class=\"ref\""));
    for (int e = -3; e <= 0; e++) CHECK(plots_has_decade(svg, e), "log axis 1e-3..1: no tick label for 1e%d", e);
    int sub = 0, vert = 0;
    double min_y, max_y;
    CHECK(plots_line(svg, 1, &sub, &vert, &min_y, &max_y) == 0 && sub == 2 && vert == 9,
          "series with a NaN at 4: %d subpaths (want 2), %d points (want 9)", sub, vert);
    CHECK(plots_line(svg, 2, &sub, &vert, &min_y, &max_y) == 0 && sub == 2 && vert == 9,
          "series with an Inf at 7: %d subpaths (want 2), %d points (want 9)", sub, vert);
    CHECK(plots_line(svg, 0, &sub, &vert, &min_y, &max_y) == 0 && sub == 1 && vert == 10, "plain series: %d subpaths, %d points", sub, vert);
    CHECK(!strstr(svg, "nan") && !strstr(svg, "inf"), "a non-finite number was printed");
    CHECK(access(tmp, F_OK) != 0, "%s left behind", tmp);
    free(svg);

    /* 100k points with a spike and a dip: at most 2000 vertices; the spike is the line's top
     * and the dip its bottom (a plain stride would drop both) */
    int n = 100000;
    double *x = (double *)malloc(n * sizeof(double)), *y = (double *)malloc(n * sizeof(double));
    for (int i = 0; i < n; i++) { x[i] = i; y[i] = 0.5 + 0.4 * sin(i * 0.01); }
    y[54321] = 10.0;
    y[76543] = 0.001;
    ltf_series big = {"loss", x, y, n, NULL, NULL, 0};
    memset(&p, 0, sizeof p);
    p.series = &big; p.n_series = 1;
    CHECK(ltf_plot_svg(&p, path, err) == 0, "big plot: %s", err);
    svg = plots_read(path);
    double clip_x = 0, clip_y = 0, clip_w = 0, clip_h = 0;   /* the plot area, 1 px wider up and down */
    const char *clip = svg ? strstr(svg, "<clipPath id=\"ltf-plot-area\"><rect x=\"") : NULL;
    CHECK(clip && sscanf(clip, "<clipPath id=\"ltf-plot-area\"><rect x=\"%lf\" y=\"%lf\" width=\"%lf\" height=\"%lf\"",
                         &clip_x, &clip_y, &clip_w, &clip_h) == 4, "no clip rect");
    CHECK(svg && plots_line(svg, 0, &sub, &vert, &min_y, &max_y) == 0 && vert <= 2000 && vert >= 1000,
          "100k points drawn with %d vertices: want 1000..2000", vert);
    CHECK(fabs(min_y - (clip_y + 1)) < 0.2, "the spike was lost: highest vertex at y = %.1f, plot top %.1f", min_y, clip_y + 1);
    CHECK(fabs(max_y - (clip_y + clip_h - 1)) < 0.2, "the dip was lost: lowest vertex at y = %.1f, plot bottom %.1f",
          max_y, clip_y + clip_h - 1);
    free(svg);

    /* no drawable data: axes and a note, not an error */
    double nan_y[3] = {NAN, NAN, NAN};
    ltf_series empty = {"pending", k, nan_y, 3, NULL, NULL, 0};
    p.series = &empty; p.log_y = 1;
    CHECK(ltf_plot_svg(&p, path, err) == 0, "all-NaN plot: %s", err);
    svg = plots_read(path);
    CHECK(svg && strstr(svg, ">no data<") && plots_count(svg, "class=\"line\"") == 0, "all-NaN plot has no 'no data' note");
    free(svg);
    p.n_series = 0; p.series = NULL;
    CHECK(ltf_plot_svg(&p, path, err) == 0, "empty plot: %s", err);

    /* bad input: -1 and a message naming the problem; the file is not touched */
    remove(path);
    memset(&p, 0, sizeof p);
    ltf_series bad = {"bad", k, a, -1, NULL, NULL, 0};
    p.series = &bad; p.n_series = 1;
    CHECK(ltf_plot_svg(&p, path, err) == -1 && strstr(err, "n = -1"), "n = -1: %s", err);
    bad.n = 10; bad.x = NULL;
    CHECK(ltf_plot_svg(&p, path, err) == -1 && strstr(err, "x is NULL"), "x NULL: %s", err);
    bad.x = k; bad.lo = lo;
    CHECK(ltf_plot_svg(&p, path, err) == -1 && strstr(err, "hi is NULL"), "lo without hi: %s", err);
    bad.lo = NULL;
    double neg[10];
    for (int i = 0; i < 10; i++) neg[i] = -1.0 - i;
    bad.y = neg; p.log_y = 1;
    CHECK(ltf_plot_svg(&p, path, err) == -1 && strstr(err, "log y axis"), "log y with no y > 0: %s", err);
    p.log_y = 0; p.y_min = 2; p.y_max = 1;
    CHECK(ltf_plot_svg(&p, path, err) == -1 && strstr(err, "y range 2..1"), "y range 2..1: %s", err);
    p.y_min = p.y_max = 0; p.hline = NAN; p.hline_label = "ref";
    CHECK(ltf_plot_svg(&p, path, err) == -1 && strstr(err, "hline = nan"), "NaN reference line: %s", err);
    CHECK(ltf_plot_svg(NULL, path, err) == -1 && strstr(err, "plot is NULL"), "NULL plot: %s", err);
    CHECK(access(path, F_OK) != 0, "a failed call wrote %s", path);
    /* a write that fails (no such folder) reports it and leaves nothing */
    memset(&p, 0, sizeof p);
    CHECK(ltf_plot_svg(&p, "/nonexistent-ltf-dir/x.svg", err) == -1 && strstr(err, "cannot write"), "bad folder: %s", err);
    remove(path);
    free(x); free(y);
}

/* Tabular datasets (workbench/tabular.h): a good file is read, standardized and split 95/5 by
 * the seed; 20 malformed files each get one line naming the file, the
 * line where there is one, and the problem; nothing is left allocated. */
static void write_file(const char *path, const char *text, size_t len) {
    FILE *f = fopen(path, "wb");
    if (f) { fwrite(text, 1, len, f); fclose(f); }
}
static int run_demo(const char *args, char *err, size_t cap);   /* ("demo" tests, below) */
static int count_lines(const char *s);

static void test_tabular(void) {
    char dir[64], path[256], err[LTF_ERR_LEN];
    make_tmpdir(dir);
    /* a good file: header, 40 rows, feature 2 constant, labels 3 and 7 */
    char *good = NULL;
    size_t len = 0;
    {
        char buf[128];
        FILE *m = open_memstream(&good, &len);
        fprintf(m, "a,b,c,label\r\n");
        for (int r = 0; r < 40; r++) {
            snprintf(buf, sizeof buf, "%d,%g,5,%d\r\n", r, 0.5 * r * r, r % 3 ? 3 : 7);
            fputs(buf, m);
        }
        fclose(m);
    }
    snprintf(path, sizeof path, "%s/good.csv", dir);
    write_file(path, good, len);
    ltf_tab_set s1, s2;
    int rc = ltf_tab_load_file(path, 5, 11, &s1, err);
    CHECK(rc == 0, "good file: %s", err);
    if (rc == 0) {
        CHECK(s1.rows == 40 && s1.features == 3 && s1.n_train == 38 && s1.classes == 2 && s1.label_of[0] == 3 && s1.label_of[1] == 7 &&
              strcmp(s1.name, "good") == 0, "good file: %d rows %d features %d train %d classes '%s'", s1.rows, s1.features, s1.n_train,
              s1.classes, s1.name);
        double worst = 0;
        for (int j = 0; j < 2; j++) {   /* mean 0 and sd 1 over all rows */
            double m = 0, v = 0;
            for (int r = 0; r < 40; r++) m += s1.x[r * 3 + j] / 40;
            for (int r = 0; r < 40; r++) v += (s1.x[r * 3 + j] - m) * (s1.x[r * 3 + j] - m) / 40;
            worst = fmax(worst, fmax(fabs(m), fabs(v - 1)));
        }
        int consistent = 1, zero = 1, sevens = 0;
        for (int r = 0; r < 40; r++) {   /* each row keeps its label: the file's row is the rank of its first feature */
            int orig = 0;
            for (int j = 0; j < 40; j++) orig += s1.x[j * 3] < s1.x[r * 3];
            consistent &= s1.y[r] == (orig % 3 ? 0 : 1);
            zero &= s1.x[r * 3 + 2] == 0.0f;
            sevens += s1.y[r];
        }
        CHECK(worst < 1e-5 && zero && sevens == 14 && consistent, "standardized: worst |mean|, |var-1| %.1e; constant column zero %d; "
              "%d rows of class 1 (want 14)", worst, zero, sevens);
        CHECK(ltf_tab_load_file(path, 5, 11, &s2, err) == 0 && memcmp(s1.x, s2.x, sizeof(float) * 120) == 0 &&
              memcmp(s1.y, s2.y, sizeof(int) * 40) == 0, "the same seed gave another split");
        ltf_tab_set_free(&s2);
        CHECK(ltf_tab_load_file(path, 6, 11, &s2, err) == 0 && memcmp(s1.y, s2.y, sizeof(int) * 40) != 0, "seed 6 gave seed 5's split");
        ltf_tab_set_free(&s2);
        ltf_tab_set_free(&s1);
    }
    free(good);
    /* a folder: both files, sorted by name; a folder without CSV files is an error */
    snprintf(path, sizeof path, "%s/another.csv", dir);
    write_file(path, "1,0\n2,1\n3,0\n4,1\n", 16);
    ltf_tabular t;
    CHECK(ltf_tab_load_dir(dir, 1, 2, &t, err) == 0 && t.n_sets == 2 && strcmp(t.sets[0].name, "another") == 0 &&
          strcmp(t.sets[1].name, "good") == 0, "folder of 2 files: %s", err);
    if (t.n_sets == 2) {   /* prompts from it: rows of the set's split, distinct in a prompt, padded in front */
        enum { SB = 50, SN = 3, SD = 5 };
        float sx[SB * SN * SD], sy[SB * SN];
        int both[2] = {0, 1}, good_only[1] = {1}, fine = 1, seen[2] = {0, 0};
        ltf_rng r;
        ltf_rng_seed(&r, 3);
        CHECK(ltf_tab_sample(&t, both, 2, 0, &r, SB, SN, SD, sx, sy, err) == 0, "sample: %s", err);
        for (int p = 0; p < SB; p++) {
            int set = sx[p * SN * SD + 1] == 0.0f && sx[p * SN * SD + 2] == 0.0f && sx[p * SN * SD + 3] == 0.0f ? 0 : 1;
            const ltf_tab_set *ts = &t.sets[set];
            int rows[SN];
            seen[set]++;
            for (int i = 0; i < SN; i++) {
                const float *x = sx + (p * SN + i) * SD;
                rows[i] = -1;
                for (int row = 0; row < ts->n_train; row++)
                    if (memcmp(x + SD - ts->features, ts->x + row * ts->features, sizeof(float) * ts->features) == 0) rows[i] = row;
                for (int c = 0; c < SD - ts->features; c++) fine &= x[c] == 0.0f;
                fine &= rows[i] >= 0 && sy[p * SN + i] == (float)ts->y[rows[i] < 0 ? 0 : rows[i]];
            }
            fine &= rows[0] != rows[1] && rows[0] != rows[2] && rows[1] != rows[2];
        }
        CHECK(fine && seen[0] > 0 && seen[1] > 0, "sampled prompts: training rows of their set, distinct, padded "
              "(from set 0: %d, set 1: %d)", seen[0], seen[1]);
        CHECK(ltf_tab_sample(&t, good_only, 1, 1, &r, 2, 3, SD, sx, sy, err) == -1 && strstr(err, "good has 2 test rows"),
              "3 points from 2 test rows: '%s'", err);
        CHECK(ltf_tab_sample(&t, good_only, 1, 0, &r, 2, 3, 2, sx, sy, err) == -1 && strstr(err, "3 features"),
              "3 features into d = 2: '%s'", err);
    }
    ltf_tab_free(&t);
    remove(path);
    snprintf(path, sizeof path, "%s/good.csv", dir);
    remove(path);
    CHECK(ltf_tab_load_dir(dir, 1, 2, &t, err) == -1 && strstr(err, "no .csv files") && t.sets == NULL, "empty folder: '%s'", err);
    CHECK(ltf_tab_load_dir("/nonexistent/ltf", 1, 2, &t, err) == -1 && strstr(err, "cannot open the folder"), "no folder: '%s'", err);
    /* 20 malformed files */
    char *huge = (char *)malloc(LTF_TAB_MAX_LINE + 16), *wide = (char *)malloc(6 * (LTF_MAX_DIMS + 8));
    memset(huge, '1', LTF_TAB_MAX_LINE + 8);
    memcpy(huge, "1,", 2);
    huge[LTF_TAB_MAX_LINE + 8] = '\n';
    huge[LTF_TAB_MAX_LINE + 9] = 0;
    wide[0] = 0;
    for (int i = 0; i < LTF_MAX_DIMS + 2; i++) strcat(wide, "1,");
    strcat(wide, "0\n");
    char sixteen[400] = "";
    for (int i = 0; i < 17; i++) snprintf(sixteen + strlen(sixteen), sizeof sixteen - strlen(sixteen), "%d,%d\n", i, i);
    struct { const char *name, *text; size_t len; const char *want; } bad[] = {
        {"empty", "", 0, "no data rows"},
        {"header_only", "a,b,label\n", 10, "no data rows"},
        {"ragged_short", "1,2,0\n3,1\n", 10, ":2: 2 cells, the first line has 3"},
        {"ragged_long", "1,2,0\n3,4,1,9\n", 14, ":2: 4 cells, the first line has 3"},
        {"words", "1,2,0\n3,abc,1\n", 14, ":2: cell 2 'abc' is not a finite number"},
        {"nan_cell", "1,2,0\n3,NaN,1\n", 14, ":2: cell 2 'NaN' is not a finite number"},
        {"inf_cell", "1,2,0\n3,inf,1\n", 14, ":2: cell 2 'inf' is not a finite number"},
        {"empty_cell", "1,2,0\n3,,1\n", 11, ":2: cell 2 '' is not a finite number"},
        {"one_class", "1,2,0\n3,4,0\n5,6,0\n", 18, "one class (label 0) in all 3 rows"},
        {"fractional_label", "1,2,0\n3,4,0.5\n", 14, ":2: label '0.5' is not an integer class"},
        {"too_few_rows", "1,0\n2,1\n", 8, "2 rows give 1 training rows; a prompt of n points needs at least 3"},
        {"huge_line", huge, LTF_TAB_MAX_LINE + 9, ":1: line longer than"},
        {"binary_junk", "1,2,0\n\x7f" "ELF\x02\x01\x01\x00\x00", 15, ":2: a NUL byte"},
        {"one_column", "1\n2\n", 4, ":1: 1 column"},
        {"too_wide", wide, strlen(wide), ":1: more than 4097 columns"},
        {"many_classes", sixteen, strlen(sixteen), "more than 16 classes"},
        {"trailing_junk", "1,2,0\n3,4.5x,1\n", 15, ":2: cell 2 '4.5x' is not a finite number"},
        {"overflow", "1,2,0\n3,1e999,1\n", 16, ":2: cell 2 '1e999' is not a finite number"},
        {"blank_line", "1,2,0\n\n3,4,1\n", 13, ":2: an empty line"},
        {"header_later", "1,2,0\na,b,label\n", 16, ":2: cell 1 'a' is not a finite number"},
    };
    int n_bad = (int)(sizeof bad / sizeof bad[0]), ok = 0, demo_ok = 0;
    snprintf(path, sizeof path, "%s/one", dir);
    mkdir(path, 0755);
    for (int i = 0; i < n_bad; i++) {
        snprintf(path, sizeof path, "%s/one/%s.csv", dir, bad[i].name);
        write_file(path, bad[i].text, bad[i].len);
        ltf_tab_set s;
        rc = ltf_tab_load_file(path, 1, 3, &s, err);
        int good_msg = rc == -1 && strstr(err, path) == err && strstr(err, bad[i].want) && !strchr(err, '\n') && s.x == NULL && s.y == NULL;
        ok += good_msg;
        CHECK(good_msg, "%s: rc %d, '%s' (want one line starting with the path and '%s')", bad[i].name, rc, err, bad[i].want);
        /* and through the demo: exit 2, one line naming the file, its line and the problem; nothing written */
        char args[400], derr[1024];
        snprintf(args, sizeof args, "--task tabular --data %s/one --n 3 --steps 1 --out %s/out", dir, dir);
        int drc = run_demo(args, derr, sizeof derr);
        snprintf(args, sizeof args, "%s/out/checkpoint.safetensors", dir);
        int good_demo = drc == 2 && count_lines(derr) == 1 && strstr(derr, bad[i].name) && strstr(derr, bad[i].want) && !file_exists(args);
        demo_ok += good_demo;
        CHECK(good_demo, "demo on %s: exit %d, '%s'", bad[i].name, drc, derr);
        remove(path);
    }
    snprintf(path, sizeof path, "%s/out", dir);
    char rm[400];
    snprintf(rm, sizeof rm, "rm -rf %s %s/one", path, dir);
    CHECK(system(rm) == 0, "%s", rm);
    printf("  demo --task tabular on each malformed file: %d of %d exit 2 with its one line\n", demo_ok, n_bad);
    /* the real datasets reference/export_tabular.py writes from scikit-learn's bundled ones */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "python3 reference/export_tabular.py %s/real > %s/export.log 2>&1", dir, dir);
    if (system(cmd) == 0) {
        snprintf(path, sizeof path, "%s/real", dir);
        CHECK(ltf_tab_load_dir(path, 2021, 41, &t, err) == 0 && t.n_sets == 5, "exported datasets: %s", err);
        int fine = t.n_sets == 5;
        for (int i = 0; i < t.n_sets; i++) fine &= t.sets[i].classes == 2 && t.sets[i].n_train >= 41 && t.sets[i].rows - t.sets[i].n_train >= 7;
        CHECK(fine, "exported datasets: 2 classes, >= 41 training rows and >= 7 test rows each");
        if (fine) printf("  reference/export_tabular.py: %d datasets (%s ... %s), each loaded\n", t.n_sets, t.sets[0].name, t.sets[t.n_sets - 1].name);
        ltf_tab_free(&t);
        snprintf(cmd, sizeof cmd, "rm -rf %s/real", dir);
        if (system(cmd) != 0) printf("  (could not remove %s/real)\n", dir);
    } else printf("  reference/export_tabular.py: skipped (it needs python3 with scikit-learn: pip install scikit-learn)\n");
    snprintf(path, sizeof path, "%s/export.log", dir);
    remove(path);
    printf("  good file: standardized, split 95/5 by the seed; %d of %d malformed files refused with "
           "one line naming file, line and problem\n", ok, n_bad);
    free(huge); free(wide);
    rmdir(dir);
}

/* Probing: the ridge probe recovers an exact linear map; the states the probes read are the
 * loop's (the read-out of state t is ltf_predict's prediction after iteration t, to 1e-5);
 * the probe experiment gives one finite error per state and kind. */
static void test_probe(void) {
    enum { R = 200, NF = 10, NT = 3 };
    double F[R * NF], Wt[(NF + 1) * NT], Y[R * NT], W[(NF + 1) * NT];
    for (int i = 0; i < R * NF; i++) F[i] = ltf_rng_normal(&g_rng);
    for (int i = 0; i < (NF + 1) * NT; i++) Wt[i] = ltf_rng_normal(&g_rng);
    for (int r = 0; r < R; r++)
        for (int t = 0; t < NT; t++) {
            double v = Wt[NF * NT + t];
            for (int f = 0; f < NF; f++) v += F[r * NF + f] * Wt[f * NT + t];
            Y[r * NT + t] = v;
        }
    CHECK(ltf_ridge_fit(F, Y, R, NF, NT, 1e-10, W) == 0, "ridge fit failed");
    double e = 0, nrm = 0;
    for (int i = 0; i < (NF + 1) * NT; i++) { e += (W[i] - Wt[i]) * (W[i] - Wt[i]); nrm += Wt[i] * Wt[i]; }
    CHECK(sqrt(e / nrm) < 1e-8, "ridge fit of an exact linear map: rel err %.2e", sqrt(e / nrm));
    /* the states: read out, they are the loop's predictions */
    ltf_config c = small_config(LTF_LOOPED, 1, 4, 2);
    ltf_model m;
    char err[LTF_ERR_LEN];
    ltf_model_create(&m, &c, 3, err);
    randomize_model(&m, 0.3f);
    int B = 3, n = 5, N = 10, C = c.n_embd, loops = 6;
    float *xs = rand_buf((size_t)B * n * c.n_dims, 1), *ys = rand_buf((size_t)B * n, 1);
    float *states = zeros((size_t)(loops + 1) * B * N * C), *pred = zeros((size_t)loops * B * n), *last = zeros((size_t)B * n);
    CHECK(ltf_hidden_states(&m, xs, ys, B, n, loops, states) == 0, "hidden states: %s", m.err);
    ltf_predict(&m, xs, ys, B, n, loops, last, pred);
    int same = 1;
    for (int t = 1; t <= loops; t++)
        for (int bi = 0; bi < B * n; bi++) {
            const float *y = states + ((size_t)t * B * N + 2 * (size_t)bi) * C;
            float s = m.w.read_out_b[0];
            for (int k = 0; k < C; k++) s += m.w.read_out_w[k] * y[k];
            float want = pred[(size_t)(t - 1) * B * n + bi];   /* the same sums; FMA contraction may differ */
            same &= fabsf(s - want) <= 1e-5f * (1.0f + fabsf(want));
        }
    CHECK(same, "the read-out of the probe's states differs from ltf_predict's predictions");
    ltf_probe_result r;
    CHECK(ltf_probe_run(&m, n, loops, 64, 9, &r, err) == 0, "probe run: %s", err);
    int finite = r.states == loops + 1;
    for (int s = 0; s < r.states && finite; s++)
        finite = isfinite(r.ols[s]) && isfinite(r.grad[s]) && isfinite(r.ols_control[s]) && isfinite(r.grad_control[s]) &&
                 r.ols[s] >= 0 && r.grad[s] >= 0;
    CHECK(finite, "probe: %d states (want %d), errors finite and >= 0", r.states, loops + 1);
    printf("  ridge probe recovers a linear map (rel err %.1e); states read out = ltf_predict to 1e-5; %d states probed\n",
           sqrt(e / nrm), r.states);
    ltf_probe_free(&r);
    ltf_model_free(&m);
    c = small_config(LTF_STANDARD, 2, 1, 1);
    ltf_model_create(&m, &c, 3, err);
    CHECK(ltf_probe_run(&m, n, 1, 32, 9, &r, err) == 0 && r.states == 3, "standard L=2: %d states (want 3): %s", r.states, err);
    ltf_probe_free(&r);
    ltf_model_free(&m);
    free(xs); free(ys); free(states); free(pred); free(last);
}

static void test_fma_peak(void) {
    /* the bench's yardstick: a positive, finite rate (its size is the bench's to print) */
    double g = ltf_fma_peak_gflops(0.05);
    printf("  multiply-add peak %.1f GFLOP/s\n", g);
    CHECK(isfinite(g) && g > 0.1, "ltf_fma_peak_gflops = %g", g);
}


/* ------------------------------------------------------------------ hardening */

/* Allocation failure: every function that allocates is run once to count its LTF_MALLOC calls
 * (c), then c more times with call 1, 2, ..., c failing. Each run must report the failure (-1
 * with a message, or NAN where documented) and, after the caller's cleanup, hold no block:
 * live blocks (allocations minus frees) back to where they were. */
typedef struct { ltf_config c; blob file; char path[128], dir[64]; int kind; } alloc_ctx;
static long g_alloc_injected, g_alloc_unreported, g_alloc_leaks;

static void alloc_sweep(const char *name, int (*op)(alloc_ctx *), alloc_ctx *x) {
    long live0 = g_alloc_live;
    g_alloc_calls = 0; g_alloc_fail_at = 0;
    int rc = op(x);
    long calls = g_alloc_calls, unreported = 0, leaks = 0;
    CHECK(rc == 0 && g_alloc_live == live0, "%s: run without failures: rc %d, %ld blocks left", name, rc, g_alloc_live - live0);
    for (long k = 1; k <= calls; k++) {
        g_alloc_calls = 0; g_alloc_fail_at = k;
        rc = op(x);
        g_alloc_fail_at = 0;
        unreported += rc == 0;
        if (g_alloc_live != live0) { leaks++; g_alloc_live = live0; }
    }
    g_alloc_injected += calls; g_alloc_unreported += unreported; g_alloc_leaks += leaks;
    CHECK(calls > 0 && unreported == 0 && leaks == 0, "%s: %ld allocations failed one at a time: %ld not reported, %ld leaked",
          name, calls, unreported, leaks);
}

/* each op returns 0 on success, nonzero when it saw the failure reported (and checks the report) */
static int reported(int rc, const char *err) {
    if (rc != 0 && !err[0]) CHECK(0, "a failure without a message");
    return rc != 0;
}
static int op_create(alloc_ctx *x) {
    ltf_model m;
    char err[LTF_ERR_LEN] = "";
    int rc = ltf_model_create(&m, &x->c, 1, err);
    if (rc == 0) ltf_model_free(&m);
    else CHECK(m.params == NULL && m.tensors == NULL, "failed create left a half model");
    return reported(rc, err);
}
/* create + one call on the model: the model's own buffers and the call's both get failed */
static int op_model_call(alloc_ctx *x) {
    ltf_model m;
    char err[LTF_ERR_LEN] = "";
    if (ltf_model_create(&m, &x->c, 1, err) != 0) return reported(-1, err);
    int B = 2, n = 4, d = x->c.n_dims, rc = 0;
    float xs[2 * 4 * 3], ys[2 * 4], pred[2 * 4], iters[3 * 2 * 4], loss;
    for (int i = 0; i < B * n * d; i++) xs[i] = 0.1f * (float)(i % 7) - 0.3f;
    for (int i = 0; i < B * n; i++) ys[i] = 0.2f * (float)(i % 5) - 0.4f;
    m.err[0] = 0;
    if (x->kind == 0) rc = ltf_predict(&m, xs, ys, B, n, 3, pred, iters);
    if (x->kind == 1) {
        ltf_train_config tc;
        ltf_train_config_default(&tc);
        rc = ltf_train_step(&m, &tc, xs, ys, B, n, &loss);
    }
    if (x->kind == 2) {
        ltf_task task = ltf_task_make(LTF_TASK_LINEAR, d, d);
        ltf_rng r;
        double ek[4], eit[3];
        float ep[3 * 4];
        ltf_rng_seed(&r, 1);
        rc = ltf_evaluate(&m, &task, &r, 3, n, 3, ek, eit, ep);
    }
    if (x->kind == 3) {
        ltf_train_state st = small_state(LTF_TASK_LINEAR, 1);
        float bx[4 * 5 * 3], by[4 * 5];
        rc = ltf_train_next(&m, &st, bx, by, &loss, NULL);
    }
    if (x->kind == 4) rc = ltf_checkpoint_save(&m, NULL, x->path, m.err);
    rc = reported(rc, m.err);
    ltf_model_free(&m);
    return rc;
}
static int op_load_mem(alloc_ctx *x) {
    ltf_model m;
    ltf_train_state st;
    char err[LTF_ERR_LEN] = "";
    int rc = ltf_checkpoint_load_mem(&m, &st, x->file.p, x->file.len, &x->c, err);
    if (rc == 0) ltf_model_free(&m);
    else CHECK(m.params == NULL && m.tensors == NULL, "failed load left a half model: %s", err);
    return reported(rc, err);
}
static int op_load_file(alloc_ctx *x) {
    ltf_model m;
    char err[LTF_ERR_LEN] = "";
    int rc = ltf_checkpoint_load(&m, NULL, x->path, NULL, err);
    if (rc == 0) ltf_model_free(&m);
    return reported(rc, err);
}
static int op_write_atomic(alloc_ctx *x) {
    char err[LTF_ERR_LEN] = "";
    return reported(ltf_write_atomic(x->path, "abc", 3, err), err);
}
static int op_plot(alloc_ctx *x) {
    double k[5] = {1, 2, 3, 4, 5}, y[5] = {1, 0.5, 0.2, 0.1, 0.05}, lo[5] = {0.8, 0.4, 0.1, 0.05, 0.01}, hi[5] = {2, 1, 1, 1, 1};
    ltf_series s[2] = {{"looped", k, y, 5, lo, hi, 0}, {"least squares", k, hi, 5, NULL, NULL, 1}};
    ltf_plot p;
    char err[LTF_ERR_LEN] = "";
    memset(&p, 0, sizeof p);
    p.title = "t"; p.xlabel = "k"; p.ylabel = "error"; p.log_y = 1; p.series = s; p.n_series = 2;
    p.hline = 1.0; p.hline_label = "zero";
    return reported(ltf_plot_svg(&p, x->path, err), err);
}
static int op_bootstrap(alloc_ctx *x) {
    float e[6 * 2] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    double lo[2], hi[2];
    (void)x;
    return ltf_bootstrap_band(e, 6, 2, 50, 0.9, 1, lo, hi) != 0;
}
static int op_baseline_predict(alloc_ctx *x) {   /* NAN on failure (documented) */
    float xs[6 * 3], ys[6], q[3] = {0.3f, -0.2f, 0.1f};
    for (int i = 0; i < 18; i++) xs[i] = (float)((i * 37) % 11) / 5.0f - 1.0f;
    for (int i = 0; i < 6; i++) ys[i] = (float)i / 3.0f - 1.0f;
    return isnan(ltf_baseline_predict(x->kind, 6, 3, xs, ys, q)) ? 1 : 0;
}
static int op_baseline_evaluate(alloc_ctx *x) {   /* -1, or NAN in the errors of the failed fit */
    ltf_task task = ltf_task_make(LTF_TASK_LINEAR, 3, 3);
    ltf_rng r;
    double ek[5];
    float ep[2 * 5];
    int bad = 0;
    ltf_rng_seed(&r, 1);
    if (ltf_baseline_evaluate(LTF_BASE_LSQ, &task, &r, 2, 5, ek, ep) != 0) return 1;
    for (int k = 0; k < 5; k++) bad |= isnan(ek[k]);
    (void)x;
    return bad;
}

static void test_alloc_failures(void) {
    static const char *const model_calls[5] = {"ltf_predict", "ltf_train_step", "ltf_evaluate", "ltf_train_next",
                                               "ltf_checkpoint_save"};
    alloc_ctx x;
    char err[LTF_ERR_LEN], name[64];
    memset(&x, 0, sizeof x);
    make_tmpdir(x.dir);
    snprintf(x.path, sizeof x.path, "%s/f.safetensors", x.dir);
    x.c = small_config(LTF_LOOPED, 1, 3, 2);
    g_alloc_injected = g_alloc_unreported = g_alloc_leaks = 0;
    alloc_sweep("ltf_model_create", op_create, &x);
    for (x.kind = 0; x.kind < 5; x.kind++) alloc_sweep(model_calls[x.kind], op_model_call, &x);
    ltf_model m;
    ltf_train_state st = small_state(LTF_TASK_LINEAR, 1);
    ltf_model_create(&m, &x.c, 1, err);
    x.file = checkpoint_blob(&m, &st);
    CHECK(ltf_checkpoint_save(&m, &st, x.path, err) == 0, "save: %s", err);
    ltf_model_free(&m);
    alloc_sweep("ltf_checkpoint_load_mem", op_load_mem, &x);
    alloc_sweep("ltf_checkpoint_load", op_load_file, &x);
    alloc_sweep("ltf_write_atomic", op_write_atomic, &x);
    alloc_sweep("ltf_plot_svg", op_plot, &x);
    alloc_sweep("ltf_bootstrap_band", op_bootstrap, &x);
    for (x.kind = LTF_BASE_LSQ; x.kind < LTF_BASE_COUNT; x.kind++) {
        if (x.kind == LTF_BASE_AVERAGING || x.kind == LTF_BASE_KNN3) continue;   /* no allocation */
        snprintf(name, sizeof name, "ltf_baseline_predict(%s)", ltf_baseline_name(x.kind));
        alloc_sweep(name, op_baseline_predict, &x);
    }
    alloc_sweep("ltf_baseline_evaluate", op_baseline_evaluate, &x);
    printf("  %ld allocation failures injected, one at a time: %ld not reported, %ld leaked\n", g_alloc_injected,
           g_alloc_unreported, g_alloc_leaks);
    free(x.file.p);
    remove(x.path); rmdir(x.dir);
}

/* ---- the demo under hostile command lines, signals and faults (runs ./demo, or $LTF_DEMO) ---- */

static const char *demo_bin(void) {
    const char *d = getenv("LTF_DEMO");
    return d && *d ? d : "./demo";
}

/* Runs `demo args` (shell words) with stdout discarded and stderr into err (one file's text);
 * returns the exit status, or -1 when it did not exit. */
static int run_demo(const char *args, char *err, size_t cap) {
    char cmd[1024], path[64];
    snprintf(path, sizeof path, "/tmp/ltf_demo_err_%d.txt", (int)getpid());
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s %s > /dev/null 2> %s", demo_bin(), args, path);
    fflush(stdout);
    int st = system(cmd);
    size_t n = 0;
    unsigned char *text = read_whole(path, &n);
    n = n < cap - 1 ? n : cap - 1;
    if (text) memcpy(err, text, n);
    err[n] = 0;
    free(text);
    remove(path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Every bad command line: exit 2 and ONE line on stderr naming the flag, the value and what is
 * allowed. Then --help: it lists every flag the parser knows, and the parser knows every flag
 * it lists. */
static void test_demo_flags(void) {
    static const struct { const char *args, *flag, *value, *allowed; } bad[] = {
        {"--steps abc", "--steps", "'abc'", "0..100000000"},
        {"--steps -5", "--steps", "'-5'", "0..100000000"},
        {"--steps 5x", "--steps", "'5x'", "integer"},
        {"--steps 99999999999999999999", "--steps", "'99999999999999999999'", "integer"},
        {"--lr nan", "--lr", "'nan'", "[1e-12, 10]"},
        {"--lr inf", "--lr", "'inf'", "[1e-12, 10]"},
        {"--lr 0", "--lr", "'0'", "[1e-12, 10]"},
        {"--wd -1", "--wd", "'-1'", "[0, 1000]"},
        {"--d 0", "--d", "'0'", "1..4096"},
        {"--L 65", "--L", "'65'", "1..64"},
        {"--seed -1", "--seed", "'-1'", "0..2147483647"},
        {"--model big", "--model", "'big'", "standard looped tied"},
        {"--task linear", "--task", "'linear'", "linear_regression"},
        {"--curriculum maybe", "--curriculum", "'maybe'", "off on"},
        {"--out ''", "--out", "''", "need a file or folder name"},
        {"--steps", "--steps", "needs a value", "value"},
        {"--out --steps 5", "--out", "'--steps'", "needs a value"},
        {"--frobnicate 1", "--frobnicate", "unknown flag", "--help"},
        {"--step 5", "--step", "unknown flag", "did you mean --steps"},
        {"--steps 5 eval", "'eval'", "command goes first", "demo eval"},
        {"evaluate", "command", "'evaluate'", "train eval mask-sweep compare bench"},
        {"--H 3", "--H", "'3'", "divide --C (64)"},
        {"--C 30", "--C", "'30'", "multiple of --H (4)"},
        {"--T 12", "--T", "'12'", "1..10"},
        {"--b 3", "--b", "'3'", "at least --T (5)"},
        {"--n 20 --positions 10", "--positions", "'10'", "at least --n (20)"},
        {"--mask last", "--mask", "'last'", "--mask-n N, N in 1..11"},
        {"--mask first --mask-n 12", "--mask-n", "'12'", "1..11"},
        {"--mask-n 3", "--mask-n", "'3'", "without --mask last|first"},
        {"--mask-when eval", "--mask-when", "'eval'", "without --mask"},
        {"--model standard --b 4", "--b", "'4'", "--model standard"},
        {"--model standard --mask last --mask-n 2", "--mask", "'last'", "--model standard"},
        {"--curriculum off --cur-interval 9", "--cur-interval", "'9'", "--curriculum off"},
        {"--lr 0.1 --lr 0.2", "--lr", "'0.2'", "give it once"},
        {"--runs 5", "--runs", "'5'", "only to bench"},
        {"bench --rounds 0", "--rounds", "'0'", "1..20"},
        {"--precision fp16", "--precision", "'fp16'", "fp32 tf32 bf16"},
        {"--precision tf32", "--precision", "'tf32'", "without --gpu on"},
        {"--profile on", "--profile", "'on'", "only to bench"},
        {"bench --gpu-model maybe", "--gpu-model", "'maybe'", "off on"},
        {"sweep", "sweep", "--grid", "b=4,8"},
        {"probe", "--ckpt", "probe", "FILE"},
        {"probe --ckpt x --steps 5", "--steps", "'5'", "only to train"},
        {"sweep --grid x=1", "--grid key", "'x'", "flag of demo train"},
        {"sweep --grid seed=1,2", "--grid key", "'seed'", "--seeds sets the seeds"},
        {"sweep --grid b=6,6", "--grid", "'6'", "twice"},
        {"sweep --grid b=../x", "--grid", "'../x'", "letters, digits"},
        {"sweep --grid b=6 --b 7", "--grid key", "'b'", "give it in one place"},
        {"sweep --grid b=6 --seeds 0", "--seeds", "'0'", "1..100"},
        {"sweep --grid b=6 --emit mail", "--emit", "'mail'", "none slurm parallel"},
        {"sweep --grid b=6,8 --point 2", "--point", "'2'", "0..1"},
        {"sweep --grid b=2 --T 5", "sweep point b=2: --T", "'5'", "at most --b"},
        {"sweep --grid b=6 --resume x", "--resume", "'x'", "only to train"},
        {"sweep --grid model:L=looped:1,standard", "--grid", "'standard'", "2 part(s)"},
        {"sweep --grid model:=looped:1", "--grid", "'model:'", "empty part"},
        {"sweep --grid 'b:T=6:2 T=1'", "--grid key", "'T'", "twice"},
        {"sweep --grid model:L=standard:2 --L 3", "--grid key", "'L'", "give it in one place"},
        {"sweep --grid model:L=standard:0", "sweep point model:L=standard:0: --L", "'0'", "1..64"},
        {"--model tied --T 3", "--T", "'3'", "--model tied"},
        {"--model tied --mask last --mask-n 2", "--mask", "'last'", "--model tied"},
        {"--model standard --loop-func mul", "--loop-func", "'mul'", "--model standard"},
        {"--loop-func times", "--loop-func", "'times'", "add mul"},
        {"--loop-func mul --mask last --mask-n 2", "--mask", "'last'", "--loop-func mul"},
        {"--inject-every-block on", "--inject-every-block", "'on'", "--model looped"},
        {"--no-pos-emb yes", "--no-pos-emb", "'yes'", "off on"},
        {"compare --models looped:3,cnn:2", "--models", "'cnn:2'", "standard:L"},
        {"compare --models looped:0", "--models", "'looped:0'", "1..1000"},
        {"compare --models tied:4,tied:4", "--models", "'tied:4'", "twice"},
        {"compare --models ,", "--models", "','", "no model"},
        {"--models looped:3", "--models", "'looped:3'", "only to compare"},
        {"--task tabular", "--task", "'tabular'", "--data DIR"},
        {"--data d", "--data", "'d'", "without --task tabular"},
        {"--holdout a", "--holdout", "'a'", "without --task tabular"},
        {"eval --ckpt x --task tabular", "--task", "'tabular'", "only train"},
        {"--task tabular --data d --resume x", "--resume", "'x'", "--task tabular"},
        {"--ckpt x.safetensors", "--ckpt", "'x.safetensors'", "only to eval, mask-sweep"},
        {"eval", "--ckpt", "eval", "FILE"},
        {"mask-sweep --ckpt x --mask none", "--mask", "'none'", "last or first"},
        {"eval --ckpt x --steps 5", "--steps", "'5'", "only to train, compare"},
        {"eval --ckpt x --resume y", "--resume", "'y'", "only to train"},
        {"compare --b 5", "--b", "'5'", "only to train, bench"},
        {"bench --out d", "--out", "'d'", "only to train, eval, mask-sweep, compare"},
        {"bench --configs small,,paper", "--configs", "'small,,paper'", "small, report, paper"},
        {"bench --configs small,huge", "--configs", "'huge'", "small, report, paper"},
        {"--resume x --preset linear", "--preset", "'linear'", "--resume"},
    };
    char args[512], err[4096], help_path[64];
    int ok = 0, n_bad = (int)(sizeof bad / sizeof bad[0]);
    for (int i = 0; i < n_bad; i++) {
        int rc = run_demo(bad[i].args, err, sizeof err);
        int good = rc == 2 && count_lines(err) == 1 && strstr(err, bad[i].flag) && strstr(err, bad[i].value)
                && strstr(err, bad[i].allowed) && strncmp(err, "demo: ", 6) == 0;
        ok += good;
        CHECK(good, "demo %s: exit %d, stderr '%s' (want exit 2, one line with %s, %s, %s)", bad[i].args, rc, err,
              bad[i].flag, bad[i].value, bad[i].allowed);
    }
    printf("  %d bad command lines: each exit 2 with one line naming flag, value and what is allowed\n", ok);
    /* --help: exit 0, every flag listed, and every --word it lists is a flag the parser knows */
    static const char *const flags[] = {"--preset", "--task", "--model", "--d", "--n", "--positions", "--C", "--H", "--L",
        "--b", "--T", "--mask", "--mask-n", "--mask-when", "--steps", "--batch", "--lr", "--wd", "--seed", "--curriculum",
        "--cur-interval", "--ckpt-every", "--resume", "--ckpt", "--eval-prompts", "--eval-loops", "--fixed-point",
        "--baseline-prompts", "--out", "--configs", "--runs", "--rounds", "--compare", "--help",
        "--loop-func", "--inject-every-block", "--no-pos-emb", "--models"};
    snprintf(help_path, sizeof help_path, "/tmp/ltf_help_%d.txt", (int)getpid());
    snprintf(args, sizeof args, "OMP_NUM_THREADS=1 %s --help > %s 2>&1", demo_bin(), help_path);
    int st = system(args);
    size_t n = 0;
    char *help = (char *)read_whole(help_path, &n);
    remove(help_path);
    if (!help) { CHECK(0, "no --help output"); return; }
    help[n] = 0;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0 && n > 1000, "--help: exit %d, %zu bytes", WEXITSTATUS(st), n);
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        char word[40], word2[40];
        snprintf(word, sizeof word, "  %s ", flags[i]);
        snprintf(word2, sizeof word2, "  %s,", flags[i]);
        CHECK(strstr(help, word) || strstr(help, word2), "--help does not list %s", flags[i]);
    }
    int listed = 0;
    for (char *p = help; (p = strstr(p, " --")) != NULL; p += 3) {
        char word[40];
        int k = 0;
        for (const char *q = p + 1; k < 39 && (q[k] == '-' || (q[k] >= 'a' && q[k] <= 'z') || (q[k] >= 'A' && q[k] <= 'Z')); k++)
            word[k] = q[k];
        word[k] = 0;
        if (k <= 2 || strcmp(word, "--help") == 0) continue;
        listed++;
        snprintf(args, sizeof args, "%s", word);   /* no value: a known flag says "needs a value" */
        int rc = run_demo(args, err, sizeof err);
        CHECK(rc == 2 && strstr(err, "needs a value") && !strstr(err, "unknown"), "--help lists %s, demo says '%s'", word, err);
    }
    CHECK(listed >= 32, "only %d flag mentions in --help", listed);
    CHECK(strstr(help, "130") && strstr(help, "143") && strstr(help, "Exit status"), "--help does not give the exit statuses");
    free(help);
}

/* `demo train` in a child (stderr into a file); returns its pid. */
static pid_t spawn_demo(const char *out_dir, const char *err_path, const char *extra) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "exec %s --steps 100000000 --C 16 --b 4 --T 2 --batch 8 --ckpt-every 20 --out %s %s 2> %s > /dev/null",
             demo_bin(), out_dir, extra, err_path);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("OMP_NUM_THREADS", "1", 1);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* SIGINT / SIGTERM in the middle of training: the demo writes a checkpoint of the last finished
 * step, says where and at which step, and exits 130 / 143; the checkpoint loads with that step. */
static void test_demo_signals(void) {
    static const int sigs[2] = {SIGINT, SIGTERM};
    static const char *const names[2] = {"SIGINT", "SIGTERM"};
    char dir[64], ckpt[128], errp[128], err[LTF_ERR_LEN];
    make_tmpdir(dir);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
    snprintf(errp, sizeof errp, "%s/stderr.txt", dir);
    for (int s = 0; s < 2; s++) {
        remove(ckpt);
        pid_t pid = spawn_demo(dir, errp, "");
        int waited = 0;
        while (!file_exists(ckpt) && waited < 30000) { usleep(5000); waited += 5; }   /* the first checkpoint */
        CHECK(file_exists(ckpt), "%s: no checkpoint after 30 s", names[s]);
        kill(pid, sigs[s]);
        int status = 0;
        waitpid(pid, &status, 0);
        size_t n = 0;
        char *text = (char *)read_whole(errp, &n);
        if (text) text[n] = 0;
        const char *at = text ? strstr(text, "stopped after step ") : NULL;
        long said = at ? atol(at + strlen("stopped after step ")) : -1;
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 128 + sigs[s], "%s: exit status %d (signalled %d), want %d",
              names[s], WIFEXITED(status) ? WEXITSTATUS(status) : -1, WIFSIGNALED(status) ? WTERMSIG(status) : 0, 128 + sigs[s]);
        CHECK(text && strstr(text, names[s]) && strstr(text, ckpt) && said > 0, "%s: message '%s'", names[s], text ? text : "");
        ltf_model m;
        ltf_train_state st;
        if (ltf_checkpoint_load(&m, &st, ckpt, NULL, err) != 0) { CHECK(0, "%s: checkpoint does not load: %s", names[s], err); }
        else {
            CHECK(st.step > 0 && st.step == said && m.adam_t == st.step, "%s: checkpoint at step %ld (adam_t %ld), message says %ld",
                  names[s], st.step, m.adam_t, said);
            printf("  %s: exit %d, message and checkpoint both say step %ld\n", names[s],
                   WIFEXITED(status) ? WEXITSTATUS(status) : -1, st.step);
            ltf_model_free(&m);
        }
        free(text);
    }
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", ckpt);
    CHECK(!file_exists(tmp), "a .tmp file was left behind");
    remove(ckpt); remove(errp); rmdir(dir);
}

/* demo sweep: a 2 x 2 grid with 2 seeds on 2 workers, once straight through; once stopped by
 * SIGTERM as soon as a run has a checkpoint, then run again (it resumes): sweep.csv and
 * sweep_summary.csv byte for byte the same. The same sweep as GNU parallel jobs (--emit
 * parallel; where parallel is installed) gathers the same files; the emitted Slurm script is
 * bash with the job array and --point of each task, and, submitted with sbatch to a one-node
 * Slurm that tests/slurm_single_node.sh starts (where slurm-wlm and munge are installed and we
 * are root), gathers the same files too. */
static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static int same_text_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    unsigned char *x = read_whole(a, &na), *y = read_whole(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x); free(y);
    return same;
}
static void test_demo_sweep(void) {
    char dir[64], cmd[4096], base[1024], p1[256], p2[256];
    make_tmpdir(dir);
    snprintf(base, sizeof base, "OMP_NUM_THREADS=1 %s sweep --grid 'b=3,4 T=1,2' --seeds 2 --jobs 2 --C 8 --batch 8 --n 5 "
             "--steps 600 --ckpt-every 10 --eval-prompts 16 --fixed-point 6 --baseline-prompts 4", demo_bin());
    snprintf(cmd, sizeof cmd, "%s --out %s/full > %s/full.log 2>&1", base, dir, dir);
    double t0 = now_seconds();
    CHECK(system(cmd) == 0, "uninterrupted sweep failed: see %s/full.log", dir);
    printf("  2 x 2 grid x 2 seeds, 600 steps each, 2 workers: %.1f s\n", now_seconds() - t0);
    /* stopped once the first run has a checkpoint */
    snprintf(cmd, sizeof cmd, "exec env %s --out %s/cut > %s/cut.log 2>&1", base, dir, dir);   /* the pid is the sweep's */
    snprintf(p1, sizeof p1, "%s/cut/b=3_T=1/seed=42/checkpoint.safetensors", dir);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) { execl("/bin/sh", "sh", "-c", cmd, (char *)NULL); _exit(127); }
    int waited = 0, status = 0;
    while (!file_exists(p1) && waited < 60000) { usleep(2000); waited += 2; }
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 143, "stopped sweep: exit %d, want 143 (see %s/cut.log)",
          WIFEXITED(status) ? WEXITSTATUS(status) : -1, dir);
    snprintf(p2, sizeof p2, "%s/cut/sweep.csv", dir);
    CHECK(!file_exists(p2), "a stopped sweep wrote sweep.csv");
    snprintf(cmd, sizeof cmd, "%s --out %s/cut >> %s/cut.log 2>&1", base, dir, dir);
    CHECK(system(cmd) == 0, "resumed sweep failed: see %s/cut.log", dir);
    snprintf(p1, sizeof p1, "%s/cut/b=3_T=1/seed=42/log.txt", dir);
    size_t nlog = 0;
    char *log = (char *)read_whole(p1, &nlog);
    if (log) log[nlog] = 0;
    CHECK(log && strstr(log, "demo: resuming "), "the stopped run did not resume from its checkpoint (%s)", p1);
    free(log);
    const char *files[2] = {"sweep.csv", "sweep_summary.csv"};
    for (int i = 0; i < 2; i++) {
        snprintf(p1, sizeof p1, "%s/full/%s", dir, files[i]);
        snprintf(p2, sizeof p2, "%s/cut/%s", dir, files[i]);
        CHECK(same_text_file(p1, p2), "stopped and resumed sweep: %s differs from the uninterrupted one", files[i]);
    }
    printf("  stopped by SIGTERM (exit 143) and run again: sweep.csv and sweep_summary.csv byte-identical\n");
    if (system("command -v parallel > /dev/null 2>&1") == 0) {
        snprintf(cmd, sizeof cmd, "%s --out %s/par --emit parallel > /dev/null 2>&1 && parallel -j 2 < %s/par/jobs.txt > /dev/null 2>&1 "
                 "&& %s --out %s/par > /dev/null 2>&1", base, dir, dir, base, dir);
        CHECK(system(cmd) == 0, "sweep through GNU parallel failed");
        for (int i = 0; i < 2; i++) {
            snprintf(p1, sizeof p1, "%s/full/%s", dir, files[i]);
            snprintf(p2, sizeof p2, "%s/par/%s", dir, files[i]);
            CHECK(same_text_file(p1, p2), "sweep through GNU parallel: %s differs", files[i]);
        }
        printf("  --emit parallel, parallel -j 2, then gathered: the same sweep.csv and sweep_summary.csv\n");
    } else printf("  GNU parallel: skipped (not installed: apt-get install parallel)\n");
    snprintf(cmd, sizeof cmd, "%s --out %s/slurm --emit slurm > /dev/null 2>&1 && bash -n %s/slurm/sweep.slurm && "
             "grep -q -- '--array=0-7%%2' %s/slurm/sweep.slurm && grep -q 'point \"$SLURM_ARRAY_TASK_ID\"' %s/slurm/sweep.slurm && "
             "grep -q 'OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}' %s/slurm/sweep.slurm", base, dir, dir, dir, dir, dir);
    CHECK(system(cmd) == 0, "emitted Slurm script: missing, not bash, or without the array and --point");
    printf("  --emit slurm: a bash script with the 8-task array (2 at a time), each task one --point\n");
    /* the script as a user submits it, to a one-node Slurm started here and stopped after */
    snprintf(cmd, sizeof cmd, "tests/slurm_single_node.sh start %s/cluster > %s/cluster.log 2>&1", dir, dir);
    int up = system(cmd);
    if (WIFEXITED(up) && WEXITSTATUS(up) == 0) {
        snprintf(cmd, sizeof cmd, "SLURM_CONF=%s/cluster/slurm.conf timeout 300 sbatch --wait %s/slurm/sweep.slurm > %s/sbatch.log 2>&1 "
                 "&& %s --out %s/slurm > /dev/null 2>&1", dir, dir, dir, base, dir);
        int rc = system(cmd);
        snprintf(p1, sizeof p1, "tests/slurm_single_node.sh stop %s/cluster", dir);
        if (system(p1) != 0) printf("  (stopping the test's Slurm failed)\n");
        CHECK(rc == 0, "sbatch --wait of the emitted script, then the gathering sweep, failed: see %s/sbatch.log, %s/cluster/", dir, dir);
        for (int i = 0; rc == 0 && i < 2; i++) {
            snprintf(p1, sizeof p1, "%s/full/%s", dir, files[i]);
            snprintf(p2, sizeof p2, "%s/slurm/%s", dir, files[i]);
            CHECK(same_text_file(p1, p2), "sweep through Slurm: %s differs", files[i]);
        }
        if (rc == 0) printf("  sbatch --wait on a one-node Slurm (tests/slurm_single_node.sh), then gathered: the same sweep.csv "
                            "and sweep_summary.csv\n");
        else { snprintf(cmd, sizeof cmd, "cat %s/sbatch.log %s/cluster.log; tail -n 5 %s/cluster/*.log", dir, dir, dir); if (system(cmd)) {} }
    } else {
        char why[512] = "";
        snprintf(p1, sizeof p1, "%s/cluster.log", dir);
        FILE *f = fopen(p1, "r");
        if (f) { why[fread(why, 1, sizeof why - 1, f)] = 0; fclose(f); }
        why[strcspn(why, "\n")] = 0;
        printf("  Slurm: skipped the real submission (%s)\n", why[0] ? why : "tests/slurm_single_node.sh failed");
    }
    /* the curves gathered over seeds: a band row per grid point and step / k */
    snprintf(p1, sizeof p1, "%s/full/sweep_loss.csv", dir);
    snprintf(p2, sizeof p2, "%s/full/sweep_eval.csv", dir);
    size_t nl = 0, ne = 0;
    char *lc = (char *)read_whole(p1, &nl), *ec = (char *)read_whole(p2, &ne);
    if (lc) lc[nl] = 0;
    if (ec) ec[ne] = 0;
    CHECK(lc && strstr(lc, "b,T,step,loss_mean,loss_lo90,loss_hi90,seeds\n") && strstr(lc, "\n4,2,") && count_lines(lc) >= 4 * 100,
          "sweep_loss.csv: missing, or not 100 windows per grid point");
    CHECK(ec && strstr(ec, "b,T,k,error_mean,error_lo90,error_hi90,seeds\n") && strstr(ec, "\n3,1,0,") && strstr(ec, ",2\n"),
          "sweep_eval.csv: missing, or without the grid points' error by k over 2 seeds");
    free(lc); free(ec);
    snprintf(p1, sizeof p1, "%s/full/sweep_loop.csv", dir);
    lc = (char *)read_whole(p1, &nl);
    if (lc) lc[nl] = 0;
    CHECK(lc && strstr(lc, "b,T,iteration,error_mean,error_lo90,error_hi90,seeds\n") && strstr(lc, "\n4,2,6,"),
          "sweep_loop.csv: missing, or without the error by iteration up to --fixed-point");
    free(lc);
    /* the seeds of one grid point measured together: probe and mask-sweep with --ckpt A,B */
    snprintf(cmd, sizeof cmd, "A=%s/full/b=4_T=2/seed=42/checkpoint.safetensors; B=%s/full/b=4_T=2/seed=43/checkpoint.safetensors; "
             "OMP_NUM_THREADS=1 %s probe --ckpt $A,$B --eval-prompts 16 --out %s/seeds > /dev/null 2>&1 && "
             "OMP_NUM_THREADS=1 %s mask-sweep --ckpt $A,$B --eval-prompts 16 --out %s/seeds > /dev/null 2>&1",
             dir, dir, demo_bin(), dir, demo_bin(), dir);
    CHECK(system(cmd) == 0, "probe / mask-sweep --ckpt A,B failed");
    const char *agg[4][2] = {{"probe.csv", "iteration,w_ols,w_ols_lo90,w_ols_hi90,grad,"}, {"probe_runs.csv", "seed=43/checkpoint.safetensors,4,"},
                             {"mask_sweep.csv", "kept_pairs,error_last_k,error_last_k_lo90,"}, {"mask_sweep_runs.csv", "seed=43/checkpoint.safetensors,1,"}};
    for (int i = 0; i < 4; i++) {
        snprintf(p1, sizeof p1, "%s/seeds/%s", dir, agg[i][0]);
        char *t = (char *)read_whole(p1, &nl);
        if (t) t[nl] = 0;
        CHECK(t && strstr(t, agg[i][1]), "%s: missing or without '%s'", p1, agg[i][1]);
        free(t);
    }
    printf("  probe and mask-sweep over two seeds' checkpoints (--ckpt A,B): mean and band, and each one's rows\n");
    /* linked keys: one key varies two flags together */
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s sweep --grid 'model:L=looped:1,standard:2' --C 8 --batch 8 --n 5 --steps 3 "
             "--eval-prompts 8 --fixed-point 0 --baseline-prompts 4 --out %s/link > /dev/null 2>&1", demo_bin(), dir);
    CHECK(system(cmd) == 0, "sweep with a linked key failed");
    const char *want[2] = {"\"kind\": \"looped\"", "\"kind\": \"standard\""}, *layers[2] = {"\"n_layer\": 1,", "\"n_layer\": 2,"};
    const char *folders[2] = {"model:L=looped:1", "model:L=standard:2"};
    for (int i = 0; i < 2; i++) {
        snprintf(p1, sizeof p1, "%s/link/%s/seed=42/run.json", dir, folders[i]);
        char *js = (char *)read_whole(p1, &nl);
        if (js) js[nl] = 0;
        CHECK(js && strstr(js, want[i]) && strstr(js, layers[i]), "linked key: %s does not hold the run of %s", p1, folders[i]);
        free(js);
    }
    printf("  --grid 'model:L=looped:1,standard:2': each value sets both flags of its run\n");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("  (could not remove %s)\n", dir);
}

/* Training faults in the demo. A NaN/Inf loss stops training with a message naming the step and
 * the checkpoint that stays; a full disk (the .tmp file is /dev/full) stops it the same way;
 * both leave the checkpoint on disk byte for byte as it was. An --out under a regular file is
 * refused. */
static void test_demo_faults(void) {
    char dir[64], ckpt[128], bad[128], tmp[160], args[600], err[4096], e[LTF_ERR_LEN], want[400];
    make_tmpdir(dir);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/huge.safetensors", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", ckpt);
    const char *small = "--C 16 --b 4 --T 2 --batch 8 --eval-prompts 16 --fixed-point 0 --baseline-prompts 8 --ckpt-every 5";
    snprintf(args, sizeof args, "--steps 10 %s --out %s", small, dir);
    int rc = run_demo(args, err, sizeof err);
    CHECK(rc == 0, "demo %s: exit %d: %s", args, rc, err);
    blob before;
    before.p = read_whole(ckpt, &before.len);
    ltf_model m;
    ltf_train_state st;
    if (!before.p || ltf_checkpoint_load(&m, &st, ckpt, NULL, e) != 0) { CHECK(0, "no checkpoint: %s", e); free(before.p); return; }
    /* finite weights whose prediction overflows: the loss of step 11 is Inf */
    ltf_tensor *ro = ltf_model_find(&m, "_read_out.weight");
    for (size_t i = 0; i < ro->size; i++) m.params[ro->offset + i] = (i % 2 ? -3e38f : 3e38f);
    CHECK(ltf_checkpoint_save(&m, &st, bad, e) == 0, "save: %s", e);
    ltf_model_free(&m);
    snprintf(args, sizeof args, "--steps 20 --ckpt-every 5 --eval-prompts 16 --fixed-point 0 --resume %s --out %s --force on", bad, dir);
    rc = run_demo(args, err, sizeof err);
    snprintf(want, sizeof want, "the last good checkpoint stays: %s (step 10)", bad);
    CHECK(rc == 1 && strstr(err, "training stopped at step 11") && strstr(err, "loss is") && strstr(err, want),
          "NaN/Inf stop: exit %d, '%s'", rc, err);
    blob now;
    now.p = read_whole(ckpt, &now.len);
    CHECK(now.p && now.len == before.len && memcmp(now.p, before.p, now.len) == 0, "the NaN stop touched %s", ckpt);
    free(now.p);
    /* full disk while resuming from the checkpoint itself: it stays, byte for byte */
    if (access("/dev/full", W_OK) == 0 && symlink("/dev/full", tmp) == 0) {
        snprintf(args, sizeof args, "--steps 20 --ckpt-every 5 --eval-prompts 16 --fixed-point 0 --resume %s --out %s", ckpt, dir);
        rc = run_demo(args, err, sizeof err);
        snprintf(want, sizeof want, "the last good checkpoint stays: %s (step 10)", ckpt);
        CHECK(rc == 1 && strstr(err, "training stopped at step 15: checkpoint not saved") && strstr(err, "No space left")
              && strstr(err, want), "full disk: exit %d, '%s'", rc, err);
        now.p = read_whole(ckpt, &now.len);
        CHECK(now.p && now.len == before.len && memcmp(now.p, before.p, now.len) == 0, "a full disk damaged %s", ckpt);
        free(now.p);
        printf("  NaN/Inf at step 11 and a full disk at step 15: stopped, checkpoint of step 10 intact\n");
    } else printf("  skipped the full-disk case: no writable /dev/full\n");
    remove(tmp);
    /* an output folder that cannot exist: its parent is a regular file */
    snprintf(args, sizeof args, "--steps 1 %s --out %s/no", small, ckpt);
    rc = run_demo(args, err, sizeof err);
    CHECK(rc == 1 && strstr(err, "cannot create output folder") && count_lines(err) == 1, "--out under a file: exit %d, '%s'", rc, err);
    free(before.p);
    const char *outputs[] = {"eval.csv", "eval.svg", "train_loss.csv", "train_loss.svg", "loop_error.csv", "loop_error.svg"};
    for (size_t i = 0; i < sizeof outputs / sizeof outputs[0]; i++) { snprintf(args, sizeof args, "%s/%s", dir, outputs[i]); remove(args); }
    remove(ckpt); remove(bad); rmdir(dir);
}

/* The records of a run: train_loss.csv grows as training goes and a resumed run continues it,
 * byte-identical to an uninterrupted run's even when the stopped run had written rows past its
 * last checkpoint; --resume without --out writes next to its checkpoint; --keep-every keeps
 * snapshots; a folder holding another run's checkpoint is refused (exit 2) and left as it was. */
/* The variants from the command line (docs/MATH.md §12): a tied model trains, records its kind
 * and resumes bit-identically; compare --models trains looped, tied and standard-every side by side. */
static void test_demo_variants(void) {
    char dir[64], args[700], err[1024], path[200];
    make_tmpdir(dir);
    const char *small = "--C 8 --H 2 --batch 8 --eval-prompts 16 --fixed-point 0 --baseline-prompts 8";
    snprintf(args, sizeof args, "--model tied --b 3 --no-pos-emb on --steps 6 %s --out %s/tied", small, dir);
    CHECK(run_demo(args, err, sizeof err) == 0, "demo %s: %s", args, err);
    snprintf(path, sizeof path, "%s/tied/run.json", dir);
    size_t n = 0;
    char *run = (char *)read_whole(path, &n);
    if (run) run[n] = 0;
    CHECK(run && strstr(run, "\"kind\": \"tied\"") && strstr(run, "\"loop_window\": 3") && strstr(run, "\"no_pos_emb\": true"),
          "run.json of a tied run: %s", run ? run : "(none)");
    free(run);
    snprintf(args, sizeof args, "--resume %s/tied/checkpoint.safetensors --steps 8 --loop-func mul %s", dir, small);
    CHECK(run_demo(args, err, sizeof err) == 2 && strstr(err, "--loop-func") && strstr(err, "add"),
          "resume of a tied run with --loop-func mul: %s", err);
    snprintf(args, sizeof args, "--resume %s/tied/checkpoint.safetensors --steps 8 %s", dir, small);
    CHECK(run_demo(args, err, sizeof err) == 0, "demo %s: %s", args, err);
    /* --precision bf16 on the CPU: trains, and differs from the fp32 run of the same seed */
    for (int p = 0; p < 2; p++) {
        snprintf(args, sizeof args, "--precision %s --steps 6 %s --out %s/%s", p ? "bf16" : "fp32", small, dir, p ? "bf16" : "fp32");
        CHECK(run_demo(args, err, sizeof err) == 0, "demo %s: %s", args, err);
    }
    snprintf(args, sizeof args, "cmp -s %s/fp32/checkpoint.safetensors %s/bf16/checkpoint.safetensors", dir, dir);
    CHECK(system(args) != 0, "--precision bf16: the same checkpoint as fp32");
    snprintf(args, sizeof args, "compare --models looped:2,tied:2,standard-every:2 --loop-func mul --steps 4 --T 2 "
             "--C 8 --H 2 --batch 8 --eval-prompts 16 --fixed-point 3 --out %s/cmp", dir);
    CHECK(run_demo(args, err, sizeof err) == 0, "demo %s: %s", args, err);
    const char *files[3] = {"looped_b2.safetensors", "tied_b2.safetensors", "standard_every_L2.safetensors"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/cmp/%s", dir, files[i]);
        CHECK(file_exists(path), "compare --models: no %s", path);
    }
    snprintf(path, sizeof path, "%s/cmp/eval.csv", dir);
    char *csv = (char *)read_whole(path, &n);
    if (csv) csv[n] = 0;
    CHECK(csv && strstr(csv, "looped b=2") && strstr(csv, "tied b=2") && strstr(csv, "standard-every L=2"),
          "compare --models: eval.csv names its models");
    free(csv);
    snprintf(args, sizeof args, "rm -rf %s", dir);
    CHECK(system(args) == 0, "rm -rf %s", dir);
}

/* --task tabular end to end on three small datasets of a linear rule: trains, writes the error
 * rate of the model and the baselines by k, a checkpoint of a 2-class model; bad folders and
 * names are refused with the name. */
static void test_demo_tabular(void) {
    char dir[64], path[200], args[700], err[2048];
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/data", dir);
    mkdir(path, 0755);
    for (int f = 0; f < 3; f++) {
        snprintf(path, sizeof path, "%s/data/set%d.csv", dir, f);
        FILE *fp = fopen(path, "w");
        fprintf(fp, "a,b,c,label\n");
        for (int r = 0; r < 200; r++) {
            double a = ltf_rng_normal(&g_rng), b = ltf_rng_normal(&g_rng), c = ltf_rng_normal(&g_rng);
            fprintf(fp, "%.6f,%.6f,%.6f,%d\n", a, b, c, a + (f + 1) * 0.5 * b > 0 ? 5 : 9);
        }
        fclose(fp);
    }
    const char *small = "--n 9 --C 16 --H 2 --b 3 --T 2 --batch 8 --steps 12 --eval-prompts 16";
    snprintf(args, sizeof args, "--task tabular --data %s/data --holdout set2 %s --out %s/run", dir, small, dir);
    CHECK(run_demo(args, err, sizeof err) == 0, "demo %s: %s", args, err);
    snprintf(path, sizeof path, "%s/run/eval.csv", dir);
    size_t n = 0;
    char *csv = (char *)read_whole(path, &n);
    if (csv) csv[n] = 0;
    CHECK(csv && strstr(csv, "| tabular,") && strstr(csv, "\nk,model,") && strstr(csv, "logistic_regression") && strstr(csv, "3nn") &&
          strstr(csv, "decision_tree") && strstr(csv, "majority") && count_lines(csv) == 11, "tabular eval.csv: %.300s", csv ? csv : "(none)");
    free(csv);
    ltf_model m;
    char lerr[LTF_ERR_LEN];
    snprintf(path, sizeof path, "%s/run/checkpoint.safetensors", dir);
    if (ltf_checkpoint_load(&m, NULL, path, NULL, lerr) == 0) {
        CHECK(m.cfg.n_classes == 2 && m.cfg.n_dims == 3, "tabular checkpoint: n_classes %d, d %d", m.cfg.n_classes, m.cfg.n_dims);
        ltf_model_free(&m);
    } else CHECK(0, "tabular checkpoint: %s", lerr);
    static const struct { const char *extra, *want; } bad[] = {
        {"--holdout nosuch", "'nosuch' is none of --data's datasets: set0 set1 set2"},
        {"--holdout set0,set1,set2", "no dataset to train on"},
        {"--holdout set1 --n 30", "set1 has 10 test rows"},
        {"--d 2", "up to 3 features"},
    };
    for (int i = 0; i < 4; i++) {
        snprintf(args, sizeof args, "--task tabular --data %s/data %s --steps 1 --out %s/bad%d", dir, bad[i].extra, dir, i);
        int rc = run_demo(args, err, sizeof err);
        CHECK(rc == 2 && strstr(err, bad[i].want), "demo %s: exit %d, '%s' (want 2, '%s')", args, rc, err, bad[i].want);
    }
    snprintf(args, sizeof args, "--task tabular --data %s/nowhere --out %s/bad9", dir, dir);
    CHECK(run_demo(args, err, sizeof err) == 2 && strstr(err, "nowhere"), "missing --data folder: '%s'", err);
    snprintf(args, sizeof args, "rm -rf %s", dir);
    CHECK(system(args) == 0, "rm -rf %s", dir);
}

static void test_demo_records(void) {
    char dir[64], args[640], err[1024], a[160], b[160];
    make_tmpdir(dir);
    const char *small = "--C 16 --b 4 --T 2 --batch 8 --eval-prompts 16 --fixed-point 0 --baseline-prompts 8 --cur-interval 20";
    snprintf(args, sizeof args, "--steps 40 %s --out %s/full", small, dir);
    CHECK(run_demo(args, err, sizeof err) == 0, "demo %s: %s", args, err);
    snprintf(args, sizeof args, "--steps 20 %s --keep-every 10 --out %s/half", small, dir);
    CHECK(run_demo(args, err, sizeof err) == 0, "demo %s: %s", args, err);
    snprintf(a, sizeof a, "%s/half/train_loss.csv", dir);
    FILE *f = fopen(a, "a");   /* a run killed after step 23: rows past its checkpoint (step 20) */
    if (f) { fputs("21,9.9,4,11,5\n22,9.9,4,11,5\n23,9.9,4,11,5\n", f); fclose(f); }
    snprintf(args, sizeof args, "--steps 40 --resume %s/half/checkpoint.safetensors --eval-prompts 16 --fixed-point 0 --baseline-prompts 8", dir);
    CHECK(run_demo(args, err, sizeof err) == 0, "demo %s: %s", args, err);   /* no --out: next to the checkpoint */
    size_t la = 0, lb = 0;
    snprintf(b, sizeof b, "%s/full/train_loss.csv", dir);
    unsigned char *ta = read_whole(a, &la), *tb = read_whole(b, &lb);
    if (tb) tb[lb] = 0;   /* read_whole leaves room for the terminator */
    CHECK(ta && tb && la == lb && memcmp(ta, tb, la) == 0, "resumed train_loss.csv (%zu bytes) differs from the uninterrupted one (%zu)", la, lb);
    CHECK(tb && strstr((char *)tb, "step,loss,b,n,d\n1,") && strstr((char *)tb, "\n40,"), "train_loss.csv: header and rows 1..40");
    free(ta); free(tb);
    snprintf(a, sizeof a, "%s/half/checkpoint_step10.safetensors", dir);
    snprintf(b, sizeof b, "%s/half/checkpoint_step20.safetensors", dir);
    CHECK(file_exists(a) && file_exists(b), "--keep-every 10: snapshots of steps 10 and 20");
    /* a fresh run into the folder of another run: refused, nothing changed */
    snprintf(a, sizeof a, "%s/full/checkpoint.safetensors", dir);
    size_t l0 = 0, l1 = 0;
    unsigned char *c0 = read_whole(a, &l0);
    snprintf(b, sizeof b, "%s/full/train_loss.csv", dir);
    unsigned char *s0 = read_whole(b, &lb);
    snprintf(args, sizeof args, "--steps 5 %s --out %s/full", small, dir);
    int rc = run_demo(args, err, sizeof err);
    CHECK(rc == 2 && strstr(err, "holds another run's checkpoint") && strstr(err, "--force on") && count_lines(err) == 1,
          "a second run into a run's folder: exit %d, '%s'", rc, err);
    snprintf(args, sizeof args, "--steps 40 --resume %s/half/checkpoint.safetensors --out %s/full", dir, dir);
    rc = run_demo(args, err, sizeof err);
    CHECK(rc == 2 && strstr(err, "holds another run's checkpoint"), "--resume of another run into a run's folder: exit %d, '%s'", rc, err);
    unsigned char *c1 = read_whole(a, &l1), *s1 = read_whole(b, &la);
    CHECK(c0 && c1 && l0 == l1 && memcmp(c0, c1, l0) == 0 && s0 && s1 && la == lb && memcmp(s0, s1, la) == 0,
          "a refused run changed the folder");
    printf("  resumed train_loss.csv equals the uninterrupted one (%zu bytes); a run into another run's folder: exit 2, unchanged\n", lb);
    /* run.json of each run: valid against docs/run.schema.json (checked by Python, where there is one) */
    snprintf(args, sizeof args, "python3 -c 'import json' 2>/dev/null");
    if (system(args) == 0) {
        for (int i = 0; i < 2; i++) {
            snprintf(args, sizeof args, "python3 reference/check_run_json.py %s/%s/run.json", dir, i ? "half" : "full");
            CHECK(system(args) == 0, "%s: run.json does not match docs/run.schema.json", i ? "half" : "full");
            snprintf(a, sizeof a, "%s/%s/run.json", dir, i ? "half" : "full");
            unsigned char *j = read_whole(a, &la);
            if (j) j[la] = 0;
            CHECK(j && strstr((char *)j, "\"status\": \"done\"") && strstr((char *)j, "\"last_step\": 40"),
                  "%s/run.json: status done, last step 40", i ? "half" : "full");
            free(j);
        }
        printf("  run.json of both runs matches docs/run.schema.json\n");
    } else printf("  skipped the run.json schema check: no python3\n");
    free(c0); free(c1); free(s0); free(s1);
    snprintf(args, sizeof args, "rm -rf %s", dir);
    if (system(args) != 0) printf("  (could not remove %s)\n", dir);
}

/* The report page OUT/index.html: every figure it shows exists, and it renders in headless
 * Chromium (where one is installed) without a page error; the screenshot is kept for a look. */
static void test_demo_report(void) {
    char dir[64], args[512], err[1024], path[160];
    make_tmpdir(dir);
    snprintf(args, sizeof args, "--steps 30 --ckpt-every 10 --C 16 --b 4 --T 2 --batch 8 --eval-prompts 32 --fixed-point 12 "
             "--baseline-prompts 8 --out %s", dir);
    CHECK(run_demo(args, err, sizeof err) == 0, "demo %s: %s", args, err);
    snprintf(path, sizeof path, "%s/index.html", dir);
    size_t n = 0;
    char *page = (char *)read_whole(path, &n);
    if (page) page[n] = 0;
    int imgs = 0, missing = 0;
    for (const char *p = page ? strstr(page, "<img src=\"") : NULL; p; p = strstr(p + 1, "<img src=\"")) {
        char name[128], file[200];
        if (sscanf(p + 10, "%127[^\"]", name) != 1) continue;
        snprintf(file, sizeof file, "%s/%s", dir, name);
        imgs++;
        missing += !file_exists(file);
    }
    CHECK(page && imgs == 3 && missing == 0 && strstr(page, "status: <b>done</b>") && !strstr(page, "http-equiv=\"refresh\""),
          "index.html: %d figures (want 3: loss, eval, loop error), %d missing, status done, no reload", imgs, missing);
    free(page);
    const char *browsers[] = {"chromium", "chromium-browser", "google-chrome"};
    const char *found = NULL;
    for (int i = 0; i < 3 && !found; i++) {
        snprintf(args, sizeof args, "command -v %s > /dev/null 2>&1", browsers[i]);
        if (system(args) == 0) found = browsers[i];
    }
    if (!found) { printf("  skipped the browser check: no chromium (apt-get install chromium)\n"); return; }
    snprintf(args, sizeof args, "cd %s && timeout 120 %s --headless --no-sandbox --disable-gpu --hide-scrollbars "
             "--window-size=1150,2600 --enable-logging=stderr --v=0 --screenshot=%s/page.png file://%s/index.html "
             "> %s/browser.log 2>&1", dir, found, dir, dir, dir);
    int rc = system(args);
    snprintf(path, sizeof path, "%s/browser.log", dir);
    char *log = (char *)read_whole(path, &n);
    if (log) log[n] = 0;
    int bad = log && (strstr(log, "Uncaught") || strstr(log, "ERR_FILE_NOT_FOUND") || strstr(log, "Failed to load resource")
                      || strstr(log, "Not allowed to load local resource"));
    snprintf(path, sizeof path, "%s/page.png", dir);
    size_t png = 0;
    unsigned char *shot = read_whole(path, &png);
    CHECK(rc == 0 && !bad && shot && png > 20000, "%s renders index.html: exit %d, page errors %d, screenshot %zu bytes",
          found, rc, bad, png);
    printf("  %s rendered index.html: %d figures, screenshot %zu bytes (%s/page.png), no page errors\n", found, imgs, png, dir);
    free(log); free(shot);
}

/* The library's side of a failing disk: a full disk (path.tmp is /dev/full) and a path under a
 * regular file fail with the reason and leave the old file whole; no .tmp stays behind. */
static void test_write_faults(void) {
    char dir[64], path[128], tmp[160], under[160], err[LTF_ERR_LEN];
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/c.safetensors", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(under, sizeof under, "%s/x", path);
    ltf_config c = small_config(LTF_LOOPED, 1, 3, 2);
    ltf_model m;
    ltf_model_create(&m, &c, 1, err);
    CHECK(ltf_checkpoint_save(&m, NULL, path, err) == 0, "save: %s", err);
    blob before, now;
    before.p = read_whole(path, &before.len);
    m.params[0] += 1.0f;
    if (access("/dev/full", W_OK) == 0 && symlink("/dev/full", tmp) == 0) {
        int rc = ltf_checkpoint_save(&m, NULL, path, err);
        CHECK(rc == -1 && strstr(err, "No space left") && strstr(err, path), "full disk: rc %d '%s'", rc, err);
        now.p = read_whole(path, &now.len);
        CHECK(now.len == before.len && memcmp(now.p, before.p, now.len) == 0, "a full disk damaged the old checkpoint");
        CHECK(!file_exists(tmp), "the .tmp link stayed");
        free(now.p);
    } else printf("  skipped the full-disk case: no writable /dev/full\n");
    int rc = ltf_write_atomic(under, "x", 1, err);
    CHECK(rc == -1 && strstr(err, "Not a directory"), "path under a regular file: rc %d '%s'", rc, err);
    now.p = read_whole(path, &now.len);
    CHECK(now.len == before.len && memcmp(now.p, before.p, now.len) == 0, "the old checkpoint changed");
    free(now.p); free(before.p);
    ltf_model_free(&m);
    remove(path); rmdir(dir);
}

/* A step whose loss overflows: ltf_train_next fails with a message, and model and train state
 * are as before, so the caller's last checkpoint is still the truth. */
static void test_train_next_fault(void) {
    ltf_config c = small_config(LTF_LOOPED, 1, 3, 2);
    ltf_model m;
    char err[LTF_ERR_LEN];
    ltf_model_create(&m, &c, 1, err);
    ltf_train_state st = small_state(LTF_TASK_LINEAR, 1);
    train_steps(&m, &st, 2);
    ltf_tensor *ro = ltf_model_find(&m, "_read_out.weight");
    for (size_t i = 0; i < ro->size; i++) m.params[ro->offset + i] = 3e38f;
    float *p0 = (float *)malloc(sizeof(float) * m.n_params), *v0 = (float *)malloc(sizeof(float) * m.n_params);
    memcpy(p0, m.params, sizeof(float) * m.n_params);
    memcpy(v0, m.adam_v, sizeof(float) * m.n_params);
    long step = st.step, t = m.adam_t;
    float xs[4 * 5 * 3], ys[4 * 5], loss;
    int rc = ltf_train_next(&m, &st, xs, ys, &loss, NULL);
    CHECK(rc == -1 && (strstr(m.err, "Inf") || strstr(m.err, "NaN") || strstr(m.err, "not finite")),
          "overflowing step: rc %d '%s'", rc, m.err);
    CHECK(st.step == step && m.adam_t == t && same_floats(p0, m.params, m.n_params) && same_floats(v0, m.adam_v, m.n_params),
          "a failed step changed the model or the step count (%ld -> %ld)", step, st.step);
    free(p0); free(v0);
    ltf_model_free(&m);
}

/* ------------------------------------------------------------------ GPU (looped_tf_cuda.cu) */

#ifdef LOOPED_TF_CUDA
/* Kernels against the CPU ops on the same inputs, copied over: norm-wise relative error
 * ||gpu - cpu|| / ||cpu|| at most 1e-5 (float32 throughout, no TF32; the measured values are
 * ~1e-7, from summation order and fused multiply-adds). */
#define GPU_TOL 1e-5

static int gpu_ready(void) {   /* prints why the test is skipped when there is no usable GPU */
    char why[LTF_ERR_LEN];
    if (ltf_gpu_available(why) == 0) return 1;
    if (getenv("LTF_REQUIRE_GPU")) CHECK(0, "LTF_REQUIRE_GPU is set but there is no usable GPU: %s", why);
    else printf("  skipped: %s\n", why);
    return 0;
}

/* A test buffer on both sides: h on the host (what the CPU op gets), d its device copy (what
 * the GPU op gets). */
typedef struct { float *h, *d; size_t n; } twin;

static float *gpu_copy(const float *h, size_t n) {   /* a device copy of h [n]; h == NULL: zeros */
    float *d = NULL;
    char err[LTF_ERR_LEN];
    if (ltf__gpu_alloc(&d, n, err, "a test buffer") != 0) { CHECK(0, "%s", err); return NULL; }
    if (h && ltf__gpu_put(d, h, n * sizeof(float), err) != 0) CHECK(0, "%s", err);
    return d;
}
static twin twin_rand(size_t n, float scale) {
    twin t;
    t.n = n; t.h = rand_buf(n, scale); t.d = gpu_copy(t.h, n);
    return t;
}
static twin twin_zero(size_t n) {
    twin t;
    t.n = n; t.h = zeros(n); t.d = gpu_copy(NULL, n);
    return t;
}
static void twin_free(twin *t) { free(t->h); ltf__gpu_release(t->d); t->h = t->d = NULL; }

/* ||dev - cpu|| / ||cpu|| after the GPU finished its work (checked) */
static double gpu_err(const char *what, const float *dev, const float *cpu, size_t n) {
    float *h = (float *)malloc(n * sizeof(float) + 1);
    char err[LTF_ERR_LEN];
    double e = 1.0;
    if (ltf__gpu_get(h, dev, n * sizeof(float), err, what) != 0) CHECK(0, "%s", err);
    else e = rel_err(h, cpu, n);
    CHECK(e <= GPU_TOL, "%s: GPU vs CPU rel err %.2e > %.0e", what, e, GPU_TOL);
    free(h);
    return e;
}
static double twin_err(const char *what, const twin *t) { return gpu_err(what, t->d, t->h, t->n); }

static void gpu_report(const char *what, double e) { printf("  %-50s GPU vs CPU rel err %.2e\n", what, e); }
static double worse(double a, double b) { return a > b ? a : b; }

static void test_gpu_errors(void) {
    /* no GPU, an old GPU, out of device memory: a message, -1, no crash, the model still works */
    ltf_config c = small_config(LTF_LOOPED, 1, 3, 2);
    ltf_model m;
    char err[LTF_ERR_LEN], why[LTF_ERR_LEN];
    float *xs = rand_buf(2 * 4 * 3, 1), *ys = rand_buf(8, 1), loss;
    ltf_train_config t;
    ltf_train_config_default(&t);
#ifdef LTF_CUDA_EMU
    setenv("LTF_EMU_DEVICES", "0", 1);   /* the emulator pretends there is no GPU, then an old one */
#endif
    if (ltf_gpu_available(why) != 0) {
        ltf_model_create(&m, &c, 1, err);
        int rc = ltf_model_to_gpu(&m, err);
        printf("  without a GPU: ltf_model_to_gpu says \"%s\"\n", err);
        CHECK(rc == -1 && strcmp(ltf_model_backend(&m), "cpu") == 0 && strstr(err, "CUDA") && strcmp(err, why) == 0, "to_gpu without a GPU: rc %d, '%s'", rc, err);
        CHECK(ltf_train_step(&m, &t, xs, ys, 2, 4, &loss) == 0, "the model no longer trains on the CPU: %s", m.err);
        CHECK(ltf_model_sync_host(&m, err) == 0 && ltf_model_to_cpu(&m, err) == 0, "sync/to_cpu of a CPU model: %s", err);
        ltf_model_free(&m);
    }
#ifdef LTF_CUDA_EMU
    setenv("LTF_EMU_DEVICES", "1", 1);
    setenv("LTF_EMU_CC", "7.0", 1);
    int rc = ltf_gpu_available(why);
    printf("  an old GPU: \"%s\"\n", why);
    CHECK(rc == -1 && strstr(why, "compute capability 7.0") && strstr(why, "cannot run"), "old GPU: rc %d, '%s'", rc, why);
    unsetenv("LTF_EMU_CC");
#endif
    if (!gpu_ready()) { free(xs); free(ys); return; }
    {   /* a NaN target on the GPU: -1, "NaN", parameters and Adam state untouched */
        ltf_model_create(&m, &c, 3, err);
        float *before = copy_of(m.params, m.n_params);
        CHECK(ltf_model_to_gpu(&m, err) == 0, "to_gpu: %s", err);
        ys[3] = NAN;
        int rc = ltf_train_step(&m, &t, xs, ys, 2, 4, &loss);
        ys[3] = 0.5f;
        CHECK(rc == -1 && strstr(m.err, "NaN"), "NaN target on the GPU: rc %d, '%s'", rc, m.err);
        CHECK(ltf_model_to_cpu(&m, err) == 0 && same_floats(before, m.params, m.n_params) && m.adam_t == 0,
              "a NaN step on the GPU changed the parameters");
        free(before);
        ltf_model_free(&m);
    }
    if (getenv("LTF_TEST_NO_OOM")) {   /* under compute-sanitizer: the failing cudaMalloc counts as an error */
        printf("  out of GPU memory: skipped (LTF_TEST_NO_OOM)\n");
        free(xs); free(ys);
        return;
    }
    /* out of device memory: a million prompts of 2 points need ~400 GB of activations at C = 512 */
    c.n_embd = 512; c.n_head = 8; c.kind = LTF_STANDARD;
    ltf_model_create(&m, &c, 1, err);
    CHECK(ltf_model_to_gpu(&m, err) == 0, "to_gpu: %s", err);
    int B = 1000000;
    float *bx = zeros((size_t)B * 2 * 3), *by = zeros((size_t)B * 2);
    int rc2 = ltf_train_step(&m, &t, bx, by, B, 2, &loss);
    printf("  out of GPU memory: \"%s\"\n", m.err);
    CHECK(rc2 == -1 && strstr(m.err, "out of GPU memory"), "huge batch: rc %d, '%s'", rc2, m.err);
    CHECK(ltf_train_step(&m, &t, xs, ys, 2, 4, &loss) == 0 && isfinite(loss), "a normal step after running out of memory: %s", m.err);
    ltf_model_free(&m);
    free(bx); free(by); free(xs); free(ys);
}

/* the device sampler through the table, as ltf_train_next runs it: the batch of step `step` */
static int gpu_sample(ltf_model *m, const ltf_task *t, const ltf_rng *run, long step, int B, int n) {
    ltf_step_scalars s;
    memset(&s, 0, sizeof s);
    s.key = ltf__step_key(run, step);
    if (ltf__batch_room(m, (size_t)B * n) != 0 || ltf__gpu_put(m->run.scalars, &s, sizeof s, m->err) != 0) return -1;
    m->backend->sample(t, m->run.scalars, B, n, m->run.batch, ltf__batch_ys(m));
    return ltf__gpu_finish(m->err, "sampling");
}
static void gpu_read(void *h, const void *d, size_t bytes) {
    char err[LTF_ERR_LEN];
    if (ltf__gpu_get(h, d, bytes, err, "a test read") != 0) CHECK(0, "%s", err);
}

static void test_gpu_samplers(void) {
    /* Philox4x32-10 against the Random123 known answers (counter, key -> 4 words) */
    uint32_t kat[3][10] = {{0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
                           {~0u, ~0u, ~0u, ~0u, ~0u, ~0u, 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
                           {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
                            0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}};
    for (int k = 0; k < 3; k++) {
        uint32_t u[4] = {kat[k][0], kat[k][1], kat[k][2], kat[k][3]};
        ltf__philox4x32_10(u, kat[k][4], kat[k][5]);
        CHECK(u[0] == kat[k][6] && u[1] == kat[k][7] && u[2] == kat[k][8] && u[3] == kat[k][9],
              "Philox known answer %d: %08x %08x %08x %08x", k, u[0], u[1], u[2], u[3]);
    }
    if (!gpu_ready()) return;
    /* the device's batch = the same counter-based code run on the host, and the statistics of
     * the CPU sampler's test (test_tasks) */
    int d = 8, n = 40, P = 1000;
    ltf_config c = small_config(LTF_LOOPED, 1, 2, 2);
    c.n_dims = d; c.n_positions = n;
    ltf_model m;
    char err[LTF_ERR_LEN];
    ltf_model_create(&m, &c, 1, err);
    if (ltf_model_to_gpu(&m, err) != 0) { CHECK(0, "to_gpu: %s", err); ltf_model_free(&m); return; }
    ltf_rng run;
    ltf_rng_seed(&run, 77);
    size_t pts = (size_t)P * n;
    float *hx = (float *)malloc(sizeof(float) * pts * d), *hy = (float *)malloc(sizeof(float) * pts);
    double worst = 0;
    for (int kind = 0; kind < LTF_TASK_COUNT; kind++) {
        ltf_task t = ltf_task_make(kind, d, 3);
        if (gpu_sample(&m, &t, &run, 5, P, n) != 0) { CHECK(0, "sample: %s", m.err); continue; }
        uint64_t key = ltf__step_key(&run, 5);
        for (size_t p = 0; p < pts; p++) ltf__sample_point(&t, key, (int)(p / n), (int)(p % n), hx + p * d, hy + p);
        worst = worse(worst, worse(gpu_err(t.name, m.run.xs, hx, pts * d), gpu_err(t.name, m.run.ys, hy, pts)));
        double tail = 0, y2 = 0;
        for (size_t i = 0; i < pts; i++) {
            for (int j = 3; j < d; j++) tail += fabs(hx[i * d + j]);
            y2 += (double)hy[i] * hy[i] / (double)pts;
        }
        if (kind == LTF_TASK_DECISION_TREE) CHECK(tail > 0, "tree ignores the dims curriculum (x not truncated)");
        else CHECK(tail == 0, "%s: x truncated to d_active (tail %g)", t.name, tail);
        double want = kind == LTF_TASK_DECISION_TREE ? 1.0 : kind == LTF_TASK_SPARSE_LINEAR ? 3.0 * 3.0 / d
                    : kind == LTF_TASK_NOISY_LINEAR ? 3.01 : 3.0;   /* as test_tasks; ReLU net: E|x|^2 = 3 */
        printf("  %-26s E[y^2] = %.3f (want %.3f)\n", t.name, y2, want);
        CHECK(fabs(y2 - want) < 0.1 * want, "%s on the GPU at d_active=3: E[y^2] = %.3f, want %.3f", t.name, y2, want);
    }
    gpu_report("task samplers (device vs host, 5 tasks)", worst);
    /* sparse at d_active = d: exactly 3 nonzero weights, recovered by least squares */
    ltf_task sp = ltf_task_make(LTF_TASK_SPARSE_LINEAR, d, d);
    gpu_sample(&m, &sp, &run, 9, 1, n);
    gpu_read(hx, m.run.xs, sizeof(float) * n * d);
    gpu_read(hy, m.run.ys, sizeof(float) * n);
    int nz = lstsq_nonzeros(hx, hy, n, d);
    CHECK(nz == 3, "sparse task on the GPU: w has %d nonzeros, want 3", nz);
    /* another step, another batch; the same step, the same batch */
    ltf_task li = ltf_task_make(LTF_TASK_LINEAR, d, d);
    float first[8], again[8], other[8];
    gpu_sample(&m, &li, &run, 1, 1, 1); gpu_read(first, m.run.xs, sizeof first);
    gpu_sample(&m, &li, &run, 2, 1, 1); gpu_read(other, m.run.xs, sizeof other);
    gpu_sample(&m, &li, &run, 1, 1, 1); gpu_read(again, m.run.xs, sizeof again);
    CHECK(memcmp(first, again, sizeof first) == 0 && memcmp(first, other, sizeof first) != 0, "batches: same step same bits, other step other bits");
    free(hx); free(hy);
    ltf_model_free(&m);
}

/* the backend's gradient check on device memory: the first non-finite entry, or n */
static size_t gpu_first_bad(ltf_model *m, const float *g, size_t n) {
    ltf_stats st;
    char err[LTF_ERR_LEN];
    m->backend->check_finite(m->run.stats, g, n);
    if (ltf__gpu_get(&st, m->run.stats, sizeof st, err, "the gradient check") != 0) { CHECK(0, "%s", err); return (size_t)-1; }
    return (size_t)st.first_bad;
}

/* Causal attention, forward and backward, CUDA table against CPU table; worst errors into af, ab. */
static void gpu_attention_twins(int B, int N, int C, int H, double *af, double *ab) {
    const ltf_backend *cb = ltf__cpu(), *gb = ltf__cuda();
    size_t rc = (size_t)B * N * C, nq = 3 * rc, bhnn = (size_t)B * H * N * N;
    twin qkv = twin_rand(nq, 1), out = twin_zero(rc), att = twin_zero(bhnn), dq = twin_rand(nq, 1), datt = twin_zero(bhnn);
    twin dy = twin_rand(rc, 1);
    cb->attention_forward(out.h, att.h, qkv.h, B, N, C, H);
    gb->attention_forward(out.d, att.d, qkv.d, B, N, C, H);
    *af = worse(*af, worse(twin_err("attention out", &out), twin_err("attention probabilities", &att)));
    cb->attention_backward(dq.h, datt.h, dy.h, qkv.h, att.h, B, N, C, H);
    gb->attention_backward(dq.d, datt.d, dy.d, qkv.d, att.d, B, N, C, H);
    *ab = worse(*ab, twin_err("attention dqkv", &dq));
    twin_free(&qkv); twin_free(&out); twin_free(&att); twin_free(&dq); twin_free(&datt); twin_free(&dy);
}

/* Every op of the CUDA table against the same op of the CPU table, on the same inputs. */
static void test_gpu_ops(void) {
    if (!gpu_ready()) return;
    const ltf_backend *cb = ltf__cpu(), *gb = ltf__cuda();
    double e;
    {   /* matrix multiply: every transposition, shapes across the 64 x 64 x 16 tiles; the last
         * has K = 1500 over 2 tiles: split-K, 5 parts added by the tile's last part */
        int shapes[][3] = {{1, 1, 1}, {5, 7, 3}, {64, 64, 16}, {65, 130, 33}, {130, 70, 300}, {70, 33, 1500}};
        e = 0;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++) {
                    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                    twin A = twin_rand((size_t)M * K, 1), B = twin_rand((size_t)K * N, 1), Cm = twin_rand((size_t)M * N, 1);
                    ptrdiff_t ar = ta ? 1 : K, ac = ta ? M : 1, br = tb ? 1 : N, bc = tb ? K : 1;
                    ltf_gemm_plain(M, N, K, A.h, ar, ac, B.h, br, bc, Cm.h, N);
                    ltf__gpu_gemm(M, N, K, A.d, ar, ac, B.d, br, bc, Cm.d, N);
                    e = worse(e, twin_err("gemm", &Cm));
                    twin_free(&A); twin_free(&B); twin_free(&Cm);
                }
        gpu_report("gemm (6 shapes x 4 transpositions, +=, split-K)", e);
    }
    /* B, N, C, H; the last: 660 rows (more than LTF__PARTS blocks; weight gradients split-K) */
    int shapes[3][4] = {{3, 7, 24, 3}, {2, 33, 64, 4}, {20, 33, 64, 4}};
    double ef = 0, eb = 0, gf = 0, gk = 0, lf = 0, lb = 0, af = 0, ab = 0, ij = 0, ijb = 0, va = 0;
    for (int s = 0; s < 3; s++) {
        int B = shapes[s][0], N = shapes[s][1], C = shapes[s][2], H = shapes[s][3], BT = B * N, OC = 5 * C / 3;
        size_t rc = (size_t)BT * C, ro = (size_t)BT * OC;
        {   /* Linear, with and without bias; backward adds into random gradients; the GELU pairs */
            twin inp = twin_rand(rc, 1), w = twin_rand((size_t)OC * C, 0.5f), bias = twin_rand(OC, 1), out = twin_zero(ro);
            twin di = twin_rand(rc, 1), dw = twin_rand((size_t)OC * C, 1), db = twin_rand(OC, 1), dout = twin_rand(ro, 1);
            twin out2 = twin_zero(ro), x = twin_rand(rc, 2), scratch = twin_zero(rc);
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                cb->matmul_forward(out.h, inp.h, w.h, with_bias ? bias.h : NULL, BT, C, OC);
                gb->matmul_forward(out.d, inp.d, w.d, with_bias ? bias.d : NULL, BT, C, OC);
                ef = worse(ef, twin_err("matmul forward", &out));
            }
            cb->matmul_backward(di.h, dw.h, db.h, dout.h, inp.h, w.h, BT, C, OC);
            gb->matmul_backward(di.d, dw.d, db.d, dout.d, inp.d, w.d, BT, C, OC);
            eb = worse(eb, worse(twin_err("matmul backward dinp", &di), worse(twin_err("matmul backward dw", &dw), twin_err("matmul backward dbias", &db))));
            cb->matmul_backward(NULL, dw.h, NULL, dout.h, inp.h, w.h, BT, C, OC);            /* the read_in case */
            gb->matmul_backward(NULL, dw.d, NULL, dout.d, inp.d, w.d, BT, C, OC);
            eb = worse(eb, twin_err("matmul backward dw only", &dw));
            cb->matmul_gelu_forward(out.h, out2.h, inp.h, w.h, bias.h, BT, C, OC);
            gb->matmul_gelu_forward(out.d, out2.d, inp.d, w.d, bias.d, BT, C, OC);
            gf = worse(gf, worse(twin_err("matmul_gelu forward out", &out), twin_err("matmul_gelu forward GELU(out)", &out2)));
            /* x plays the GELU's input [BT, C], inp its output: di += GELU'(x) (dout . w) */
            cb->matmul_gelu_backward(di.h, dw.h, db.h, dout.h, inp.h, w.h, x.h, scratch.h, BT, C, OC);
            gb->matmul_gelu_backward(di.d, dw.d, db.d, dout.d, inp.d, w.d, x.d, scratch.d, BT, C, OC);
            gk = worse(gk, worse(twin_err("matmul_gelu backward dinp", &di), worse(twin_err("matmul_gelu backward dw", &dw),
                                                                                   twin_err("matmul_gelu backward db", &db))));
            twin_free(&inp); twin_free(&w); twin_free(&bias); twin_free(&out); twin_free(&di); twin_free(&dw);
            twin_free(&db); twin_free(&dout); twin_free(&out2); twin_free(&x); twin_free(&scratch);
        }
        {   /* residual + LayerNorm, LayerNorm backward (C = 24: 32 threads per row; 300: several per thread) */
            int Cl = s == 0 ? C : 300;
            size_t n = (size_t)BT * Cl;
            twin a = twin_rand(n, 2), c = twin_rand(n, 1), h = twin_zero(n), w = twin_rand(Cl, 1), b = twin_rand(Cl, 1);
            twin out = twin_zero(n), mean = twin_zero(BT), rstd = twin_zero(BT);
            twin dx = twin_rand(n, 1), dw = twin_rand(Cl, 1), db = twin_rand(Cl, 1), dy = twin_rand(n, 1);
            cb->residual_layernorm_forward(h.h, out.h, mean.h, rstd.h, a.h, c.h, w.h, b.h, BT, Cl);
            gb->residual_layernorm_forward(h.d, out.d, mean.d, rstd.d, a.d, c.d, w.d, b.d, BT, Cl);
            lf = worse(lf, worse(worse(twin_err("residual", &h), twin_err("layernorm out", &out)),
                                 worse(twin_err("layernorm mean", &mean), twin_err("layernorm rstd", &rstd))));
            cb->layernorm_backward(dx.h, dw.h, db.h, dy.h, h.h, w.h, mean.h, rstd.h, BT, Cl);
            gb->layernorm_backward(dx.d, dw.d, db.d, dy.d, h.d, w.d, mean.d, rstd.d, BT, Cl);
            lb = worse(lb, worse(twin_err("layernorm dinp", &dx), worse(twin_err("layernorm dw", &dw), twin_err("layernorm db", &db))));
            twin_free(&a); twin_free(&c); twin_free(&h); twin_free(&w); twin_free(&b); twin_free(&out); twin_free(&mean);
            twin_free(&rstd); twin_free(&dx); twin_free(&dw); twin_free(&db); twin_free(&dy);
        }
        gpu_attention_twins(B, N, C, H, &af, &ab);   /* causal attention */
        {   /* the injection pair, 4 variants: no state; no mask; keep the last 2 pairs; keep the first 1 */
            twin Y = twin_rand(rc, 1), E = twin_rand(rc, 1), wpe = twin_rand((size_t)N * C, 1), w = twin_rand(C, 1), b = twin_rand(C, 1);
            twin h = twin_zero(rc), out = twin_zero(rc), mean = twin_zero(BT), rstd = twin_zero(BT);
            twin dY = twin_rand(rc, 1), dE = twin_rand(rc, 1), dwpe = twin_rand((size_t)N * C, 1), dh = twin_rand(rc, 1);
            for (int v = 0; v < 6; v++) {   /* 4, 5: dE NULL (tied), then dY and dE NULL */
                int lo = v == 2 ? N - 4 : 0, hi = v == 3 ? 2 : N;
                if (v >= 4) {
                    cb->inject_backward(v == 4 ? dY.h : NULL, NULL, dwpe.h, dh.h, B, N, C, 0, N);
                    gb->inject_backward(v == 4 ? dY.d : NULL, NULL, dwpe.d, dh.d, B, N, C, 0, N);
                    ijb = worse(ijb, worse(twin_err("inject backward, no dE: dY", &dY), twin_err("inject backward, no dE: dwpe", &dwpe)));
                    continue;
                }
                cb->inject_layernorm(h.h, out.h, mean.h, rstd.h, v ? Y.h : NULL, E.h, wpe.h, w.h, b.h, B, N, C, lo, hi);
                gb->inject_layernorm(h.d, out.d, mean.d, rstd.d, v ? Y.d : NULL, E.d, wpe.d, w.d, b.d, B, N, C, lo, hi);
                ij = worse(ij, worse(worse(twin_err("inject h", &h), twin_err("inject ln", &out)),
                                     worse(twin_err("inject mean", &mean), twin_err("inject rstd", &rstd))));
                cb->inject_backward(v ? dY.h : NULL, dE.h, dwpe.h, dh.h, B, N, C, lo, hi);
                gb->inject_backward(v ? dY.d : NULL, dE.d, dwpe.d, dh.d, B, N, C, lo, hi);
                ijb = worse(ijb, worse(twin_err("inject backward dY", &dY), worse(twin_err("inject backward dE", &dE),
                                                                                  twin_err("inject backward dwpe", &dwpe))));
            }
            twin_free(&Y); twin_free(&E); twin_free(&wpe); twin_free(&w); twin_free(&b); twin_free(&h); twin_free(&out);
            twin_free(&mean); twin_free(&rstd); twin_free(&dY); twin_free(&dE); twin_free(&dwpe); twin_free(&dh);
        }
        {   /* the variants' elementwise ops (docs/MATH.md §12): add, mul and its backward (da NULL too) */
            twin a = twin_rand(rc, 1), b = twin_rand(rc, 1), out = twin_zero(rc), da = twin_rand(rc, 1), db = twin_rand(rc, 1);
            cb->add(out.h, a.h, rc); gb->add(out.d, a.d, rc);
            va = worse(va, twin_err("add", &out));
            cb->mul_forward(out.h, a.h, b.h, rc); gb->mul_forward(out.d, a.d, b.d, rc);
            va = worse(va, twin_err("mul forward", &out));
            for (int want_da = 0; want_da < 2; want_da++) {
                cb->mul_backward(want_da ? da.h : NULL, db.h, out.h, a.h, b.h, rc);
                gb->mul_backward(want_da ? da.d : NULL, db.d, out.d, a.d, b.d, rc);
                va = worse(va, worse(twin_err("mul backward da", &da), twin_err("mul backward db", &db)));
            }
            twin_free(&a); twin_free(&b); twin_free(&out); twin_free(&da); twin_free(&db);
        }
        {   /* the classification loss and its backward (§13), K = 3 */
            int K = 3;
            size_t nl = (size_t)BT * K;
            twin lg = twin_rand(nl, 3), y = twin_zero((size_t)BT / 2);
            char err[LTF_ERR_LEN];
            for (int i = 0; i < BT / 2; i++) y.h[i] = (float)(i % K);
            CHECK(ltf__gpu_put(y.d, y.h, (size_t)BT / 2 * sizeof(float), err) == 0, "%s", err);
            ltf_stats sh, got, *sd = NULL;
            memset(&sh, 0, sizeof sh); memset(&got, 0, sizeof got);
            CHECK(gb->alloc((float **)&sd, sizeof(ltf_stats) / sizeof(float) + 1, err, "stats") == 0, "%s", err);
            cb->ce_loss(&sh, lg.h, y.h, B, N / 2, K, 1);
            gb->ce_loss(sd, lg.d, y.d, B, N / 2, K, 1);
            CHECK(gb->get(&got, sd, sizeof got, err, "stats") == 0, "%s", err);
            va = worse(va, fabs(got.loss_sum - sh.loss_sum) / fabs(sh.loss_sum));
            cb->ce_backward(lg.h, y.h, 7.0f, B, N / 2, K);
            gb->ce_backward(lg.d, y.d, 7.0f, B, N / 2, K);
            va = worse(va, twin_err("cross-entropy backward", &lg));
            gb->release((float *)sd);
            twin_free(&lg); twin_free(&y);
        }
    }
    {   /* attention of heads that do not fit in shared memory: 65 wide; 2 x 200 x 32 for the forward,
         * 4 x 100 x 32 for the backward (the head-in-shared-memory kernels' limits) */
        int big[3][4] = {{2, 9, 130, 2}, {1, 200, 64, 2}, {1, 100, 64, 2}};
        for (int s = 0; s < 3; s++) gpu_attention_twins(big[s][0], big[s][1], big[s][2], big[s][3], &af, &ab);
    }
    gpu_report("matmul forward (bias, no bias)", ef); gpu_report("matmul backward (dinp, dw, dbias)", eb);
    gpu_report("matmul_gelu forward (out, GELU(out))", gf); gpu_report("matmul_gelu backward (dinp, dw, dbias)", gk);
    gpu_report("residual + layernorm (h, out, mean, rstd)", lf); gpu_report("layernorm backward (dinp, dw, db)", lb);
    gpu_report("attention forward (out, probabilities)", af); gpu_report("attention backward (dqkv)", ab);
    gpu_report("inject + position + layernorm (4 masks)", ij); gpu_report("inject backward (dY, dE, dwpe; NULLs)", ijb);
    gpu_report("add, mul, mul backward, cross-entropy and its backward", va);

    /* the loop's ops: tokens, read-out, read-out + loss and its backward, gradient check, Adam */
    ltf_config c = small_config(LTF_LOOPED, 1, 3, 2);
    c.n_embd = 24; c.n_head = 3;
    int B = 30, n = 5, N = 10, d = c.n_dims, C = c.n_embd;   /* 150 points: more than LTF__PARTS */
    size_t rc = (size_t)B * N * C, bn = (size_t)B * n;
    ltf_model mg;
    char err[LTF_ERR_LEN];
    ltf_model_create(&mg, &c, 5, err);
    if (ltf_model_to_gpu(&mg, err) != 0) { CHECK(0, "to_gpu: %s", err); ltf_model_free(&mg); return; }
    {
        twin xs = twin_rand(bn * d, 1), ys = twin_rand(bn, 1), z = twin_zero((size_t)B * N * d), Y = twin_rand(rc, 1);
        twin w = twin_rand(C, 1), b = twin_rand(1, 1), pred = twin_zero(bn), dY = twin_rand(rc, 1), gw = twin_rand(C, 1), gbias = twin_rand(1, 1);
        cb->tokens(z.h, xs.h, ys.h, B, n, d);
        gb->tokens(z.d, xs.d, ys.d, B, n, d);
        gpu_report("tokens z = (x_i), (y_i, 0, ...)", twin_err("tokens", &z));
        cb->read_out(pred.h, Y.h, w.h, b.h, B, n, C);
        gb->read_out(pred.d, Y.d, w.d, b.d, B, n, C);
        gpu_report("read_out", twin_err("read_out", &pred));
        /* the loss: a double sum of squares over the GPU's own predictions (the sum alone is under
         * test), set then added */
        ltf_stats st_c, st_g;
        cb->read_out_loss(pred.h, &st_c, Y.h, w.h, b.h, ys.h, B, n, C, 1);
        gb->read_out_loss(pred.d, mg.run.stats, Y.d, w.d, b.d, ys.d, B, n, C, 1);
        gb->read_out_loss(pred.d, mg.run.stats, Y.d, w.d, b.d, ys.d, B, n, C, 0);
        e = twin_err("read_out_loss pred", &pred);
        float *gp = (float *)malloc(bn * sizeof(float));
        double want = 0;
        gpu_read(gp, pred.d, bn * sizeof(float));
        gpu_read(&st_g, mg.run.stats, sizeof st_g);
        for (size_t i = 0; i < bn; i++) want += (double)(gp[i] - ys.h[i]) * (gp[i] - ys.h[i]);
        free(gp);
        double el = fabs(st_g.loss_sum - 2 * want) / (2 * want);
        CHECK(el <= 1e-12, "loss sum %.17g, want %.17g", st_g.loss_sum, 2 * want);
        gpu_report("read_out + loss (double sum, set then added)", worse(e, el));
        float denom = (float)(3.0 * bn);
        cb->read_out_loss_backward(dY.h, gw.h, gbias.h, pred.h, ys.h, denom, Y.h, w.h, B, n, C);
        gb->read_out_loss_backward(dY.d, gw.d, gbias.d, pred.d, ys.d, denom, Y.d, w.d, B, n, C);
        e = worse(worse(twin_err("read_out_loss backward dY", &dY), twin_err("read_out_loss backward dpred", &pred)),
                  worse(twin_err("read_out_loss backward dw", &gw), twin_err("read_out_loss backward db", &gbias)));
        gpu_report("read_out + loss backward (dpred, dY, dw, db)", e);
        twin_free(&xs); twin_free(&ys); twin_free(&z); twin_free(&Y); twin_free(&w); twin_free(&b); twin_free(&pred);
        twin_free(&dY); twin_free(&gw); twin_free(&gbias);
    }
    {   /* the gradient check over many blocks: the first bad index wins, whatever block finds it */
        size_t big = 300000;
        float *g = zeros(big);
        float *dg = gpu_copy(g, big);
        CHECK(gpu_first_bad(&mg, dg, big) == big, "finite gradients reported as non-finite");
        g[290000] = NAN; g[170001] = INFINITY;
        ltf__gpu_put(dg, g, big * sizeof(float), err);
        size_t bad = gpu_first_bad(&mg, dg, big);
        CHECK(bad == 170001, "first non-finite of 300000: %zu, want 170001", bad);
        g[17] = -INFINITY;
        ltf__gpu_put(dg, g, big * sizeof(float), err);
        CHECK((bad = gpu_first_bad(&mg, dg, big)) == 17, "first non-finite: %zu, want 17", bad);
        free(g); ltf__gpu_release(dg);
    }
    {   /* Adam (two steps, with weight decay), then a guarded update on a bad step changes nothing */
        ltf_model mc;
        ltf_train_config t;
        ltf_train_config_default(&t);
        t.weight_decay = 0.1f;
        ltf_model_free(&mg);
        ltf_model_create(&mc, &c, 5, err);
        randomize_model(&mc, 0.5f);
        for (size_t i = 0; i < mc.n_params; i++) mc.grads[i] = (float)ltf_rng_normal(&g_rng);
        ltf_model_create(&mg, &c, 5, err);
        memcpy(mg.params, mc.params, sizeof(float) * mc.n_params);
        memcpy(mg.grads, mc.grads, sizeof(float) * mc.n_params);
        ltf_model_to_gpu(&mg, err);
        for (int s = 0; s < 2; s++) { ltf_adam_step(&mc, &t); CHECK(ltf_adam_step(&mg, &t) == 0, "GPU Adam: %s", mg.err); }
        ltf_model_sync_host(&mg, err);
        e = worse(rel_err(mg.params, mc.params, mc.n_params),
                  worse(rel_err(mg.adam_m, mc.adam_m, mc.n_params), rel_err(mg.adam_v, mc.adam_v, mc.n_params)));
        CHECK(e <= GPU_TOL && mg.adam_t == 2, "Adam: params/m/v rel err %.2e", e);
        gpu_report("Adam (2 steps, decay: params, m, v)", e);
        float *p0 = copy_of(mg.params, mg.n_params);
        float *bad = copy_of(mg.grads, mg.n_params);
        bad[mg.n_params - 1] = NAN;
        ltf__gpu_put(mg.run.grads, bad, mg.n_params * sizeof(float), err);
        gb->check_finite(mg.run.stats, mg.run.grads, mg.n_params);
        gb->adam(mg.run.params, mg.run.adam_m, mg.run.adam_v, mg.run.grads, mg.n_params, mg.run.scalars, mg.run.stats);
        ltf_model_sync_host(&mg, err);
        CHECK(same_floats(p0, mg.params, mg.n_params), "Adam guarded by a NaN gradient changed the parameters");
        free(p0); free(bad);
        ltf_model_free(&mc);
    }
    ltf_model_free(&mg);
}

/* Two models with the same parameters, one of them on the GPU. */
static int gpu_twins(ltf_model *mc, ltf_model *mg, const ltf_config *c, float randomize) {
    char err[LTF_ERR_LEN];
    if (ltf_model_create(mc, c, 7, err) != 0 || ltf_model_create(mg, c, 7, err) != 0) { CHECK(0, "create: %s", err); return -1; }
    if (randomize > 0) randomize_model(mc, randomize);
    memcpy(mg->params, mc->params, sizeof(float) * mc->n_params);
    if (ltf_model_to_gpu(mg, err) != 0) { CHECK(0, "to_gpu: %s", err); ltf_model_free(mc); ltf_model_free(mg); return -1; }
    return 0;
}

/* Worst per-tensor ||a - b|| / ||b||; skip_key_bias leaves out the key part of every c_attn
 * bias, whose gradient is zero in exact arithmetic (softmax ignores a shift shared by all
 * scores of a query), so each side holds its own rounding noise there, which Adam's first
 * steps turn into +-lr either way. */
static double worst_tensor(ltf_model *m, const float *a, const float *b, int skip_key_bias, const char **name) {
    double worst = 0;
    for (ptrdiff_t k = 0; k < shlen(m->tensors); k++) {
        ltf_tensor *t = &m->tensors[k];
        double e;
        if (skip_key_bias && strstr(t->key, "c_attn.bias")) {
            size_t C = t->size / 3;
            float *qa = copy_of(a + t->offset, t->size), *qb = copy_of(b + t->offset, t->size);
            for (size_t i = C; i < 2 * C; i++) qa[i] = qb[i] = 0.0f;
            e = rel_err(qa, qb, t->size);
            free(qa); free(qb);
        } else e = rel_err(a + t->offset, b + t->offset, t->size);
        if (e >= worst) { worst = e; if (name) *name = t->key; }
    }
    return worst;
}

static void gpu_step_case(const char *label, ltf_config c, int B, int n) {
    ltf_model mc, mg, ma;
    char err[LTF_ERR_LEN];
    if (gpu_twins(&mc, &mg, &c, 0.5f) != 0) return;
    size_t N = 2 * (size_t)n, rc = (size_t)B * N * c.n_embd;
    float *xs = rand_buf((size_t)B * n * c.n_dims, 1), *ys = rand_buf((size_t)B * n, 1), lc, lg;
    float *Yc = zeros(rc), *Yg = zeros(rc), *pc = zeros((size_t)(c.n_loops + 3) * B * n), *pg = zeros((size_t)(c.n_loops + 3) * B * n);
    float *p0 = copy_of(mc.params, mc.n_params);
    const char *name = "";
    /* forward only: the loss, Y_s, the loss from a given Y_s, predictions past b */
    ltf_forward_loss(&mc, xs, ys, B, n, &lc);
    CHECK(ltf_forward_loss(&mg, xs, ys, B, n, &lg) == 0, "%s: forward: %s", label, mg.err);
    double e_fwd = fabs((double)lg - lc) / lc;
    ltf_window_start_state(&mc, xs, ys, B, n, Yc);
    CHECK(ltf_window_start_state(&mg, xs, ys, B, n, Yg) == 0, "%s: Y_s: %s", label, mg.err);
    e_fwd = worse(e_fwd, rel_err(Yg, Yc, rc));
    ltf_forward_loss_from(&mc, xs, ys, B, n, Yc, &lc);
    ltf_forward_loss_from(&mg, xs, ys, B, n, Yc, &lg);
    e_fwd = worse(e_fwd, fabs((double)lg - lc) / lc);
    ltf_predict(&mc, xs, ys, B, n, c.n_loops + 3, Yc, pc);   /* Yc: room for pred_last */
    CHECK(ltf_predict(&mg, xs, ys, B, n, c.n_loops + 3, Yg, pg) == 0, "%s: predict: %s", label, mg.err);
    e_fwd = worse(e_fwd, worse(rel_err(Yg, Yc, (size_t)B * n), rel_err(pg, pc, (size_t)(c.n_loops + 3) * B * n)));
    CHECK(e_fwd <= GPU_TOL, "%s: forward-only GPU vs CPU rel err %.2e", label, e_fwd);
    /* one training step: loss, every gradient, every parameter after Adam */
    ltf_train_config t;
    ltf_train_config_default(&t);
    ltf_train_step(&mc, &t, xs, ys, B, n, &lc);
    CHECK(ltf_train_step(&mg, &t, xs, ys, B, n, &lg) == 0, "%s: GPU step: %s", label, mg.err);
    CHECK(ltf_model_sync_host(&mg, err) == 0, "%s: sync: %s", label, err);
    double e_loss = fabs((double)lg - lc) / lc;
    double e_grad = worst_tensor(&mc, mg.grads, mc.grads, 0, &name);
    CHECK(e_loss <= GPU_TOL && e_grad <= GPU_TOL, "%s: loss rel err %.2e, gradient of %s rel err %.2e", label, e_loss, name, e_grad);
    double e_par = worst_tensor(&mc, mg.params, mc.params, 1, &name);
    CHECK(e_par <= GPU_TOL, "%s: parameter %s after Adam rel err %.2e", label, name, e_par);
    /* and exactly the CPU's Adam applied to the GPU's gradients */
    ltf_model_create(&ma, &c, 7, err);
    memcpy(ma.params, p0, sizeof(float) * ma.n_params);
    memcpy(ma.grads, mg.grads, sizeof(float) * ma.n_params);
    ltf_adam_step(&ma, &t);
    double e_adam = rel_err(mg.params, ma.params, ma.n_params);
    CHECK(e_adam <= GPU_TOL, "%s: GPU Adam vs CPU Adam on the GPU's gradients: rel err %.2e", label, e_adam);
    printf("  %-34s forward %.1e, loss %.1e, gradients %.1e, params %.1e, Adam %.1e\n", label, e_fwd, e_loss, e_grad, e_par, e_adam);
    free(xs); free(ys); free(Yc); free(Yg); free(pc); free(pg); free(p0);
    ltf_model_free(&mc); ltf_model_free(&mg); ltf_model_free(&ma);
}

static void test_gpu_step(void) {
    if (!gpu_ready()) return;
    ltf_config c = small_config(LTF_LOOPED, 2, 5, 2);   /* truncated window, keep-last mask, L = 2 */
    c.n_embd = 16; c.mask_mode = LTF_MASK_KEEP_LAST; c.mask_pairs = 2; c.mask_when = LTF_AT_BOTH;
    gpu_step_case("looped L=2 b=5 T=2, keep-last 2", c, 3, 6);
    c = small_config(LTF_STANDARD, 2, 1, 1);
    c.n_embd = 16;
    gpu_step_case("standard L=2", c, 3, 6);
    c = small_config(LTF_LOOPED, 1, 4, 4);
    c.n_embd = 32; c.n_head = 4; c.n_dims = 5; c.n_positions = 9;
    c.mask_mode = LTF_MASK_KEEP_FIRST; c.mask_pairs = 3; c.mask_when = LTF_AT_TRAIN;
    gpu_step_case("looped L=1 b=T=4 C=32, keep-first 3", c, 5, 9);
}

/* 20 Adam steps of a variant (docs/MATH.md §12) on the GPU and on the CPU: within float drift. */
static void gpu_variant_train(const char *label, ltf_config c) {
    ltf_model mc, mg;
    char err[LTF_ERR_LEN];
    if (gpu_twins(&mc, &mg, &c, 0) != 0) return;
    ltf_train_config t;
    ltf_train_config_default(&t);
    int B = 8, n = 6, d = c.n_dims;
    ltf_task task = ltf_task_linear_regression(d, d);
    ltf_rng r;
    ltf_rng_seed(&r, 5);
    float *xs = (float *)malloc(sizeof(float) * B * n * d), *ys = (float *)malloc(sizeof(float) * B * n), lc = 0, lg = 0;
    double e_loss = 0;
    for (int s = 0; s < 20; s++) {
        ltf_task_sample(&task, &r, B, n, xs, ys);
        for (int i = 0; c.n_classes && i < B * n; i++) ys[i] = (float)(ys[i] > 0.5f ? 2 : ys[i] > -0.5f ? 1 : 0);
        if (ltf_train_step(&mc, &t, xs, ys, B, n, &lc) != 0 || ltf_train_step(&mg, &t, xs, ys, B, n, &lg) != 0) {
            CHECK(0, "%s step %d: %s / %s", label, s, mc.err, mg.err);
            break;
        }
        e_loss = worse(e_loss, fabs((double)lg - lc) / lc);
    }
    ltf_model_sync_host(&mg, err);
    const char *name = "";
    double e_par = worst_tensor(&mc, mg.params, mc.params, 1, &name);
    printf("  %-28s 20 steps: GPU vs CPU loss rel err <= %.1e, params %.1e (%s)\n", label, e_loss, e_par, name);
    CHECK(e_loss <= 1e-3 && e_par <= 1e-3, "%s: loss rel err %.2e, %s rel err %.2e (bound 1e-3)", label, e_loss, name, e_par);
    free(xs); free(ys);
    ltf_model_free(&mc); ltf_model_free(&mg);
}

static void test_gpu_train(void) {
    if (!gpu_ready()) return;

    {   /* the variants */
        ltf_config v = small_config(LTF_LOOPED, 1, 4, 2);
        v.n_embd = 16; v.loop_func = LTF_LOOP_MUL;
        gpu_variant_train("looped, loop_func mul", v);
        v = small_config(LTF_STANDARD, 3, 1, 1); v.n_embd = 16; v.inject_every_block = 1;
        gpu_variant_train("standard, every block", v);
        v = small_config(LTF_TIED, 1, 3, 3); v.n_embd = 16; v.no_pos_emb = 1;
        gpu_variant_train("tied x3, no position embedding", v);
        v = small_config(LTF_LOOPED, 1, 4, 2); v.n_embd = 16; v.n_classes = 3;
        gpu_variant_train("looped, 3 classes (§13)", v);
    }
    /* 100 Adam steps on the same fresh batches: the GPU's path stays within float drift of
     * the CPU's. Bound 1e-3 (loss at every step, parameters at the end, per tensor; the
     * key bias left out as above): measured ~1e-5 (tests/cuda_emu.h on the CPU). */
    ltf_config c = small_config(LTF_LOOPED, 1, 6, 3);
    c.n_dims = 5; c.n_positions = 8; c.n_embd = 32; c.n_head = 4;
    ltf_model mc, mg;
    char err[LTF_ERR_LEN];
    if (gpu_twins(&mc, &mg, &c, 0) != 0) return;
    ltf_train_config t;
    ltf_train_config_default(&t);
    int B = 8, n = 8, steps = 100;
    ltf_task task = ltf_task_linear_regression(5, 5);
    ltf_rng r;
    ltf_rng_seed(&r, 3);
    float *xs = (float *)malloc(sizeof(float) * B * n * 5), *ys = (float *)malloc(sizeof(float) * B * n), lc = 0, lg = 0, l0 = 0;
    double e_loss = 0;
    for (int s = 0; s < steps; s++) {
        ltf_task_sample(&task, &r, B, n, xs, ys);
        if (ltf_train_step(&mc, &t, xs, ys, B, n, &lc) != 0 || ltf_train_step(&mg, &t, xs, ys, B, n, &lg) != 0) {
            CHECK(0, "step %d: %s / %s", s, mc.err, mg.err);
            break;
        }
        if (s == 0) l0 = lc;
        e_loss = worse(e_loss, fabs((double)lg - lc) / lc);
    }
    ltf_model_sync_host(&mg, err);
    const char *name = "";
    double e_par = worst_tensor(&mc, mg.params, mc.params, 1, &name);
    printf("  100 steps, loss %.3f -> %.3f: GPU vs CPU loss rel err <= %.1e, params %.1e (%s)\n", l0, lc, e_loss, e_par, name);
    CHECK(e_loss <= 1e-3 && e_par <= 1e-3, "100 steps: loss rel err %.2e, %s rel err %.2e (bound 1e-3)", e_loss, name, e_par);
    /* evaluation: the same prompts (drawn on the host), predictions on the GPU; with a state mask */
    for (int masked = 0; masked < 2; masked++) {
        mc.cfg.mask_mode = mg.cfg.mask_mode = masked ? LTF_MASK_KEEP_LAST : LTF_MASK_NONE;
        mc.cfg.mask_pairs = mg.cfg.mask_pairs = 3; mc.cfg.mask_when = mg.cfg.mask_when = LTF_AT_EVAL;
        double kc[8] = {0}, kg[8] = {0}, ic[12] = {0}, ig[12] = {0};
        ltf_rng rc, rg;
        ltf_rng_seed(&rc, 4); ltf_rng_seed(&rg, 4);
        ltf_evaluate(&mc, &task, &rc, 40, n, 12, kc, ic, NULL);
        CHECK(ltf_evaluate(&mg, &task, &rg, 40, n, 12, kg, ig, NULL) == 0, "GPU evaluate: %s", mg.err);
        double ek = 0;
        for (int k = 0; k < n; k++) ek = worse(ek, fabs(kg[k] - kc[k]) / kc[k]);
        for (int i = 0; i < 12; i++) ek = worse(ek, fabs(ig[i] - ic[i]) / ic[i]);
        printf("  ltf_evaluate%s (40 prompts, 12 loops): GPU vs CPU error rel diff %.1e\n", masked ? ", keep-last 3 at eval" : "", ek);
        CHECK(ek <= 1e-3, "evaluate GPU vs CPU: rel diff %.2e", ek);
    }
    free(xs); free(ys);
    ltf_model_free(&mc); ltf_model_free(&mg);
    /* ltf_train_next on the GPU (prompts drawn there): same bits twice; a checkpoint at step K
     * resumed on the GPU gives the run that never stopped, bit for bit */
    enum { K = 4 };
    char dir[64], path[128];
    make_tmpdir(dir);
    snprintf(path, sizeof path, "%s/gpu.safetensors", dir);
    c = small_config(LTF_LOOPED, 1, 3, 2);
    ltf_model a, b;
    ltf_train_state sa = small_state(LTF_TASK_SPARSE_LINEAR, 11), sb = sa;
    ltf_model_create(&a, &c, 21, err); ltf_model_create(&b, &c, 21, err);
    ltf_model_to_gpu(&a, err);
    CHECK(ltf_model_to_gpu(&b, err) == 0, "to_gpu: %s", err);
    train_steps(&a, &sa, 2 * K);
    train_steps(&b, &sb, K);
    CHECK(ltf_checkpoint_save(&b, &sb, path, err) == 0, "save from the GPU: %s", err);
    ltf_model_free(&b);
    if (ltf_checkpoint_load(&b, &sb, path, &c, err) != 0 || ltf_model_to_gpu(&b, err) != 0) CHECK(0, "load, to_gpu: %s", err);
    else {
        train_steps(&b, &sb, K);
        ltf_model_to_cpu(&a, err);
        CHECK(ltf_model_to_cpu(&b, err) == 0 && strcmp(ltf_model_backend(&a), "cpu") == 0 && strcmp(ltf_model_backend(&b), "cpu") == 0, "to_cpu: %s", err);
        CHECK(same_floats(a.params, b.params, a.n_params) && same_floats(a.adam_v, b.adam_v, a.n_params) && a.adam_t == 2 * K,
              "GPU run resumed from a checkpoint differs from the uninterrupted one");
        ltf_model c2;
        ltf_train_state s2 = small_state(LTF_TASK_SPARSE_LINEAR, 11);
        ltf_model_create(&c2, &c, 21, err);
        ltf_model_to_gpu(&c2, err);
        train_steps(&c2, &s2, 2 * K);
        ltf_model_to_cpu(&c2, err);
        CHECK(same_floats(a.params, c2.params, a.n_params), "two GPU runs of the same seed differ");
        float loss;
        CHECK(ltf_train_next(&c2, &s2, NULL, NULL, &loss, NULL) == -1 && strstr(c2.err, "NULL"),
              "back on the CPU, ltf_train_next without buffers: '%s'", c2.err);
        ltf_model_free(&c2);
        printf("  ltf_train_next on the GPU: %d steps reproduce bit for bit, resumed or not\n", 2 * K);
    }
    remove(path); rmdir(dir);
    ltf_model_free(&a); ltf_model_free(&b);
}
/* what the emulator ran (kernels + memsets, replays included) and the host's waits; -1 on a GPU */
static long emu_ran(void) {
#ifdef LTF_CUDA_EMU
    return ltf_emu::kernels_run + ltf_emu::memsets;
#else
    return -1;
#endif
}
static long emu_syncs(void) {
#ifdef LTF_CUDA_EMU
    return ltf_emu::syncs;
#else
    return -1;
#endif
}

/* launches queued by the second ltf_train_next of model config c (no graph), or -1 */
static long launches_of_step(ltf_config c, int B, int n) {
    char err[LTF_ERR_LEN];
    ltf_train_config t;
    ltf_train_config_default(&t);
    t.batch_size = B; t.n_points = n;
    ltf_curriculum cur;
    ltf_curriculum_off(&cur, &c, n);
    ltf_train_state st;
    ltf_train_state_init(&st, LTF_TASK_LINEAR, &t, &cur, 5);
    ltf_model m;
    float loss;
    long got = -1;
    ltf_model_create(&m, &c, 1, err);
    setenv("LTF_CUDA_GRAPH", "0", 1);
    if (ltf_model_to_gpu(&m, err) == 0 && ltf_train_next(&m, &st, NULL, NULL, &loss, NULL) == 0) {
        long q0 = ltf_gpu_launches();
        if (ltf_train_next(&m, &st, NULL, NULL, &loss, NULL) == 0) got = ltf_gpu_launches() - q0;
    }
    unsetenv("LTF_CUDA_GRAPH");
    ltf_model_free(&m);
    return got;
}

static void test_gpu_graph(void) {
    if (!gpu_ready()) return;
    char err[LTF_ERR_LEN];
    float loss;
    {   /* the performance model's launch count (workbench/speed.h) on other shapes of the loop */
        ltf_config cs[3] = {small_config(LTF_STANDARD, 2, 1, 1), small_config(LTF_LOOPED, 2, 5, 2), small_config(LTF_LOOPED, 3, 4, 4)};
        for (int i = 0; i < 3; i++) {
            long got = launches_of_step(cs[i], 2, 4), want = ltf_gpu_launches_per_step(&cs[i]);
            CHECK(got == want, "config %d (L=%d b=%d T=%d): %ld launches per step, the model says %ld", i, cs[i].n_layer,
                  cs[i].n_loops, cs[i].loop_window, got, want);
        }
    }
    {   /* launches per training step in the paper's setting (d=20, n=41, L=1, b=20, T=15), at
         * C=32 and 2 prompts: the count depends on L, b and T only; the budget is 350 */
        ltf_config c = small_config(LTF_LOOPED, 1, 20, 15);
        c.n_dims = 20; c.n_positions = 41; c.n_embd = 32; c.n_head = 4;
        ltf_train_config t;
        ltf_train_config_default(&t);
        t.batch_size = 2; t.n_points = 41;
        ltf_curriculum cur;
        ltf_curriculum_off(&cur, &c, 41);
        ltf_train_state st;
        ltf_train_state_init(&st, LTF_TASK_LINEAR, &t, &cur, 5);
        ltf_model m;
        ltf_model_create(&m, &c, 1, err);
        CHECK(ltf_model_to_gpu(&m, err) == 0, "to_gpu: %s", err);
        setenv("LTF_CUDA_GRAPH", "0", 1);   /* every launch queued by the host: countable */
        CHECK(ltf_train_next(&m, &st, NULL, NULL, &loss, NULL) == 0, "step: %s", m.err);   /* allocates */
        long q0 = ltf_gpu_launches(), r0 = emu_ran(), s0 = emu_syncs();
        CHECK(ltf_train_next(&m, &st, NULL, NULL, &loss, NULL) == 0, "step: %s", m.err);
        long queued = ltf_gpu_launches() - q0, ran = emu_ran() - r0, waits = emu_syncs() - s0;
        unsetenv("LTF_CUDA_GRAPH");
        printf("  paper setting (L=1 b=20 T=15): %ld launches per training step (budget 350), %ld host wait%s\n",
               queued, waits, waits == 1 ? "" : "s");
        CHECK(queued <= 350, "%ld launches per step in the paper setting: the budget is 350", queued);
        /* the performance model's count (workbench/speed.h): 8 + 5 x 8 before the window + 15 x (9 + 11) */
        CHECK(queued == ltf_gpu_launches_per_step(&c), "launch count %ld, the model says %ld", queued, ltf_gpu_launches_per_step(&c));
#ifdef LTF_CUDA_EMU
        CHECK(ran == queued && waits == 1, "the emulator ran %ld launches (queued %ld) and waited %ld times (want 1)", ran, queued, waits);
#endif
        /* recorded: the same step, replayed as one graph; the host still waits once */
        CHECK(ltf_train_next(&m, &st, NULL, NULL, &loss, NULL) == 0, "recording step: %s", m.err);
        q0 = ltf_gpu_launches(); r0 = emu_ran(); s0 = emu_syncs();
        long replays = ltf__graph_replays;
        CHECK(ltf_train_next(&m, &st, NULL, NULL, &loss, NULL) == 0, "replayed step: %s", m.err);
        queued = ltf_gpu_launches() - q0; ran = emu_ran() - r0; waits = emu_syncs() - s0;
        printf("  replayed: %ld launches queued by the host, 1 graph of %ld nodes, %ld host wait%s\n", queued, ran, waits,
               waits == 1 ? "" : "s");
        CHECK(ltf__graph_replays == replays + 1 && queued == 0, "a replayed step queued %ld launches", queued);
#ifdef LTF_CUDA_EMU
        CHECK(ran == ltf_gpu_launches_per_step(&c) && waits == 1, "replay ran %ld nodes, %ld waits", ran, waits);
#endif
        ltf_model_free(&m);
    }
    {   /* recorded steps = plain steps, bit for bit, through curriculum shape changes (a
         * recording per shape); a NaN step replayed from a recording changes nothing */
        ltf_config c = small_config(LTF_LOOPED, 1, 3, 2);
        ltf_model a, b;
        ltf_train_state sa = small_state(LTF_TASK_LINEAR, 11), sb = sa;
        ltf_model_create(&a, &c, 21, err); ltf_model_create(&b, &c, 21, err);
        ltf_model_to_gpu(&a, err);
        CHECK(ltf_model_to_gpu(&b, err) == 0, "to_gpu: %s", err);
        long rec0 = ltf__graph_records, rep0 = ltf__graph_replays;
        train_steps(&a, &sa, 10);
        long rec = ltf__graph_records - rec0, rep = ltf__graph_replays - rep0;
        setenv("LTF_CUDA_GRAPH", "0", 1);
        train_steps(&b, &sb, 10);
        unsetenv("LTF_CUDA_GRAPH");
        printf("  10 curriculum steps: %ld recordings (one per shape), %ld replays\n", rec, rep);
        CHECK(rec >= 3 && rec + rep == 10, "10 steps made %ld recordings and %ld replays", rec, rep);
        ltf_model_sync_host(&a, err); ltf_model_sync_host(&b, err);
        CHECK(same_floats(a.params, b.params, a.n_params) && same_floats(a.adam_v, b.adam_v, a.n_params) && a.adam_t == b.adam_t,
              "recorded steps differ from plain steps");
        ltf_model_free(&b);
        /* host batches: the first step records, the second (a NaN target) replays */
        ltf_train_config t;
        ltf_train_config_default(&t);
        float *xs = rand_buf(4 * 5 * 3, 1), *ys = rand_buf(20, 1);
        CHECK(ltf_train_step(&a, &t, xs, ys, 4, 5, &loss) == 0, "host-batch step: %s", a.err);
        ltf_model_sync_host(&a, err);
        float *p0 = copy_of(a.params, a.n_params), *m0 = copy_of(a.adam_m, a.n_params);
        long t0 = a.adam_t;
        rep0 = ltf__graph_replays;
        ys[7] = NAN;
        int rc = ltf_train_step(&a, &t, xs, ys, 4, 5, &loss);
        ltf_model_sync_host(&a, err);
        CHECK(rc == -1 && strstr(a.err, "NaN") && ltf__graph_replays == rep0 + 1, "replayed NaN step: rc %d '%s'", rc, a.err);
        CHECK(same_floats(p0, a.params, a.n_params) && same_floats(m0, a.adam_m, a.n_params) && a.adam_t == t0,
              "a replayed NaN step changed the parameters or Adam's state");
        free(xs); free(ys); free(p0); free(m0);
        ltf_model_free(&a);
    }
}

/* TF32 and BF16 matrix multiplies (emulated tensor cores here): the error bound of
 * looped_tf_cuda.cu [4] element by element, a mean signed error of ~0 on positive data (round
 * to nearest; truncated operands give about -1.5 u, computed below to show
 * that the check can fail), and one training pass's gradients near float32's. */
static void test_gpu_tensor_cores(void) {
    if (!gpu_ready()) return;
    char err[LTF_ERR_LEN];
    CHECK(ltf_gpu_set_precision("fp16", err) == -1 && strstr(err, "'fp16'") && strstr(err, "tf32"), "bad precision: '%s'", err);
    const char *modes[2] = {"tf32", "bf16"};
    const uint32_t cut[2] = {0x1fffu, 0xffffu};            /* the mantissa bits each drops       */
    const double us[2] = {ldexp(1.0, -11), ldexp(1.0, -8)}, grad_tol[2] = {1e-2, 5e-2};   /* u = 2^-(mantissa bits + 1) */
    int M = 70, N = 50, K = 300;
    for (int mode = 0; mode < 2; mode++) {
        double u = us[mode];
        CHECK(ltf_gpu_set_precision(modes[mode], err) == 0, "%s: %s", modes[mode], err);
        for (int positive = 0; positive < 2; positive++) {
            float *A = rand_buf((size_t)M * K, 1), *B = rand_buf((size_t)K * N, 1), *Cm = zeros((size_t)M * N);
            if (positive)
                for (size_t i = 0; i < (size_t)M * K || i < (size_t)K * N; i++) {
                    if (i < (size_t)M * K) A[i] = 0.5f + (float)ltf_rng_uniform(&g_rng);
                    if (i < (size_t)K * N) B[i] = 0.5f + (float)ltf_rng_uniform(&g_rng);
                }
            float *dA = gpu_copy(A, (size_t)M * K), *dB = gpu_copy(B, (size_t)K * N), *dC = gpu_copy(NULL, (size_t)M * N);
            ltf__gpu_gemm(M, N, K, dA, K, 1, dB, N, 1, dC, N);
            gpu_read(Cm, dC, sizeof(float) * M * N);
            double worst, mean, mean_trunc;
            gemm_error_vs_fp64(A, B, Cm, M, N, K, cut[mode], u, &worst, &mean, &mean_trunc);
            printf("  %s, %s data: worst error %.2f of the bound, mean signed error %+.3f u (operands truncated: %+.2f u)\n",
                   modes[mode], positive ? "positive" : "signed", worst, mean, mean_trunc);
            CHECK(worst <= 1.0, "%s: an element's error is %.2f times the bound", modes[mode], worst);
            if (positive) {
                CHECK(fabs(mean) <= 0.1, "%s: mean signed error %.3g u: rounding is biased", modes[mode], mean);
                CHECK(mean_trunc <= -1.0, "%s: the truncation control %.3g u does not separate", modes[mode], mean_trunc);
            }
            free(A); free(B); free(Cm); ltf__gpu_release(dA); ltf__gpu_release(dB); ltf__gpu_release(dC);
        }
        /* a training step on the GPU in this precision against the CPU's float32 step */
        ltf_config c = small_config(LTF_LOOPED, 1, 4, 2);
        c.n_embd = 32; c.n_head = 4; c.n_dims = 5; c.n_positions = 9;
        ltf_model mc, mg;
        if (gpu_twins(&mc, &mg, &c, 0.5f) != 0) continue;
        float *xs = rand_buf(4 * 9 * 5, 1), *ys = rand_buf(36, 1), lc, lg;
        const char *name = "";
        ltf_forward_backward(&mc, xs, ys, 4, 9, &lc);
        CHECK(ltf_forward_backward(&mg, xs, ys, 4, 9, &lg) == 0, "%s step: %s", modes[mode], mg.err);
        ltf_model_sync_host(&mg, err);
        double eg = worst_tensor(&mc, mg.grads, mc.grads, 1, &name), el = fabs((double)lg - lc) / lc;
        printf("  %s training pass vs the CPU's float32: loss rel err %.1e, worst gradient %s rel err %.1e (bound %.0e)\n",
               modes[mode], el, name, eg, grad_tol[mode]);
        CHECK(el <= grad_tol[mode] && eg <= grad_tol[mode], "%s: loss %.2e, gradient of %s %.2e", modes[mode], el, name, eg);
        free(xs); free(ys);
        ltf_model_free(&mc); ltf_model_free(&mg);
    }
    CHECK(ltf_gpu_set_precision("fp32", err) == 0, "back to fp32: %s", err);
}

static void test_gpu_profile(void) {
    if (!gpu_ready()) return;
    char err[LTF_ERR_LEN];
    ltf_config c = small_config(LTF_LOOPED, 1, 3, 2);
    ltf_model m;
    ltf_train_state st = small_state(LTF_TASK_LINEAR, 3);
    ltf_model_create(&m, &c, 2, err);
    CHECK(ltf_model_to_gpu(&m, err) == 0, "to_gpu: %s", err);
    train_steps(&m, &st, 1);
    CHECK(ltf_gpu_profile(1, err) == 0, "profile on: %s", err);
    long q0 = ltf_gpu_launches();
    train_steps(&m, &st, 2);
    long queued = ltf_gpu_launches() - q0, launches = 0;
    ltf_gpu_phase ph[64];
    int n = ltf_gpu_profile_read(ph, 64, err);
    CHECK(ltf_gpu_profile(0, err) == 0, "profile off: %s", err);
    CHECK(n >= 10, "profile: %d kernels (%s)", n, n < 0 ? err : "");
    double ms = 0;
    for (int i = 0; i < n; i++) {
        launches += ph[i].launches; ms += ph[i].ms;
        CHECK(ph[i].ms >= 0 && ph[i].launches > 0 && (i == 0 || ph[i].ms <= ph[i - 1].ms), "phase %s: %ld launches, %.3f ms",
              ph[i].name, ph[i].launches, ph[i].ms);
    }
    CHECK(launches == queued, "the profile has %ld launches, the steps queued %ld", launches, queued);
    printf("  2 steps: %d kernels, %ld launches, %.1f ms; most time: %s (%.1f ms)\n", n, launches, ms, n > 0 ? ph[0].name : "-",
           n > 0 ? ph[0].ms : 0.0);
    ltf_model_free(&m);
}
#else
static void test_gpu_skipped(void) {
    char why[LTF_ERR_LEN];
    ltf_model m;
    ltf_config c = small_config(LTF_LOOPED, 1, 2, 2);
    ltf_model_create(&m, &c, 1, why);
    CHECK(ltf_gpu_available(why) == -1 && ltf_model_to_gpu(&m, why) == -1 && strcmp(ltf_model_backend(&m), "cpu") == 0 && strstr(why, "build.sh cuda"),
          "a CPU build must refuse the GPU with a message: '%s'", why);
    ltf_model_free(&m);
    printf("  skipped: built without CUDA (./build.sh cuda)\n");
}
#endif

/* ------------------------------------------------------------------ runner */

typedef struct { const char *name; void (*fn)(void); } test_case;

int main(int argc, char **argv) {
    test_case tests[] = {   /* in the order of this file's sections */
        {"gemm", test_gemm},                                  /* matrix multiply            */
        {"cpu_profile", test_cpu_profile},                    /* the CPU ops' profile       */
        {"bf16", test_bf16},                                  /* bf16 Linear layers         */
        {"plain_twins", test_plain_twins},                    /* plain twins                */
        {"op_gradients", test_op_gradients},                  /* op gradient checks         */
        {"model_gradients", test_model_gradients},            /* whole-model gradient checks */
        {"pytorch_fixtures", test_pytorch_fixtures},          /* PyTorch fixtures           */
        {"names_and_init", test_names_and_init},              /* structure                  */
        {"config_validation", test_config_validation},
        {"adam", test_adam},                                  /* training machinery         */
        {"determinism", test_determinism},
        {"training_learns", test_training_learns},
        {"threads_same_bits", test_threads_same_bits},
        {"nan_loses_nothing", test_nan_loses_nothing},
        {"memory_independent_of_b", test_memory_independent_of_b},
        {"tasks", test_tasks},                                /* tasks, curriculum, evaluation */
        {"curriculum", test_curriculum},
        {"eval_loops", test_eval_loops},
        {"checkpoint_roundtrip", test_checkpoint_roundtrip},  /* checkpoints                */
        {"checkpoint_variants", test_checkpoint_variants},
        {"demo_variants", test_demo_variants},
        {"classification", test_classification},
        {"demo_tabular", test_demo_tabular},
        {"checkpoint_resume", test_checkpoint_resume},
        {"checkpoint_rejects", test_checkpoint_rejects},
        {"checkpoint_garbage", test_checkpoint_garbage},
        {"checkpoint_atomic", test_checkpoint_atomic},
        {"checkpoint_pytorch", test_checkpoint_pytorch},
        {"baselines", test_baselines},                        /* workbench                  */
        {"baselines_extra", test_baselines_extra},
        {"cls_baselines", test_cls_baselines},
        {"bootstrap", test_bootstrap},
        {"plots", test_plots},
        {"fma_peak", test_fma_peak},
        {"probe", test_probe},
        {"tabular", test_tabular},
        {"alloc_failures", test_alloc_failures},              /* hardening                  */
        {"demo_flags", test_demo_flags},
        {"demo_signals", test_demo_signals},
        {"demo_faults", test_demo_faults},
        {"demo_records", test_demo_records},
        {"demo_report", test_demo_report},
        {"demo_sweep", test_demo_sweep},
        {"write_faults", test_write_faults},
        {"train_next_fault", test_train_next_fault},
#ifdef LOOPED_TF_CUDA
        {"gpu_errors", test_gpu_errors},                      /* GPU                        */
        {"gpu_samplers", test_gpu_samplers},
        {"gpu_ops", test_gpu_ops},
        {"gpu_step", test_gpu_step},
        {"gpu_train", test_gpu_train},
        {"gpu_graph", test_gpu_graph},
        {"gpu_tensor_cores", test_gpu_tensor_cores},
        {"gpu_profile", test_gpu_profile},
#else
        {"gpu", test_gpu_skipped},
#endif
    };
    if (argc == 4 && strcmp(argv[1], "--peak-child") == 0) return peak_child_main(atoi(argv[2]), atoi(argv[3]));
    g_filter = argc > 1 ? argv[1] : NULL;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (g_filter && !strstr(tests[i].name, g_filter)) continue;
        int before = g_fail;
        ltf_rng_seed(&g_rng, 2024);   /* each test draws the same data alone or in the whole run */
        printf("[%s]\n", tests[i].name);
        fflush(stdout);
        tests[i].fn();
        printf("  -> %s\n", g_fail == before ? "ok" : "FAILED");
        fflush(stdout);
    }
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}

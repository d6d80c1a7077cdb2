/* workbench/speed.h - the yardsticks of `demo bench`: the FLOP count of a training step and
 * this machine's multiply-add peak, so a step's speed reads as a share of what the CPU can do.
 *
 * Part of the looped-tf workbench (the demo's side of the tree, README "Layout"): include it
 * after looped_tf.h in the one file that defines LOOPED_TF_IMPLEMENTATION (demo.c, test.c); it
 * uses the header's private helpers (ltf__fail, LTF_MALLOC/LTF_FREE, the vector macros of the
 * matrix multiply: LTF__SIMD, ltf__vec). MIT licence, as the header.
 */
#ifndef LTF_WORKBENCH_SPEED_H
#define LTF_WORKBENCH_SPEED_H

double ltf_flops_per_step(const ltf_config *c, int B, int n);   /* FLOPs of one training step */
double ltf_fma_peak_gflops(double seconds);   /* this machine's multiply-add peak, all threads */

/* The GPU step's performance model (README "GPU"), for a device and a precision of the matrix
 * multiplies (0 fp32, 1 tf32, 2 bf16). Every term is a count from the code plus a stated
 * efficiency, so a measurement confirms or refutes it term by term. */
typedef struct {
    const char *name;
    double fp32_tflops, tf32_tflops, bf16_tflops, hbm_tbs;   /* the data sheet's dense peaks  */
} ltf_gpu_spec;
typedef struct {
    long launches;              /* kernels + memsets of a training step ([7]-[9] of the header) */
    double gemm_gflop, attn_gflop, bytes_gb;   /* matrix multiplies; attention; the other kernels' traffic */
    double ms_gemm, ms_attn, ms_mem, ms_launch, ms;   /* their times and the sum                */
} ltf_gpu_model;
extern const ltf_gpu_spec ltf_gpu_h100, ltf_gpu_h200;
long ltf_gpu_launches_per_step(const ltf_config *c);
ltf_gpu_model ltf_gpu_step_model(const ltf_config *c, int B, int n, int precision, const ltf_gpu_spec *dev);

/* The FLOP count of a training step: matrix multiplies and attention only (LayerNorm, GELU, Adam are O(BT C), negligible):
 *   per pass of f, per layer: 2 BT (3C^2 + C^2 + 8C^2) for the Linears
 *                            + 2 B H N(N+1)/2 hs * 2  for q k^T and att v (causal half)
 *   read_in: 2 BT d C.  Backward costs twice the forward.
 * A training step: b passes forward, the n_win = min(b, T) window passes backward (x2), read_in
 * forward and backward. */
double ltf_flops_per_step(const ltf_config *c, int B, int n) {
    double N = 2.0 * n, BT = B * N, C = c->n_embd, hs = C / c->n_head;
    double layer = 2.0 * BT * 12.0 * C * C + 4.0 * B * c->n_head * (N * (N + 1) / 2) * hs;
    double pass = c->n_layer * layer;
    int b = ltf__train_loops(c), n_win = ltf__window(c);
    return b * pass + 2.0 * n_win * pass + 3.0 * 2.0 * BT * c->n_dims * C;
}

/* ---- the GPU step's performance model ----
 * launches: 8 per step (tokens, read_in, 2 zeroings, read_in backward, gradient check, Adam,
 *   sampler) + per forward iteration 1 + 7L (injection with ln_1; per layer c_attn, attention,
 *   c_proj, residual + ln_2, c_fc + GELU, c_proj, residual + LayerNorm), +1 in the window (the
 *   read-out with the loss) + per backward iteration 3 + 8L (read-out backward, a zeroing per
 *   layer, ln_f backward, per layer 7 ops, the injection backward). test.c (gpu_graph) checks it
 *   against the launches the emulator counts.
 * time = matrix multiplies at 30% of the fp32 peak (64 x 64 tiles, no pipelining) or 25% of the
 *   tensor-core peak (wmma, synchronous staging) + attention's FLOPs at 10% of the fp32 peak
 *   (CUDA cores, one thread per row) + the other kernels' bytes at 60% of HBM bandwidth (the
 *   activations of one iteration, ~200 MB in the paper setting, do not stay in L2) + 1 us per
 *   launch (a replayed graph's node; ~4 us eager).
 * bytes per token row (floats): forward 16.5 C + H N (injection + ln_1 4C, attention 4C + H N,
 *   two residual + LayerNorm 8C, read-out C/2), backward 42 C + 3 H N (zeroing 15C, read-out C,
 *   three LayerNorm backward 12C, attention 10C + 3 H N, injection 4C); the Linears' traffic
 *   is counted in their FLOP time. */
const ltf_gpu_spec ltf_gpu_h100 = {"H100 SXM", 67.0, 495.0, 989.0, 3.35};
const ltf_gpu_spec ltf_gpu_h200 = {"H200", 67.0, 495.0, 989.0, 4.8};

long ltf_gpu_launches_per_step(const ltf_config *c) {
    long L = c->n_layer, b = ltf__train_loops(c), T = ltf__window(c);
    return 8 + (b - T) * (1 + 7 * L) + T * (2 + 7 * L) + T * (3 + 8 * L);
}

ltf_gpu_model ltf_gpu_step_model(const ltf_config *c, int B, int n, int precision, const ltf_gpu_spec *dev) {
    ltf_gpu_model g;
    double N = 2.0 * n, BT = B * N, C = c->n_embd, H = c->n_head, hs = C / H, L = c->n_layer;
    double b = ltf__train_loops(c), T = ltf__window(c), passes = b + 2 * T;   /* backward = 2 forwards */
    double attn_pass = L * 4.0 * B * H * (N * (N + 1) / 2) * hs;
    double rate = precision == 1 ? 0.25 * dev->tf32_tflops : precision == 2 ? 0.25 * dev->bf16_tflops : 0.30 * dev->fp32_tflops;
    memset(&g, 0, sizeof g);
    g.launches = ltf_gpu_launches_per_step(c);
    g.attn_gflop = passes * attn_pass / 1e9;
    g.gemm_gflop = ltf_flops_per_step(c, B, n) / 1e9 - g.attn_gflop;
    g.bytes_gb = 4.0 * BT * (b * (L * (16.5 * C + H * N)) + T * (L * (42.0 * C + 3 * H * N))) / 1e9;
    g.ms_gemm = g.gemm_gflop / rate;                          /* GFLOP / (TFLOP/s) = ms */
    g.ms_attn = g.attn_gflop / (0.10 * dev->fp32_tflops);
    g.ms_mem = g.bytes_gb / (0.60 * dev->hbm_tbs);            /* GB / (TB/s) = ms */
    g.ms_launch = g.launches * 1e-3;
    g.ms = g.ms_gemm + g.ms_attn + g.ms_mem + g.ms_launch;
    return g;
}

/* The yardstick for ltf_gemm: this machine's multiply-add peak in GFLOP/s on all threads. Each
 * thread runs 12 independent chains of vector fused multiply-adds (no memory traffic; 12 chains
 * cover the FMA latency times the FMA units of current x86 cores) for about `seconds`; the
 * best of three rounds counts. `demo bench` prints a step's GFLOP/s as a fraction of it. */
#ifdef _OPENMP
#define ltf__wtime() omp_get_wtime()
#else
#include <time.h>
#define ltf__wtime() ((double)clock() / CLOCKS_PER_SEC)
#endif
#ifdef LTF__SIMD
typedef ltf__vec ltf__peak_t;
#define ltf__peak_set(x) ltf__vset1(x)
#define ltf__peak_fma(a, x, y) ltf__vfma(a, x, y)
#define ltf__peak_lane0(v) ((float *)&(v))[0]
#define LTF__PEAK_FLOPS (2.0 * LTF__VL)
#else
typedef float ltf__peak_t;   /* no vector FMA: multiply, then add */
#define ltf__peak_set(x) (x)
#define ltf__peak_fma(a, x, y) ((a) * (x) + (y))
#define ltf__peak_lane0(v) (v)
#define LTF__PEAK_FLOPS 2.0
#endif
double ltf_fma_peak_gflops(double seconds) {
    double best = 0;
    long iters = 1 << 20;
    volatile float sink = 0;
    for (int round = 0; round < 3; round++) {
        double t0 = ltf__wtime(), flops = 0, keep = 0;
        #pragma omp parallel reduction(+ : flops, keep)
        {
            ltf__peak_t x = ltf__peak_set(0.9999999f), y = ltf__peak_set(1e-7f);
            ltf__peak_t p0 = ltf__peak_set(0.1f), p1 = ltf__peak_set(0.2f), p2 = ltf__peak_set(0.3f), p3 = ltf__peak_set(0.4f);
            ltf__peak_t p4 = ltf__peak_set(0.5f), p5 = ltf__peak_set(0.6f), p6 = ltf__peak_set(0.7f), p7 = ltf__peak_set(0.8f);
            ltf__peak_t p8 = ltf__peak_set(0.9f), p9 = ltf__peak_set(1.1f), p10 = ltf__peak_set(1.2f), p11 = ltf__peak_set(1.3f);
            for (long it = 0; it < iters; it++) {
                p0 = ltf__peak_fma(p0, x, y); p1 = ltf__peak_fma(p1, x, y); p2 = ltf__peak_fma(p2, x, y);
                p3 = ltf__peak_fma(p3, x, y); p4 = ltf__peak_fma(p4, x, y); p5 = ltf__peak_fma(p5, x, y);
                p6 = ltf__peak_fma(p6, x, y); p7 = ltf__peak_fma(p7, x, y); p8 = ltf__peak_fma(p8, x, y);
                p9 = ltf__peak_fma(p9, x, y); p10 = ltf__peak_fma(p10, x, y); p11 = ltf__peak_fma(p11, x, y);
            }
            p0 = ltf__peak_fma(p0, p1, p2); p3 = ltf__peak_fma(p3, p4, p5); p6 = ltf__peak_fma(p6, p7, p8);
            p9 = ltf__peak_fma(p9, p10, p11); p0 = ltf__peak_fma(p0, p3, p6); p0 = ltf__peak_fma(p0, p9, p0);
            keep += ltf__peak_lane0(p0);   /* the result is used: the chains stay */
            flops += 12.0 * LTF__PEAK_FLOPS * (double)iters;
        }
        double t = ltf__wtime() - t0;
        sink = sink + (float)keep;
        if (t > 0 && flops / t / 1e9 > best) best = flops / t / 1e9;
        if (t < seconds / 3 && iters < ((long)1 << 30)) { iters *= 2; round--; }   /* too short to time: longer */
    }
    return best;
}

#endif /* LTF_WORKBENCH_SPEED_H */

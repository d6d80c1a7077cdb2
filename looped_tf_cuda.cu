/* looped_tf_cuda.cu - the CUDA backend of looped_tf.h: the ops of a training step as kernels.
 *
 * Not a separate translation unit: looped_tf.h includes this file at the end of its
 * implementation when LOOPED_TF_CUDA is defined, so the one file that defines
 * LOOPED_TF_IMPLEMENTATION is compiled by nvcc as CUDA (HOW TO USE in the header; ./build.sh
 * cuda). It sees the header's private helpers and reuses them instead of restating them: the
 * exp and tanh of the ops (ltf__expf, ltf__tanhf; LTF__HD makes them callable from kernels),
 * the batch room of the store (ltf__batch_room) and ltf__use_backend.
 *
 * DESIGN
 *   What lives here: ops, not the loop. The header writes the paper's logic once ([7] the
 *   backbone, [8] the loop, the window loss and its backward, predict, [9] Adam's step sizes)
 *   over the op table ltf_backend ([6]). This file fills that table for a GPU: memory (alloc,
 *   put, get, finish) and one launcher per op with the arguments of the CPU op, now device
 *   pointers, and the same contract (backward ADDS into gradients). ltf_model_to_gpu moves a
 *   model's store (parameters, gradients, Adam moments, activations, batch) to the device.
 *   Precision: float32 everywhere, no TF32, sums in the CPU's order where the CPU has one
 *   (bias and LayerNorm weight gradients, attention), a tiled order in the matrix multiply, a
 *   tree in row reductions. Kernels agree with the CPU ops to ~1e-7 relative (test.c: gpu_*).
 *   Deterministic: no floating-point atomics, so the same inputs give the same bits on every
 *   run (a GPU run resumes bit-identically from its checkpoint).
 *   Synchronisation: ops only queue work on the default stream. A training step reads the
 *   device once, at its end (the loss and the gradient check, 16 bytes), and Adam's step
 *   waits for its kernel; ltf_train_next draws its prompts on the device.
 *   Simple first: one thread per query row in attention, one block per row in LayerNorm, a
 *   64 x 64 shared-memory tile in the matrix multiply; residual + LayerNorm as two kernels.
 *   Errors: every CUDA runtime call is checked; a kernel that fails to launch is noted and
 *   reported, with its name, by the next get or finish, which returns -1 + the message.
 *
 * SECTIONS
 *   [0] runtime, errors, launches   [2] counter-based RNG    [6] device memory
 *   [4] matrix multiply             [5] ops of the block     [5] ops of the loop
 *   [6] Adam and the gradient check [10] tasks on the device  [14] the backend table, public API
 *
 * Test build: with LTF_CUDA_EMU (g++, no nvcc) tests/cuda_emu.h stands in for the CUDA runtime
 * and runs the kernels on the CPU (./build.sh cuda-emu): the GPU tests without a GPU.
 */
#ifdef LTF_CUDA_EMU
#include "tests/cuda_emu.h"   /* the CUDA runtime, emulated on the CPU */
#else
#include <cuda_runtime.h>
#endif

/* ============================== [0] runtime, errors, launches ============================== */

#define LTF__THREADS 256      /* threads per block of the element-wise kernels                  */
#define LTF__RED 256          /* most threads of a block that reduces (a power of two)          */

/* The first kernel launch that failed since the last ltf__gpu_finish (a host thread's calls
 * are serial; the library is not meant for concurrent use from several threads). */
static cudaError_t ltf__gpu_error = cudaSuccess;
static const char *ltf__gpu_error_what = "";

static void ltf__gpu_note(cudaError_t e, const char *what) {
    if (e != cudaSuccess && ltf__gpu_error == cudaSuccess) { ltf__gpu_error = e; ltf__gpu_error_what = what; }
}

/* With LTF_CUDA_SYNC set in the environment every launch waits for its kernel, so an error
 * while a kernel runs is reported against that kernel's name (slow: for finding a fault). */
static void ltf__gpu_launched(const char *kernel) {
    static int sync_each = -1;
    ltf__gpu_note(cudaGetLastError(), kernel);
    if (sync_each < 0) sync_each = getenv("LTF_CUDA_SYNC") != NULL;
    if (sync_each) ltf__gpu_note(cudaDeviceSynchronize(), kernel);
}

/* kernel<<<grid, block>>>(args), then note a launch failure (bad configuration, no kernel
 * image for this GPU, ...). Errors while the kernel runs surface at the next synchronization
 * (at once with LTF_CUDA_SYNC). */
#ifdef LTF_CUDA_EMU
#define LTF__LAUNCH(kernel, grid, block, ...) \
    do { ltf_emu_kernel(#kernel, (grid), (block), kernel)(__VA_ARGS__); ltf__gpu_launched(#kernel); } while (0)
#else
#define LTF__LAUNCH(kernel, grid, block, ...) \
    do { kernel<<<(grid), (block)>>>(__VA_ARGS__); ltf__gpu_launched(#kernel); } while (0)
#endif

/* -1 + "CUDA error while <what>: <CUDA's message>". cudaGetLastError clears the error, so a
 * failed allocation does not haunt later calls. */
static int ltf__cuda_fail(char *err, cudaError_t e, const char *what) {
    cudaGetLastError();
    return ltf__fail(err, "CUDA error while %s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}
#define LTF__CU(err, call, what) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) return ltf__cuda_fail((err), e_, (what)); } while (0)

/* Waits for the GPU, then reports the first failure since the last call: a kernel that did not
 * launch, or one that failed while running (an illegal address, say, which also leaves the
 * CUDA context unusable: the process must restart to use the GPU again). */
static int ltf__gpu_finish(char *err, const char *what) {
    cudaError_t run = cudaDeviceSynchronize(), launch = ltf__gpu_error;
    const char *kernel = ltf__gpu_error_what;
    ltf__gpu_error = cudaSuccess;
    if (launch != cudaSuccess) {
        cudaGetLastError();
        return ltf__fail(err, "CUDA error in %s: %s failed: %s", what, kernel, cudaGetErrorString(launch));
    }
    if (run != cudaSuccess)
        return ltf__fail(err, "CUDA error in %s: %s (%s); the GPU context may be lost, restart the program",
                         what, cudaGetErrorString(run), cudaGetErrorName(run));
    return 0;
}

/* Blocks for n threads of LTF__THREADS; kernels loop (LTF__FOR_EACH) when n is larger. */
static unsigned ltf__blocks(size_t n) {
    size_t b = (n + LTF__THREADS - 1) / LTF__THREADS;
    return (unsigned)(b < 1 ? 1 : b > (1u << 20) ? (1u << 20) : b);
}
/* Threads of a reducing block for rows of `width`: a power of two in 32..LTF__RED. */
static unsigned ltf__red_threads(size_t width) {
    unsigned t = 32;
    while (t < LTF__RED && t < width) t *= 2;
    return t;
}
/* Blocks for one block per row, rows > this loop inside the kernel. */
static unsigned ltf__row_blocks(size_t rows) { return (unsigned)(rows < 1 ? 1 : rows > (1u << 20) ? (1u << 20) : rows); }

#define LTF__FOR_EACH(i, n) \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)(n); i += (size_t)gridDim.x * blockDim.x)
#define LTF__FOR_EACH_ROW(r, rows) for (size_t r = blockIdx.x; r < (size_t)(rows); r += gridDim.x)

/* Sum of v over the threads of the block, returned to every thread. blockDim.x is a power of
 * two <= LTF__RED, buf has LTF__RED entries of shared memory. A fixed tree: deterministic. */
template <typename T>
__device__ T ltf__block_sum(T v, T *buf) {
    buf[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
        __syncthreads();
    }
    T r = buf[0];
    __syncthreads();   /* everyone has read buf[0] before the next call writes buf */
    return r;
}

/* memset on the device, noted like a launch: the CPU code's memset, same place. */
static void ltf__gpu_zero(float *p, size_t n) {
    ltf__gpu_note(cudaMemset(p, 0, n * sizeof(float)), "cudaMemset");
}
/* ============================== [2] counter-based RNG ==============================
 * Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy as 1, 2, 3",
 * SC 2011): 128 random bits as a pure function of a 128-bit counter and a 64-bit key. Every
 * thread computes the numbers it needs from their coordinates, with no state to share or
 * advance, so a batch is drawn in parallel and identically on the host and the device
 * (LTF__HD). Checked against the Random123 known-answer vectors in test.c. */

LTF__HD static inline void ltf__philox4x32_10(uint32_t c[4], uint32_t k0, uint32_t k1) {
    for (int round = 0; round < 10; round++) {
        if (round > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }   /* Weyl key schedule */
        uint64_t p0 = (uint64_t)0xD2511F53u * c[0], p1 = (uint64_t)0xCD9E8D57u * c[2];
        uint32_t c0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k0, c2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k1;
        c[0] = c0; c[1] = (uint32_t)p1; c[2] = c2; c[3] = (uint32_t)p0;
    }
}

/* What a number is for: part of its counter, so no two uses share one. */
enum { LTF__DRAW_X = 1, LTF__DRAW_W, LTF__DRAW_NOISE, LTF__DRAW_SPARSE, LTF__DRAW_NODE, LTF__DRAW_LEAF,
       LTF__DRAW_W1, LTF__DRAW_W2 };

/* 128 bits for (key, purpose, prompt p, index a, index j): counter (j, a, p, purpose). */
LTF__HD static inline void ltf__draw(uint32_t u[4], uint64_t key, int what, int p, int a, int j) {
    u[0] = (uint32_t)j; u[1] = (uint32_t)a; u[2] = (uint32_t)p; u[3] = (uint32_t)what;
    ltf__philox4x32_10(u, (uint32_t)key, (uint32_t)(key >> 32));
}
/* [0, 1) with 53 random bits from two words, as ltf_rng_uniform */
LTF__HD static inline double ltf__u53(uint32_t hi, uint32_t lo) {
    return (double)((uint64_t)(hi >> 5) * 67108864u + (lo >> 6)) / 9007199254740992.0;
}
LTF__HD static inline double ltf__draw_uniform(uint64_t key, int what, int p, int a, int j) {
    uint32_t u[4];
    ltf__draw(u, key, what, p, a, j);
    return ltf__u53(u[0], u[1]);
}
/* N(0, 1) by Box-Muller, as ltf_rng_normal: u1 in (0, 1] keeps log finite */
LTF__HD static inline double ltf__draw_normal(uint64_t key, int what, int p, int a, int j) {
    uint32_t u[4];
    ltf__draw(u, key, what, p, a, j);
    double u1 = 1.0 - ltf__u53(u[0], u[1]), u2 = ltf__u53(u[2], u[3]);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* splitmix64's finalizer (Steele, Lea, Flood 2014): a bijective 64-bit mix */
static uint64_t ltf__mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
/* The Philox key of training step `step` of a run whose data RNG is r (which the GPU path
 * never advances, so a resumed run gets the same keys). */
static uint64_t ltf__step_key(const ltf_rng *r, long step) {
    return ltf__mix64(ltf__mix64(r->state ^ ltf__mix64(r->inc)) + (uint64_t)step);
}
/* ============================== [4] matrix multiply ==============================
 *     Cm[M, N] += A[M, K] . B[K, N]      A, B read through (row, column) strides, as ltf_gemm
 * One block of 256 threads per 64 x 64 tile of Cm; each thread holds a 4 x 4 piece of it in
 * registers (rows ty + 16 r, columns tx + 16 c) while k runs through 16-wide slices of A and
 * B staged in shared memory (zero outside the matrices). Every element sums its K products
 * in order k = 0, 1, ... and is added to Cm once. Row tiles beyond grid.y loop. */

#define LTF__TM 64
#define LTF__TK 16

__global__ void ltf__k_gemm(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col,
                            const float *B, ptrdiff_t b_row, ptrdiff_t b_col, float *Cm, ptrdiff_t ldc) {
    __shared__ float As[LTF__TK][LTF__TM], Bs[LTF__TK][LTF__TM];
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;          /* needs blockDim.x == 256 */
    int j0 = blockIdx.x * LTF__TM;
    for (int i0 = blockIdx.y * LTF__TM; i0 < M; i0 += gridDim.y * LTF__TM) {
        float acc[4][4];
        for (int r = 0; r < 4; r++)
            for (int q = 0; q < 4; q++) acc[r][q] = 0.0f;
        for (int k0 = 0; k0 < K; k0 += LTF__TK) {
            for (int e = threadIdx.x; e < LTF__TK * LTF__TM; e += 256) {   /* stage the slices */
                int kk = e % LTF__TK, ii = e / LTF__TK, k = k0 + kk;
                int i = i0 + ii, j = j0 + ii;
                As[kk][ii] = i < M && k < K ? A[(ptrdiff_t)i * a_row + (ptrdiff_t)k * a_col] : 0.0f;
                Bs[kk][ii] = j < N && k < K ? B[(ptrdiff_t)k * b_row + (ptrdiff_t)j * b_col] : 0.0f;
            }
            __syncthreads();
            for (int kk = 0; kk < LTF__TK; kk++) {
                float a[4], b[4];
                for (int r = 0; r < 4; r++) a[r] = As[kk][ty + 16 * r];
                for (int q = 0; q < 4; q++) b[q] = Bs[kk][tx + 16 * q];
                for (int r = 0; r < 4; r++)
                    for (int q = 0; q < 4; q++) acc[r][q] += a[r] * b[q];
            }
            __syncthreads();   /* the slices are read before the next ones overwrite them */
        }
        for (int r = 0; r < 4; r++)
            for (int q = 0; q < 4; q++) {
                int i = i0 + ty + 16 * r, j = j0 + tx + 16 * q;
                if (i < M && j < N) Cm[(ptrdiff_t)i * ldc + j] += acc[r][q];
            }
    }
}

static void ltf__gpu_gemm(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col,
                          const float *B, ptrdiff_t b_row, ptrdiff_t b_col, float *Cm, ptrdiff_t ldc) {
    if (M <= 0 || N <= 0 || K <= 0) return;
    int tiles_m = (M + LTF__TM - 1) / LTF__TM;
    dim3 grid((unsigned)((N + LTF__TM - 1) / LTF__TM), (unsigned)(tiles_m < 65535 ? tiles_m : 65535));
    LTF__LAUNCH(ltf__k_gemm, grid, 256, M, N, K, A, a_row, a_col, B, b_row, b_col, Cm, ldc);
}

/* ============================== [5] ops of the block ==============================
 * The ops of the header's [5], same arguments (device pointers), same math (see the comments
 * there), backward ADDS into gradients. */

/* Linear: out = inp . w^T + bias (bias first, then the product added, as on the CPU) */
__global__ void ltf__k_bias_fill(float *out, const float *bias, size_t rows, int OC) {
    LTF__FOR_EACH(i, rows * OC) out[i] = bias ? bias[i % OC] : 0.0f;
}

/* dbias[o] += sum_r dout[r, o], r in order, as the CPU: one thread per o */
__global__ void ltf__k_bias_backward(float *dbias, const float *dout, int BT, int OC) {
    LTF__FOR_EACH(o, OC) {
        float s = dbias[o];
        for (int r = 0; r < BT; r++) s += dout[(size_t)r * OC + o];
        dbias[o] = s;
    }
}

static void ltf__gpu_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int BT, int C, int OC) {
    LTF__LAUNCH(ltf__k_bias_fill, ltf__blocks((size_t)BT * OC), LTF__THREADS, out, bias, (size_t)BT, OC);
    ltf__gpu_gemm(BT, OC, C, inp, C, 1, w, 1, C, out, OC);
}

static void ltf__gpu_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                                     const float *w, int BT, int C, int OC) {
    if (dinp) ltf__gpu_gemm(BT, C, OC, dout, OC, 1, w, C, 1, dinp, C);
    if (dw) ltf__gpu_gemm(OC, C, BT, dout, 1, OC, inp, C, 1, dw, C);
    if (dbias) LTF__LAUNCH(ltf__k_bias_backward, ltf__blocks((size_t)OC), LTF__THREADS, dbias, dout, BT, OC);
}

/* LayerNorm: one block per row; mean and variance by block sums */
__global__ void ltf__k_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                                         const float *b, int BT, int C) {
    __shared__ float buf[LTF__RED];
    LTF__FOR_EACH_ROW(r, BT) {
        const float *x = inp + r * C;
        float *o = out + r * C, s = 0.0f, v = 0.0f;
        for (int i = threadIdx.x; i < C; i += blockDim.x) s += x[i];
        float m = ltf__block_sum(s, buf) / (float)C;
        for (int i = threadIdx.x; i < C; i += blockDim.x) v += (x[i] - m) * (x[i] - m);
        float sd = 1.0f / sqrtf(ltf__block_sum(v, buf) / (float)C + 1e-5f);
        for (int i = threadIdx.x; i < C; i += blockDim.x) o[i] = (x[i] - m) * sd * w[i] + b[i];
        if (threadIdx.x == 0) { mean[r] = m; rstd[r] = sd; }
    }
}

/* dinp: one block per row (two block sums); dw, db: one thread per column, rows in order */
__global__ void ltf__k_layernorm_backward_inp(float *dinp, const float *dout, const float *inp, const float *w,
                                              const float *mean, const float *rstd, int BT, int C) {
    __shared__ float buf[LTF__RED];
    LTF__FOR_EACH_ROW(r, BT) {
        const float *x = inp + r * C, *dy = dout + r * C;
        float *dx = dinp + r * C, m = mean[r], s = rstd[r], g_sum = 0.0f, gx_sum = 0.0f;
        for (int i = threadIdx.x; i < C; i += blockDim.x) {
            float xhat = (x[i] - m) * s, g = w[i] * dy[i];
            g_sum += g; gx_sum += g * xhat;
        }
        float g_mean = ltf__block_sum(g_sum, buf) / (float)C, gx_mean = ltf__block_sum(gx_sum, buf) / (float)C;
        for (int i = threadIdx.x; i < C; i += blockDim.x) {
            float xhat = (x[i] - m) * s, g = w[i] * dy[i];
            dx[i] += s * (g - g_mean - xhat * gx_mean);
        }
    }
}

__global__ void ltf__k_layernorm_backward_params(float *dw, float *db, const float *dout, const float *inp,
                                                 const float *mean, const float *rstd, int BT, int C) {
    LTF__FOR_EACH(i, C) {
        float sw = dw[i], sb = db[i];
        for (int r = 0; r < BT; r++) {
            float dy = dout[(size_t)r * C + i], xhat = (inp[(size_t)r * C + i] - mean[r]) * rstd[r];
            sw += dy * xhat; sb += dy;
        }
        dw[i] = sw; db[i] = sb;
    }
}

static void ltf__gpu_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                                       const float *b, int BT, int C) {
    LTF__LAUNCH(ltf__k_layernorm_forward, ltf__row_blocks(BT), ltf__red_threads(C), out, mean, rstd, inp, w, b, BT, C);
}

static void ltf__gpu_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                                        const float *w, const float *mean, const float *rstd, int BT, int C) {
    LTF__LAUNCH(ltf__k_layernorm_backward_inp, ltf__row_blocks(BT), ltf__red_threads(C), dinp, dout, inp, w, mean, rstd, BT, C);
    LTF__LAUNCH(ltf__k_layernorm_backward_params, ltf__blocks((size_t)C), LTF__THREADS, dw, db, dout, inp, mean, rstd, BT, C);
}

/* Causal attention: one thread per query row (p, h, t), the loop body of ltf_attention_forward_plain. att [B, H, N, N]. */
__global__ void ltf__k_attention_forward(float *out, float *att, const float *qkv, int B, int N, int C, int H) {
    int hs = C / H;
    size_t C3 = 3 * (size_t)C;
    float scale = 1.0f / sqrtf((float)hs);
    LTF__FOR_EACH(row, (size_t)B * H * N) {            /* row = (p * H + h) * N + t */
        int t = (int)(row % N), h = (int)(row / N % H);
        size_t p = row / N / H;
        const float *q = qkv + (p * N + t) * C3 + h * hs;
        float *a = att + row * N;
        float mx = -INFINITY, sum = 0.0f;
        for (int t2 = 0; t2 <= t; t2++) {
            const float *k = qkv + (p * N + t2) * C3 + C + h * hs;
            float s = 0.0f;
            for (int i = 0; i < hs; i++) s += q[i] * k[i];
            s *= scale;
            a[t2] = s;
            if (s > mx) mx = s;
        }
        for (int t2 = 0; t2 <= t; t2++) { a[t2] = ltf__expf(a[t2] - mx); sum += a[t2]; }
        for (int t2 = 0; t2 <= t; t2++) a[t2] /= sum;
        for (int t2 = t + 1; t2 < N; t2++) a[t2] = 0.0f;
        float *o = out + (p * N + t) * C + h * hs;
        for (int i = 0; i < hs; i++) o[i] = 0.0f;
        for (int t2 = 0; t2 <= t; t2++) {
            const float *v = qkv + (p * N + t2) * C3 + 2 * C + h * hs;
            for (int i = 0; i < hs; i++) o[i] += a[t2] * v[i];
        }
    }
}

/* Backward in two passes, so that no two threads add into the same gradient:
 *  per query row t: datt[t2] = dout_t . v_t2, then ds[t2] = att[t2] (datt[t2] - sum_j att[j] datt[j])
 *     / sqrt(hs), kept in datt (the CPU keeps datt there; here it is ds), and dq_t += sum ds k_t2;
 *  per key row t2: dk_t2 += sum_{t >= t2} ds_t[t2] q_t, dv_t2 += sum_{t >= t2} att_t[t2] dout_t,
 *     t ascending, the order in which the CPU adds them. */
__global__ void ltf__k_attention_backward_query(float *dqkv, float *datt, const float *dout, const float *qkv,
                                                const float *att, int B, int N, int C, int H) {
    int hs = C / H;
    size_t C3 = 3 * (size_t)C;
    float scale = 1.0f / sqrtf((float)hs);
    LTF__FOR_EACH(row, (size_t)B * H * N) {
        int t = (int)(row % N), h = (int)(row / N % H);
        size_t p = row / N / H;
        const float *a = att + row * N, *dy = dout + (p * N + t) * C + h * hs;
        float *da = datt + row * N, *dq = dqkv + (p * N + t) * C3 + h * hs;
        float dot = 0.0f;
        for (int t2 = 0; t2 <= t; t2++) {
            const float *v = qkv + (p * N + t2) * C3 + 2 * C + h * hs;
            float s = 0.0f;
            for (int i = 0; i < hs; i++) s += dy[i] * v[i];
            da[t2] = s;
            dot += a[t2] * s;
        }
        for (int t2 = 0; t2 <= t; t2++) {
            const float *k = qkv + (p * N + t2) * C3 + C + h * hs;
            float ds = a[t2] * (da[t2] - dot) * scale;
            da[t2] = ds;
            for (int i = 0; i < hs; i++) dq[i] += ds * k[i];
        }
    }
}

__global__ void ltf__k_attention_backward_key(float *dqkv, const float *datt, const float *dout, const float *qkv,
                                              const float *att, int B, int N, int C, int H) {
    int hs = C / H;
    size_t C3 = 3 * (size_t)C;
    LTF__FOR_EACH(row, (size_t)B * H * N) {            /* row = (p * H + h) * N + t2 */
        int t2 = (int)(row % N), h = (int)(row / N % H);
        size_t p = row / N / H, bh = row / N;
        float *dk = dqkv + (p * N + t2) * C3 + C + h * hs, *dv = dk + C;
        for (int t = t2; t < N; t++) {
            size_t e = (bh * N + t) * N + t2;
            float ds = datt[e], prob = att[e];
            const float *q = qkv + (p * N + t) * C3 + h * hs, *dy = dout + (p * N + t) * C + h * hs;
            for (int i = 0; i < hs; i++) { dv[i] += prob * dy[i]; dk[i] += ds * q[i]; }
        }
    }
}

static void ltf__gpu_attention_forward(float *out, float *att, const float *qkv, int B, int N, int C, int H) {
    LTF__LAUNCH(ltf__k_attention_forward, ltf__blocks((size_t)B * H * N), LTF__THREADS, out, att, qkv, B, N, C, H);
}

static void ltf__gpu_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                                        const float *att, int B, int N, int C, int H) {
    unsigned blocks = ltf__blocks((size_t)B * H * N);
    LTF__LAUNCH(ltf__k_attention_backward_query, blocks, LTF__THREADS, dqkv, datt, dout, qkv, att, B, N, C, H);
    LTF__LAUNCH(ltf__k_attention_backward_key, blocks, LTF__THREADS, dqkv, datt, dout, qkv, att, B, N, C, H);
}

/* GELU (tanh form) */
__global__ void ltf__k_gelu_forward(float *out, const float *inp, size_t n) {
    LTF__FOR_EACH(i, n) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + ltf__tanhf(LTF__GELU_K * (x + 0.044715f * x * x * x)));
    }
}

__global__ void ltf__k_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    LTF__FOR_EACH(i, n) {
        float x = inp[i];
        float th = ltf__tanhf(LTF__GELU_K * (x + 0.044715f * x * x * x));
        float du = LTF__GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] += (0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du) * dout[i];
    }
}

static void ltf__gpu_gelu_forward(float *out, const float *inp, size_t n) {
    LTF__LAUNCH(ltf__k_gelu_forward, ltf__blocks(n), LTF__THREADS, out, inp, n);
}
static void ltf__gpu_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    LTF__LAUNCH(ltf__k_gelu_backward, ltf__blocks(n), LTF__THREADS, dinp, inp, dout, n);
}

/* Residual: out = a + b;  da += dout, db += dout (either may be NULL) */
__global__ void ltf__k_residual_forward(float *out, const float *a, const float *b, size_t n) {
    LTF__FOR_EACH(i, n) out[i] = a[i] + b[i];
}
__global__ void ltf__k_residual_backward(float *da, float *db, const float *dout, size_t n) {
    LTF__FOR_EACH(i, n) {
        if (da) da[i] += dout[i];
        if (db) db[i] += dout[i];
    }
}
static void ltf__gpu_residual_forward(float *out, const float *a, const float *b, size_t n) {
    LTF__LAUNCH(ltf__k_residual_forward, ltf__blocks(n), LTF__THREADS, out, a, b, n);
}
static void ltf__gpu_residual_backward(float *da, float *db, const float *dout, size_t n) {
    LTF__LAUNCH(ltf__k_residual_backward, ltf__blocks(n), LTF__THREADS, da, db, dout, n);
}

/* Positions: out[p, t] = inp[p, t] + wpe[t];  backward: one thread per (t, i), p in order */
__global__ void ltf__k_position_forward(float *out, const float *inp, const float *wpe, int B, int N, int C) {
    LTF__FOR_EACH(r, (size_t)B * N * C) out[r] = inp[r] + wpe[r % ((size_t)N * C)];
}
__global__ void ltf__k_position_backward(float *dinp, float *dwpe, const float *dout, int B, int N, int C) {
    size_t NC = (size_t)N * C;
    LTF__FOR_EACH(ti, NC) {
        float s = dwpe[ti];
        for (int p = 0; p < B; p++) {
            size_t r = (size_t)p * NC + ti;
            dinp[r] += dout[r];
            s += dout[r];
        }
        dwpe[ti] = s;
    }
}
static void ltf__gpu_position_forward(float *out, const float *inp, const float *wpe, int B, int N, int C) {
    LTF__LAUNCH(ltf__k_position_forward, ltf__blocks((size_t)B * N * C), LTF__THREADS, out, inp, wpe, B, N, C);
}
static void ltf__gpu_position_backward(float *dinp, float *dwpe, const float *dout, int B, int N, int C) {
    LTF__LAUNCH(ltf__k_position_backward, ltf__blocks((size_t)N * C), LTF__THREADS, dinp, dwpe, dout, B, N, C);
}

/* h = a + c, out = LN(h): the CPU fuses the two (one pass over a row in cache); here two kernels */
static void ltf__gpu_residual_layernorm_forward(float *h, float *out, float *mean, float *rstd, const float *a,
                                                const float *c, const float *w, const float *b, int BT, int C) {
    ltf__gpu_residual_forward(h, a, c, (size_t)BT * C);
    ltf__gpu_layernorm_forward(out, mean, rstd, h, w, b, BT, C);
}

/* ============================== [5] ops of the loop ==============================
 * The header's loop ops (its [5] too: tokens, injection with the state mask, read-out, loss). */

/* z[p, 2i] = x_i, z[p, 2i+1] = (y_i, 0, ..., 0): one thread per element of z [B*2n, d] */
__global__ void ltf__k_tokens(float *z, const float *xs, const float *ys, int B, int n, int d) {
    LTF__FOR_EACH(e, (size_t)B * 2 * n * d) {
        size_t row = e / d, bi = row / 2;       /* bi = p * n + i: the point this token shows */
        int j = (int)(e % d);
        z[e] = row % 2 == 0 ? xs[bi * d + j] : j == 0 ? ys[bi] : 0.0f;
    }
}

/* u = mask(Y) + E (Y == NULL: Y = 0); dY = mask(du) for the backward of the same. The mask
 * keeps tokens keep_lo..keep_hi-1 of each prompt. */
__global__ void ltf__k_inject(float *u, const float *Y, const float *E, int B, int N, int C, int keep_lo, int keep_hi) {
    LTF__FOR_EACH(e, (size_t)B * N * C) {
        int t = (int)(e / C % N), keep = Y && t >= keep_lo && t < keep_hi;
        u[e] = E[e] + (keep ? Y[e] : 0.0f);
    }
}
__global__ void ltf__k_mask_backward(float *dY, const float *du, int B, int N, int C, int keep_lo, int keep_hi) {
    LTF__FOR_EACH(e, (size_t)B * N * C) {
        int t = (int)(e / C % N);
        dY[e] = t >= keep_lo && t < keep_hi ? du[e] : 0.0f;
    }
}

/* pred[b, i] = w_out . Y[b, 2i] + b_out: one thread per point */
__global__ void ltf__k_read_out(float *pred, const float *Y, const float *w_out, const float *b_out, int B, int n, int C) {
    LTF__FOR_EACH(bi, (size_t)B * n) {
        const float *y = Y + 2 * bi * C;        /* row p * 2n + 2i = 2 * bi */
        float s = b_out[0];
        for (int k = 0; k < C; k++) s += w_out[k] * y[k];
        pred[bi] = s;
    }
}

/* backward of read_out: dY[p, 2i, k] += dpred[p, i] w_out[k] (one thread per element), and
 * g_w[k] += sum dpred Y[., k], g_b += sum dpred (one thread per k, points in order) */
__global__ void ltf__k_read_out_backward_state(float *dY, const float *dpred, const float *w_out, int B, int n, int C) {
    LTF__FOR_EACH(e, (size_t)B * n * C) {
        size_t bi = e / C;
        int k = (int)(e % C);
        dY[2 * bi * C + k] += dpred[bi] * w_out[k];
    }
}
__global__ void ltf__k_read_out_backward_params(float *g_w, float *g_b, const float *dpred, const float *Y, int B, int n, int C) {
    LTF__FOR_EACH(k, (size_t)C + 1) {
        float s = k < (size_t)C ? g_w[k] : g_b[0];
        for (size_t bi = 0; bi < (size_t)B * n; bi++) s += k < (size_t)C ? dpred[bi] * Y[2 * bi * C + k] : dpred[bi];
        if (k < (size_t)C) g_w[k] = s;
        else g_b[0] = s;
    }
}

/* stats->loss_sum (+)= sum_i (pred_i - y_i)^2 in double (first = 1: =): one block */
__global__ void ltf__k_loss_sum(ltf_stats *stats, const float *pred, const float *ys, size_t bn, int first) {
    __shared__ double buf[LTF__RED];
    double s = 0.0;
    for (size_t i = threadIdx.x; i < bn; i += blockDim.x) s += (double)(pred[i] - ys[i]) * (pred[i] - ys[i]);
    s = ltf__block_sum(s, buf);
    if (threadIdx.x == 0) stats->loss_sum = (first ? 0.0 : stats->loss_sum) + s;
}

/* dL/dpred = 2 (pred - y) / (K B n), in place over the prediction */
__global__ void ltf__k_loss_backward(float *dpred, const float *ys, size_t bn, float count) {
    LTF__FOR_EACH(i, bn) dpred[i] = 2.0f * (dpred[i] - ys[i]) / count;
}

static void ltf__gpu_tokens(float *z, const float *xs, const float *ys, int B, int n, int d) {
    LTF__LAUNCH(ltf__k_tokens, ltf__blocks((size_t)B * 2 * n * d), LTF__THREADS, z, xs, ys, B, n, d);
}
static void ltf__gpu_inject(float *u, const float *Y, const float *E, int B, int N, int C, int keep_lo, int keep_hi) {
    LTF__LAUNCH(ltf__k_inject, ltf__blocks((size_t)B * N * C), LTF__THREADS, u, Y, E, B, N, C, keep_lo, keep_hi);
}
static void ltf__gpu_mask_backward(float *dY, const float *du, int B, int N, int C, int keep_lo, int keep_hi) {
    LTF__LAUNCH(ltf__k_mask_backward, ltf__blocks((size_t)B * N * C), LTF__THREADS, dY, du, B, N, C, keep_lo, keep_hi);
}
static void ltf__gpu_read_out(float *pred, const float *Y, const float *w, const float *b, int B, int n, int C) {
    LTF__LAUNCH(ltf__k_read_out, ltf__blocks((size_t)B * n), LTF__THREADS, pred, Y, w, b, B, n, C);
}
static void ltf__gpu_read_out_backward(float *dY, float *dw, float *db, const float *dpred, const float *Y,
                                       const float *w, int B, int n, int C) {
    LTF__LAUNCH(ltf__k_read_out_backward_state, ltf__blocks((size_t)B * n * C), LTF__THREADS, dY, dpred, w, B, n, C);
    LTF__LAUNCH(ltf__k_read_out_backward_params, ltf__blocks((size_t)C + 1), LTF__THREADS, dw, db, dpred, Y, B, n, C);
}
static void ltf__gpu_loss_sum(ltf_stats *stats, const float *pred, const float *ys, size_t count, int first) {
    LTF__LAUNCH(ltf__k_loss_sum, 1, LTF__RED, stats, pred, ys, count, first);
}
static void ltf__gpu_loss_backward(float *dpred, const float *ys, size_t count, float denom) {
    LTF__LAUNCH(ltf__k_loss_backward, ltf__blocks(count), LTF__THREADS, dpred, ys, count, denom);
}

/* ============================== [6] device memory ============================== */

/* cudaMalloc of n floats, zeroed; "out of GPU memory" says how much was asked and is free. */
static int ltf__gpu_alloc(float **p, size_t n, char *err, const char *what) {
    cudaError_t e = n > ((size_t)-1) / sizeof(float) ? cudaErrorMemoryAllocation
                  : cudaMalloc((void **)p, (n ? n : 1) * sizeof(float));   /* exact: sanitizers see overruns */
    if (e != cudaSuccess) {
        size_t free_b = 0, total_b = 0;
        *p = NULL;
        cudaGetLastError();
        if (e == cudaErrorMemoryAllocation && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
            return ltf__fail(err, "out of GPU memory: %.1f MB for %s, the GPU has %.1f of %.1f MB free",
                             4.0 * (double)n / 1e6, what, free_b / 1e6, total_b / 1e6);
        cudaGetLastError();
        return ltf__cuda_fail(err, e, what);
    }
    LTF__CU(err, cudaMemset(*p, 0, (n ? n : 1) * sizeof(float)), "zeroing new GPU memory");
    return 0;
}

static void ltf__gpu_release(float *p) {
    cudaFree(p);
    cudaGetLastError();   /* freeing after a lost context fails too: nothing more to do */
}

static int ltf__gpu_put(void *dst, const void *src, size_t bytes, char *err) {
    LTF__CU(err, cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "copying to the GPU");
    return 0;
}

/* waits for everything queued, reports its first failure, then copies device -> host */
static int ltf__gpu_get(void *dst, const void *src, size_t bytes, char *err, const char *what) {
    if (ltf__gpu_finish(err, what) != 0) return -1;
    LTF__CU(err, cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "copying from the GPU");
    return 0;
}

/* ============================== [9] Adam and the gradient check ==============================
 * The header's update, element for element (the host computed the step sizes). */

__global__ void ltf__k_adam(float *p, float *mom, float *vel, const float *grad, size_t n, float step,
                            float sqrt_bc2, float decay, float b1, float b2, float eps) {
    LTF__FOR_EACH(i, n) {
        float g = grad[i];
        float mi = b1 * mom[i] + (1.0f - b1) * g;
        float vi = b2 * vel[i] + (1.0f - b2) * g * g;
        mom[i] = mi; vel[i] = vi;
        p[i] = p[i] * decay - step * mi / (sqrtf(vi) / sqrt_bc2 + eps);
    }
}

static void ltf__gpu_adam_update(float *p, float *m, float *v, const float *g, size_t n, float step, float sqrt_bc2,
                          float decay, float b1, float b2, float eps) {
    LTF__LAUNCH(ltf__k_adam, ltf__blocks(n), LTF__THREADS, p, m, v, g, n, step, sqrt_bc2, decay, b1, b2, eps);
}

/* stats->first_bad = the first i with g[i] NaN or Inf, else n: set n, then the minimum of the
 * bad indices (integers: the order of the atomics does not matter) */
__global__ void ltf__k_first_bad_reset(ltf_stats *stats, size_t n) { stats->first_bad = (unsigned long long)n; }
__global__ void ltf__k_first_bad(ltf_stats *stats, const float *g, size_t n) {
    LTF__FOR_EACH(i, n)
        if (!isfinite(g[i])) atomicMin(&stats->first_bad, (unsigned long long)i);
}

static void ltf__gpu_check_finite(ltf_stats *stats, const float *g, size_t n) {
    LTF__LAUNCH(ltf__k_first_bad_reset, 1, 1, stats, n);
    LTF__LAUNCH(ltf__k_first_bad, ltf__blocks(n), LTF__THREADS, stats, g, n);
}

/* ============================== [10] tasks on the device ==============================
 * The samplers of the header's [10], one thread per point: every number a point needs is a
 * pure function of (step key, purpose, prompt, index), so the threads of one prompt agree on
 * its function (w, the tree, the net) without sharing anything: each recomputes what it uses.
 * Same distributions as the CPU samplers (same algorithms: the sparse subset by selection
 * sampling, the tree's coordinates and leaves, the ReLU net's unit by unit sum), another
 * stream of numbers. ltf__sample_point is LTF__HD: the host runs it too, which test.c uses to
 * check the device's batch number for number. */

LTF__HD static inline void ltf__sample_point(const ltf_task *t, uint64_t key, int p, int i, float *x, float *y) {
    int d = t->n_dims, da = t->kind == LTF_TASK_DECISION_TREE ? d : t->n_dims_active;   /* tree: no truncation */
    for (int j = 0; j < d; j++) x[j] = j < da ? (float)ltf__draw_normal(key, LTF__DRAW_X, p, i, j) : 0.0f;
    if (t->kind == LTF_TASK_DECISION_TREE) {
        int inner = (1 << t->depth) - 1, node = 0;
        while (node < inner) {
            int coord = (int)(ltf__draw_uniform(key, LTF__DRAW_NODE, p, 0, node) * d);
            node = 2 * node + 1 + (x[coord] > 0.0f);
        }
        *y = (float)ltf__draw_normal(key, LTF__DRAW_LEAF, p, 0, node - inner);
    } else if (t->kind == LTF_TASK_RELU_2NN) {
        double scale = sqrt(2.0 / t->hidden);
        float acc = 0.0f;
        for (int h = 0; h < t->hidden; h++) {
            double z = 0.0;
            for (int j = 0; j < da; j++) z += ltf__draw_normal(key, LTF__DRAW_W1, p, h, j) * x[j];   /* x_j = 0 beyond */
            double w2 = ltf__draw_normal(key, LTF__DRAW_W2, p, 0, h);
            if (z > 0.0) acc += (float)(scale * z * w2);
        }
        *y = acc;
    } else {                                   /* linear, noisy and sparse regression */
        int left = t->sparsity < d ? t->sparsity : d;
        double s = 0.0;
        for (int j = 0; j < d; j++) {
            double w = j < da ? ltf__draw_normal(key, LTF__DRAW_W, p, 0, j) : 0.0;
            if (t->kind == LTF_TASK_SPARSE_LINEAR) {   /* keep j with probability left / (d - j) */
                if ((double)left > ltf__draw_uniform(key, LTF__DRAW_SPARSE, p, 0, j) * (double)(d - j)) left--;
                else w = 0.0;
            }
            s += w * x[j];
        }
        if (t->kind == LTF_TASK_NOISY_LINEAR) s += t->noise_std * ltf__draw_normal(key, LTF__DRAW_NOISE, p, i, 0);
        *y = (float)s;
    }
}

__global__ void ltf__k_task_sample(ltf_task t, uint64_t key, int B, int n, float *xs, float *ys) {
    LTF__FOR_EACH(p, (size_t)B * n) ltf__sample_point(&t, key, (int)(p / n), (int)(p % n), xs + p * t.n_dims, ys + p);
}

/* A batch of B prompts of n points for step `step` of the run whose data RNG is run_rng, into
 * the store's batch (ltf_train_next then trains on it with xs = ys = NULL). */
static int ltf__gpu_task_sample(ltf_model *m, const ltf_task *task, const ltf_rng *run_rng, long step, int B, int n) {
    ltf_store *store = &m->run;
    if (B < 1 || n < 1) return ltf__fail(m->err, "batch of B = %d prompts of n = %d points: need B, n >= 1", B, n);
    if (task->n_dims != m->cfg.n_dims)
        return ltf__fail(m->err, "task has d = %d but the model has n_dims = %d", task->n_dims, m->cfg.n_dims);
    if (ltf__batch_room(m, (size_t)B * n) != 0) return -1;
    LTF__LAUNCH(ltf__k_task_sample, ltf__blocks((size_t)B * n), LTF__THREADS, *task, ltf__step_key(run_rng, step), B, n,
                store->batch, ltf__batch_ys(m));
    store->batch_B = B; store->batch_n = n;
    return 0;   /* a failure shows at the step's next get or finish */
}

/* ============================== [14] the backend table, public API ============================== */

LTF__DEFINE_BACKEND(ltf__cuda, "cuda", 0, ltf__gpu_, ltf__gpu_, ltf__gpu_task_sample)

#define LTF__STR2(x) #x
#define LTF__STR(x) LTF__STR2(x)
#ifdef __CUDA_ARCH_LIST__        /* nvcc: the -gencode targets, e.g. 900 for compute capability 9.0 */
#define LTF__BUILT_FOR "arch " LTF__STR(__CUDA_ARCH_LIST__)
#else
#define LTF__BUILT_FOR "the emulator"
#endif

int ltf_gpu_available(char msg[LTF_ERR_LEN]) {
    int count = 0, dev = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count < 1) {
        cudaGetLastError();
        return ltf__fail(msg, "no CUDA device (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "the driver lists none");
    }
    LTF__CU(msg, cudaGetDevice(&dev), "asking for the current device");
    cudaDeviceProp p;
    LTF__CU(msg, cudaGetDeviceProperties(&p, dev), "reading the device's properties");
    cudaFuncAttributes fa;   /* can this GPU run our code? no image for it: it is too old */
    e = cudaFuncGetAttributes(&fa, ltf__k_gemm);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return ltf__fail(msg, "GPU %d (%.60s) has compute capability %d.%d and cannot run this build's kernels (%s; "
                         "built for %s): rebuild with NVCC_ARCH=sm_%d%d ./build.sh cuda", dev, p.name, p.major, p.minor,
                         cudaGetErrorName(e), LTF__BUILT_FOR, p.major, p.minor);
    }
    snprintf(msg, LTF_ERR_LEN, "GPU %d: %.100s, compute capability %d.%d, %.1f GiB, %d SMs", dev, p.name, p.major,
             p.minor, p.totalGlobalMem / 1073741824.0, p.multiProcessorCount);
    return 0;
}

/* The model's store moves to the device (ltf__use_backend, header [6]); on failure it stays. */
int ltf_model_to_gpu(ltf_model *m, char err[LTF_ERR_LEN]) {
    char msg[LTF_ERR_LEN];
    if (m->backend == ltf__cuda()) return 0;
    if (!m->params) return ltf__fail(err, "the model holds nothing: create or load it first");
    if (ltf_gpu_available(msg) != 0) return ltf__fail(err, "%s", msg);
    return ltf__use_backend(m, ltf__cuda(), err);
}

/* looped_tf_cuda.cu - the CUDA backend of looped_tf.h: the ops of a training step as kernels.
 *
 * Not a separate translation unit: looped_tf.h includes this file at the end of its
 * implementation when LOOPED_TF_CUDA is defined, so the one file that defines
 * LOOPED_TF_IMPLEMENTATION is compiled by nvcc as CUDA (HOW TO USE in the header; ./build.sh
 * cuda). It sees the header's private helpers and reuses them instead of restating them: the
 * exp and tanh of the ops (ltf__expf, ltf__tanhf; LTF__HD makes them callable from kernels),
 * the step check ltf__step_is_bad, the batch room of the store and ltf__use_backend.
 *
 * DESIGN
 *   What lives here: ops, not the loop. The header writes the paper's logic once ([7] the
 *   backbone, [8] the loop, the window loss and its backward, predict, [9] the training step)
 *   over the op table ltf_backend ([6]). This file fills that table for a GPU: memory (alloc,
 *   put, get, finish), one launcher per op with the arguments of the CPU op, now device
 *   pointers, and the same contract (backward ADDS into gradients), a device sampler and a
 *   recorder. ltf_model_to_gpu moves a model's store to the device.
 *   One stream, no host reads inside a step: ops only queue work on this file's stream; the
 *   per-step numbers (the sampler's key, Adam's step sizes) are read by the kernels from
 *   device memory; Adam skips itself on a bad step. A training step is therefore a fixed
 *   sequence of launches per shape, which [14] records once as a CUDA graph and replays: the
 *   host then queues one graph launch per step and reads 16 bytes (loss, gradient check).
 *   Launches per step (paper setting d=20 n=41 C=256 H=8 L=1 b=20 T=15): 348, counted by the
 *   emulator in test.c (gpu_graph); the header's [7]-[9] decide the count: 8 kernels per
 *   forward iteration, 9 with the loss, 11 per backward iteration, 8 per step besides.
 *   Fused where the loop runs ops in pairs (the table's pair ops) and where one op had
 *   several kernels: bias, GELU and GELU' in the matrix multiply's epilogue; dinp, dW and
 *   dbias of a Linear in one launch; residual + LayerNorm; LayerNorm backward with its
 *   parameter sums; attention backward in one block per (prompt, head).
 *   Deterministic: no floating-point atomics. Sums across blocks (split-K, the column sums of
 *   LayerNorm and the read-out, the loss) write per-block partials that the grid's last block
 *   adds in block order (an integer atomic counter finds it), so the same inputs give the
 *   same bits on every run and a GPU run resumes bit-identically from its checkpoint.
 *   Precision: float32 by default, as the CPU; sums in a tiled order in the matrix multiply,
 *   a tree in row reductions, split-K partials in order: kernels agree with the CPU ops to
 *   ~1e-7 relative (test.c: gpu_*). ltf_gpu_set_precision("tf32" | "bf16") runs the matrix
 *   multiplies on tensor cores ([4] has the error bound).
 *   Errors: every CUDA runtime call is checked; a kernel that fails to launch is noted and
 *   reported, with its name, by the next get or finish, which returns -1 + the message;
 *   LTF_CUDA_SYNC=1 waits after each launch (and records nothing) so that a fault names its
 *   kernel; a fault while running leaves the context unusable and is reported as such.
 *
 * SECTIONS
 *   [0] runtime: stream, errors, launches, profile, work space   [2] counter-based RNG
 *   [4] matrix multiply (float32, TF32, BF16)   [5] ops of the block   [5] ops of the loop
 *   [6] device memory   [9] Adam and the gradient check   [10] tasks on the device
 *   [14] recording steps, the backend table, public API
 *
 * Test build: with LTF_CUDA_EMU (g++, no nvcc) tests/cuda_emu.h stands in for the CUDA runtime
 * and runs the kernels on the CPU (./build.sh cuda-emu): the GPU tests without a GPU.
 */
#ifdef LTF_CUDA_EMU
#include "tests/cuda_emu.h"   /* the CUDA runtime, emulated on the CPU */
#else
#include <cuda_runtime.h>
#include <cuda_bf16.h>        /* __nv_bfloat16 for the BF16 matrix multiply */
#include <mma.h>              /* nvcuda::wmma: the tensor cores           */
#endif

/* ============================== [0] runtime, errors, launches ============================== */

#define LTF__THREADS 256      /* threads per block of the element-wise kernels                  */
#define LTF__RED 256          /* most threads of a block that reduces (a power of two)          */
#define LTF__PARTS 128        /* blocks of a reduction across rows: partials, then the last block */
#define LTF__COUNTERS 4096    /* arrival counters of last-block reductions (split-K: one per tile) */

/* The stream every op is queued on (non-blocking: nothing else orders against it). */
static cudaStream_t ltf__gpu_stream_;
static cudaStream_t ltf__stream(void) {
    if (!ltf__gpu_stream_ && cudaStreamCreateWithFlags(&ltf__gpu_stream_, cudaStreamNonBlocking) != cudaSuccess) {
        cudaGetLastError();
        ltf__gpu_stream_ = 0;   /* the legacy stream: works, but cannot be recorded */
    }
    return ltf__gpu_stream_;
}

/* The first kernel launch that failed since the last ltf__gpu_finish (a host thread's calls
 * are serial; the library is not meant for concurrent use from several threads). */
static cudaError_t ltf__gpu_error = cudaSuccess;
static const char *ltf__gpu_error_what = "";
static long ltf__gpu_n_launches;     /* kernels and memsets queued (ltf_gpu_launches)          */
static int ltf__gpu_recording;       /* a step is being recorded ([14]): no waiting allowed     */

static void ltf__gpu_note(cudaError_t e, const char *what) {
    if (e != cudaSuccess && ltf__gpu_error == cudaSuccess) { ltf__gpu_error = e; ltf__gpu_error_what = what; }
}

/* LTF_CUDA_SYNC set in the environment: every launch waits for its kernel, so an error while a
 * kernel runs is reported against that kernel's name (slow: for finding a fault). */
static int ltf__gpu_sync_each(void) {
    static int on = -1;
    if (on < 0) on = getenv("LTF_CUDA_SYNC") != NULL;
    return on;
}

/* ---- the profile: a pair of events around every launch while it is on ---- */
#define LTF__PROFILE_MAX 200000
typedef struct { const char *name; cudaEvent_t start, stop; } ltf__gpu_timed;
static ltf__gpu_timed *ltf__prof;
static int ltf__prof_on, ltf__prof_n, ltf__prof_cap, ltf__prof_lost;

static void ltf__gpu_before(const char *name) {
    if (!ltf__prof_on) return;
    if (ltf__prof_n == ltf__prof_cap) {
        int cap = ltf__prof_cap ? 2 * ltf__prof_cap : 1024;
        ltf__gpu_timed *p = cap <= LTF__PROFILE_MAX ? (ltf__gpu_timed *)realloc(ltf__prof, cap * sizeof *p) : NULL;
        if (!p) { ltf__prof_lost++; return; }
        for (int i = ltf__prof_cap; i < cap; i++) { p[i].start = p[i].stop = NULL; p[i].name = NULL; }
        ltf__prof = p; ltf__prof_cap = cap;
    }
    ltf__gpu_timed *t = &ltf__prof[ltf__prof_n];
    if ((!t->start && cudaEventCreate(&t->start) != cudaSuccess) || (!t->stop && cudaEventCreate(&t->stop) != cudaSuccess)) {
        cudaGetLastError();
        ltf__prof_lost++;
        t->name = NULL;
        return;
    }
    t->name = name;
    cudaEventRecord(t->start, ltf__stream());
}
static void ltf__gpu_after(const char *name) {
    if (!ltf__prof_on || ltf__prof_n >= ltf__prof_cap || !ltf__prof[ltf__prof_n].name ||
        strcmp(ltf__prof[ltf__prof_n].name, name) != 0) return;   /* its start was not recorded */
    cudaEventRecord(ltf__prof[ltf__prof_n].stop, ltf__stream());
    ltf__prof_n++;
}

static void ltf__gpu_launched(const char *kernel) {
    ltf__gpu_n_launches++;
    ltf__gpu_note(cudaGetLastError(), kernel);
    ltf__gpu_after(kernel);
    if (ltf__gpu_sync_each() && !ltf__gpu_recording) ltf__gpu_note(cudaStreamSynchronize(ltf__stream()), kernel);
}

/* kernel<<<grid, block>>>(args) on the stream, then note a launch failure (bad configuration,
 * no kernel image for this GPU, ...). Errors while the kernel runs surface at the next
 * synchronization (at once with LTF_CUDA_SYNC). */
#ifdef LTF_CUDA_EMU
#define LTF__LAUNCH(kernel, grid, block, ...) \
    do { ltf__gpu_before(#kernel); ltf_emu_kernel(#kernel, (grid), (block), kernel)(__VA_ARGS__); \
         ltf__gpu_launched(#kernel); } while (0)
#else
#define LTF__LAUNCH(kernel, grid, block, ...) \
    do { ltf__gpu_before(#kernel); kernel<<<(grid), (block), 0, ltf__stream()>>>(__VA_ARGS__); \
         ltf__gpu_launched(#kernel); } while (0)
#endif

/* -1 + "CUDA error while <what>: <CUDA's message>". cudaGetLastError clears the error, so a
 * failed allocation does not haunt later calls. */
static int ltf__cuda_fail(char *err, cudaError_t e, const char *what) {
    cudaGetLastError();
    return ltf__fail(err, "CUDA error while %s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}
#define LTF__CU(err, call, what) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) return ltf__cuda_fail((err), e_, (what)); } while (0)

/* Waits for the stream, then reports the first failure since the last call: a kernel that did
 * not launch, or one that failed while running (an illegal address, say, which also leaves
 * the CUDA context unusable: the process must restart to use the GPU again). */
static int ltf__gpu_finish(char *err, const char *what) {
    cudaError_t run = cudaStreamSynchronize(ltf__stream()), launch = ltf__gpu_error;
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
/* Blocks of a reduction across rows: one per row up to LTF__PARTS */
static unsigned ltf__part_blocks(size_t rows) { return (unsigned)(rows < 1 ? 1 : rows > LTF__PARTS ? LTF__PARTS : rows); }

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

/* Is this the last of n blocks to arrive at counter? Every block calls it once, after writing its
 * partials; the one that returns 1 sees all of them (the fence publishes each block's writes
 * before it counts itself) and puts the counter back to 0 for the next launch. */
__device__ int ltf__last_of(unsigned *counter, unsigned n) {
    __shared__ int last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        last = atomicAdd(counter, 1u) == n - 1;
        if (last) *counter = 0;
    }
    __syncthreads();
    if (last) __threadfence();
    return last;
}
/* ... of all the grid's blocks */
__device__ int ltf__last_block(unsigned *counter) { return ltf__last_of(counter, gridDim.x * gridDim.y * gridDim.z); }

/* ---- the work space: partials of the reductions across blocks, and their counters ----
 * One device buffer for all models (ops run one at a time on the stream). It grows outside
 * recordings only (its address is in every recorded step, so growing drops the recordings);
 * [14] sizes it for a model before recording a step. */
static float *ltf__ws;                /* partials                                               */
static unsigned *ltf__ws_counters;    /* [LTF__COUNTERS], zero between launches                 */
static size_t ltf__ws_floats;
static void ltf__gpu_graphs_drop_all(void);

static void ltf__ws_free(void) {
    if (ltf__ws) cudaFree(ltf__ws);
    if (ltf__ws_counters) cudaFree(ltf__ws_counters);
    cudaGetLastError();
    ltf__ws = NULL; ltf__ws_counters = NULL; ltf__ws_floats = 0;
}
/* room for `floats` partials; 0, or -1 (noted as a launch failure of `who`) */
static int ltf__ws_room(size_t floats, const char *who) {
    if (floats <= ltf__ws_floats && ltf__ws) return 0;
    if (ltf__gpu_recording) { ltf__gpu_note(cudaErrorMemoryAllocation, who); return -1; }   /* sized before: a bug */
    static int registered;
    if (!registered) { atexit(ltf__ws_free); registered = 1; }
    ltf__gpu_graphs_drop_all();
    size_t want = floats > 2 * ltf__ws_floats ? floats : 2 * ltf__ws_floats;
    ltf__ws_free();
    if (cudaMalloc((void **)&ltf__ws, want * sizeof(float)) != cudaSuccess ||
        cudaMalloc((void **)&ltf__ws_counters, LTF__COUNTERS * sizeof(unsigned)) != cudaSuccess ||
        cudaMemsetAsync(ltf__ws_counters, 0, LTF__COUNTERS * sizeof(unsigned), ltf__stream()) != cudaSuccess) {
        ltf__gpu_note(cudaGetLastError(), who);
        ltf__ws_free();
        return -1;
    }
    ltf__ws_floats = want;
    return 0;
}

/* zeroing on the stream, counted and timed like a launch */
static void ltf__gpu_zero(float *p, size_t n) {
    ltf__gpu_before("memset");
    ltf__gpu_note(cudaMemsetAsync(p, 0, n * sizeof(float), ltf__stream()), "cudaMemsetAsync");
    ltf__gpu_n_launches++;
    ltf__gpu_after("memset");
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

/* ============================== [4] matrix multiply ==============================
 *     Cm[M, N] (op)= A[M, K] . B[K, N]      A, B read through (row, column) strides, as ltf_gemm
 * One block of 256 threads per 64 x 64 tile of Cm; k runs through 16-wide slices of A and B
 * staged in shared memory (zero outside the matrices).
 *   float32 (the default): each thread holds a 4 x 4 piece of the tile (rows ty + 16 r, columns
 *   tx + 16 c) in registers and sums its products in order k = 0, 1, ...
 *   TF32 / BF16 (ltf_gpu_set_precision): tensor cores. The 8 warps each own 16 x 32 of the tile
 *   as two 16 x 16 float accumulators; operands are rounded to TF32 (10 stored mantissa bits, to
 *   nearest, ties away: __float_to_tf32) or bfloat16 (7 bits, to nearest even); their products
 *   are exact in float32 and summed in float32. So, with u = 2^-11 (TF32) or 2^-8 (BF16), each
 *   element satisfies |C - C_exact| <= (2u + u^2 + K 2^-24) sum_k |a_ik| |b_kj|: the two
 *   operands' roundings, then K float32 additions. test.c (gpu_tensor_cores) checks that bound
 *   on the emulated tensor cores, and that the mean signed error is ~0 (rounding, not
 *   truncation, which would bias it by about -1.5u on positive data).
 * A launch runs up to two problems (blockIdx.z; a Linear's dinp and dW in one launch), and a
 * problem's long K (a weight gradient's K = B*N token rows) runs in `splits` parts (blockIdx.y)
 * when its tiles alone would leave most of the GPU idle: each part writes its tile into the
 * work space and the tile's last part adds them, in part order, and applies the epilogue.
 * The epilogue is the op: += (gradients), = bias + (forward), the GELU of the result too
 * (matmul_gelu_forward) or += GELU'(x) * result (matmul_gelu_backward). A problem may end B with
 * a column of ones, whose result sum_k A[i, k] goes to `ones` (the bias gradient). */

enum { LTF__EPI_ADD, LTF__EPI_BIAS, LTF__EPI_GELU, LTF__EPI_DGELU };
enum { LTF__FP32, LTF__TF32, LTF__BF16 };
static int ltf__gpu_prec = LTF__FP32;
static int ltf__gpu_sms = 132;        /* multiprocessors ([14] reads the device's count)         */

#define LTF__TM 64
#define LTF__TK 16
#define LTF__SPLITS_MAX 8
#define LTF__TILE_COUNTERS (LTF__COUNTERS / 2)   /* per problem of a launch */

typedef struct {
    int M, N, K;                  /* N counts the ones column when `ones` is set          */
    const float *A; ptrdiff_t a_row, a_col;
    const float *B; ptrdiff_t b_row, b_col;
    float *Cm; ptrdiff_t ldc;
    int epi;                      /* LTF__EPI_*                                            */
    const float *bias;            /* BIAS, GELU: [N] or NULL                               */
    float *out2;                  /* GELU: GELU(Cm), same shape                            */
    const float *aux;             /* DGELU: the GELU's input, same shape                   */
    float *ones;                  /* [M]: += the ones column's result                      */
    int tiles_n, tiles, splits, k_part;   /* tiles across, tiles in all, parts of K, K per part */
    size_t ws_off;                /* its parts' place in the work space                    */
    int counter_off;
} ltf__gemm_job;
typedef struct { ltf__gemm_job job[2]; } ltf__gemm_jobs;

LTF__HD static inline float ltf__gelu(float x) {
    return 0.5f * x * (1.0f + ltf__tanhf(LTF__GELU_K * (x + 0.044715f * x * x * x)));
}
LTF__HD static inline float ltf__gelu_grad(float x) {   /* as ltf_gelu_backward */
    float th = ltf__tanhf(LTF__GELU_K * (x + 0.044715f * x * x * x));
    float du = LTF__GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
    return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
}

__device__ inline float ltf__a_at(const ltf__gemm_job &J, int i, int k, int k_hi) {
    return i < J.M && k < k_hi ? J.A[(ptrdiff_t)i * J.a_row + (ptrdiff_t)k * J.a_col] : 0.0f;
}
__device__ inline float ltf__b_at(const ltf__gemm_job &J, int k, int j, int k_hi) {
    if (k >= k_hi || j >= J.N) return 0.0f;
    if (J.ones && j == J.N - 1) return 1.0f;
    return J.B[(ptrdiff_t)k * J.b_row + (ptrdiff_t)j * J.b_col];
}

/* the epilogue: element (i, j) of the problem gets the sum v */
__device__ inline void ltf__gemm_store(const ltf__gemm_job &J, int i, int j, float v) {
    if (i >= J.M || j >= J.N) return;
    if (J.ones && j == J.N - 1) { J.ones[i] += v; return; }
    float *c = J.Cm + (ptrdiff_t)i * J.ldc + j;
    float x;
    switch (J.epi) {
    case LTF__EPI_BIAS: *c = (J.bias ? J.bias[j] : 0.0f) + v; break;
    case LTF__EPI_GELU:
        x = (J.bias ? J.bias[j] : 0.0f) + v;
        *c = x;
        J.out2[(ptrdiff_t)i * J.ldc + j] = ltf__gelu(x);
        break;
    case LTF__EPI_DGELU: *c += ltf__gelu_grad(J.aux[(ptrdiff_t)i * J.ldc + j]) * v; break;
    default: *c += v;
    }
}

/* acc = the tile (i0, j0)'s sums over k_lo <= k < k_hi, as the thread's 4 x 4 piece */
template <int PREC>
__device__ void ltf__gemm_tile(const ltf__gemm_job &J, int i0, int j0, int k_lo, int k_hi, float acc[4][4]) {
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    for (int r = 0; r < 4; r++)
        for (int q = 0; q < 4; q++) acc[r][q] = 0.0f;
    /* staging: consecutive threads take consecutive addresses of the source (coalesced loads):
     * k fastest where the operand's k stride is 1 (A row-major, B = w^T), else i or j fastest */
    int a_k_fast = J.a_col == 1, b_k_fast = J.b_row == 1 && J.b_col != 1;
    if constexpr (PREC == LTF__FP32) {
        __shared__ float As[LTF__TK][LTF__TM + 1], Bs[LTF__TK][LTF__TM + 1];   /* +1: no bank conflicts */
        for (int k0 = k_lo; k0 < k_hi; k0 += LTF__TK) {
            for (int e = threadIdx.x; e < LTF__TK * LTF__TM; e += 256) {   /* stage the slices */
                int ak = a_k_fast ? e % LTF__TK : e / LTF__TM, ai = a_k_fast ? e / LTF__TK : e % LTF__TM;
                int bk = b_k_fast ? e % LTF__TK : e / LTF__TM, bj = b_k_fast ? e / LTF__TK : e % LTF__TM;
                As[ak][ai] = ltf__a_at(J, i0 + ai, k0 + ak, k_hi);
                Bs[bk][bj] = ltf__b_at(J, k0 + bk, j0 + bj, k_hi);
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
    } else {
        using namespace nvcuda;
        /* TF32 fragments hold floats, rounded after loading; BF16 ones hold bfloat16, rounded
         * when staged. Leading dimensions keep every fragment pointer 32-byte aligned. */
        typedef typename std::conditional<PREC == LTF__TF32, float, __nv_bfloat16>::type stage_t;
        typedef typename std::conditional<PREC == LTF__TF32, wmma::precision::tf32, __nv_bfloat16>::type frag_t;
        const int KS = PREC == LTF__TF32 ? 8 : 16, LDA = PREC == LTF__TF32 ? 20 : 24, LDB = PREC == LTF__TF32 ? 68 : 72;
        __shared__ __align__(32) stage_t As[LTF__TM * 24], Bs[LTF__TK * 72];
        __shared__ __align__(32) float Cs[LTF__TM * 68];
        int warp = threadIdx.x / 32, wr = warp / 2, wc = warp % 2;
        wmma::fragment<wmma::accumulator, 16, 16, (PREC == LTF__TF32 ? 8 : 16), float> c[2];
        wmma::fill_fragment(c[0], 0.0f);
        wmma::fill_fragment(c[1], 0.0f);
        for (int k0 = k_lo; k0 < k_hi; k0 += LTF__TK) {
            for (int e = threadIdx.x; e < LTF__TK * LTF__TM; e += 256) {
                int kk = a_k_fast ? e % LTF__TK : e / LTF__TM, ii = a_k_fast ? e / LTF__TK : e % LTF__TM;
                int bk = b_k_fast ? e % LTF__TK : e / LTF__TM, bj = b_k_fast ? e / LTF__TK : e % LTF__TM;
                float a = ltf__a_at(J, i0 + ii, k0 + kk, k_hi), b = ltf__b_at(J, k0 + bk, j0 + bj, k_hi);
                if constexpr (PREC == LTF__TF32) { As[ii * LDA + kk] = a; Bs[bk * LDB + bj] = b; }
                else { As[ii * LDA + kk] = __float2bfloat16_rn(a); Bs[bk * LDB + bj] = __float2bfloat16_rn(b); }
            }
            __syncthreads();
            for (int kk = 0; kk < LTF__TK; kk += KS) {
                wmma::fragment<wmma::matrix_a, 16, 16, (PREC == LTF__TF32 ? 8 : 16), frag_t, wmma::row_major> a;
                wmma::load_matrix_sync(a, As + wr * 16 * LDA + kk, LDA);
                if constexpr (PREC == LTF__TF32)
                    for (int t = 0; t < a.num_elements; t++) a.x[t] = wmma::__float_to_tf32(a.x[t]);
                for (int f = 0; f < 2; f++) {
                    wmma::fragment<wmma::matrix_b, 16, 16, (PREC == LTF__TF32 ? 8 : 16), frag_t, wmma::row_major> b;
                    wmma::load_matrix_sync(b, Bs + kk * LDB + wc * 32 + f * 16, LDB);
                    if constexpr (PREC == LTF__TF32)
                        for (int t = 0; t < b.num_elements; t++) b.x[t] = wmma::__float_to_tf32(b.x[t]);
                    wmma::mma_sync(c[f], a, b, c[f]);
                }
            }
            __syncthreads();
        }
        for (int f = 0; f < 2; f++) wmma::store_matrix_sync(Cs + wr * 16 * 68 + wc * 32 + f * 16, c[f], 68, wmma::mem_row_major);
        __syncthreads();
        for (int r = 0; r < 4; r++)
            for (int q = 0; q < 4; q++) acc[r][q] = Cs[(ty + 16 * r) * 68 + tx + 16 * q];
        __syncthreads();
    }
}

template <int PREC>
__global__ void ltf__k_gemm(ltf__gemm_jobs jobs, float *ws, unsigned *counters) {
    const ltf__gemm_job &J = jobs.job[blockIdx.z];
    int tile = blockIdx.x, part = blockIdx.y;
    if (tile >= J.tiles || part >= J.splits) return;    /* the whole block: this problem is smaller */
    int i0 = tile / J.tiles_n * LTF__TM, j0 = tile % J.tiles_n * LTF__TM;
    int k_lo = part * J.k_part, k_hi = k_lo + J.k_part < J.K ? k_lo + J.k_part : J.K;
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    float acc[4][4];
    ltf__gemm_tile<PREC>(J, i0, j0, k_lo, k_hi, acc);
    if (J.splits > 1) {          /* publish this part; the tile's last part adds all of them */
        float *tiles = ws + J.ws_off + (size_t)tile * J.splits * (LTF__TM * LTF__TM);
        for (int r = 0; r < 4; r++)
            for (int q = 0; q < 4; q++) tiles[(size_t)part * LTF__TM * LTF__TM + (ty + 16 * r) * LTF__TM + tx + 16 * q] = acc[r][q];
        if (!ltf__last_of(counters + J.counter_off + tile, (unsigned)J.splits)) return;
        for (int r = 0; r < 4; r++)
            for (int q = 0; q < 4; q++) {
                float s = 0.0f;
                for (int p = 0; p < J.splits; p++) s += tiles[(size_t)p * LTF__TM * LTF__TM + (ty + 16 * r) * LTF__TM + tx + 16 * q];
                acc[r][q] = s;
            }
    }
    for (int r = 0; r < 4; r++)
        for (int q = 0; q < 4; q++) ltf__gemm_store(J, i0 + ty + 16 * r, j0 + tx + 16 * q, acc[r][q]);
}

/* A problem, before planning: Cm (op)= A . B */
static ltf__gemm_job ltf__gemm_job_make(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col,
                                        const float *B, ptrdiff_t b_row, ptrdiff_t b_col, float *Cm, ptrdiff_t ldc, int epi) {
    ltf__gemm_job J;
    memset(&J, 0, sizeof J);
    J.M = M; J.N = N; J.K = K; J.A = A; J.a_row = a_row; J.a_col = a_col; J.B = B; J.b_row = b_row; J.b_col = b_col;
    J.Cm = Cm; J.ldc = ldc; J.epi = epi; J.splits = 1; J.k_part = K;
    return J;
}

/* Tiles, and the parts of K when the tiles alone fill less than two waves of the GPU and K is
 * long: at most LTF__SPLITS_MAX parts of at least 256 (a multiple of 16). Returns the floats
 * of work space the parts need. */
static size_t ltf__gemm_plan(ltf__gemm_job *J, int may_split) {
    J->tiles_n = (J->N + LTF__TM - 1) / LTF__TM;
    J->tiles = J->tiles_n * ((J->M + LTF__TM - 1) / LTF__TM);
    J->splits = 1; J->k_part = J->K;
    int want = 2 * ltf__gpu_sms;
    if (!may_split || J->tiles >= want || J->tiles > LTF__TILE_COUNTERS || J->K < 512) return 0;
    int s = (want + J->tiles - 1) / J->tiles;
    if (s > LTF__SPLITS_MAX) s = LTF__SPLITS_MAX;
    if (s > J->K / 256) s = J->K / 256;
    if (s < 2) return 0;
    int part = ((J->K + s - 1) / s + LTF__TK - 1) / LTF__TK * LTF__TK;
    J->k_part = part;
    J->splits = (J->K + part - 1) / part;
    return J->splits > 1 ? (size_t)J->tiles * J->splits * LTF__TM * LTF__TM : 0;
}

/* Plans and launches count (1 or 2) problems as one kernel. */
static void ltf__gemm_launch(ltf__gemm_jobs *js, int count, const int may_split[2]) {
    size_t need = 0;
    unsigned max_tiles = 1, max_splits = 1;
    for (int q = 0; q < count; q++) {
        ltf__gemm_job *J = &js->job[q];
        J->ws_off = need;
        J->counter_off = q * LTF__TILE_COUNTERS;
        need += ltf__gemm_plan(J, may_split[q]);
    }
    if (need > 0 && ltf__ws_room(need, "ltf__k_gemm (split-K work space)") != 0)
        for (int q = 0; q < count; q++) { js->job[q].splits = 1; js->job[q].k_part = js->job[q].K; }   /* unsplit: correct, slower */
    for (int q = 0; q < count; q++) {
        if ((unsigned)js->job[q].tiles > max_tiles) max_tiles = (unsigned)js->job[q].tiles;
        if ((unsigned)js->job[q].splits > max_splits) max_splits = (unsigned)js->job[q].splits;
    }
    dim3 grid(max_tiles, max_splits, (unsigned)count);
    if (ltf__gpu_prec == LTF__TF32) LTF__LAUNCH(ltf__k_gemm<LTF__TF32>, grid, 256, *js, ltf__ws, ltf__ws_counters);
    else if (ltf__gpu_prec == LTF__BF16) LTF__LAUNCH(ltf__k_gemm<LTF__BF16>, grid, 256, *js, ltf__ws, ltf__ws_counters);
    else LTF__LAUNCH(ltf__k_gemm<LTF__FP32>, grid, 256, *js, ltf__ws, ltf__ws_counters);
}

/* Cm[M, N] += A . B: the one-problem form (the tests use it as ltf_gemm's twin) */
static inline void ltf__gpu_gemm(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col,
                          const float *B, ptrdiff_t b_row, ptrdiff_t b_col, float *Cm, ptrdiff_t ldc) {
    if (M <= 0 || N <= 0 || K <= 0) return;
    ltf__gemm_jobs js;
    int split[2] = {1, 0};
    js.job[0] = ltf__gemm_job_make(M, N, K, A, a_row, a_col, B, b_row, b_col, Cm, ldc, LTF__EPI_ADD);
    ltf__gemm_launch(&js, 1, split);
}

/* The weight-gradient problem of a Linear: dw[OC, C] += dout^T . inp, with dbias as the ones
 * column (dw == NULL: none) */
static ltf__gemm_job ltf__dw_job(float *dw, float *dbias, const float *dout, const float *inp, int BT, int C, int OC) {
    ltf__gemm_job J = ltf__gemm_job_make(OC, C + (dbias ? 1 : 0), BT, dout, 1, OC, inp, C, 1, dw, C, LTF__EPI_ADD);
    J.ones = dbias;
    return J;
}
/* ============================== [5] ops of the block ==============================
 * The ops of the header's [5] and the table's pairs, same arguments (device pointers), same
 * math (see the comments there), backward ADDS into gradients. */

/* Linear: out = bias + inp . w^T (one launch) */
static void ltf__gpu_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int BT, int C, int OC) {
    ltf__gemm_jobs js;
    int split[2] = {0, 0};
    js.job[0] = ltf__gemm_job_make(BT, OC, C, inp, C, 1, w, 1, C, out, OC, LTF__EPI_BIAS);
    js.job[0].bias = bias;
    ltf__gemm_launch(&js, 1, split);
}

/* ... and gelu_out = GELU(out), in the same epilogue */
static void ltf__gpu_matmul_gelu_forward(float *out, float *gelu_out, const float *inp, const float *w,
                                         const float *bias, int BT, int C, int OC) {
    ltf__gemm_jobs js;
    int split[2] = {0, 0};
    js.job[0] = ltf__gemm_job_make(BT, OC, C, inp, C, 1, w, 1, C, out, OC, LTF__EPI_GELU);
    js.job[0].bias = bias; js.job[0].out2 = gelu_out;
    ltf__gemm_launch(&js, 1, split);
}

/* dbias[o] += sum_r dout[r, o], r in order: one thread per o (only where dw is not wanted) */
__global__ void ltf__k_bias_backward(float *dbias, const float *dout, int BT, int OC) {
    LTF__FOR_EACH(o, OC) {
        float s = dbias[o];
        for (int r = 0; r < BT; r++) s += dout[(size_t)r * OC + o];
        dbias[o] = s;
    }
}

/* dinp += dout . w, dw += dout^T . inp, dbias += column sums of dout: one launch. With
 * dgelu_inp, the dinp problem is GELU's backward too: dinp += GELU'(dgelu_inp) (dout . w). */
static void ltf__gpu_linear_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                                     const float *w, const float *gelu_inp, int BT, int C, int OC) {
    ltf__gemm_jobs js;
    int count = 0, split[2] = {0, 0};
    if (dinp) {
        js.job[count] = ltf__gemm_job_make(BT, C, OC, dout, OC, 1, w, C, 1, dinp, C, gelu_inp ? LTF__EPI_DGELU : LTF__EPI_ADD);
        js.job[count++].aux = gelu_inp;
    }
    if (dw) { split[count] = 1; js.job[count++] = ltf__dw_job(dw, dbias, dout, inp, BT, C, OC); }
    if (count) ltf__gemm_launch(&js, count, split);
    if (!dw && dbias) LTF__LAUNCH(ltf__k_bias_backward, ltf__blocks((size_t)OC), LTF__THREADS, dbias, dout, BT, OC);
}

static void ltf__gpu_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                                     const float *w, int BT, int C, int OC) {
    ltf__gpu_linear_backward(dinp, dw, dbias, dout, inp, w, NULL, BT, C, OC);
}

/* the scratch buffer is the CPU's: here dL/d gelu_out never leaves the registers */
static void ltf__gpu_matmul_gelu_backward(float *dgelu_inp, float *dw, float *dbias, const float *dout, const float *inp,
                                          const float *w, const float *gelu_inp, float *scratch, int BT, int C, int OC) {
    (void)scratch;
    ltf__gpu_linear_backward(dgelu_inp, dw, dbias, dout, inp, w, gelu_inp, BT, C, OC);
}

/* LayerNorm of the row h[0..C) that this block's threads just wrote (each thread reads back
 * only its own elements): mean and variance by block sums, as the CPU's two passes */
__device__ void ltf__row_layernorm(float *o, float *mean, float *rstd, const float *h, const float *w, const float *b,
                                   int C, float *buf) {
    float s = 0.0f, v = 0.0f;
    for (int i = threadIdx.x; i < C; i += blockDim.x) s += h[i];
    float m = ltf__block_sum(s, buf) / (float)C;
    for (int i = threadIdx.x; i < C; i += blockDim.x) v += (h[i] - m) * (h[i] - m);
    float sd = 1.0f / sqrtf(ltf__block_sum(v, buf) / (float)C + 1e-5f);
    for (int i = threadIdx.x; i < C; i += blockDim.x) o[i] = (h[i] - m) * sd * w[i] + b[i];
    if (threadIdx.x == 0) { *mean = m; *rstd = sd; }
}

/* h = a + c, out = LN(h): one block per row */
__global__ void ltf__k_residual_layernorm(float *h, float *out, float *mean, float *rstd, const float *a, const float *c,
                                          const float *w, const float *b, int BT, int C) {
    __shared__ float buf[LTF__RED];
    LTF__FOR_EACH_ROW(r, BT) {
        for (int i = threadIdx.x; i < C; i += blockDim.x) h[r * C + i] = a[r * C + i] + c[r * C + i];
        ltf__row_layernorm(out + r * C, mean + r, rstd + r, h + r * C, w, b, C, buf);
    }
}
static void ltf__gpu_residual_layernorm_forward(float *h, float *out, float *mean, float *rstd, const float *a,
                                                const float *c, const float *w, const float *b, int BT, int C) {
    LTF__LAUNCH(ltf__k_residual_layernorm, ltf__row_blocks(BT), ltf__red_threads(C), h, out, mean, rstd, a, c, w, b, BT, C);
}

/* LayerNorm backward, one launch: blocks take rows r = block, block + blocks, ...; per row
 * dinp by two block sums; each thread keeps its columns' sums of dout * xhat and dout over the
 * block's rows in the work space (its own entries); the last block adds the blocks' sums into
 * dw, db in block order. */
__global__ void ltf__k_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                                          const float *w, const float *mean, const float *rstd, int BT, int C,
                                          float *ws, unsigned *counter) {
    __shared__ float buf[LTF__RED];
    float *pw = ws + (size_t)blockIdx.x * 2 * C, *pb = pw + C;
    for (int i = threadIdx.x; i < C; i += blockDim.x) { pw[i] = 0.0f; pb[i] = 0.0f; }
    LTF__FOR_EACH_ROW(r, BT) {
        const float *x = inp + r * C, *dy = dout + r * C;
        float *dx = dinp + r * C, m = mean[r], s = rstd[r], g_sum = 0.0f, gx_sum = 0.0f;
        for (int i = threadIdx.x; i < C; i += blockDim.x) {
            float xhat = (x[i] - m) * s, g = w[i] * dy[i];
            g_sum += g; gx_sum += g * xhat;
            pw[i] += dy[i] * xhat; pb[i] += dy[i];
        }
        float g_mean = ltf__block_sum(g_sum, buf) / (float)C, gx_mean = ltf__block_sum(gx_sum, buf) / (float)C;
        for (int i = threadIdx.x; i < C; i += blockDim.x) {
            float xhat = (x[i] - m) * s, g = w[i] * dy[i];
            dx[i] += s * (g - g_mean - xhat * gx_mean);
        }
    }
    if (!ltf__last_block(counter)) return;
    for (int i = threadIdx.x; i < C; i += blockDim.x) {
        float sw = 0.0f, sb = 0.0f;
        for (unsigned k = 0; k < gridDim.x; k++) { sw += ws[(size_t)k * 2 * C + i]; sb += ws[(size_t)k * 2 * C + C + i]; }
        dw[i] += sw; db[i] += sb;
    }
}
static void ltf__gpu_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                                        const float *w, const float *mean, const float *rstd, int BT, int C) {
    unsigned blocks = ltf__part_blocks((size_t)BT);
    if (ltf__ws_room((size_t)blocks * 2 * C, "ltf__k_layernorm_backward") != 0) return;
    LTF__LAUNCH(ltf__k_layernorm_backward, blocks, ltf__red_threads(C), dinp, dw, db, dout, inp, w, mean, rstd, BT, C,
                ltf__ws, ltf__ws_counters);
}

/* Causal attention: one block per (prompt p, head h), att [B, H, N, N]. When the head fits (its
 * rows of q, k, v and dout in 48 KB), the block first copies the rows it reads many times into
 * shared memory with coalesced loads; else it reads them where they are. Either way the same
 * loops below run over row pointers and strides, so the two paths give the same bits. The inner
 * loops walk t2 (t) in step across the threads: every thread reads the same row at the same
 * time (a broadcast from shared memory). Sums in the CPU's order. */
#define LTF__ATT_SMEM 12288           /* floats of shared memory: 48 KB                          */

static int ltf__att_staged(int N, int C, int H, int rows) {   /* rows of the head to stage: 2 or 4 */
    return (size_t)rows * N * (C / H) <= LTF__ATT_SMEM;
}
static unsigned ltf__att_threads(int N) { return N > 64 ? 128 : N > 32 ? 64 : 32; }

/* The rows src[t * stride .. + hs), t < N, of one head: copied to dst (stride hs) when staged, else
 * used in place. Returns the rows' pointer, *stride their stride. */
__device__ const float *ltf__head_rows(float *dst, const float *src, size_t *stride, int N, int hs, int staged) {
    if (!staged) return src;
    for (int e = threadIdx.x; e < N * hs; e += blockDim.x) dst[e] = src[(size_t)(e / hs) * *stride + e % hs];
    *stride = (size_t)hs;
    return dst;
}

/* forward of one query row t: scores, softmax into a (row of att), o = sum a v (the loop body of
 * ltf_attention_forward_plain) */
__device__ void ltf__attention_row(float *o, float *a, const float *q, const float *K, size_t ks, const float *V, size_t vs,
                                   int t, int N, int hs, float scale) {
    float mx = -INFINITY, sum = 0.0f;
    for (int t2 = 0; t2 <= t; t2++) {
        float s = 0.0f;
        for (int i = 0; i < hs; i++) s += q[i] * K[t2 * ks + i];
        s *= scale;
        a[t2] = s;
        if (s > mx) mx = s;
    }
    for (int t2 = 0; t2 <= t; t2++) { a[t2] = ltf__expf(a[t2] - mx); sum += a[t2]; }
    for (int t2 = 0; t2 <= t; t2++) a[t2] /= sum;
    for (int t2 = t + 1; t2 < N; t2++) a[t2] = 0.0f;
    for (int i = 0; i < hs; i++) {
        float v = 0.0f;
        for (int t2 = 0; t2 <= t; t2++) v += a[t2] * V[t2 * vs + i];
        o[i] = v;
    }
}

__global__ void ltf__k_attention_forward(float *out, float *att, const float *qkv, int B, int N, int C, int H, int staged) {
    __shared__ float sm[LTF__ATT_SMEM];
    int hs = C / H;
    size_t C3 = 3 * (size_t)C;
    float scale = 1.0f / sqrtf((float)hs);
    for (size_t bh = blockIdx.x; bh < (size_t)B * H; bh += gridDim.x) {
        size_t p = bh / H, ks = C3, vs = C3;
        const float *base = qkv + p * N * C3 + (bh % H) * hs;
        __syncthreads();   /* the previous head is done with sm */
        const float *K = ltf__head_rows(sm, base + C, &ks, N, hs, staged);
        const float *V = ltf__head_rows(sm + (size_t)N * hs, base + 2 * C, &vs, N, hs, staged);
        __syncthreads();
        for (int t = threadIdx.x; t < N; t += blockDim.x)
            ltf__attention_row(out + (p * N + t) * C + (bh % H) * hs, att + (bh * N + t) * N, base + (size_t)t * C3, K, ks, V, vs,
                               t, N, hs, scale);
    }
}

/* Backward, one block per (p, h), in two phases so that no two threads add into the same
 * gradient:
 *  per query row t: datt[t2] = dout_t . v_t2, then ds[t2] = att[t2] (datt[t2] - sum_j att[j] datt[j])
 *     / sqrt(hs), kept in datt (the CPU keeps datt there; here it is ds), and dq_t += sum ds k_t2;
 *  (the block waits: the rows' ds are written)
 *  per key row t2: dk_t2 += sum_{t >= t2} ds_t[t2] q_t, dv_t2 += sum_{t >= t2} att_t[t2] dout_t,
 *     t ascending, the order in which the CPU adds them. */
__global__ void ltf__k_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                                          const float *att, int B, int N, int C, int H, int staged) {
    __shared__ float sm[LTF__ATT_SMEM];
    int hs = C / H;
    size_t C3 = 3 * (size_t)C, hN = (size_t)N * hs;
    float scale = 1.0f / sqrtf((float)hs);
    for (size_t bh = blockIdx.x; bh < (size_t)B * H; bh += gridDim.x) {
        size_t p = bh / H, qs = C3, ks = C3, vs = C3, ds_ = (size_t)C;
        int h = (int)(bh % H);
        const float *base = qkv + p * N * C3 + h * hs;
        __syncthreads();
        const float *Q = ltf__head_rows(sm, base, &qs, N, hs, staged);
        const float *K = ltf__head_rows(sm + hN, base + C, &ks, N, hs, staged);
        const float *V = ltf__head_rows(sm + 2 * hN, base + 2 * C, &vs, N, hs, staged);
        const float *DY = ltf__head_rows(sm + 3 * hN, dout + p * N * C + h * hs, &ds_, N, hs, staged);
        __syncthreads();
        for (int t = threadIdx.x; t < N; t += blockDim.x) {   /* query rows: ds, dq */
            const float *a = att + (bh * N + t) * N, *dy = DY + t * ds_;
            float *da = datt + (bh * N + t) * N, *dq = dqkv + (p * N + t) * C3 + h * hs, dot = 0.0f;
            for (int t2 = 0; t2 <= t; t2++) {
                float s = 0.0f;
                for (int i = 0; i < hs; i++) s += dy[i] * V[t2 * vs + i];
                da[t2] = s;
                dot += a[t2] * s;
            }
            for (int t2 = 0; t2 <= t; t2++) {
                float ds = a[t2] * (da[t2] - dot) * scale;
                da[t2] = ds;
                for (int i = 0; i < hs; i++) dq[i] += ds * K[t2 * ks + i];
            }
        }
        __syncthreads();   /* every query row's ds is in datt */
        for (int t2 = threadIdx.x; t2 < N; t2 += blockDim.x) {   /* key rows: dk, dv */
            float *dk = dqkv + (p * N + t2) * C3 + C + h * hs, *dv = dk + C;
            for (int t = 0; t < N; t++) {   /* from 0: the threads read one row at a time */
                if (t < t2) continue;
                size_t e = (bh * N + t) * N + t2;
                float ds = datt[e], prob = att[e];
                for (int i = 0; i < hs; i++) { dv[i] += prob * DY[t * ds_ + i]; dk[i] += ds * Q[t * qs + i]; }
            }
        }
    }
}

static void ltf__gpu_attention_forward(float *out, float *att, const float *qkv, int B, int N, int C, int H) {
    LTF__LAUNCH(ltf__k_attention_forward, ltf__row_blocks((size_t)B * H), ltf__att_threads(N), out, att, qkv, B, N, C, H,
                ltf__att_staged(N, C, H, 2));
}

static void ltf__gpu_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                                        const float *att, int B, int N, int C, int H) {
    LTF__LAUNCH(ltf__k_attention_backward, ltf__row_blocks((size_t)B * H), ltf__att_threads(N), dqkv, datt, dout, qkv, att,
                B, N, C, H, ltf__att_staged(N, C, H, 4));
}

/* ============================== [5] ops of the loop ==============================
 * The header's loop ops (its [5] too: tokens, injection with the state mask, read-out, loss),
 * in the pairs the table asks for. */

/* z[p, 2i] = x_i, z[p, 2i+1] = (y_i, 0, ..., 0): one thread per element of z [B*2n, d] */
__global__ void ltf__k_tokens(float *z, const float *xs, const float *ys, int B, int n, int d) {
    LTF__FOR_EACH(e, (size_t)B * 2 * n * d) {
        size_t row = e / d, bi = row / 2;       /* bi = p * n + i: the point this token shows */
        int j = (int)(e % d);
        z[e] = row % 2 == 0 ? xs[bi * d + j] : j == 0 ? ys[bi] : 0.0f;
    }
}
static void ltf__gpu_tokens(float *z, const float *xs, const float *ys, int B, int n, int d) {
    LTF__LAUNCH(ltf__k_tokens, ltf__blocks((size_t)B * 2 * n * d), LTF__THREADS, z, xs, ys, B, n, d);
}

/* The variants' elementwise ops (header §12): y += x; out = a * b; its backward da = dout * b
 * (da NULL: not wanted), db += dout * a. One thread per element. */
__global__ void ltf__k_add(float *y, const float *x, size_t n) {
    LTF__FOR_EACH(i, n) y[i] += x[i];
}
static void ltf__gpu_add(float *y, const float *x, size_t n) {
    LTF__LAUNCH(ltf__k_add, ltf__blocks(n), LTF__THREADS, y, x, n);
}
__global__ void ltf__k_mul_forward(float *out, const float *a, const float *b, size_t n) {
    LTF__FOR_EACH(i, n) out[i] = a[i] * b[i];
}
static void ltf__gpu_mul_forward(float *out, const float *a, const float *b, size_t n) {
    LTF__LAUNCH(ltf__k_mul_forward, ltf__blocks(n), LTF__THREADS, out, a, b, n);
}
__global__ void ltf__k_mul_backward(float *da, float *db, const float *dout, const float *a, const float *b, size_t n) {
    LTF__FOR_EACH(i, n) {
        if (da) da[i] = dout[i] * b[i];
        db[i] += dout[i] * a[i];
    }
}
static void ltf__gpu_mul_backward(float *da, float *db, const float *dout, const float *a, const float *b, size_t n) {
    LTF__LAUNCH(ltf__k_mul_backward, ltf__blocks(n), LTF__THREADS, da, db, dout, a, b, n);
}

/* h = mask(Y) + E + wpe (Y == NULL: Y = 0; the mask keeps tokens keep_lo..keep_hi-1 of each
 * prompt), out = LN(h): one block per row, the CPU's order of additions (E + Y, then + wpe) */
__global__ void ltf__k_inject_layernorm(float *h, float *out, float *mean, float *rstd, const float *Y, const float *E,
                                        const float *wpe, const float *w, const float *b, int B, int N, int C,
                                        int keep_lo, int keep_hi) {
    __shared__ float buf[LTF__RED];
    LTF__FOR_EACH_ROW(r, (size_t)B * N) {
        int t = (int)(r % N), keep = Y && t >= keep_lo && t < keep_hi;
        for (int i = threadIdx.x; i < C; i += blockDim.x) {
            float u = E[r * C + i] + (keep ? Y[r * C + i] : 0.0f);
            h[r * C + i] = u + wpe[(size_t)t * C + i];
        }
        ltf__row_layernorm(out + r * C, mean + r, rstd + r, h + r * C, w, b, C, buf);
    }
}
static void ltf__gpu_inject_layernorm(float *h, float *out, float *mean, float *rstd, const float *Y, const float *E,
                                      const float *wpe, const float *w, const float *b, int B, int N, int C,
                                      int keep_lo, int keep_hi) {
    LTF__LAUNCH(ltf__k_inject_layernorm, ltf__row_blocks((size_t)B * N), ltf__red_threads(C), h, out, mean, rstd, Y, E, wpe,
                w, b, B, N, C, keep_lo, keep_hi);
}

/* dwpe[t, i] += sum_p dh[p, t, i] (p in order), dE += dh, dY = mask(dh) (dE, dY NULL: not
 * wanted): one thread per (t, i) */
__global__ void ltf__k_inject_backward(float *dY, float *dE, float *dwpe, const float *dh, int B, int N, int C,
                                       int keep_lo, int keep_hi) {
    size_t NC = (size_t)N * C;
    LTF__FOR_EACH(ti, NC) {
        int t = (int)(ti / C), keep = t >= keep_lo && t < keep_hi;
        float s = 0.0f;
        for (int p = 0; p < B; p++) {
            size_t r = (size_t)p * NC + ti;
            float g = dh[r];
            s += g;
            if (dE) dE[r] += g;
            if (dY) dY[r] = keep ? g : 0.0f;
        }
        dwpe[ti] += s;
    }
}
static void ltf__gpu_inject_backward(float *dY, float *dE, float *dwpe, const float *dh, int B, int N, int C,
                                     int keep_lo, int keep_hi) {
    LTF__LAUNCH(ltf__k_inject_backward, ltf__blocks((size_t)N * C), LTF__THREADS, dY, dE, dwpe, dh, B, N, C, keep_lo, keep_hi);
}

/* pred[b, i] = w_out . Y[b, 2i] + b_out: one thread per point */
__device__ inline float ltf__read_point(const float *Y, const float *w_out, const float *b_out, size_t bi, int C) {
    const float *y = Y + 2 * bi * C;        /* row p * 2n + 2i = 2 * bi */
    float s = b_out[0];
    for (int k = 0; k < C; k++) s += w_out[k] * y[k];
    return s;
}
__global__ void ltf__k_read_out(float *pred, const float *Y, const float *w_out, const float *b_out, int B, int n, int C) {
    LTF__FOR_EACH(bi, (size_t)B * n) pred[bi] = ltf__read_point(Y, w_out, b_out, bi, C);
}
static void ltf__gpu_read_out(float *pred, const float *Y, const float *w, const float *b, int B, int n, int C) {
    LTF__LAUNCH(ltf__k_read_out, ltf__blocks((size_t)B * n), LTF__THREADS, pred, Y, w, b, B, n, C);
}

/* read-out and loss, one launch: pred per point; stats->loss_sum (+)= sum (pred - y)^2 in
 * double: per-block tree sums, added by the last block in block order */
/* A loss kernel's last step: the block's sum s into ws, and the last block adds the blocks' sums,
 * in block order, into stats->loss_sum (first: set). */
__device__ void ltf__loss_total(double s, double *buf, double *ws, unsigned *counter, ltf_stats *stats, int first) {
    s = ltf__block_sum(s, buf);
    if (threadIdx.x == 0) ws[blockIdx.x] = s;
    if (!ltf__last_block(counter)) return;
    if (threadIdx.x == 0) {
        double total = 0.0;
        for (unsigned k = 0; k < gridDim.x; k++) total += ws[k];
        stats->loss_sum = (first ? 0.0 : stats->loss_sum) + total;
    }
}

__global__ void ltf__k_read_out_loss(float *pred, ltf_stats *stats, const float *Y, const float *w_out, const float *b_out,
                                     const float *ys, int B, int n, int C, int first, double *ws, unsigned *counter) {
    __shared__ double buf[LTF__RED];
    double s = 0.0;
    LTF__FOR_EACH(bi, (size_t)B * n) {
        float p = ltf__read_point(Y, w_out, b_out, bi, C);
        pred[bi] = p;
        s += (double)(p - ys[bi]) * (p - ys[bi]);
    }
    ltf__loss_total(s, buf, ws, counter, stats, first);
}
static void ltf__gpu_read_out_loss(float *pred, ltf_stats *stats, const float *Y, const float *w, const float *b,
                                   const float *ys, int B, int n, int C, int first) {
    size_t bn = (size_t)B * n;
    unsigned blocks = ltf__part_blocks((bn + LTF__RED - 1) / LTF__RED);
    if (ltf__ws_room(2 * (size_t)blocks, "ltf__k_read_out_loss") != 0) return;
    LTF__LAUNCH(ltf__k_read_out_loss, blocks, LTF__RED, pred, stats, Y, w, b, ys, B, n, C, first,
                (double *)ltf__ws, ltf__ws_counters);
}

/* Classification (header §13): the cross-entropy of the x rows of logits [B*2n, K], summed in
 * double as ltf__k_read_out_loss sums; its gradient written over logits (zeros at the y rows).
 * One thread per point; the per-point math is the header's (ltf__ce_point*). */
__global__ void ltf__k_ce_loss(ltf_stats *stats, const float *logits, const float *ys, int B, int n, int K, int first,
                               double *ws, unsigned *counter) {
    __shared__ double buf[LTF__RED];
    double s = 0.0;
    LTF__FOR_EACH(pi, (size_t)B * n) s += ltf__ce_point(logits + 2 * pi * K, (int)ys[pi], K);
    ltf__loss_total(s, buf, ws, counter, stats, first);
}
static void ltf__gpu_ce_loss(ltf_stats *stats, const float *logits, const float *ys, int B, int n, int K, int first) {
    size_t bn = (size_t)B * n;
    unsigned blocks = ltf__part_blocks((bn + LTF__RED - 1) / LTF__RED);
    if (ltf__ws_room(2 * (size_t)blocks, "ltf__k_ce_loss") != 0) return;
    LTF__LAUNCH(ltf__k_ce_loss, blocks, LTF__RED, stats, logits, ys, B, n, K, first, (double *)ltf__ws, ltf__ws_counters);
}
__global__ void ltf__k_ce_backward(float *logits, const float *ys, float denom, int B, int n, int K) {
    LTF__FOR_EACH(pi, (size_t)B * n) ltf__ce_point_backward(logits + 2 * pi * K, (int)ys[pi], denom, K);
}
static void ltf__gpu_ce_backward(float *logits, const float *ys, float denom, int B, int n, int K) {
    LTF__LAUNCH(ltf__k_ce_backward, ltf__blocks((size_t)B * n), LTF__THREADS, logits, ys, denom, B, n, K);
}

/* dL/dpred = 2 (pred - y) / denom, then the read-out's backward, one launch: blocks take
 * points bi = block, block + blocks, ...; threads take columns k: dY[p, 2i, k] += dpred w_out[k]
 * and the block's sums of dpred Y[., k] (and of dpred) in the work space; after the block's
 * last read of pred, dpred replaces it; the last block adds the sums into g_w, g_b. */
__global__ void ltf__k_read_out_loss_backward(float *dY, float *g_w, float *g_b, float *pred, const float *ys, float denom,
                                              const float *Y, const float *w_out, int B, int n, int C,
                                              float *ws, unsigned *counter) {
    size_t bn = (size_t)B * n;
    float *part = ws + (size_t)blockIdx.x * (C + 1);
    for (int k = threadIdx.x; k < C; k += blockDim.x) part[k] = 0.0f;   /* each thread its own entries */
    if (threadIdx.x == 0) part[C] = 0.0f;
    for (size_t bi = blockIdx.x; bi < bn; bi += gridDim.x) {
        float dp = 2.0f * (pred[bi] - ys[bi]) / denom;
        for (int k = threadIdx.x; k < C; k += blockDim.x) {
            dY[2 * bi * C + k] += dp * w_out[k];
            part[k] += dp * Y[2 * bi * C + k];
        }
        if (threadIdx.x == 0) part[C] += dp;
    }
    __syncthreads();   /* every thread has read pred */
    for (size_t bi = blockIdx.x + (size_t)threadIdx.x * gridDim.x; bi < bn; bi += (size_t)blockDim.x * gridDim.x)
        pred[bi] = 2.0f * (pred[bi] - ys[bi]) / denom;
    if (!ltf__last_block(counter)) return;
    for (int k = threadIdx.x; k <= C; k += blockDim.x) {
        float s = 0.0f;
        for (unsigned q = 0; q < gridDim.x; q++) s += ws[(size_t)q * (C + 1) + k];
        if (k < C) g_w[k] += s;
        else g_b[0] += s;
    }
}
static void ltf__gpu_read_out_loss_backward(float *dY, float *dw, float *db, float *pred, const float *ys, float denom,
                                            const float *Y, const float *w, int B, int n, int C) {
    unsigned blocks = ltf__part_blocks((size_t)B * n);
    if (ltf__ws_room((size_t)blocks * (C + 1), "ltf__k_read_out_loss_backward") != 0) return;
    LTF__LAUNCH(ltf__k_read_out_loss_backward, blocks, ltf__red_threads(C), dY, dw, db, pred, ys, denom, Y, w, B, n, C,
                ltf__ws, ltf__ws_counters);
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
    /* on the stream: ordered before every op that uses it (the legacy stream would not be) */
    LTF__CU(err, cudaMemsetAsync(*p, 0, (n ? n : 1) * sizeof(float), ltf__stream()), "zeroing new GPU memory");
    return 0;
}

static void ltf__gpu_release(float *p) {
    cudaFree(p);
    cudaGetLastError();   /* freeing after a lost context fails too: nothing more to do */
}

/* host -> device, in stream order (the host buffer may be reused at once) */
static int ltf__gpu_put(void *dst, const void *src, size_t bytes, char *err) {
    LTF__CU(err, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ltf__stream()), "copying to the GPU");
    return 0;
}

/* waits for everything queued, reports its first failure, then copies device -> host */
static int ltf__gpu_get(void *dst, const void *src, size_t bytes, char *err, const char *what) {
    LTF__CU(err, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ltf__stream()), "copying from the GPU");
    return ltf__gpu_finish(err, what);
}

/* ============================== [9] Adam and the gradient check ==============================
 * The header's update, element for element, with the step's numbers from device memory; the
 * whole update is skipped when the guard holds a bad step (ltf__step_is_bad). */

__global__ void ltf__k_adam(float *p, float *mom, float *vel, const float *grad, size_t n, const ltf_step_scalars *s,
                            const ltf_stats *guard) {
    if (ltf__step_is_bad(guard, n)) return;
    float step = s->step, sqrt_bc2 = s->sqrt_bc2, decay = s->decay, b1 = s->beta1, b2 = s->beta2, eps = s->eps;
    LTF__FOR_EACH(i, n) {
        float g = grad[i];
        float mi = b1 * mom[i] + (1.0f - b1) * g;
        float vi = b2 * vel[i] + (1.0f - b2) * g * g;
        mom[i] = mi; vel[i] = vi;
        p[i] = p[i] * decay - step * mi / (sqrtf(vi) / sqrt_bc2 + eps);
    }
}

static void ltf__gpu_adam(float *p, float *m, float *v, const float *g, size_t n, const ltf_step_scalars *s,
                          const ltf_stats *guard) {
    LTF__LAUNCH(ltf__k_adam, ltf__blocks(n), LTF__THREADS, p, m, v, g, n, s, guard);
}

/* stats->first_bad = the first i with g[i] NaN or Inf, else n: each thread's first bad index
 * (it walks its indices upward), the block's minimum, then the last block's minimum over the
 * blocks. Integers: any order gives the same answer. */
__global__ void ltf__k_check_finite(ltf_stats *stats, const float *g, size_t n, unsigned long long *ws, unsigned *counter) {
    __shared__ unsigned long long buf[LTF__RED];
    unsigned long long first = n;
    LTF__FOR_EACH(i, n)
        if (!isfinite(g[i])) { first = i; break; }
    buf[threadIdx.x] = first;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s && buf[threadIdx.x + s] < buf[threadIdx.x]) buf[threadIdx.x] = buf[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) ws[blockIdx.x] = buf[0];
    if (!ltf__last_block(counter)) return;
    if (threadIdx.x == 0) {
        unsigned long long m = n;
        for (unsigned k = 0; k < gridDim.x; k++) m = ws[k] < m ? ws[k] : m;
        stats->first_bad = m;
    }
}

static void ltf__gpu_check_finite(ltf_stats *stats, const float *g, size_t n) {
    unsigned blocks = ltf__part_blocks((n + LTF__RED - 1) / LTF__RED);
    if (ltf__ws_room(2 * (size_t)blocks, "ltf__k_check_finite") != 0) return;
    LTF__LAUNCH(ltf__k_check_finite, blocks, LTF__RED, stats, g, n, (unsigned long long *)ltf__ws, ltf__ws_counters);
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

__global__ void ltf__k_task_sample(ltf_task t, const ltf_step_scalars *s, int B, int n, float *xs, float *ys) {
    uint64_t key = s->key;
    LTF__FOR_EACH(p, (size_t)B * n) ltf__sample_point(&t, key, (int)(p / n), (int)(p % n), xs + p * t.n_dims, ys + p);
}

/* A batch of B prompts of n points, with the step's key from s, into xs, ys (device memory;
 * the header checked the shapes and made the room) */
static void ltf__gpu_task_sample(const ltf_task *task, const ltf_step_scalars *s, int B, int n, float *xs, float *ys) {
    LTF__LAUNCH(ltf__k_task_sample, ltf__blocks((size_t)B * n), LTF__THREADS, *task, s, B, n, xs, ys);
}

/* ============================== [14] recording steps, the backend table, public API ==============================
 * A training step is the same sequence of launches for the same shape (the header's
 * ltf__step_shape key) and the same buffers: the first step of a shape runs while the stream is
 * captured into a CUDA graph; later steps of that shape launch the graph (one launch instead
 * of ~350), reading their own numbers from the step scalars. Off with LTF_CUDA_GRAPH=0, with
 * LTF_CUDA_SYNC and while profiling. A model's recordings go when its memory goes
 * (graph_drop), all of them when the work space moves or the precision changes. */

#define LTF__GRAPHS 16
typedef struct {
    const ltf_model *m;              /* NULL: a free slot                                     */
    unsigned char key[256];
    size_t key_bytes;
    cudaGraphExec_t exec;
    unsigned long used;              /* for least-recently-used replacement                   */
} ltf__gpu_graph;
static ltf__gpu_graph ltf__graphs[LTF__GRAPHS];
static ltf__gpu_graph ltf__graph_next;   /* the key being recorded                            */
static unsigned long ltf__graph_clock;
static long ltf__graph_replays, ltf__graph_records;

static int ltf__gpu_graphs_on(void) {
    const char *v = getenv("LTF_CUDA_GRAPH");
    return !(v && strcmp(v, "0") == 0) && !ltf__gpu_sync_each() && !ltf__prof_on && ltf__stream() != 0;
}

static void ltf__graph_free(ltf__gpu_graph *g) {
    if (g->m) { cudaGraphExecDestroy(g->exec); cudaGetLastError(); }
    memset(g, 0, sizeof *g);
}
static void ltf__gpu_graphs_drop_all(void) {
    for (int i = 0; i < LTF__GRAPHS; i++) ltf__graph_free(&ltf__graphs[i]);
}
static void ltf__gpu_graph_drop(const ltf_model *m) {
    for (int i = 0; i < LTF__GRAPHS; i++)
        if (ltf__graphs[i].m == m) ltf__graph_free(&ltf__graphs[i]);
}

/* The work space a step of this model may need, sized before recording (a recording cannot
 * allocate): split-K parts of its weight gradients, and the partials of the other reductions. */
static int ltf__gpu_ws_for(const ltf_model *m, char *err) {
    size_t C = (size_t)m->cfg.n_embd, rows = m->run.cap_rows, need = 2 * LTF__PARTS * (2 * C + 2);
    size_t shapes[5][2] = {{3 * C, C}, {C, C}, {4 * C, C}, {C, 4 * C}, {C, (size_t)m->cfg.n_dims}};   /* OC, C_in */
    for (int i = 0; i < 5; i++) {
        ltf__gemm_job J = ltf__gemm_job_make((int)shapes[i][0], (int)shapes[i][1] + 1, (int)rows, NULL, 0, 0, NULL, 0, 0,
                                             NULL, 0, LTF__EPI_ADD);
        size_t parts = ltf__gemm_plan(&J, 1);
        need = parts > need ? parts : need;
    }
    if (ltf__ws_room(need, "the work space") != 0) return ltf__gpu_finish(err, "making room for the work space");
    return 0;
}

static int ltf__gpu_graph_begin(ltf_model *m, const void *key, size_t key_bytes) {
    if (!ltf__gpu_graphs_on() || key_bytes > sizeof ltf__graphs[0].key || ltf__gpu_error != cudaSuccess) return 0;
    for (int i = 0; i < LTF__GRAPHS; i++) {
        ltf__gpu_graph *g = &ltf__graphs[i];
        if (g->m == m && g->key_bytes == key_bytes && memcmp(g->key, key, key_bytes) == 0) {
            g->used = ++ltf__graph_clock;
            ltf__gpu_note(cudaGraphLaunch(g->exec, ltf__stream()), "cudaGraphLaunch (a recorded training step)");
            ltf__graph_replays++;
            return 1;
        }
    }
    if (ltf__gpu_ws_for(m, m->err) != 0) return -1;
    if (cudaStreamBeginCapture(ltf__stream(), cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        cudaGetLastError();
        return 0;   /* not recorded: the ops run as they are queued */
    }
    ltf__gpu_recording = 1;
    memset(&ltf__graph_next, 0, sizeof ltf__graph_next);
    ltf__graph_next.m = m;
    memcpy(ltf__graph_next.key, key, key_bytes);
    ltf__graph_next.key_bytes = key_bytes;
    return 0;
}

/* Ends the recording, keeps it (replacing the least recently used), and runs it: recording
 * ran nothing. */
static int ltf__gpu_graph_end(ltf_model *m) {
    if (!ltf__gpu_recording) return 0;
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    ltf__gpu_recording = 0;
    cudaError_t e = cudaStreamEndCapture(ltf__stream(), &graph);
    if (e == cudaSuccess && ltf__gpu_error != cudaSuccess) e = ltf__gpu_error;
    if (e == cudaSuccess) e = cudaGraphInstantiate(&exec, graph, 0);
    if (graph) cudaGraphDestroy(graph);
    if (e != cudaSuccess) {
        const char *what = ltf__gpu_error != cudaSuccess ? ltf__gpu_error_what : "recording the training step";
        ltf__gpu_error = cudaSuccess;
        cudaGetLastError();
        return ltf__fail(m->err, "CUDA error while recording the training step: %s: %s (%s)", what,
                         cudaGetErrorString(e), cudaGetErrorName(e));
    }
    ltf__gpu_graph *slot = &ltf__graphs[0];
    for (int i = 0; i < LTF__GRAPHS; i++) {
        if (!ltf__graphs[i].m) { slot = &ltf__graphs[i]; break; }
        if (ltf__graphs[i].used < slot->used) slot = &ltf__graphs[i];
    }
    ltf__graph_free(slot);
    *slot = ltf__graph_next;
    slot->exec = exec;
    slot->used = ++ltf__graph_clock;
    ltf__graph_records++;
    ltf__gpu_note(cudaGraphLaunch(exec, ltf__stream()), "cudaGraphLaunch (a recorded training step)");
    return 0;
}

LTF__DEFINE_BACKEND(ltf__cuda, "cuda", 0, ltf__gpu_, ltf__gpu_, ltf__gpu_, ltf__gpu_task_sample, ltf__gpu_graph_begin,
                    ltf__gpu_graph_end, ltf__gpu_graph_drop, ltf__gpu_ce_loss, ltf__gpu_ce_backward)

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
    e = cudaFuncGetAttributes(&fa, ltf__k_tokens);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return ltf__fail(msg, "GPU %d (%.60s) has compute capability %d.%d and cannot run this build's kernels (%s; "
                         "built for %s): rebuild with NVCC_ARCH=sm_%d%d ./build.sh cuda", dev, p.name, p.major, p.minor,
                         cudaGetErrorName(e), LTF__BUILT_FOR, p.major, p.minor);
    }
    ltf__gpu_sms = p.multiProcessorCount > 0 ? p.multiProcessorCount : ltf__gpu_sms;
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
    if (!ltf__stream()) return ltf__fail(err, "CUDA error while creating the GPU's stream");
    return ltf__use_backend(m, ltf__cuda(), err);
}

int ltf_gpu_set_precision(const char *mode, char err[LTF_ERR_LEN]) {
    static const char *const names[3] = {"fp32", "tf32", "bf16"};
    for (int i = 0; i < 3; i++)
        if (mode && strcmp(mode, names[i]) == 0) {
            if (i != ltf__gpu_prec) ltf__gpu_graphs_drop_all();   /* recorded with the other kernels */
            ltf__gpu_prec = i;
            return 0;
        }
    return ltf__fail(err, "GPU precision '%s' is not allowed: use fp32, tf32 or bf16", mode ? mode : "(null)");
}

long ltf_gpu_launches(void) { return ltf__gpu_n_launches; }

int ltf_gpu_profile(int on, char err[LTF_ERR_LEN]) {
    if (on && ltf__gpu_recording) return ltf__fail(err, "cannot start the GPU profile while a step is being recorded");
    if (ltf__gpu_finish(err, "starting the GPU profile") != 0) return -1;
    if (on) { ltf__prof_n = 0; ltf__prof_lost = 0; }
    ltf__prof_on = on != 0;
    return 0;
}

static int ltf__phase_cmp(const void *a, const void *b) {
    double x = ((const ltf_gpu_phase *)a)->ms, y = ((const ltf_gpu_phase *)b)->ms;
    return x < y ? 1 : x > y ? -1 : 0;
}

int ltf_gpu_profile_read(ltf_gpu_phase *phases, int cap, char err[LTF_ERR_LEN]) {
    int n = 0;
    if (ltf__gpu_finish(err, "reading the GPU profile") != 0) return -1;
    if (ltf__prof_lost) return ltf__fail(err, "the GPU profile lost %d launches (more than %d recorded)", ltf__prof_lost, LTF__PROFILE_MAX);
    for (int i = 0; i < ltf__prof_n; i++) {
        float ms = 0.0f;
        LTF__CU(err, cudaEventElapsedTime(&ms, ltf__prof[i].start, ltf__prof[i].stop), "timing a kernel");
        int k = 0;
        while (k < n && strcmp(phases[k].name, ltf__prof[i].name) != 0) k++;
        if (k == n) {
            if (n == cap) return ltf__fail(err, "the GPU profile has more than %d kernels", cap);
            phases[n].name = ltf__prof[i].name; phases[n].launches = 0; phases[n].ms = 0; n++;
        }
        phases[k].launches++;
        phases[k].ms += ms;
    }
    qsort(phases, (size_t)n, sizeof *phases, ltf__phase_cmp);
    return n;
}

/* cuda_emu.h - runs the kernels of looped_tf_cuda.cu on the CPU: the GPU tests without a GPU.
 *
 * A test tool, not part of the library. `./build.sh cuda-emu` compiles test.c with g++ as C++
 * with -DLOOPED_TF_CUDA -DLTF_CUDA_EMU, and looped_tf_cuda.cu then includes this file instead
 * of <cuda_runtime.h>. It implements the part of the CUDA runtime that file uses:
 *
 *   memory   device memory is host memory (malloc), so AddressSanitizer (the cuda-emu build
 *            turns it on) checks every access of every kernel: the emulator's memcheck. New
 *            allocations are filled with NaN bytes, as real device memory holds garbage.
 *            cudaMemcpy / cudaMemset check that the device range lies inside one allocation.
 *            The device has LTF_EMU_MEM_MB megabytes (default 4096): beyond that cudaMalloc
 *            fails with cudaErrorMemoryAllocation, as a full GPU does. Device memory still
 *            allocated at exit is reported, and the exit status becomes 3.
 *   launches the grid's blocks run one after another; the threads of a block run as
 *            coroutines (ucontext) that switch at __syncthreads(), so barriers and __shared__
 *            memory (static storage: one block at a time) behave as on the GPU. Between
 *            barriers the threads run in the order LTF_EMU_ORDER says: "forward" (default),
 *            "reverse", or a number (a seeded shuffle); blocks run in that order too. A
 *            missing barrier, or two threads writing one place, makes results depend on the
 *            order: the tests run under two orders. A __syncthreads() that some thread of
 *            the block never reaches aborts with a message. Kernels whose first block calls
 *            no __syncthreads() run their other blocks as plain loops (fast).
 *   streams, graphs  one stream: work runs when queued, in order. Between cudaStreamBeginCapture
 *            and cudaStreamEndCapture kernels, memsets and device-to-device copies are
 *            recorded, not run, into a list that cudaGraphLaunch runs (the "graph"); a host
 *            copy or a synchronization while recording fails and spoils the recording, as on
 *            the GPU (cudaErrorStreamCaptureUnsupported / ...Invalidated): a test that a step
 *            has no host synchronization. ltf_emu::kernels_run and ltf_emu::memsets count
 *            what ran (replays included), ltf_emu::syncs the host's waits.
 *   events   cudaEventRecord takes the host clock: kernels run when queued, so the time between
 *            two events is the time their kernels took on the CPU.
 *   tensor cores  nvcuda::wmma's fragments, load/store/mma_sync and fill_fragment, for TF32
 *            (m16n16k8) and bfloat16 (m16n16k16) with float accumulators. A fragment's layout
 *            is opaque to a kernel, so here every thread's fragment holds the whole tile;
 *            mma_sync accumulates in float32, k in order, and, as the hardware, reads only
 *            the 19 bits of a TF32 operand (truncation, unless the kernel rounded it with
 *            __float_to_tf32, as it should: round to nearest, ties away). __nv_bfloat16 with
 *            __float2bfloat16_rn (round to nearest even) and __bfloat162float.
 *   atomics  atomicAdd on unsigned; __threadfence.
 *   devices  LTF_EMU_DEVICES=0 pretends there is no GPU; LTF_EMU_CC=7.0 a GPU too old for
 *            the kernels (no kernel image), so the tests reach those error paths too.
 *   launch checks  block sizes, grid limits: cudaErrorInvalidConfiguration as on the GPU.
 * Not emulated: warps (beyond wmma, the kernels use no warp-level primitives), concurrency
 * between blocks (a race between blocks is caught only through the order), GPU timing.
 */
#ifndef LTF_CUDA_EMU_H
#define LTF_CUDA_EMU_H

#include <ucontext.h>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <random>
#include <type_traits>
#include <vector>
#include <time.h>

#define __global__
#define __device__
#define __host__
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
static dim3 threadIdx, blockIdx, blockDim, gridDim;

enum cudaError_t {
    cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2, cudaErrorInvalidConfiguration = 9,
    cudaErrorNoDevice = 100, cudaErrorNoKernelImageForDevice = 209, cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901
};
struct ltf_emu_stream { int unused; };
typedef ltf_emu_stream *cudaStream_t;
struct ltf_emu_event { double t; };
typedef ltf_emu_event *cudaEvent_t;
struct ltf_emu_graph { std::vector<std::function<void()>> nodes; };
typedef ltf_emu_graph *cudaGraph_t;
typedef ltf_emu_graph *cudaGraphExec_t;
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal, cudaStreamCaptureModeThreadLocal, cudaStreamCaptureModeRelaxed };
#define cudaStreamNonBlocking 1
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
struct cudaDeviceProp { char name[256]; int major, minor; size_t totalGlobalMem; int multiProcessorCount; };
struct cudaFuncAttributes { int maxThreadsPerBlock; };

namespace ltf_emu {

static inline cudaError_t last_error = cudaSuccess;
static long kernels_run, memsets;       /* what ran, replays included                       */
static long syncs;                      /* host waits (stream or device synchronizations)   */
static bool capturing, capture_spoiled; /* between cudaStreamBeginCapture and EndCapture     */
static std::vector<std::function<void()>> recorded;
static std::map<char *, size_t> allocations;   /* device memory: start -> bytes */
static size_t in_use;

static inline cudaError_t fail(cudaError_t e) { last_error = e; return e; }

/* at exit: device memory never freed is a leak (compute-sanitizer --leak-check full) */
struct leak_check {
    ~leak_check() {
        if (allocations.empty()) return;
        size_t bytes = 0;
        for (auto &a : allocations) bytes += a.second;
        fprintf(stderr, "cuda_emu: %zu device allocations (%zu bytes) were never freed\n", allocations.size(), bytes);
        fflush(stdout);
        _exit(3);
    }
};
static leak_check at_exit;
static long env_long(const char *name, long fallback) {
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : fallback;
}
static int devices() { return (int)env_long("LTF_EMU_DEVICES", 1); }
static size_t memory() { return (size_t)env_long("LTF_EMU_MEM_MB", 4096) << 20; }
static void capability(int *major, int *minor) {
    const char *v = getenv("LTF_EMU_CC");
    *major = 9; *minor = 0;
    if (v && *v) sscanf(v, "%d.%d", major, minor);
}

/* is [p, p + n) inside one device allocation? */
static bool on_device(const void *p, size_t n) {
    char *q = (char *)p;
    auto it = allocations.upper_bound(q);
    if (it == allocations.begin()) return false;
    --it;
    return q >= it->first && q + n <= it->first + it->second;
}

/* ---- launches: blocks in order, the threads of a block as coroutines ----
 * A coroutine per thread index, created once and kept: it runs the kernel body, says DONE,
 * returns to the scheduler, and runs the body again when the next block starts. Switching is
 * a few instructions on x86-64 (save the callee-saved registers, swap stack pointers), and
 * swapcontext elsewhere; AddressSanitizer is told about every stack switch. */

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define LTF_EMU_ASAN 1
#endif
#if defined(__x86_64__)
extern "C" void ltf_emu_switch(void **save_sp, void *load_sp);
asm(".text\n"
    ".globl ltf_emu_switch\n"
    ".type ltf_emu_switch, @function\n"
    "ltf_emu_switch:\n"          /* rdi: where to save this stack pointer, rsi: the one to load */
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size ltf_emu_switch, .-ltf_emu_switch\n");
#endif

enum { RUNNING, AT_BARRIER, DONE };
struct coroutine {
    int state;
    dim3 idx;
    char *stack;
    void *fake_stack;          /* AddressSanitizer's bookkeeping while switched out */
#if defined(__x86_64__)
    void *sp;
#else
    ucontext_t ctx;
#endif
};
static const size_t stack_bytes = 256 * 1024;
static coroutine threads[1024];
static size_t n_created;        /* coroutines 0 .. n_created-1 exist                          */
static size_t n_threads;        /* threads of the current launch's blocks                     */
#if defined(__x86_64__)
static void *scheduler_sp;
#else
static ucontext_t scheduler_ctx;
#endif
#ifdef LTF_EMU_ASAN
static const void *main_bottom; /* the scheduler's stack, for AddressSanitizer                */
static size_t main_size;
#endif
static std::function<void()> body;
static int current = -1;        /* the coroutine running; -1: a plain loop (no barriers allowed) */
static const char *kernel_name = "";

static void to_scheduler() {
    coroutine &c = threads[current];
#ifdef LTF_EMU_ASAN
    __sanitizer_start_switch_fiber(&c.fake_stack, main_bottom, main_size);
#endif
#if defined(__x86_64__)
    ltf_emu_switch(&c.sp, scheduler_sp);
#else
    swapcontext(&c.ctx, &scheduler_ctx);
#endif
#ifdef LTF_EMU_ASAN
    __sanitizer_finish_switch_fiber(c.fake_stack, &main_bottom, &main_size);
#endif
}

static void to_thread(size_t i) {
    current = (int)i;
    threadIdx = threads[i].idx;
#ifdef LTF_EMU_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, threads[i].stack, stack_bytes);
#endif
#if defined(__x86_64__)
    ltf_emu_switch(&scheduler_sp, threads[i].sp);
#else
    swapcontext(&scheduler_ctx, &threads[i].ctx);
#endif
#ifdef LTF_EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    current = -1;
}

static void thread_main() {
#ifdef LTF_EMU_ASAN
    __sanitizer_finish_switch_fiber(NULL, &main_bottom, &main_size);
#endif
    for (;;) {
        body();
        threads[current].state = DONE;
        to_scheduler();
    }
}

static void create_thread(size_t i) {
    coroutine &c = threads[i];
    c.stack = (char *)malloc(stack_bytes);
    c.fake_stack = NULL;
#if defined(__x86_64__)
    /* a stack that ltf_emu_switch "returns" into thread_main from: six saved registers, the
     * entry address, and a fake return address so that thread_main starts 16-byte aligned */
    uintptr_t top = ((uintptr_t)c.stack + stack_bytes) & ~(uintptr_t)15;
    void **sp = (void **)top;
    *--sp = NULL;
    *--sp = (void *)thread_main;
    for (int r = 0; r < 6; r++) *--sp = NULL;
    c.sp = sp;
#else
    getcontext(&c.ctx);
    c.ctx.uc_stack.ss_sp = c.stack;
    c.ctx.uc_stack.ss_size = stack_bytes;
    c.ctx.uc_link = NULL;
    makecontext(&c.ctx, thread_main, 0);
#endif
}

[[noreturn]] static void die(const char *fmt, const char *a, long b = 0, long c = 0) {
    fprintf(stderr, "cuda_emu: ");
    fprintf(stderr, fmt, a, b, c);
    fprintf(stderr, "\n");
    abort();
}

static void syncthreads() {
    if (current < 0) die("kernel %s calls __syncthreads() in a block run as a plain loop: an earlier launch of it did not", kernel_name);
    threads[current].state = AT_BARRIER;
    to_scheduler();
}

static std::vector<size_t> order(size_t n) {
    std::vector<size_t> o(n);
    for (size_t i = 0; i < n; i++) o[i] = i;
    const char *how = getenv("LTF_EMU_ORDER");
    if (how && strcmp(how, "reverse") == 0) std::reverse(o.begin(), o.end());
    else if (how && *how && strcmp(how, "forward") != 0) {
        std::mt19937 g((unsigned)strtoul(how, NULL, 10));
        std::shuffle(o.begin(), o.end(), g);
    }
    return o;
}

static dim3 unflatten(size_t i, dim3 d) { return dim3((unsigned)(i % d.x), (unsigned)(i / d.x % d.y), (unsigned)(i / d.x / d.y)); }

/* One block as coroutines; returns whether any thread waited at a barrier. */
static bool run_block_coroutines(const std::vector<size_t> &thread_order) {
    bool barriers = false;
    for (size_t i = 0; i < n_threads; i++) { threads[i].state = RUNNING; threads[i].idx = unflatten(i, blockDim); }
    for (;;) {
        for (size_t i : thread_order)
            if (threads[i].state == RUNNING) to_thread(i);
        size_t done = 0, waiting = 0;
        for (size_t i = 0; i < n_threads; i++) { done += threads[i].state == DONE; waiting += threads[i].state == AT_BARRIER; }
        if (done == n_threads) break;
        if (done > 0) die("kernel %s: %ld threads of a block finished while %ld wait at __syncthreads()", kernel_name, (long)done, (long)waiting);
        barriers = true;
        for (size_t i = 0; i < n_threads; i++) threads[i].state = RUNNING;
    }
    return barriers;
}

static void run_launch(const char *name, dim3 grid, dim3 block, std::function<void()> call);
static void launch(const char *name, dim3 grid, dim3 block, std::function<void()> call) {
    if (capturing) recorded.push_back([=]() { run_launch(name, grid, block, call); });
    else run_launch(name, grid, block, call);
}
static void run_launch(const char *name, dim3 grid, dim3 block, std::function<void()> call) {
    kernels_run++;
    size_t nt = (size_t)block.x * block.y * block.z, nb = (size_t)grid.x * grid.y * grid.z;
    if (nt == 0 || nt > 1024 || block.z > 64 || nb == 0 || grid.y > 65535 || grid.z > 65535) {
        fail(cudaErrorInvalidConfiguration);
        return;
    }
    if (devices() < 1) { fail(cudaErrorNoDevice); return; }
    int major, minor;
    capability(&major, &minor);
    if (major < 9) { fail(cudaErrorNoKernelImageForDevice); return; }
    kernel_name = name;
    body = call;
    gridDim = grid; blockDim = block;
    n_threads = nt;
    for (; n_created < nt; n_created++) create_thread(n_created);
    std::vector<size_t> thread_order = order(nt), block_order = order(nb);
    /* a kernel seen to call no __syncthreads() in a whole launch runs its blocks as plain loops
     * from then on; the others run every block as coroutines (a block may leave early, before
     * any barrier, while the others wait at theirs) */
    static std::map<std::string, bool> barrier_free;
    auto known = barrier_free.find(name);
    bool plain = known != barrier_free.end() && known->second, barriers = false;
    for (size_t k = 0; k < nb; k++) {
        blockIdx = unflatten(block_order[k], grid);
        if (!plain) barriers |= run_block_coroutines(thread_order);
        else
            for (size_t i : thread_order) { threadIdx = unflatten(i, block); body(); }
    }
    if (!plain) barrier_free[name] = !barriers;
}

}  /* namespace ltf_emu */

#define __syncthreads() ltf_emu::syncthreads()

/* LTF__LAUNCH's stand-in for kernel<<<grid, block>>>(args): the call's arguments convert to
 * the kernel's parameter types at the call, as with <<<>>>. */
template <typename... P> struct ltf_emu_call {
    const char *name;
    dim3 grid, block;
    void (*kernel)(P...);
    void operator()(P... args) const {
        void (*k)(P...) = kernel;
        ltf_emu::launch(name, grid, block, [=]() { k(args...); });
    }
};
template <typename... P> ltf_emu_call<P...> ltf_emu_kernel(const char *name, dim3 grid, dim3 block, void (*kernel)(P...)) {
    return ltf_emu_call<P...>{name, grid, block, kernel};
}

/* ---- the runtime API ---- */

static inline const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorNoKernelImageForDevice: return "no kernel image is available for execution on the device";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    }
    return "unknown error";
}
static inline const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorNoKernelImageForDevice: return "cudaErrorNoKernelImageForDevice";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    }
    return "cudaErrorUnknown";
}
static inline cudaError_t cudaGetLastError(void) { cudaError_t e = ltf_emu::last_error; ltf_emu::last_error = cudaSuccess; return e; }
/* a synchronization or host copy while recording spoils the recording, as on the GPU */
static inline cudaError_t ltf_emu_no_capture(void) {
    if (!ltf_emu::capturing) return cudaSuccess;
    ltf_emu::capture_spoiled = true;
    return ltf_emu::fail(cudaErrorStreamCaptureUnsupported);
}
static inline cudaError_t cudaDeviceSynchronize(void) { ltf_emu::syncs++; return ltf_emu_no_capture(); }
static inline cudaError_t cudaStreamSynchronize(cudaStream_t) { ltf_emu::syncs++; return ltf_emu_no_capture(); }

static inline cudaError_t cudaGetDeviceCount(int *n) {
    *n = ltf_emu::devices() > 0 ? ltf_emu::devices() : 0;
    return *n > 0 ? cudaSuccess : ltf_emu::fail(cudaErrorNoDevice);
}
static inline cudaError_t cudaGetDevice(int *d) { *d = 0; return ltf_emu::devices() > 0 ? cudaSuccess : ltf_emu::fail(cudaErrorNoDevice); }
static inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev) {
    if (dev != 0 || ltf_emu::devices() < 1) return ltf_emu::fail(cudaErrorInvalidValue);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "CUDA emulator on the CPU (tests/cuda_emu.h)");
    ltf_emu::capability(&p->major, &p->minor);
    p->totalGlobalMem = ltf_emu::memory();
    p->multiProcessorCount = 132;   /* an H200's: launch shapes (split-K) as there */
    return cudaSuccess;
}
template <typename F> static cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *a, F) {
    int major, minor;
    ltf_emu::capability(&major, &minor);
    if (major < 9) return ltf_emu::fail(cudaErrorNoKernelImageForDevice);
    a->maxThreadsPerBlock = 1024;
    return cudaSuccess;
}
static inline cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b) {
    *total_b = ltf_emu::memory();
    *free_b = *total_b > ltf_emu::in_use ? *total_b - ltf_emu::in_use : 0;
    return cudaSuccess;
}

static inline cudaError_t cudaMalloc(void **p, size_t bytes) {
    if (ltf_emu::devices() < 1) return ltf_emu::fail(cudaErrorNoDevice);
    if (bytes > ltf_emu::memory() - std::min(ltf_emu::memory(), ltf_emu::in_use)) return ltf_emu::fail(cudaErrorMemoryAllocation);
    char *q = (char *)malloc(bytes ? bytes : 1);
    if (!q) return ltf_emu::fail(cudaErrorMemoryAllocation);
    memset(q, 0xff, bytes);   /* NaN in every float: garbage, as fresh device memory */
    ltf_emu::allocations[q] = bytes;
    ltf_emu::in_use += bytes;
    *p = q;
    return cudaSuccess;
}
static inline cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    auto it = ltf_emu::allocations.find((char *)p);
    if (it == ltf_emu::allocations.end()) return ltf_emu::fail(cudaErrorInvalidValue);
    ltf_emu::in_use -= it->second;
    ltf_emu::allocations.erase(it);
    free(p);
    return cudaSuccess;
}
static inline cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    if (ltf_emu_no_capture() != cudaSuccess) return cudaErrorStreamCaptureUnsupported;
    bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if ((dst_dev && !ltf_emu::on_device(dst, bytes)) || (src_dev && !ltf_emu::on_device(src, bytes)))
        return ltf_emu::fail(cudaErrorInvalidValue);
    memcpy(dst, src, bytes);
    return cudaSuccess;
}
static inline cudaError_t cudaMemset(void *p, int value, size_t bytes) {
    if (ltf_emu_no_capture() != cudaSuccess) return cudaErrorStreamCaptureUnsupported;
    if (!ltf_emu::on_device(p, bytes)) return ltf_emu::fail(cudaErrorInvalidValue);
    memset(p, value, bytes);
    return cudaSuccess;
}
static inline cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t) {
    if (!ltf_emu::on_device(p, bytes)) return ltf_emu::fail(cudaErrorInvalidValue);
    auto run = [=]() { ltf_emu::memsets++; memset(p, value, bytes); };
    if (ltf_emu::capturing) ltf_emu::recorded.push_back(run);
    else run();
    return cudaSuccess;
}
static inline cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
    if (kind != cudaMemcpyDeviceToDevice || !ltf_emu::capturing) return cudaMemcpy(dst, src, bytes, kind);
    if (!ltf_emu::on_device(dst, bytes) || !ltf_emu::on_device(src, bytes)) return ltf_emu::fail(cudaErrorInvalidValue);
    ltf_emu::recorded.push_back([=]() { memcpy(dst, src, bytes); });
    return cudaSuccess;
}

/* ---- streams, events, recording ---- */
static inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) {
    if (ltf_emu::devices() < 1) return ltf_emu::fail(cudaErrorNoDevice);
    *s = new ltf_emu_stream();
    return cudaSuccess;
}
static inline cudaError_t cudaStreamDestroy(cudaStream_t s) { delete s; return cudaSuccess; }
static inline cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = new ltf_emu_event(); (*e)->t = 0; return cudaSuccess; }
static inline cudaError_t cudaEventDestroy(cudaEvent_t e) { delete e; return cudaSuccess; }
static inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t = 0) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    e->t = ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
    return cudaSuccess;
}
static inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
static inline cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) { *ms = (float)(b->t - a->t); return cudaSuccess; }
static inline cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode) {
    if (ltf_emu::capturing) return ltf_emu::fail(cudaErrorStreamCaptureUnsupported);
    ltf_emu::capturing = true; ltf_emu::capture_spoiled = false;
    ltf_emu::recorded.clear();
    return cudaSuccess;
}
static inline cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t *g) {
    *g = NULL;
    if (!ltf_emu::capturing) return ltf_emu::fail(cudaErrorInvalidValue);
    ltf_emu::capturing = false;
    if (ltf_emu::capture_spoiled) { ltf_emu::recorded.clear(); return ltf_emu::fail(cudaErrorStreamCaptureInvalidated); }
    *g = new ltf_emu_graph();
    (*g)->nodes.swap(ltf_emu::recorded);
    return cudaSuccess;
}
static inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t *x, cudaGraph_t g, unsigned long long) {
    *x = new ltf_emu_graph(*g);
    return cudaSuccess;
}
static inline cudaError_t cudaGraphDestroy(cudaGraph_t g) { delete g; return cudaSuccess; }
static inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t x) { delete x; return cudaSuccess; }
static inline cudaError_t cudaGraphLaunch(cudaGraphExec_t x, cudaStream_t) {
    if (ltf_emu::capturing) return ltf_emu::fail(cudaErrorStreamCaptureUnsupported);
    for (auto &node : x->nodes) node();
    return ltf_emu::last_error;   /* a failed node, as the next synchronization would say */
}

/* atomics: blocks and threads never run at the same time here */
static inline unsigned atomicAdd(unsigned *a, unsigned v) {
    unsigned old = *a;
    *a = old + v;
    return old;
}
static inline void __threadfence(void) {}

/* ---- bfloat16 and the tensor cores (nvcuda::wmma) ---- */
struct __nv_bfloat16 { uint16_t bits; };
static inline uint32_t ltf_emu_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float ltf_emu_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline __nv_bfloat16 __float2bfloat16_rn(float f) {   /* round to nearest, ties to even */
    uint32_t u = ltf_emu_bits(f);
    __nv_bfloat16 h;
    if (std::isnan(f)) h.bits = 0x7fc0;
    else h.bits = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    return h;
}
static inline float __bfloat162float(__nv_bfloat16 h) { return ltf_emu_float((uint32_t)h.bits << 16); }

namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
namespace precision { struct tf32 {}; }
enum layout_t { mem_row_major, mem_col_major };

template <typename T> struct storage { typedef T type; };
template <> struct storage<precision::tf32> { typedef float type; };
template <typename U, int M, int N, int K> struct tile_shape;
template <int M, int N, int K> struct tile_shape<matrix_a, M, N, K> { enum { rows = M, cols = K }; };
template <int M, int N, int K> struct tile_shape<matrix_b, M, N, K> { enum { rows = K, cols = N }; };
template <int M, int N, int K> struct tile_shape<accumulator, M, N, K> { enum { rows = M, cols = N }; };

/* every thread's fragment holds the whole tile, row-major */
template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
    typedef typename storage<T>::type element_type;
    enum { rows = tile_shape<Use, M, N, K>::rows, cols = tile_shape<Use, M, N, K>::cols, num_elements = rows * cols };
    element_type x[num_elements];
};

static inline float __float_to_tf32(float f) {   /* round to nearest, ties away from zero: cvt.rna.tf32.f32 */
    if (!std::isfinite(f)) return f;
    return ltf_emu_float((ltf_emu_bits(f) + 0x1000u) & ~0x1fffu);
}
static inline float operand(float f, bool tf32) { return tf32 ? ltf_emu_float(ltf_emu_bits(f) & ~0x1fffu) : f; }
static inline float operand(__nv_bfloat16 h, bool) { return __bfloat162float(h); }

template <typename Use, int M, int N, int K, typename T, typename L, typename P>
void load_matrix_sync(fragment<Use, M, N, K, T, L> &f, const P *p, unsigned ldm) {
    static_assert(std::is_same<L, row_major>::value, "the emulator loads row-major tiles only");
    for (int r = 0; r < f.rows; r++)
        for (int c = 0; c < f.cols; c++) f.x[r * f.cols + c] = p[(size_t)r * ldm + c];
}
template <int M, int N, int K>
void store_matrix_sync(float *p, const fragment<accumulator, M, N, K, float> &f, unsigned ldm, layout_t layout) {
    if (layout != mem_row_major) abort();
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) p[(size_t)r * ldm + c] = f.x[r * N + c];
}
template <int M, int N, int K>
void fill_fragment(fragment<accumulator, M, N, K, float> &f, float v) {
    for (int i = 0; i < M * N; i++) f.x[i] = v;
}
template <int M, int N, int K, typename T, typename LA, typename LB>
void mma_sync(fragment<accumulator, M, N, K, float> &d, const fragment<matrix_a, M, N, K, T, LA> &a,
              const fragment<matrix_b, M, N, K, T, LB> &b, const fragment<accumulator, M, N, K, float> &c) {
    const bool tf32 = std::is_same<T, precision::tf32>::value;
    float out[M * N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = c.x[i * N + j];
            for (int k = 0; k < K; k++) s += operand(a.x[i * K + k], tf32) * operand(b.x[k * N + j], tf32);
            out[i * N + j] = s;
        }
    memcpy(d.x, out, sizeof out);
}
}  /* namespace wmma */
}  /* namespace nvcuda */

#endif /* LTF_CUDA_EMU_H */

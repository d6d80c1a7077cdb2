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
 *   devices  LTF_EMU_DEVICES=0 pretends there is no GPU; LTF_EMU_CC=7.0 a GPU too old for
 *            the kernels (no kernel image), so the tests reach those error paths too.
 *   launch checks  block sizes, grid limits: cudaErrorInvalidConfiguration as on the GPU.
 * Not emulated: warps (the kernels use no warp-level primitives), concurrency between blocks
 * (a race between blocks is caught only through the order), streams, timing.
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
#include <random>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __shared__ static

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
static dim3 threadIdx, blockIdx, blockDim, gridDim;

enum cudaError_t {
    cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2, cudaErrorInvalidConfiguration = 9,
    cudaErrorNoDevice = 100, cudaErrorNoKernelImageForDevice = 209
};
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
struct cudaDeviceProp { char name[256]; int major, minor; size_t totalGlobalMem; int multiProcessorCount; };
struct cudaFuncAttributes { int maxThreadsPerBlock; };

namespace ltf_emu {

static cudaError_t last_error = cudaSuccess;
static std::map<char *, size_t> allocations;   /* device memory: start -> bytes */
static size_t in_use;

static cudaError_t fail(cudaError_t e) { last_error = e; return e; }

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
    if (current < 0) die("kernel %s calls __syncthreads() in a block run as a plain loop: its first block did not", kernel_name);
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

static void launch(const char *name, dim3 grid, dim3 block, std::function<void()> call) {
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
    bool coroutines = true;
    for (size_t k = 0; k < nb; k++) {
        blockIdx = unflatten(block_order[k], grid);
        if (coroutines) coroutines = run_block_coroutines(thread_order);
        else
            for (size_t i : thread_order) { threadIdx = unflatten(i, block); body(); }
    }
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

static const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorNoKernelImageForDevice: return "no kernel image is available for execution on the device";
    }
    return "unknown error";
}
static const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorNoKernelImageForDevice: return "cudaErrorNoKernelImageForDevice";
    }
    return "cudaErrorUnknown";
}
static cudaError_t cudaGetLastError(void) { cudaError_t e = ltf_emu::last_error; ltf_emu::last_error = cudaSuccess; return e; }
static cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }

static cudaError_t cudaGetDeviceCount(int *n) {
    *n = ltf_emu::devices() > 0 ? ltf_emu::devices() : 0;
    return *n > 0 ? cudaSuccess : ltf_emu::fail(cudaErrorNoDevice);
}
static cudaError_t cudaGetDevice(int *d) { *d = 0; return ltf_emu::devices() > 0 ? cudaSuccess : ltf_emu::fail(cudaErrorNoDevice); }
static cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev) {
    if (dev != 0 || ltf_emu::devices() < 1) return ltf_emu::fail(cudaErrorInvalidValue);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "CUDA emulator on the CPU (tests/cuda_emu.h)");
    ltf_emu::capability(&p->major, &p->minor);
    p->totalGlobalMem = ltf_emu::memory();
    p->multiProcessorCount = 1;
    return cudaSuccess;
}
template <typename F> static cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *a, F) {
    int major, minor;
    ltf_emu::capability(&major, &minor);
    if (major < 9) return ltf_emu::fail(cudaErrorNoKernelImageForDevice);
    a->maxThreadsPerBlock = 1024;
    return cudaSuccess;
}
static cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b) {
    *total_b = ltf_emu::memory();
    *free_b = *total_b > ltf_emu::in_use ? *total_b - ltf_emu::in_use : 0;
    return cudaSuccess;
}

static cudaError_t cudaMalloc(void **p, size_t bytes) {
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
static cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    auto it = ltf_emu::allocations.find((char *)p);
    if (it == ltf_emu::allocations.end()) return ltf_emu::fail(cudaErrorInvalidValue);
    ltf_emu::in_use -= it->second;
    ltf_emu::allocations.erase(it);
    free(p);
    return cudaSuccess;
}
static cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if ((dst_dev && !ltf_emu::on_device(dst, bytes)) || (src_dev && !ltf_emu::on_device(src, bytes)))
        return ltf_emu::fail(cudaErrorInvalidValue);
    memcpy(dst, src, bytes);
    return cudaSuccess;
}
static cudaError_t cudaMemset(void *p, int value, size_t bytes) {
    if (!ltf_emu::on_device(p, bytes)) return ltf_emu::fail(cudaErrorInvalidValue);
    memset(p, value, bytes);
    return cudaSuccess;
}

/* atomics: blocks and threads never run at the same time here */
static unsigned long long atomicMin(unsigned long long *a, unsigned long long v) {
    unsigned long long old = *a;
    if (v < old) *a = v;
    return old;
}

#endif /* LTF_CUDA_EMU_H */

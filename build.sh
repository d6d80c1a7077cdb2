#!/usr/bin/env bash
# build.sh - builds looped-tf.
#   ./build.sh          build ./demo and ./test (gcc -O3 -march=native, OpenMP when available)
#   ./build.sh test     build, then run the tests
#   ./build.sh demo     build, then run the demo with its defaults
#   ./build.sh sanitize the tests under ASan + UBSan, a short demo run under valgrind (build/)
#   ./build.sh fuzz [S] S seconds (default 60) of libFuzzer on the checkpoint loader (build/fuzz/)
#   ./build.sh cuda     build ./demo_cuda and ./test_cuda with nvcc: the same programs with the
#                       GPU backend (looped_tf_cuda.cu), for sm_90 plus PTX for newer GPUs
#   ./build.sh gpu-check  on a machine with a GPU: build with CUDA, run every GPU test, the
#                       compute-sanitizer checks and the GPU benchmark (a few minutes)
#   ./build.sh cuda-emu build ./test_cuda_emu with g++ and AddressSanitizer, with the kernels
#                       run on the CPU by tests/cuda_emu.h, and run the GPU tests (no GPU needed)
#   ./build.sh deps     copy stb_ds.h into deps/stb/: builds then need nothing from the network
#                       (carry deps/ and binaries built with MARCH=x86-64-v2 to a GPU machine)
# Environment: CC (default gcc), CFLAGS (extra flags), MARCH (default native; x86-64-v2 for
# binaries that run on another machine), FUZZ_CC (default clang); NVCC (default nvcc, else
# /usr/local/cuda/bin/nvcc), NVCC_ARCH (default sm_90; e.g. sm_80 for an A100), NVCCFLAGS.
set -euo pipefail
cd "$(dirname "$0")"

CC=${CC:-gcc}

# stb_ds.h (Debian package libstb-dev) is the one dependency besides libc. A copy in
# deps/stb/ (./build.sh deps) wins: a machine without network builds from what it carries.
INC=""
[ -f deps/stb/stb_ds.h ] && INC="-Ideps"
find_stb() {
    echo '#include <stb/stb_ds.h>' | "$CC" $INC -E -x c - >/dev/null 2>&1
}
if [ "${1:-}" = deps ]; then
    src=$(echo '#include <stb/stb_ds.h>' | "$CC" -E -x c - 2>/dev/null | grep -m1 -o '/[^"]*stb/stb_ds.h' || true)
    [ -n "$src" ] || { echo "build.sh deps: stb_ds.h not found here (apt-get install libstb-dev first)" >&2; exit 1; }
    mkdir -p deps/stb && cp "$src" deps/stb/stb_ds.h
    echo "build.sh: copied $src to deps/stb/stb_ds.h (carry deps/ to a machine without network)"
    exit 0
fi
if ! find_stb; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "build.sh: stb_ds.h is missing; installing Debian's libstb-dev" >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libstb-dev) >&2 \
            || { echo "build.sh: apt-get install libstb-dev failed" >&2; exit 1; }
    else
        echo "build.sh: stb_ds.h not found. Install it with:  sudo apt-get install libstb-dev" >&2
        echo "          (or put stb_ds.h in a folder 'stb' and add -I<parent> to CFLAGS)" >&2
        exit 1
    fi
fi

OMP=""
if echo 'int main(void){return 0;}' | "$CC" -fopenmp -x c - -o /dev/null >/dev/null 2>&1; then
    OMP="-fopenmp"
else
    echo "build.sh: $CC has no OpenMP; building single-threaded" >&2
fi

build_cpu() {
    FLAGS="-std=c99 -O3 -march=${MARCH:-native} -Wall -Wextra $OMP $INC ${CFLAGS:-}"
    $CC $FLAGS -o demo demo.c -lm
    $CC $FLAGS -o test test.c -lm
}

# ---- sanitize: the tests under AddressSanitizer + UndefinedBehaviorSanitizer, then a short demo
# run under valgrind memcheck. No OpenMP here: libgomp's thread pool gives false positives.
sanitize() {
    local san="-std=c99 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
    local warn="-Wall -Wextra -Wno-unknown-pragmas"
    mkdir -p build
    echo "== build.sh sanitize: tests under -fsanitize=address,undefined (no OpenMP)"
    $CC $san $warn ${CFLAGS:-} -o build/test_asan test.c -lm
    $CC $san $warn ${CFLAGS:-} -o build/demo_asan demo.c -lm
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 LTF_DEMO=build/demo_asan OMP_NUM_THREADS=1 build/test_asan
    echo "== build.sh sanitize: demo compare and bench under -fsanitize=address,undefined (the tests ran the rest)"
    rm -rf build/asan_out   # a run refuses a folder that holds another run's checkpoints
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        build/demo_asan compare --steps 2 --C 16 --eval-prompts 16 --fixed-point 8 --out build/asan_out > /dev/null 2>&1 \
        || { echo "build.sh sanitize: demo compare failed under ASan/UBSan"; exit 1; }
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        build/demo_asan bench --configs small --runs 1 > /dev/null 2>&1 \
        || { echo "build.sh sanitize: demo bench failed under ASan/UBSan"; exit 1; }
    echo "== build.sh sanitize: demo under valgrind memcheck"
    if ! command -v valgrind >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "build.sh: valgrind is missing; installing Debian's valgrind" >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind) >&2 || true
    fi
    if ! command -v valgrind >/dev/null 2>&1; then
        echo "build.sh sanitize: skipped valgrind: not installed (sudo apt-get install valgrind)"
        return 0
    fi
    $CC -std=c99 -O1 -g $warn ${CFLAGS:-} -o build/demo_vg demo.c -lm
    local out=build/valgrind_out small="--C 16 --b 4 --T 2 --batch 8 --eval-prompts 16 --fixed-point 5 --baseline-prompts 8"
    rm -rf "$out" && mkdir -p "$out"
    # memcheck's report goes to a log (printed on failure); the demo's own stderr is dropped
    vg() {
        local want=$1; shift
        local rc=0
        valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
            --log-file="$out/valgrind.log" build/demo_vg "$@" > /dev/null 2>&1 || rc=$?
        if [ "$rc" != "$want" ] || [ -s "$out/valgrind.log" ]; then
            echo "build.sh sanitize: valgrind demo $*: exit $rc (want $want)"; cat "$out/valgrind.log"; exit 1
        fi
    }
    vg 0 --steps 12 --ckpt-every 5 $small --out "$out"
    vg 0 --steps 16 --resume "$out/checkpoint.safetensors" --eval-prompts 16 --fixed-point 5 --baseline-prompts 8 --out "$out"
    vg 0 eval --ckpt "$out/checkpoint.safetensors" --eval-prompts 16 --fixed-point 5 --baseline-prompts 8 --out "$out"
    vg 0 mask-sweep --ckpt "$out/checkpoint.safetensors" --eval-prompts 16 --out "$out"
    vg 2 --C 30
    vg 1 eval --ckpt "$out/no-such.safetensors" --out "$out"
    echo "build.sh sanitize: valgrind memcheck of the demo (train, resume, eval, mask-sweep, a bad flag, a missing file): 0 errors, 0 leaks"
}

# ---- fuzz [seconds]: the checkpoint loader under libFuzzer + ASan + UBSan (fuzz/fuzz_checkpoint.c),
# seeded with fuzz/make_corpus.c's valid and corrupt files. Needs clang with libFuzzer.
fuzz() {
    local secs=${1:-60} clang=${FUZZ_CC:-clang} dir=build/fuzz
    case "$secs" in ''|*[!0-9]*) echo "build.sh fuzz: seconds '$secs' is not allowed: need a whole number" >&2; exit 2 ;; esac
    mkdir -p "$dir"
    echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' > "$dir/probe.c"
    if ! "$clang" -fsanitize=fuzzer "$dir/probe.c" -o "$dir/probe" >/dev/null 2>&1; then
        echo "build.sh fuzz: skipped: '$clang' cannot build with -fsanitize=fuzzer (install clang with libFuzzer)"
        return 0
    fi
    "$clang" -std=c99 -O1 -g -Wall -Wextra -Wno-unknown-pragmas -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=all -o "$dir/fuzz_checkpoint" fuzz/fuzz_checkpoint.c -lm
    $CC -std=c99 -O1 -g -Wall -Wextra -Wno-unknown-pragmas -o "$dir/make_corpus" fuzz/make_corpus.c -lm
    rm -rf "$dir/seeds" "$dir/corpus" "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-*
    mkdir -p "$dir/seeds" "$dir/corpus"
    "$dir/make_corpus" "$dir/seeds"
    echo "== build.sh fuzz: $secs s of libFuzzer on ltf_checkpoint_load_mem"
    local rc=0
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$dir/fuzz_checkpoint" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -dict=fuzz/checkpoint.dict -artifact_prefix="$dir/" "$dir/corpus" "$dir/seeds" > "$dir/log.txt" 2>&1 || rc=$?
    local execs findings
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log.txt")
    findings=$(find "$dir" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
    grep '^fuzz_checkpoint: ' "$dir/log.txt" | tail -1 || true
    echo "build.sh fuzz: ${execs:-?} executions in $secs s, $(ls "$dir/seeds" | wc -l) seeds, $findings crashes/leaks/timeouts (log: $dir/log.txt)"
    if [ "$rc" != 0 ] || [ "$findings" != 0 ]; then
        tail -40 "$dir/log.txt"
        echo "build.sh fuzz: FAILED (libFuzzer exit $rc); reproduce with $dir/fuzz_checkpoint $dir/crash-..." >&2
        exit 1
    fi
}

# demo.c and test.c compiled as CUDA: their implementation includes looped_tf_cuda.cu.
build_cuda() {
    NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
    if [ ! -x "$NVCC" ]; then
        echo "build.sh: nvcc not found (set NVCC, or install the CUDA toolkit)" >&2
        exit 1
    fi
    local arch=${NVCC_ARCH:-sm_90}
    local gen="-gencode arch=${arch/sm_/compute_},code=$arch -gencode arch=${arch/sm_/compute_},code=${arch/sm_/compute_}"
    local hostflags="-march=${MARCH:-native},-Wall,-Wextra${OMP:+,$OMP}"
    local flags="-O3 -x cu -DLOOPED_TF_CUDA $gen -lineinfo $INC -Xcompiler $hostflags ${NVCCFLAGS:-}"
    local t0=$SECONDS
    # shellcheck disable=SC2086
    "$NVCC" $flags -o demo_cuda demo.c -lm
    # shellcheck disable=SC2086
    "$NVCC" $flags -o test_cuda test.c -lm
    echo "build.sh: built ./demo_cuda and ./test_cuda for $arch + PTX in $((SECONDS - t0)) s" >&2
}

case "${1:-}" in
    "") build_cpu; echo "build.sh: built ./demo and ./test" ;;
    test) build_cpu; exec ./test ;;
    demo) build_cpu; shift; exec ./demo "$@" ;;
    sanitize) sanitize ;;
    fuzz) fuzz "${2:-60}" ;;
    cuda) build_cuda ;;
    cuda-emu)
        t0=$SECONDS
        g++ -x c++ -std=c++17 -O2 -g -Wall -Wextra -Wno-unknown-pragmas -fsanitize=address,undefined \
            -fno-omit-frame-pointer -DLOOPED_TF_CUDA -DLTF_CUDA_EMU ${CFLAGS:-} -o test_cuda_emu test.c -lm
        echo "build.sh: built ./test_cuda_emu in $((SECONDS - t0)) s; GPU tests with emulated kernels, threads shuffled" >&2
        LTF_EMU_ORDER=${LTF_EMU_ORDER:-20240} exec ./test_cuda_emu gpu ;;
    gpu-check)
        # Every GPU check in one go, meant to take under 5 minutes on an H100.
        start=$SECONDS
        build_cuda
        step() { echo; echo "== $1 ($((SECONDS - start)) s so far)"; }
        logged() {   # run "$@" into a log; show its tail, or all of it when it fails
            local log; log=$(mktemp /tmp/ltf_gpu_check.XXXXXX)
            if "$@" > "$log" 2>&1; then tail -n "${TAIL:-3}" "$log"; rm -f "$log"
            else cat "$log"; echo "build.sh: gpu-check FAILED: $*" >&2; exit 1; fi
        }
        export LTF_REQUIRE_GPU=1   # the GPU tests fail, not skip, without a GPU
        step "GPU tests: every kernel, a training step and 100 steps against the CPU"
        ./test_cuda gpu
        SAN=${COMPUTE_SANITIZER:-$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)}
        if [ -x "$SAN" ]; then
            # LTF_TEST_NO_OOM: the out-of-memory test fails a cudaMalloc on purpose, which the
            # sanitizer would count as an error.
            step "compute-sanitizer memcheck with leak check on all GPU tests"
            LTF_TEST_NO_OOM=1 logged "$SAN" --tool memcheck --leak-check full --error-exitcode 1 ./test_cuda gpu
            for tool in racecheck synccheck initcheck; do
                step "compute-sanitizer $tool on every kernel (gpu_ops, gpu_step)"
                logged "$SAN" --tool $tool --error-exitcode 1 ./test_cuda gpu_ops
                logged "$SAN" --tool $tool --error-exitcode 1 ./test_cuda gpu_step
            done
        else
            echo "build.sh: compute-sanitizer not found (set COMPUTE_SANITIZER): sanitizer checks skipped" >&2
        fi
        step "GPU benchmark: training step of the small, report and paper settings"
        ./demo_cuda bench --gpu on --runs 20
        step "demo on the GPU: 2000 steps of the small setting, evaluation, figures, checkpoint"
        TAIL=16 logged ./demo_cuda --gpu on --steps 2000 --eval-prompts 640 --fixed-point 100 --out /tmp/ltf_gpu_check --force on
        echo; echo "build.sh: gpu-check passed in $((SECONDS - start)) s" ;;
    *) echo "build.sh: unknown target '$1': use no argument, 'test', 'demo', 'deps', 'sanitize', 'fuzz [seconds]', 'cuda', 'gpu-check' or 'cuda-emu'" >&2; exit 2 ;;
esac

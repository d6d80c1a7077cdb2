#!/usr/bin/env bash
# build.sh - builds looped-tf.
#   ./build.sh          build ./demo and ./test (gcc -O3 -march=native, OpenMP when available)
#   ./build.sh test     build, then run the tests
#   ./build.sh demo     build, then run the demo with its defaults
#   ./build.sh sanitize the tests under ASan + UBSan, a short demo run under valgrind (build/)
#   ./build.sh fuzz [S] S seconds (default 60) of libFuzzer on the checkpoint loader (build/fuzz/)
#   ./build.sh cuda     build ./demo_cuda and ./test_cuda with nvcc: the same programs with the
#                       GPU backend (looped_tf_cuda.cu), for sm_90 plus PTX for newer GPUs
#   ./build.sh gpu-prep here, without a GPU: deps/ and ./demo_cuda, ./test_cuda for a GPU machine
#                       (portable host code), so that its gpu-check compiles nothing
#   ./build.sh gpu-check [A|B|all]  on a machine with a GPU, in stages of at most 4 minutes with
#                       a log and a one-line verdict each in gpu-check/ (GPU_CHECK_OUT): A the GPU
#                       tests, benchmark (fp32/tf32/bf16, kernel profile) and a demo run; B the
#                       compute-sanitizer checks
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
[ -f deps/stb/stb_ds.h ] && INC="-isystem deps"   # as a system header: its warnings are not ours
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
        build/demo_asan bench --configs small --runs 1 --profile on > /dev/null 2>&1 \
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
    # -ffp-contract=off: nvcc's host compiler runs in GNU C++ mode, which fuses a*b+c into one
    # FMA where it likes; the CPU path must round as the C99 build does (tests compare bits)
    local hostflags="-march=${MARCH:-native},-ffp-contract=off,-Wall,-Wextra${OMP:+,$OMP}"
    local flags="-O3 -x cu -DLOOPED_TF_CUDA $gen -lineinfo $INC -Xcompiler $hostflags ${NVCCFLAGS:-}"
    local t0=$SECONDS
    # shellcheck disable=SC2086
    "$NVCC" $flags -o demo_cuda demo.c -lm
    # shellcheck disable=SC2086
    "$NVCC" $flags -o test_cuda test.c -lm
    echo "build.sh: built ./demo_cuda and ./test_cuda for $arch + PTX in $((SECONDS - t0)) s" >&2
}

# ---- a GPU machine's checks, prepared here --------------------------------------------------
# gpu-prep (here, no GPU needed): deps/ (stb_ds.h) and ./demo_cuda, ./test_cuda built for sm_90 +
# PTX with portable host code (MARCH=x86-64-v2), stamped with the sources' hash: carry deps,
# demo_cuda and test_cuda to the GPU machine and its gpu-check spends no time compiling.
SOURCES="looped_tf.h looped_tf_cuda.cu demo.c test.c workbench/*.h"
sources_hash() { cat $SOURCES | sha256sum | cut -c1-64; }
gpu_prep() {
    "$0" deps
    INC="-isystem deps"
    MARCH=${MARCH:-x86-64-v2} build_cuda
    sources_hash > deps/gpu-prep.sha256
    echo "build.sh: gpu-prep done: carry deps demo_cuda test_cuda; on the GPU machine run ./build.sh gpu-check"
}

# compute-sanitizer: $COMPUTE_SANITIZER, the PATH, next to nvcc, or where CUDA installs it
find_sanitizer() {
    local c
    for c in "${COMPUTE_SANITIZER:-}" "$(command -v compute-sanitizer || true)" \
             "$(dirname "$(command -v nvcc || echo /x/nvcc)")/compute-sanitizer" \
             /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer \
             /usr/local/cuda-*/bin/compute-sanitizer /opt/nvidia/*/compute-sanitizer /usr/bin/compute-sanitizer; do
        if [ -n "$c" ] && [ -x "$c" ]; then echo "$c"; return 0; fi
    done
    return 1
}

# gpu-check [A|B|all]: on a GPU machine, in stages of at most 240 s each (timeout), each writing
# its log and a one-line verdict into ${GPU_CHECK_OUT:-gpu-check}/ (A.log, A.verdict, ...):
#   A: every GPU test (LTF_REQUIRE_GPU: they fail, not skip, without a GPU), the benchmark of
#      the small, report and paper steps in fp32, tf32 and bf16 against PyTorch eager on the
#      same GPU (reference/bench_step.py), a kernel profile of the paper step, and a 2000-step
#      demo run on the GPU
#   B: compute-sanitizer memcheck (with leak check) on the GPU tests, racecheck, synccheck and
#      initcheck on the kernels' tests; "unavailable" when the sanitizer is missing or refuses
#      the device (not a failure of the code)
# Uses ./demo_cuda and ./test_cuda when deps/gpu-prep.sha256 matches the sources (gpu-prep),
# else builds them first (~45 s).
gpu_stage() {   # gpu_stage NAME LIMIT_S CMD...: runs CMD under timeout into NAME.log; notes the verdict
    local name=$1 limit=$2 t0=$SECONDS rc=0; shift 2
    echo "== gpu-check $name: $* (at most $limit s)"
    timeout --signal=TERM --kill-after=10 "$limit" "$@" > "$GOUT/$name.log" 2>&1 || rc=$?
    local took=$((SECONDS - t0)) verdict
    if [ "$rc" = 0 ]; then verdict="$name passed in $took s"
    elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then verdict="$name TIMED OUT (limit $limit s): $(tail -1 "$GOUT/$name.log" | cut -c1-160)"
    elif [ "$rc" = 3 ]; then verdict="$name unavailable: $(tail -1 "$GOUT/$name.log")"
    else verdict="$name FAILED (exit $rc) in $took s: $(grep -m1 -E 'FAIL test|FAILED:|ERROR|error:' "$GOUT/$name.log" | cut -c1-200)"; fi
    echo "$verdict" | tee "$GOUT/$name.verdict"
    tail -n "${TAIL:-12}" "$GOUT/$name.log"
    [ "$rc" = 0 ] || [ "$rc" = 3 ]
}
gpu_stage_a() {
    set -e
    export LTF_REQUIRE_GPU=1
    echo "== GPU tests"; ./test_cuda gpu
    echo "== benchmark against PyTorch eager on the same GPU, fp32, tf32, bf16; kernel profile of the paper step"
    ./demo_cuda bench --gpu on --runs 20 --compare on
    ./demo_cuda bench --gpu on --runs 20 --compare on --precision tf32
    ./demo_cuda bench --gpu on --runs 20 --compare on --precision bf16
    ./demo_cuda bench --gpu on --runs 5 --configs paper --profile on
    echo "== demo: 2000 steps of the small setting on the GPU, evaluation, figures, checkpoint"
    rm -rf "$GOUT/demo"
    ./demo_cuda --gpu on --steps 2000 --eval-prompts 640 --fixed-point 100 --out "$GOUT/demo" --force on
}
gpu_stage_b() {
    local san
    if ! san=$(find_sanitizer); then echo "compute-sanitizer not found (set COMPUTE_SANITIZER)"; exit 3; fi
    echo "== $san ($("$san" --version | tail -1))"
    # tool, test, seconds: memcheck (leaks too) on the kernels, a step and the recorded steps;
    # racecheck and synccheck on the kernels; initcheck on a step
    local rc=0
    for run in "memcheck gpu_ops 60" "memcheck gpu_step 40" "memcheck gpu_graph 50" "racecheck gpu_ops 40" \
               "synccheck gpu_ops 25" "initcheck gpu_step 25"; do
        set -- $run
        local extra=""
        [ "$1" = memcheck ] && extra="--leak-check full"
        echo "== compute-sanitizer --tool $1 $extra ./test_cuda $2 (at most $3 s)"
        rc=0
        LTF_REQUIRE_GPU=1 timeout "$3" "$san" --tool "$1" $extra --error-exitcode 1 ./test_cuda "$2" || rc=$?
        if [ "$rc" = 124 ]; then echo "compute-sanitizer $1 on $2 ran out of its $3 s"; exit 124; fi
        if [ "$rc" != 0 ] && grep -qiE "not supported|unable to|could not|permission|no device" "$GOUT/B.log"; then
            echo "compute-sanitizer cannot attach to this device: see B.log"; exit 3
        fi
        [ "$rc" = 0 ] || exit "$rc"
    done
}
gpu_check() {
    local which=$1 start=$SECONDS ok=0
    case "$which" in A|B|all) ;; *) echo "build.sh gpu-check: stage '$which' is not allowed: use A, B or all" >&2; exit 2 ;; esac
    GOUT=${GPU_CHECK_OUT:-gpu-check}
    mkdir -p "$GOUT"
    if [ -x demo_cuda ] && [ -x test_cuda ] && [ -f deps/gpu-prep.sha256 ] && [ "$(sources_hash)" = "$(cat deps/gpu-prep.sha256)" ]; then
        echo "build.sh: using the prepared ./demo_cuda and ./test_cuda (deps/gpu-prep.sha256 matches the sources)"
    else
        build_cuda
    fi
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$GOUT/device.txt" 2>&1 || true
    export -f gpu_stage_a gpu_stage_b find_sanitizer; export GOUT
    if [ "$which" != B ]; then gpu_stage A 240 bash -c gpu_stage_a || ok=1; fi
    if [ "$which" != A ]; then gpu_stage B 240 bash -c gpu_stage_b || ok=1; fi
    echo; cat "$GOUT"/*.verdict
    echo "build.sh: gpu-check $which finished in $((SECONDS - start)) s (logs and verdicts in $GOUT/)"
    return $ok
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
    gpu-prep) gpu_prep ;;
    gpu-check) gpu_check "${2:-all}" ;;
    *) echo "build.sh: unknown target '$1': use no argument, 'test', 'demo', 'deps', 'sanitize', 'fuzz [seconds]', 'cuda', 'gpu-prep', 'gpu-check [A|B|all]' or 'cuda-emu'" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# build.sh - builds looped-tf.
#   ./build.sh          build ./demo and ./test (gcc -O3 -march=native, OpenMP when available)
#   ./build.sh test     build, then run the tests
#   ./build.sh demo     build, then run the demo with its defaults
# Environment: CC (default gcc), CFLAGS (extra flags).
set -euo pipefail
cd "$(dirname "$0")"

CC=${CC:-gcc}

# stb_ds.h (Debian package libstb-dev) is the one dependency besides libc.
find_stb() {
    echo '#include <stb/stb_ds.h>' | "$CC" -E -x c - >/dev/null 2>&1
}
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

FLAGS="-std=c99 -O3 -march=native -Wall -Wextra $OMP ${CFLAGS:-}"
$CC $FLAGS -o demo demo.c -lm
$CC $FLAGS -o test test.c -lm

case "${1:-}" in
    "") echo "build.sh: built ./demo and ./test" ;;
    test) exec ./test ;;
    demo) shift; exec ./demo "$@" ;;
    *) echo "build.sh: unknown target '$1': use no argument, 'test' or 'demo'" >&2; exit 2 ;;
esac

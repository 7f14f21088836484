#!/bin/sh
# tests/fuzz/run.sh TARGET SECONDS [libFuzzer options...]
#
# Runs one libFuzzer target (key, proxy, attach, corrupt, ops, reply) for
# SECONDS.
# The first run sets up a clang build with ASan + UBSan and the library
# instrumented for coverage:
#   CC=clang meson setup build-fuzz -Db_sanitize=address,undefined \
#     -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link
# (PXS_FUZZ_BUILD overrides the directory). The corpus grows in
# BUILD/fuzz/corpus/TARGET, seeded from tests/fuzz/corpus/TARGET and
# tests/fuzz/regress/TARGET; crashes, leaks and timeouts land in
# BUILD/fuzz/artifacts/TARGET/. Exit status: libFuzzer's (0 = nothing).
#
# CI smoke:   for t in key proxy attach corrupt ops reply; do
#               tests/fuzz/run.sh $t 30 || exit 1; done
# Campaign:   tests/fuzz/run.sh attach 3600
# A finding:  minimise it, keep it as a regression, replay it:
#   BUILD/tests/hostile/fuzz_TARGET -minimize_crash=1 -runs=100000 \
#     -exact_artifact_path=tests/fuzz/regress/TARGET/NAME ARTIFACT
#   meson test -C BUILD fuzz-regress-TARGET
set -eu
target=${1:?usage: run.sh TARGET SECONDS [libFuzzer options]}
secs=${2:?usage: run.sh TARGET SECONDS [libFuzzer options]}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${PXS_FUZZ_BUILD:-$src/build-fuzz}

case $target in
key | proxy) maxlen=1024 ;;
attach) maxlen=262144 ;;
corrupt) maxlen=4096 ;;
ops) maxlen=8192 ;;
reply) maxlen=4096 ;;
*) echo "run.sh: unknown target '$target'" >&2; exit 2 ;;
esac

if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" "$src" -Db_sanitize=address,undefined \
		-Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link \
		-Dbuildtype=debugoptimized >/dev/null
fi
ninja -C "$build" "tests/hostile/fuzz_$target" >/dev/null

work="$build/fuzz/corpus/$target"
art="$build/fuzz/artifacts/$target"
mkdir -p "$work" "$art"
dict=
[ -f "$here/$target.dict" ] && dict="-dict=$here/$target.dict"
# A target with no finding kept yet has no regress directory (git keeps
# no empty one); libFuzzer stops on a corpus directory that is missing.
regress=
[ -d "$here/regress/$target" ] && regress="$here/regress/$target"

ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
	"$build/tests/hostile/fuzz_$target" -max_total_time="$secs" \
	-timeout=5 -rss_limit_mb=1024 -max_len="$maxlen" \
	-print_final_stats=1 -artifact_prefix="$art/" $dict "$@" \
	"$work" "$here/corpus/$target" $regress

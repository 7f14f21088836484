#!/usr/bin/env bash
# test_subproject.sh - proxyshm as a meson subproject: a small project
# outside the tree finds it with dependency('proxyshm', fallback:
# 'proxyshm') (the library calls meson.override_dependency), builds and runs.
#
# Usage: test_subproject.sh SOURCE-DIR APP.c MESON...   (output is TAP)
set -u
src=$(realpath "${1:?usage: test_subproject.sh SOURCE-DIR APP.c MESON...}")
app=$(realpath "$2")
shift 2
meson=("$@")
d=$(mktemp -d "${TMPDIR:-/tmp}/pxs-subproject.XXXXXX")
seg=/pxs-subproject-$$
trap 'rm -rf "$d"; rm -f "/dev/shm$seg"' EXIT
. "${BASH_SOURCE[0]%/*}/tap.sh"
TAP_LOG=$d/log

mkdir -p "$d/app/subprojects"
ln -s "$src" "$d/app/subprojects/proxyshm"
cp "$app" "$d/app/app.c"
cat >"$d/app/meson.build" <<'MESON'
project('app', 'c', default_options: ['c_std=c11', 'warning_level=3',
  'werror=true'])
executable('app', 'app.c',
  dependencies: dependency('proxyshm', fallback: 'proxyshm'))
MESON
# The subproject's own tests are not wanted here (and would recurse).
check "meson setup with proxyshm as a subproject" "${meson[@]}" setup \
	--force-fallback-for=proxyshm -Dproxyshm:tests=disabled \
	"$d/build" "$d/app"
check "build" "${meson[@]}" compile -C "$d/build"
check "run" "$d/build/app" "$seg"
tap_done

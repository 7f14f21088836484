#!/usr/bin/env bash
# test_install.sh - `meson install` into a temporary DESTDIR, then build and
# run a small program outside the tree with pkg-config, as a user would.
#
# Usage: test_install.sh BUILD-DIR APP.c MESON...   (CC in the environment;
# output is TAP). APP.c is install_app.c.
#
# The .pc file holds the real prefix (/usr/local by default), so pkg-config
# runs with PKG_CONFIG_SYSROOT_DIR=$DESTDIR, which prefixes its -I and -L.
set -u
build=${1:?usage: test_install.sh BUILD-DIR APP.c MESON...}
app=$(realpath "$2")
shift 2
meson=("$@")
cc=${CC:-cc}
d=$(mktemp -d "${TMPDIR:-/tmp}/pxs-install.XXXXXX")
seg=/pxs-install-$$
trap 'rm -rf "$d"; rm -f "/dev/shm$seg"' EXIT
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
skip() { n=$((n + 1)); echo "ok $n - $* # SKIP"; }
run() {
	local desc=$1
	shift
	if "$@" >"$d/log" 2>&1; then
		ok "$desc"
	else
		not_ok "$desc"
		sed 's/^/#   /' "$d/log" | tail -n 30
	fi
}
# first FIND-ARGS...: the first path under $d/root that matches.
first() { find "$d/root" "$@" | sort | head -n 1; }

run "meson install --destdir" env DESTDIR="$d/root" \
	"${meson[@]}" install -C "$build" --no-rebuild --quiet

pc=$(first -name proxyshm.pc)
hdr=$(first -path '*/include/proxyshm.h')
so=$(first -name 'libproxyshm.so.*' -type f)
bin=$(first -path '*/bin/proxyshm')
man1=$(first -path '*/man1/proxyshm.1*')
man3=$(first -path '*/man3/proxyshm.3*')
for f in pc hdr so bin man1 man3; do
	[ -n "${!f}" ] && ok "installed $f: ${!f#"$d"/root}" || not_ok "installed $f"
done
[ -n "$(first -name 'libproxyshm.so')" ] && ok "installed the libproxyshm.so link" ||
	not_ok "installed the libproxyshm.so link"

export PKG_CONFIG_PATH=${pc%/*} PKG_CONFIG_SYSROOT_DIR=$d/root
cflags=$(pkg-config --cflags proxyshm) && libs=$(pkg-config --libs proxyshm) &&
	ok "pkg-config --cflags --libs proxyshm: $cflags $libs" ||
	not_ok "pkg-config --cflags --libs proxyshm"
[ "$(pkg-config --modversion proxyshm)" = "$("$build/src/cli/proxyshm" --version | cut -d' ' -f2)" ] &&
	ok "pkg-config --modversion matches" || not_ok "pkg-config --modversion matches"

mkdir "$d/app"
cp "$app" "$d/app/app.c"
# shellcheck disable=SC2086 # word splitting of the flags is wanted
run "compile and link against the installed library" \
	$cc -std=c11 -Wall -Wextra -Wpedantic -Werror \
	-o "$d/app/app" "$d/app/app.c" $cflags $libs
libdir=${so%/*}
LD_LIBRARY_PATH=$libdir "$d/app/app" "$seg" >"$d/out" 2>&1 &&
	grep -q '^installed ' "$d/out" && ok "run it" ||
	{ not_ok "run it"; sed 's/^/#   /' "$d/out"; }
# the program must have loaded the installed copy, not the build tree's
LD_LIBRARY_PATH=$libdir ldd "$d/app/app" | grep -q "$libdir/libproxyshm.so" &&
	ok "it uses the installed library" || not_ok "it uses the installed library"
run "the installed proxyshm runs" env LD_LIBRARY_PATH="$libdir" "$bin" --version

a=$(first -name libproxyshm.a)
if [ -n "$a" ]; then
	static_libs=$(pkg-config --static --libs proxyshm | sed 's/-lproxyshm//')
	# shellcheck disable=SC2086
	run "static link with the archive and pkg-config --static --libs" \
		$cc -std=c11 -o "$d/app/app-static" \
		"$d/app/app.c" $cflags "$a" $static_libs
	run "run the statically linked program (no LD_LIBRARY_PATH)" \
		"$d/app/app-static" "$seg"
else
	skip "static library not installed (library() builds a shared one only)"
fi

echo "1..$n"
[ "$failed" -eq 0 ]

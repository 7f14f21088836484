#!/usr/bin/env bash
# test_install.sh - installs that run, as a user would make them.
#
# Usage: test_install.sh SOURCE-DIR BUILD-DIR APP.c MESON...   (CC in the
# environment; output is TAP). APP.c is install_app.c.
#
# First the build under test is installed into a temporary DESTDIR. Its .pc
# file holds the real prefix (/usr/local by default), so pkg-config runs
# with PKG_CONFIG_SYSROOT_DIR=$DESTDIR, which prefixes its -I and -L. The
# installed tree is then moved elsewhere: the command must still find its
# library (a relative RUNPATH), without LD_LIBRARY_PATH.
# Then the source is configured afresh with --prefix in a temporary
# directory and -Dtests=disabled -Dbench=false: no test and no benchmark is
# defined or built, and after `meson install` the prefix's command, its
# pkg-config file and its man pages work as README says.
set -u
src=${1:?usage: test_install.sh SOURCE-DIR BUILD-DIR APP.c MESON...}
build=${2:?usage: test_install.sh SOURCE-DIR BUILD-DIR APP.c MESON...}
app=$(realpath "$3")
shift 3
meson=("$@")
cc=${CC:-cc}
d=$(mktemp -d "${TMPDIR:-/tmp}/pxs-install.XXXXXX")
seg=/pxs-install-$$
trap 'rm -rf "$d"; rm -f "/dev/shm$seg"' EXIT
. "${BASH_SOURCE[0]%/*}/tap.sh"
TAP_LOG=$d/log
# first FIND-ARGS...: the first path under $d/root that matches.
first() { find "$d/root" "$@" | sort | head -n 1; }

check "meson install --destdir" env DESTDIR="$d/root" \
	"${meson[@]}" install -C "$build" --no-rebuild --quiet

pc=$(first -name proxyshm.pc)
hdr=$(first -path '*/include/proxyshm.h')
so=$(first -name 'libproxyshm.so.*' -type f)
bin=$(first -path '*/bin/proxyshm')
man1=$(first -path '*/man1/proxyshm.1*')
man3=$(first -path '*/man3/proxyshm.3*')
man_open=$(first -path '*/man3/pxs_open.3*')
for f in pc hdr so bin man1 man3 man_open; do
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
check "compile and link against the installed library" \
	$cc -std=c11 -Wall -Wextra -Wpedantic -Werror \
	-o "$d/app/app" "$d/app/app.c" $cflags $libs
libdir=${so%/*}
LD_LIBRARY_PATH=$libdir "$d/app/app" "$seg" >"$d/out" 2>&1 &&
	grep -q '^installed ' "$d/out" && ok "run it" ||
	{ not_ok "run it"; sed 's/^/#   /' "$d/out"; }
# the program must have loaded the installed copy, not the build tree's
LD_LIBRARY_PATH=$libdir ldd "$d/app/app" | grep -q "$libdir/libproxyshm.so" &&
	ok "it uses the installed library" || not_ok "it uses the installed library"
# The command finds the library installed beside it, wherever the tree is.
check "the installed proxyshm runs without LD_LIBRARY_PATH" \
	env -u LD_LIBRARY_PATH "$bin" --version
readelf -d "$bin" >"$d/dyn" 2>&1 && grep -q 'R.*PATH.*\$ORIGIN/\.\./' "$d/dyn" &&
	ok "its RUNPATH is relative to the binary: $(grep "R.*PATH" "$d/dyn" | grep -o "\[.*\]")" ||
	{ not_ok "its RUNPATH is relative to the binary"; sed 's/^/#   /' "$d/dyn"; }

a=$(first -name libproxyshm.a)
if [ -n "$a" ]; then
	static_libs=$(pkg-config --static --libs proxyshm | sed 's/-lproxyshm//')
	# shellcheck disable=SC2086
	check "static link with the archive and pkg-config --static --libs" \
		$cc -std=c11 -o "$d/app/app-static" \
		"$d/app/app.c" $cflags "$a" $static_libs
	check "run the statically linked program (no LD_LIBRARY_PATH)" \
		"$d/app/app-static" "$seg"
else
	skip "static library not installed (library() builds a shared one only)"
fi

# the whole installed tree, moved: the command still runs
top=${bin%/bin/proxyshm}
mv "$top" "$d/moved"
check "moved elsewhere, the installed proxyshm still runs" \
	env -u LD_LIBRARY_PATH "$d/moved/bin/proxyshm" --version
env -u LD_LIBRARY_PATH ldd "$d/moved/bin/proxyshm" 2>&1 |
	grep -q "libproxyshm.so.0 => $d/moved/bin/\.\./lib" &&
	ok "and loads the library of the moved tree" ||
	not_ok "and loads the library of the moved tree"

# man -M DIR: the per-function pages, generated from the header.
man_page() {
	local mandir=$1 where=$2
	if ! command -v man >/dev/null; then
		skip "man pxs_open from $where (man is not installed)"
		return
	fi
	MANPAGER=cat MANWIDTH=80 man -M "$mandir" pxs_open >"$d/man" 2>&1 &&
		grep -q 'pxs_open' "$d/man" && grep -q 'EINVAL' "$d/man" &&
		ok "man -M .../share/man pxs_open ($where)" ||
		{ not_ok "man -M .../share/man pxs_open ($where)"; sed 's/^/#   /' "$d/man" | head -n 20; }
}
man_page "$d/moved/share/man" "the moved tree"
if command -v groff >/dev/null; then
	: >"$d/groff"
	for f in "$d"/moved/share/man/man3/pxs_*.3; do
		LC_ALL=C groff -man -ww -z "$f" >>"$d/groff" 2>&1
	done
	[ ! -s "$d/groff" ] && ok "the per-function pages format without warnings" ||
		{ not_ok "the per-function pages format without warnings"; sed 's/^/#   /' "$d/groff" | head -n 20; }
else
	skip "groff is not installed: per-function pages not formatted"
fi

# ---- a fresh build under its own --prefix, without tests or benchmarks ----
# (and without the Python package: this checks the C library and command;
# the python suite installs and imports the package on its own)
prefix=$d/prefix
check "meson setup --prefix=PREFIX -Dtests=disabled -Dbench=false" \
	"${meson[@]}" setup "$d/build" "$src" --prefix="$prefix" \
	-Dtests=disabled -Dbench=false -Dpython=disabled
"${meson[@]}" introspect "$d/build" --tests --benchmarks >"$d/tests.json" 2>&1
[ "$(tr -d ' \n' <"$d/tests.json")" = '{"benchmarks":[],"tests":[]}' ] &&
	ok "-Dtests=disabled -Dbench=false define no test and no benchmark" ||
	{ not_ok "-Dtests=disabled -Dbench=false define no test and no benchmark"; head -c 600 "$d/tests.json" | sed 's/^/#   /'; }
check "build and install it" \
	sh -c 'nice -n 5 "$@" compile -C "$0" && "$@" install -C "$0" --quiet' \
	"$d/build" "${meson[@]}"
built=$(find "$d/build" -type f -executable \( -name 'test-*' -o -name 'bench-*' \) | head -n 3)
[ -z "$built" ] && ok "no test or benchmark program was built" ||
	not_ok "no test or benchmark program was built: $built"
check "PREFIX/bin/proxyshm runs without LD_LIBRARY_PATH" \
	env -u LD_LIBRARY_PATH "$prefix/bin/proxyshm" --version
env -u LD_LIBRARY_PATH ldd "$prefix/bin/proxyshm" >"$d/ldd" 2>&1
grep -q "libproxyshm.so.0 => $prefix/bin/\.\./lib" "$d/ldd" &&
	ok "it loads PREFIX's library, not another copy" ||
	{ not_ok "it loads PREFIX's library, not another copy"; sed 's/^/#   /' "$d/ldd"; }
pcdir=$(find "$prefix" -name proxyshm.pc -printf '%h\n' | head -n 1)
case $pcdir in
"$prefix"/lib*/pkgconfig) ok "the .pc file is in PREFIX/${pcdir#"$prefix"/}" ;;
*) not_ok "the .pc file is in PREFIX/LIBDIR/pkgconfig: ${pcdir:-none}" ;;
esac
unset PKG_CONFIG_SYSROOT_DIR
export PKG_CONFIG_PATH=$pcdir
# As README says: pkg-config from the prefix, and an rpath to its libdir.
# shellcheck disable=SC2046 # word splitting of the flags is wanted
check "compile with PKG_CONFIG_PATH=PREFIX/.../pkgconfig" \
	$cc -std=c11 -Wall -Werror -o "$d/app/app-prefix" "$d/app/app.c" \
	$(pkg-config --cflags --libs proxyshm) \
	-Wl,-rpath,"$(pkg-config --variable=libdir proxyshm)"
check "run it without LD_LIBRARY_PATH" \
	env -u LD_LIBRARY_PATH "$d/app/app-prefix" "$seg"
man_page "$prefix/share/man" "PREFIX"

tap_done

#!/usr/bin/env bash
# test_docs.sh - the user documentation tells the truth: the guide's C
# programs compile (warnings are errors) and run, the shell scenarios of
# guide.md and cli.md run, api.md and proxyshm(3) cover every function of
# the header, cli.md and proxyshm(1) cover every subcommand and exit code,
# and the man pages format without warnings.
#
# Usage: test_docs.sh SOURCE-DIR LIBPROXYSHM.so PROXYSHM   (CC in the
# environment; meson runs it; output is TAP)
set -u
src=${1:?usage: test_docs.sh SOURCE-DIR LIB PROXYSHM}
lib=$(realpath "$2")
P=$(realpath "$3")
cc=${CC:-cc}
docs=$src/docs
d=$(mktemp -d "${TMPDIR:-/tmp}/pxs-docs.XXXXXX")
trap 'rm -rf "$d"; for s in /dev/shm/pxs-doc-$$-*; do [ -e "$s" ] && rm -f "$s"; done' EXIT
export PATH=${P%/*}:$PATH
. "${BASH_SOURCE[0]%/*}/tap.sh"
TAP_LOG=$d/log

# ---- the API reference covers the header ------------------------------------

funcs=$(grep -o 'PXS_API [^(]*(' "$src/include/proxyshm.h" |
	grep -o 'pxs_[a-z0-9_]*($' | tr -d '(' | sort -u)
[ -n "$funcs" ] && ok "found the header's functions" || not_ok "found the header's functions"
missing_md= missing_3=
for f in $funcs; do
	grep -q "^### $f\$" "$docs/api.md" || missing_md="$missing_md $f"
	grep -q "$f(" "$docs/proxyshm.3" || missing_3="$missing_3 $f"
done
[ -z "$missing_md" ] && ok "api.md has a section for every function" ||
	not_ok "api.md lacks:$missing_md"
[ -z "$missing_3" ] && ok "proxyshm.3 lists every function" ||
	not_ok "proxyshm.3 lacks:$missing_3"

# Each function's section in api.md names every error its header comment
# names, and no other: the two lists are the same.
if command -v python3 >/dev/null; then
	python3 - "$src/include/proxyshm.h" "$docs/api.md" >"$d/errs" <<'PY'
import re, sys
hdr, api = (open(f).read() for f in sys.argv[1:3])
decl = re.compile(r"/\*\*((?:(?!\*/).)*)\*/\s*PXS_API[^;(]*?\b(pxs_\w+)\s*\(", re.S)
for m in decl.finditer(hdr):
    name = m.group(2)
    sec = re.search(r"^### %s\n(.*?)(?=^##)" % name, api + "\n##", re.S | re.M)
    text = sec.group(1) if sec else ""
    in_hdr = set(re.findall(r"-E[A-Z]+", m.group(1)))
    for e in sorted(in_hdr):
        if e not in text:
            print(name, e, "is in the header, not in api.md")
    if name == "pxs_strerror":
        continue  # its section tabulates the codes it describes
    for e in sorted(set(re.findall(r"-E[A-Z]+", text)) - in_hdr):
        print(name, e, "is in api.md, not in the header")
PY
	[ ! -s "$d/errs" ] && ok "api.md lists the errors the header lists" ||
		{ not_ok "api.md and the header list different errors:"; sed 's/^/#   /' "$d/errs"; }
else
	n=$((n + 1)); echo "ok $n - api.md errors # SKIP no python3"
fi

# ---- the command reference covers the command ---------------------------------

"$P" --help >"$d/help"
cmds=$(sed -n '/^Commands:/,/^$/p' "$d/help" | awk 'NF > 1 { print $1 }')
man1=$(sed 's/\\-/-/g' "$docs/proxyshm.1")
missing_md= missing_1=
for c in $cmds; do
	grep -q "^### \`$c[ \`]" "$docs/cli.md" || missing_md="$missing_md $c"
	grep -Eq "^\.BI? \"?$c( |\"|\$)" <<<"$man1" || missing_1="$missing_1 $c"
done
[ -n "$cmds" ] && [ -z "$missing_md" ] && ok "cli.md has a section for every command" ||
	not_ok "cli.md lacks:$missing_md"
[ -z "$missing_1" ] && ok "proxyshm.1 describes every command" ||
	not_ok "proxyshm.1 lacks:$missing_1"
codes=$(sed -n '/^Exit codes:/,$p' "$d/help" | awk '$1 ~ /^[0-9]+$/ { print $1 }')
missing_md= missing_1=
for c in $codes; do
	grep -q "^| $c | " "$docs/cli.md" || missing_md="$missing_md $c"
	grep -q "^\.B $c\$" "$docs/proxyshm.1" || missing_1="$missing_1 $c"
done
[ "$(echo $codes)" = "0 1 2 3 4 5 6 7" ] && ok "--help lists exit codes 0-7" ||
	not_ok "--help lists exit codes: $(echo $codes)"
[ -z "$missing_md$missing_1" ] && ok "cli.md and proxyshm.1 list every exit code" ||
	not_ok "exit codes missing: cli.md:$missing_md proxyshm.1:$missing_1"

# ---- man pages ----------------------------------------------------------------

version=$("$P" --version | cut -d' ' -f2)
for m in proxyshm.1 proxyshm.3; do
	grep -q "^\.TH PROXYSHM [13] .* \"proxyshm $version\"" "$docs/$m" &&
		ok "$m carries version $version" || not_ok "$m carries version $version"
	if command -v groff >/dev/null; then
		groff -man -Tutf8 -ww -z "$docs/$m" >"$d/groff" 2>&1
		[ ! -s "$d/groff" ] && ok "$m formats without warnings" ||
			{ not_ok "$m formats without warnings"; sed 's/^/#   /' "$d/groff"; }
	else
		n=$((n + 1)); echo "ok $n - $m formats # SKIP no groff"
	fi
done

# ---- the guide's programs -------------------------------------------------------

# Every ```c block of guide.md is a whole program whose first line is
# "/* NAME.c - ...". Store names get this run's prefix, so that parallel
# runs do not meet.
awk -v dir="$d" '
	/^```c$/ { inblock = 1; file = ""; next }
	inblock && /^```$/ { inblock = 0; close(file); next }
	inblock && file == "" {
		if (match($0, /^\/\* [a-z_]+\.c - /)) {
			file = dir "/" substr($0, 4, index($0, ".c") - 2)
			print file > (dir "/programs")
		} else {
			print "no banner: " $0 > (dir "/bad")
			inblock = 0
			next
		}
	}
	inblock { print > file }
' "$docs/guide.md"
[ ! -e "$d/bad" ] && ok "every C block of guide.md is a named program" ||
	{ not_ok "every C block of guide.md is a named program"; sed 's/^/#   /' "$d/bad"; }
libdir=${lib%/*}
for f in $(cat "$d/programs" 2>/dev/null); do
	sed -i "s|\"/guide-|\"/pxs-doc-$$-|g" "$f"
	# shellcheck disable=SC2086 # CC may be a command with arguments
	check "guide.md: ${f##*/} compiles without warnings" \
		$cc -std=c11 -Wall -Wextra -Wpedantic -Werror -Wwrite-strings \
		-Wshadow -Wstrict-prototypes -I"$src/include" -o "${f%.c}" "$f" \
		-L"$libdir" -lproxyshm -Wl,-rpath,"$libdir"
done
for prog in objects foo_bar_fork foo bar client abandoned gather steps pool; do
	[ -x "$d/$prog" ] || not_ok "guide.md has $prog.c"
done
check "guide.md: ./objects runs" "$d/objects"
check "guide.md: ./foo_bar_fork runs" "$d/foo_bar_fork"
grep -q "^bar got 19 bytes: the data bar needs$" "$d/log" &&
	ok "foo_bar_fork: bar got the data" || not_ok "foo_bar_fork: bar got the data"
check "guide.md: ./client starts ./foo and ./bar" \
	sh -c "cd '$d' && ./client /pxs-doc-$$-client"
grep -q "^bar: 1048576 bytes, checksum 133693440$" "$d/log" &&
	ok "client: bar got foo's value" || not_ok "client: bar got foo's value"
"$P" rm -f "/pxs-doc-$$-client"
check "guide.md: ./abandoned runs" "$d/abandoned"
grep -q "^wait forever: future abandoned" "$d/log" &&
	ok "abandoned: the wait ended with -EOWNERDEAD" ||
	not_ok "abandoned: the wait ended with -EOWNERDEAD"
check "guide.md: ./gather runs" "$d/gather"
grep -q "^worker 3: " "$d/log" && ! grep -q "^worker 3: 9$" "$d/log" &&
	grep -q "^worker 7: 49$" "$d/log" &&
	[ "$(grep -c '^worker ' "$d/log")" = 8 ] &&
	ok "gather: every worker reported, worker 3 abandoned" ||
	not_ok "gather: every worker reported, worker 3 abandoned"

check "guide.md: ./steps runs" "$d/steps"
[ "$(grep -c '^analysis [01]: 100 steps, total 20275200$' "$d/log")" = 2 ] &&
	ok "steps: both analyses saw every step" ||
	not_ok "steps: both analyses saw every step"
check "guide.md: ./pool runs" "$d/pool"
grep -q "^pool: 40 tasks done, sum of squares 20540$" "$d/log" &&
	ok "pool: every task done once" || not_ok "pool: every task done once"

# ---- the shell scenarios ----------------------------------------------------------

# The ```sh block after the line matching PATTERN in FILE, with /sim renamed.
scenario() {
	awk -v pat="$2" '
		$0 ~ pat { found = 1 }
		found && /^```sh$/ { inblock = 1; next }
		inblock && /^```$/ { exit }
		inblock { print }
	' "$1" | sed "s|/sim\\b|/pxs-doc-$$-$3|g"
}
scenario "$docs/guide.md" "^Or without a client at all" guide >"$d/guide.sh"
grep -q "proxyshm future" "$d/guide.sh" && ok "guide.md: found the shell scenario" ||
	not_ok "guide.md: found the shell scenario"
check "guide.md: the shell scenario runs" sh -c "cd '$d' && bash -e guide.sh"
grep -q "^bar: 1048576 bytes, checksum 133693440$" "$d/log" &&
	ok "guide.md shell: bar got foo's value" || not_ok "guide.md shell: bar got foo's value"
scenario "$docs/cli.md" "^## The foo/bar scenario from the shell" cli >"$d/cli.sh"
grep -q "proxyshm wait" "$d/cli.sh" && ok "cli.md: found the shell scenario" ||
	not_ok "cli.md: found the shell scenario"
check "cli.md: the shell scenario runs" bash -e "$d/cli.sh"
grep -q "^588895$" "$d/log" && ok "cli.md shell: bar counted the bytes" ||
	not_ok "cli.md shell: bar counted the bytes"

tap_done

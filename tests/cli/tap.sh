# tap.sh - the TAP output of the shell suites (tests/cli/*.sh), sourced by
# each of them: . "${BASH_SOURCE[0]%/*}/tap.sh"
#
#   ok DESC, not_ok DESC, skip DESC   one result line
#   check DESC CMD...                 run CMD, its output in $TAP_LOG (set
#                                     by the suite); ok, or not ok and the
#                                     log's last 30 lines as TAP comments
#   tap_done                          the plan; returns 0 if nothing failed
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
skip() { n=$((n + 1)); echo "ok $n - $* # SKIP"; }
check() {
	local desc=$1
	shift
	if "$@" >"$TAP_LOG" 2>&1; then
		ok "$desc"
	else
		not_ok "$desc"
		sed 's/^/#   /' "$TAP_LOG" | tail -n 30
	fi
}
tap_done() {
	echo "1..$n"
	[ "$failed" -eq 0 ]
}

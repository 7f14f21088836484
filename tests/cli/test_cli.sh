#!/usr/bin/env bash
# test_cli.sh - every proxyshm subcommand through the real binary: success,
# each error exit code, and the wait/set pipeline across processes.
#
# Usage: test_cli.sh PATH/TO/proxyshm      (meson runs it; output is TAP)
#
# Segments are named /pxs-cli-<pid>-<n> and removed at exit. Nothing sleeps
# to "let things settle": where a step must happen after another process
# reached a state (a waiter parked, a keeper gone), the test polls that
# state with a deadline.
set -u
P=$(realpath "${1:?usage: test_cli.sh PROXYSHM}")
T=$(mktemp -d "${TMPDIR:-/tmp}/pxs-cli.XXXXXX")
SEGS=()
seq=0
. "${BASH_SOURCE[0]%/*}/tap.sh"

# ---- helpers ---------------------------------------------------------------

cleanup() {
	for s in "${SEGS[@]}"; do
		"$P" rm -f "$s" 2>/dev/null
	done
	rm -f "/dev/shm/.pxs-tmp-cli-$$" "/dev/shm/pxs-cli-$$-garbage" \
		"/dev/shm/.pxs-tmp-cli-$$-999999999-1" "/dev/shm/pxs-cli-$$-trunc" \
		"/dev/shm/pxs-cli-$$-others"
	rm -rf "$T"
}
trap cleanup EXIT

# newseg: set SEG to a fresh segment name; it is removed at exit.
newseg() {
	seq=$((seq + 1))
	SEG=/pxs-cli-$$-$seq
	SEGS+=("$SEG")
}
# A segment name that is never created.
NONE=/pxs-cli-$$-none
SEGS+=("$NONE")

# expect CODE DESC CMD...: run CMD (stdout in $T/out, stderr in $T/err)
# and check its exit code.
expect() {
	local want=$1 desc=$2 got
	shift 2
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	if [ "$got" -eq "$want" ]; then
		ok "$desc"
	else
		not_ok "$desc: exit $got, want $want"
		sed 's/^/#   /' "$T/err" "$T/out" | head -20
	fi
}

# assert DESC CMD...: CMD must succeed.
assert() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# eventually SECONDS CMD...: poll CMD until it succeeds; 1 on deadline.
eventually() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.02
	done
}

# Sleepers on KEY in SEG, from `ls --pending` (0 when not listed).
waiters() {
	"$P" ls "$1" --pending | awk -v k="$2" '$1 == k { w = $6 } END { print w + 0 }'
}
has_waiters() { [ "$(waiters "$1" "$2")" -ge "${3:-1}" ]; }

# Is PID gone (or a zombie nobody reaped yet)?
gone() {
	local st
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 0
	[ "$st" = Z ]
}

# The owner pid of KEY in SEG.
owner_of() {
	"$P" ls "$1" | awk -v k="$2" '$1 == k { sub(/\(dead\)/, "", $7); print $7 }'
}

json_ok() {
	python3 -c 'import json, sys; json.load(sys.stdin)' <"$1"
}

# json_get FILE EXPR: evaluate a Python expression on the parsed JSON `j`.
json_get() {
	python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

line_count() { [ "$(wc -l <"$1")" -eq "$2" ]; }

# ---- help, usage, version --------------------------------------------------

commands="create rm ls-segments stat ls put get evict expire future set wait stream check reap watch"
expect 0 "--help" "$P" --help
for c in $commands; do
	grep -q "^  $c " "$T/out" || not_ok "--help lists $c"
done
grep -q "^Exit codes:" "$T/out" && ok "--help lists the exit codes" ||
	not_ok "--help lists the exit codes"
expect 1 "no command is a usage error" "$P"
expect 1 "unknown command" "$P" frobnicate
assert "unknown command: one line on stderr" line_count "$T/err" 1
expect 0 "--version" "$P" --version
assert "--version prints the version" grep -Eq '^proxyshm [0-9]+\.[0-9]+\.[0-9]+$' "$T/out"
for c in $commands; do
	expect 0 "$c --help" "$P" "$c" --help
	grep -q "^Usage: proxyshm $c " "$T/out" || not_ok "$c --help: usage line"
done
expect 0 "help wait" "$P" help wait
assert "help wait is wait --help" grep -q "^Usage: proxyshm wait" "$T/out"
expect 1 "unknown option" "$P" stat /x --bogus
assert "unknown option: one line naming it" \
	eval "line_count '$T/err' 1 && grep -q -- \"'--bogus'\" '$T/err'"
expect 1 "option without its value" "$P" wait pxs://x/y --timeout
assert "missing value: one line naming the option" \
	eval "line_count '$T/err' 1 && grep -q -- \"'--timeout' needs a value\" '$T/err'"

# ---- create, rm ------------------------------------------------------------

newseg
S=$SEG
expect 0 "create --size 8M --capacity 100 --mode 0640" \
	"$P" create "$S" --size 8M --capacity 100 --mode 0640
assert "create made the file with mode 0640" [ "$(stat -c %a "/dev/shm$S")" = 640 ]
expect 7 "create an existing segment" "$P" create "$S"
assert "create: error names the segment" grep -q "$S" "$T/err"
assert "create: one line on stderr" line_count "$T/err" 1
expect 0 "create --exist-ok attaches" "$P" create "$S" --exist-ok
expect 1 "create: bad size" "$P" create "$NONE" --size 12Q
expect 1 "create: size below the minimum" "$P" create "$NONE" --size 64K
expect 1 "create: bad mode" "$P" create "$NONE" --mode 0999
expect 1 "create: bad capacity" "$P" create "$NONE" --capacity -3
expect 1 "create: missing NAME" "$P" create
expect 1 "create: bad name" "$P" create "/bad name"
newseg
S2=$SEG
expect 0 "create without the leading /" "$P" create "${S2#/}" --size 4M
expect 0 "stat finds it with the /" "$P" stat "$S2"
expect 0 "rm" "$P" rm "$S2"
expect 2 "rm a missing segment" "$P" rm "$S2"
expect 0 "rm -f a missing segment" "$P" rm -f "$S2"
expect 1 "rm: no NAME" "$P" rm

# ---- stat --------------------------------------------------------------------

expect 0 "stat" "$P" stat "$S"
assert "stat shows the segment size" grep -q "^segment size: *8M (8388608)" "$T/out"
assert "stat shows the capacity" grep -q "^capacity: *100$" "$T/out"
assert "stat does not attach (no entry of its own)" \
	sh -c '! grep -q "(this command)" "$1"' sh "$T/out"
expect 0 "stat --json" "$P" stat "$S" --json
assert "stat --json is JSON" json_ok "$T/out"
assert "stat --json: segment_size" \
	[ "$(json_get "$T/out" 'j["segment_size"]')" = 8388608 ]
assert "stat --json: not counted in processes" \
	[ "$(json_get "$T/out" 'j["processes"]')" = 0 ]
assert "stat --json: not in the attached list" \
	[ "$(json_get "$T/out" 'sum(p["self"] for p in j["attached"])')" = 0 ]
# Looking changes nothing: the file is byte for byte the same.
sum_before=$(sha256sum "/dev/shm/${S#/}")
for c in stat ls check; do "$P" "$c" "$S" >/dev/null 2>&1; done
"$P" ls-segments >/dev/null 2>&1
assert "stat, ls, check, ls-segments leave the file unchanged" \
	[ "$(sha256sum "/dev/shm/${S#/}")" = "$sum_before" ]
expect 2 "stat: no such segment" "$P" stat "$NONE"
expect 1 "stat: two names" "$P" stat "$S" "$S"

# A file in /dev/shm that is not a segment.
G=/pxs-cli-$$-garbage
head -c 1048576 /dev/urandom >"/dev/shm${G}"
expect 5 "stat: not a proxyshm segment" "$P" stat "$G"
assert "stat: the library's error text" grep -q "not a proxyshm segment" "$T/err"

# ---- put, get, evict ---------------------------------------------------------

printf 'hello' >"$T/hello"
expect 0 "put FILE" "$P" put "$S" "$T/hello"
K1=$(cat "$T/out")
assert "put prints a key" grep -Eq '^[0-9a-f]{32}$' "$T/out"
expect 0 "get NAME KEY" "$P" get "$S" "$K1"
assert "get returns the bytes" cmp -s "$T/out" "$T/hello"

printf 'from stdin' | "$P" put "$S" - >"$T/k2"
K2=$(cat "$T/k2")
expect 0 "put from stdin, get" "$P" get "$S" "$K2"
assert "stdin bytes" [ "$(cat "$T/out")" = "from stdin" ]

expect 0 "put --name --proxy" "$P" put "$S" --name greeting --proxy "$T/hello"
PX=$(cat "$T/out")
assert "put --proxy prints pxs://NAME/KEY" [ "$PX" = "pxs://${S#/}/${PX##*/}" ]
expect 0 "get PROXY" "$P" get "$PX"
assert "get PROXY bytes" cmp -s "$T/out" "$T/hello"
expect 0 "get NAME PROXY" "$P" get "$S" "$PX"
expect 0 "get --name" "$P" get "$S" --name greeting
assert "get --name bytes" cmp -s "$T/out" "$T/hello"
expect 0 "get -o FILE" "$P" get "$S" "$K1" -o "$T/got"
assert "get -o wrote the bytes" cmp -s "$T/got" "$T/hello"
expect 7 "put --name twice" "$P" put "$S" --name greeting "$T/hello"
expect 0 "put --key" "$P" put "$S" --key 0123456789abcdef0123456789abcdef "$T/hello"
expect 0 "get that key" "$P" get "$S" 0123456789abcdef0123456789abcdef
expect 1 "put: bad --key" "$P" put "$S" --key 12ab "$T/hello"
expect 1 "put: --key and --name" "$P" put "$S" --key 0123456789abcdef0123456789abcdef --name x "$T/hello"
expect 2 "put: no such file" "$P" put "$S" "$T/nope"
expect 2 "put: no such segment" "$P" put "$NONE" "$T/hello"
: >"$T/empty"
expect 0 "put an empty value" "$P" put "$S" "$T/empty"
expect 0 "get an empty value" "$P" get "$S" "$(cat "$T/out")"
assert "it is empty" [ ! -s "$T/out" ]

# Large values both ways: a mapped regular file, and a pipe.
head -c 3000000 /dev/urandom >"$T/big"
expect 0 "put a 3 MB file" "$P" put "$S" "$T/big"
KB=$(cat "$T/out")
expect 0 "get it to a file" "$P" get "$S" "$KB" -o "$T/big2"
assert "3 MB round trip (file)" cmp -s "$T/big" "$T/big2"
cat "$T/big" | "$P" put "$S" >"$T/kb"
"$P" get "$S" "$(cat "$T/kb")" | cmp -s - "$T/big" && ok "3 MB round trip (pipes)" ||
	not_ok "3 MB round trip (pipes)"

expect 2 "get: no such key" "$P" get "$S" ffffffffffffffffffffffffffffffff
assert "get: error names the key" grep -q ffffffffffffffffffffffffffffffff "$T/err"
expect 1 "get: bad key" "$P" get "$S" XYZ
expect 1 "get: missing key" "$P" get "$S"
expect 1 "get: proxy of another segment" "$P" get "$S" "pxs://other/${PX##*/}"
expect 1 "get: bad proxy" "$P" get "pxs://bad"
expect 2 "get: no such segment" "$P" get "pxs://${NONE#/}/${PX##*/}"
expect 0 "evict" "$P" evict "$S" "$K1"
expect 2 "get after evict" "$P" get "$S" "$K1"
expect 2 "evict again" "$P" evict "$S" "$K1"
expect 0 "evict --name" "$P" evict "$S" --name greeting
expect 0 "evict PROXY" "$P" evict "$(printf 'x' | "$P" put "$S" --proxy)"

# ---- ls ------------------------------------------------------------------------

expect 0 "ls" "$P" ls "$S"
assert "ls has a header" grep -q "^KEY  *NAME  *STATE  *SIZE  *PINS  *WAITERS  *OWNER  *AGE" "$T/out"
assert "ls lists a value" grep -Eq "^$K2 +- +value +10B +0 +0 +- " "$T/out"
expect 0 "ls --json" "$P" ls "$S" --json
assert "ls --json is JSON" json_ok "$T/out"
assert "ls --json: every entry is a value" \
	[ "$(json_get "$T/out" 'all(e["state"] == "value" for e in j)')" = True ]
expect 0 "ls --pending on no futures" "$P" ls "$S" --pending
assert "ls --pending: header only" line_count "$T/out" 1
expect 2 "ls: no such segment" "$P" ls "$NONE"

# ---- ls-segments ---------------------------------------------------------------

# Every file gets a row; those that do not attach say why. A complete
# segment under a creator's private name is never opened.
cp "/dev/shm$S" "/dev/shm/.pxs-tmp-cli-$$"
cp "/dev/shm$S" "/dev/shm/.pxs-tmp-cli-$$-999999999-1"   # its creator is dead
head -c 65536 "/dev/shm$S" >"/dev/shm/pxs-cli-$$-trunc"
sum_before=$(cat "/dev/shm/.pxs-tmp-cli-$$-999999999-1" | cksum)
expect 0 "ls-segments" "$P" ls-segments
assert "ls-segments: a PROBLEM column" grep -Eq "^NAME .* PROBLEM$" "$T/out"
assert "ls-segments lists the segment, no problem" grep -Eq "^$S .* -$" "$T/out"
assert "ls-segments: a non-segment, and why" \
	grep -Eq "^$G .* not a proxyshm segment" "$T/out"
assert "ls-segments: a truncated segment, and why" \
	grep -Eq "^/pxs-cli-$$-trunc .* truncated or not a segment \(65536 bytes" "$T/out"
assert "ls-segments: a stale temporary file of a dead creator" \
	grep -Eq "^/.pxs-tmp-cli-$$-999999999-1 .* stale temporary file: its creator \(pid 999999999\) is dead$" "$T/out"
assert "ls-segments: a temporary file is never opened" \
	[ "$(cat "/dev/shm/.pxs-tmp-cli-$$-999999999-1" | cksum)" = "$sum_before" ]
if [ "$(id -u)" -eq 0 ]; then
	cp "/dev/shm$S" "/dev/shm/pxs-cli-$$-others"
	chown nobody "/dev/shm/pxs-cli-$$-others"
	expect 0 "ls-segments beside another user's segment" "$P" ls-segments
	assert "ls-segments: another user's segment, and whose" \
		grep -Eq "^/pxs-cli-$$-others .* owned by uid $(id -u nobody), not trusted" "$T/out"
	expect 0 "ls-segments --trust-owner nobody" "$P" --trust-owner nobody ls-segments
	assert "ls-segments: a trusted owner's segment has figures" \
		grep -Eq "^/pxs-cli-$$-others .* -$" "$T/out"
	rm -f "/dev/shm/pxs-cli-$$-others"
else
	skip "ls-segments: another user's segment (needs root)"
fi
expect 0 "ls-segments --json" "$P" ls-segments --json
assert "ls-segments --json is JSON" json_ok "$T/out"
assert "ls-segments --json has the segment" \
	[ "$(json_get "$T/out" "[(s['segment_size'], s['problem']) for s in j if s['name'] == '$S']")" = "[(8388608, None)]" ]
assert "ls-segments --json: the garbage file's problem" \
	[ "$(json_get "$T/out" "[s['problem'][:22] for s in j if s['name'] == '$G']")" = "['not a proxyshm segment']" ]
rm -f "/dev/shm/.pxs-tmp-cli-$$" "/dev/shm/.pxs-tmp-cli-$$-999999999-1" "/dev/shm/pxs-cli-$$-trunc"
expect 1 "ls-segments: no arguments" "$P" ls-segments "$S"

# ---- futures: future, wait, set ------------------------------------------------

newseg
F=$SEG
"$P" create "$F" --size 8M
# `proxyshm future` leaves no process behind: run it as a child whose pid
# we know, and look for that pid, its descendants and anything attached.
"$P" future "$F" >"$T/pf" &
fpid=$!
wait "$fpid"
assert "future exits 0" [ $? -eq 0 ]
p=$(cat "$T/pf")
assert "future prints a proxy" [ "$p" = "pxs://${F#/}/${p##*/}" ]
k=${p##*/}
assert "the future command is gone" gone "$fpid"
# (a keeper would be a fork of it: same command line, another pid)
future_procs() {
	local f
	for f in /proc/[0-9]*/cmdline; do
		tr '\0' ' ' <"$f" 2>/dev/null | grep -q -- "[f]uture $1 " && echo "$f"
	done
}
assert "no process runs 'future $F' any more" [ -z "$(future_procs "$F")" ]
expect 0 "stat after future" "$P" stat "$F" --json
assert "no process attached but stat itself" \
	[ "$(json_get "$T/out" 'j["processes"] - sum(p["self"] for p in j["attached"])')" = 0 ]
expect 0 "ls --pending lists it" "$P" ls "$F" --pending
assert "pending, with no owner" grep -Eq "^$k +- +pending +0B +0 +0 +- " "$T/out"
expect 3 "get on a pending future" "$P" get "$p"
assert "get: says still pending" grep -q "pending" "$T/err"
expect 3 "wait --timeout 0.2 on a pending future" "$P" wait "$p" --timeout 0.2
assert "wait: timed out, one line" line_count "$T/err" 1
expect 1 "wait: bad timeout" "$P" wait "$p" --timeout -1
expect 2 "set from a missing file" "$P" set "$p" "$T/no-such-file"
expect 0 "ls after a failed set" "$P" ls "$F" --pending
assert "a failed set leaves it pending, with no owner" \
	grep -Eq "^$k +- +pending +0B +0 +0 +- " "$T/out"

# wait blocks until set is called from another process.
"$P" wait "$p" -o "$T/waited" 2>"$T/wait.err" &
wpid=$!
assert "wait parks on the future" eventually 10 has_waiters "$F" "$k"
assert "wait is still blocked" kill -0 "$wpid"
assert "wait wrote nothing before the set" [ ! -e "$T/waited" ]
head -c 100000 /dev/urandom >"$T/val"
expect 0 "set PROXY FILE (another process)" "$P" set "$p" "$T/val"
wait "$wpid"
assert "wait exits 0 after the set" [ $? -eq 0 ]
assert "wait -o wrote the value" cmp -s "$T/waited" "$T/val"
expect 0 "wait on a set future returns at once" "$P" wait "$p"
assert "same bytes" cmp -s "$T/out" "$T/val"
expect 7 "set twice" "$P" set "$p" "$T/val"
assert "set twice: says already set" grep -q "already set" "$T/err"

# The shell pipeline: p=$(proxyshm future /sim); producer "$p" & proxyshm wait "$p" | analysis
producer() {
	eventually 10 has_waiters "$F" "${1##*/}" || return 1
	printf 'the data bar was waiting for' | "$P" set "$1"
}
p=$(timeout 10 "$P" future "$F")
producer "$p" &
ppid_=$!
"$P" wait "$p" | tr a-z A-Z >"$T/analysis"
rc=${PIPESTATUS[0]}
wait "$ppid_"
assert "pipeline: producer set it" [ $? -eq 0 ]
assert "pipeline: wait exit 0" [ "$rc" -eq 0 ]
assert "pipeline: analysis got the value" [ "$(cat "$T/analysis")" = "THE DATA BAR WAS WAITING FOR" ]

# A producer killed while it reads its input abandons the future: set
# claims it first. The fifo's writer (fd 9) keeps set's read blocked.
p=$("$P" future "$F")
k=${p##*/}
mkfifo "$T/fifo"
"$P" set "$p" <"$T/fifo" 2>/dev/null &
spid=$!
exec 9>"$T/fifo"
assert "set claims the future before reading" \
	eventually 10 eval "[ \"\$(owner_of '$F' '$k')\" = $spid ]"
kill -KILL "$spid"
wait "$spid" 2>/dev/null
exec 9>&-
expect 4 "wait: set was killed while reading" "$P" wait "$p" --timeout 10
assert "wait: says abandoned" grep -q "abandoned" "$T/err"
expect 0 "ls shows it abandoned" "$P" ls "$F"
# (its owner shown dead, or no more once the dead process was reaped)
assert "abandoned, owner the dead set" grep -Eq "^$k +- +abandoned .* ($spid\(dead\)|-) " "$T/out"
expect 4 "get on an abandoned future" "$P" get "$p"
expect 4 "set on an abandoned future" "$P" set "$p" "$T/val"

# Futures named, set from stdin, addressed as NAME KEY or NAME --name.
expect 0 "future --name" "$P" future "$F" --name step/42
pn=$(cat "$T/out")
expect 7 "future --name twice" "$P" future "$F" --name step/42
assert "future --name twice: says the key is in use" grep -q "in use" "$T/err"
printf 'v42' | "$P" set "$F" --name step/42 && ok "set NAME --name from stdin" ||
	not_ok "set NAME --name from stdin"
expect 0 "wait NAME --name" "$P" wait "$F" --name step/42
assert "wait NAME --name bytes" [ "$(cat "$T/out")" = v42 ]
expect 0 "wait NAME KEY" "$P" wait "$F" "${pn##*/}"
expect 0 "wait on a plain object returns at once" "$P" wait "$S" "$K2"
expect 2 "wait --timeout 0: no such key" "$P" wait "$F" ffffffffffffffffffffffffffffffff --timeout 0
assert "no such key: says which key in which segment" \
	grep -q "no key ffffffffffffffffffffffffffffffff in $F" "$T/err"
expect 3 "wait: a key not created in time" "$P" wait "$F" ffffffffffffffffffffffffffffffff --timeout 0.2
( sleep 0.3; printf 'late' | "$P" put "$F" --name created/late >/dev/null ) &
expect 0 "wait: a key created later" "$P" wait "$F" --name created/late --timeout 30
assert "wait: a key created later, bytes" [ "$(cat "$T/out")" = late ]
wait

# wait --name before anyone created the future: it waits for the
# creation, then for the value.
stat_waiters() { "$P" stat "$F" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["waiters"])'; }
"$P" wait "$F" --name sim/step/42 --timeout 30 >"$T/early" 2>"$T/early.err" &
wpid=$!
assert "wait --name sleeps on the absent key" eventually 10 eval '[ "$(stat_waiters)" -ge 1 ]'
expect 0 "then the future is created" "$P" future "$F" --name sim/step/42
assert "wait --name: still waiting for the value" kill -0 "$wpid"
printf 'early' | "$P" set "$F" --name sim/step/42
wait "$wpid"
assert "wait --name before the key existed: exit 0" [ $? -eq 0 ]
assert "wait --name before the key existed: the value" [ "$(cat "$T/early")" = early ]

expect 2 "set: no such key" "$P" set "$F" ffffffffffffffffffffffffffffffff "$T/val"
expect 2 "future: no such segment" "$P" future "$NONE"
assert "no such segment: says so" grep -q "segment $NONE does not exist" "$T/err"
expect 1 "set: bad proxy" "$P" set "pxs://" "$T/val"
expect 1 "get: a proxy with one slash" "$P" get "pxs:/${F#/}/$k"
assert "bad proxy: names the expected form" grep -q "expected pxs://NAME/KEY" "$T/err"

# future --timeout: an ownerless future expires, and its waiters exit 4.
p=$("$P" future "$F" --timeout 0.3)
expect 4 "wait: future --timeout ran out" "$P" wait "$p" --timeout 30

# Evicted while waiting.
p=$("$P" future "$F")
k=${p##*/}
"$P" wait "$p" 2>"$T/wait.err" &
wpid=$!
eventually 10 has_waiters "$F" "$k"
"$P" evict "$p"
wait "$wpid"
assert "wait exits 4 when the future is evicted" [ $? -eq 4 ]

# Two waiters, one set.
p=$("$P" future "$F")
k=${p##*/}
"$P" wait "$p" >"$T/w1" &
w1=$!
"$P" wait "$p" >"$T/w2" &
w2=$!
assert "two waiters park" eventually 10 has_waiters "$F" "$k" 2
printf 'both' | "$P" set "$p"
wait "$w1" && wait "$w2" && [ "$(cat "$T/w1")$(cat "$T/w2")" = bothboth ] &&
	ok "both waiters get the value" || not_ok "both waiters get the value"

# ---- future --owned: a keeper, with a bounded lifetime ----------------------

# $(...) returns only when every writer of the pipe is gone: the keeper
# must not hold it. `timeout` turns a hang into a failure.
p=$(timeout 10 "$P" future "$F" --owned --timeout 60)
k=${p##*/}
keeper=$(owner_of "$F" "$k")
alive_other() { [ -n "$1" ] && [ "$1" != $$ ] && ! gone "$1"; }
assert "--owned: the keeper is another live process" alive_other "$keeper"
printf 'kept' | "$P" set "$p"
assert "--owned: the keeper leaves once the future is set" eventually 10 gone "$keeper"

# Abandoned: the keeper dies while a waiter sleeps.
p=$("$P" future "$F" --owned)
k=${p##*/}
keeper=$(owner_of "$F" "$k")
"$P" wait "$p" 2>"$T/wait.err" &
wpid=$!
eventually 10 has_waiters "$F" "$k"
kill -KILL "$keeper"
wait "$wpid"
assert "wait exits 4 when the keeper dies" [ $? -eq 4 ]
expect 0 "ls shows it abandoned" "$P" ls "$F"
assert "abandoned, keeper dead" grep -Eq "^$k +- +abandoned .* $keeper\(dead\) " "$T/out"

# The keeper's lifetime ends and the future is abandoned.
p=$("$P" future "$F" --owned --timeout 0.3)
expect 4 "wait: future --owned --timeout ran out" "$P" wait "$p" --timeout 30

# Evicted: the keeper leaves.
p=$("$P" future "$F" --owned)
keeper=$(owner_of "$F" "${p##*/}")
"$P" evict "$p"
assert "the keeper leaves once the future is evicted" eventually 10 gone "$keeper"

# The keeper holds no descriptor of its caller: stdio on /dev/null, and an
# inherited fd 3 closed (else a reader of that pipe would wait for it).
"$P" future "$F" --owned 3>"$T/fd3" >"$T/pfd"
keeper=$(owner_of "$F" "$(sed 's|.*/||' "$T/pfd")")
fds=$(for f in /proc/"$keeper"/fd/*; do readlink "$f"; done)
assert "the keeper's stdio is /dev/null" \
	[ "$(readlink /proc/"$keeper"/fd/1)" = /dev/null ]
assert "the keeper closed the inherited fd 3" eval "! grep -q fd3 <<<'$fds'"

# evict --abandoned: the abandoned futures go, nothing else.
expect 0 "evict --abandoned" "$P" evict "$F" --abandoned
assert "evict --abandoned: counts them" grep -Eq "^$F: evicted [1-9][0-9]* abandoned future" "$T/out"
expect 0 "ls after evict --abandoned" "$P" ls "$F"
assert "no abandoned future left" eval "! grep -q ' abandoned ' '$T/out'"
assert "the values stay" grep -q " value " "$T/out"

# A keeper leaves when its segment is removed.
p=$("$P" future "$F" --owned)
keeper=$(owner_of "$F" "${p##*/}")
expect 0 "stat while a keeper holds a future" "$P" stat "$F"
assert "stat lists the keeper" grep -q "pid $keeper " "$T/out"
expect 0 "rm the segment" "$P" rm "$F"
assert "the keeper leaves once its segment is removed" eventually 10 gone "$keeper"

# ---- streams --------------------------------------------------------------------

newseg
expect 0 "stream: create" "$P" create "$SEG" --size 16M
expect 0 "stream new" "$P" stream new "$SEG" --name steps --window 4
expect 7 "stream new on a key in use" "$P" stream new "$SEG" --name steps
expect 1 "stream: unknown action" "$P" stream frob "$SEG" --name steps
expect 1 "stream: an option of another action" "$P" stream read "$SEG" --name steps 0 --window 3
expect 1 "stream new: window 0" "$P" stream new "$SEG" --name w0 --window 0
expect 2 "stream info of no stream" "$P" stream info "$SEG" --name nothing
"$P" put "$SEG" --name plain </dev/null >/dev/null
expect 5 "stream info of a plain value" "$P" stream info "$SEG" --name plain
"$P" stream tail "$SEG" --name steps -f --timeout 10 >"$T/followed" 2>/dev/null &
tpid=$!
printf 'a\nb\nc\n' >"$T/lines"
expect 0 "stream append --lines" "$P" stream append "$SEG" --name steps --lines "$T/lines"
assert "stream append printed the seqs" cmp -s "$T/out" <(printf '0\n1\n2\n')
expect 0 "stream read 1" "$P" stream read "$SEG" --name steps 1
assert "stream read gave item 1" cmp -s "$T/out" <(printf b)
expect 3 "stream read of an item not appended yet" "$P" stream read "$SEG" --name steps 3 --timeout 0.2
expect 0 "stream tail --json" "$P" stream tail "$SEG" --name steps --json
assert "stream tail --json: one object per item" line_count "$T/out" 3
assert "stream tail --json: the data" grep -q '"seq": 2, "size": 1, "data": "c"' "$T/out"
assert "stream tail -f saw the items as they came" eventually 10 cmp -s "$T/followed" <(printf 'a\nb\nc\n')
kill "$tpid" 2>/dev/null
wait "$tpid" 2>/dev/null
seq 4 9 | "$P" stream append "$SEG" --name steps --lines >/dev/null
expect 5 "stream read of a slid-out item" "$P" stream read "$SEG" --name steps 0
expect 0 "stream tail --from 0 skips what slid out" "$P" stream tail "$SEG" --name steps --from 0
assert "stream tail: the window's items" cmp -s "$T/out" <(printf '6\n7\n8\n9\n')
assert "stream tail: said what it skipped" grep -q "slid out" "$T/err"
expect 0 "stream info --json" "$P" stream info "$SEG" --name steps --json
assert "stream info --json: first and next" grep -q '"first": 5, "next": 9' "$T/out"
expect 0 "stream info" "$P" stream info "$SEG" --name steps
assert "stream info: the retained range" grep -q "^items     5..8 retained (next 9)" "$T/out"
expect 5 "stream delete of a plain value" "$P" stream delete "$SEG" --name plain
expect 0 "stream delete: the plain value is still there" "$P" get "$SEG" --name plain
"$P" stream tail "$SEG" --name steps -f --from 9 >/dev/null 2>"$T/delerr" &
dpid=$!
# asleep in futex(2) (syscall 202 on x86-64, 98 on arm64) on the stream
in_futex() { grep -Eq '^(202|98) ' "/proc/$1/syscall" 2>/dev/null; }
eventually 10 in_futex "$dpid"
expect 0 "stream delete" "$P" stream delete "$SEG" --name steps
assert "stream delete: the follower stopped with exit 5" eventually 10 sh -c "! kill -0 $dpid 2>/dev/null"
wait "$dpid"; drc=$?
assert "stream delete: follower's exit status" test "$drc" = 5
expect 2 "stream info after delete" "$P" stream info "$SEG" --name steps
expect 2 "stream delete twice" "$P" stream delete "$SEG" --name steps
expect 0 "stream new on the deleted name" "$P" stream new "$SEG" --name steps
expect 0 "stream delete of an empty stream" "$P" stream delete "$SEG" --name steps

# ---- evict of several keys, expire -------------------------------------------

newseg
E=$SEG
"$P" create "$E" --size 4M
a=$(echo 1 | "$P" put "$E")
b=$(echo 2 | "$P" put "$E")
c=$(echo 3 | "$P" put "$E" --proxy)
expect 1 "evict: a bad third key" "$P" evict "$E" "$a" "$b" nothex
assert "evict: a bad key evicts nothing" "$P" get "$E" "$a" -o /dev/null
expect 0 "evict NAME KEY KEY PROXY" "$P" evict "$E" "$a" "$b" "$c"
expect 0 "ls after evicting three" "$P" ls "$E"
assert "all three gone" line_count "$T/out" 1
d=$(echo 4 | "$P" put "$E")
expect 2 "evict: one key missing" "$P" evict "$E" "$a" "$d"
assert "evict: the missing one named" grep -q "no key $a in $E" "$T/err"
expect 2 "evict: the others still evicted" "$P" get "$E" "$d"

echo hi | "$P" put "$E" --name ttl >/dev/null
expect 0 "ls: no expiry" "$P" ls "$E"
assert "ls has a TTL column" grep -q " TTL$" "$T/out"
assert "TTL - without expiry" grep -Eq " +- *$" "$T/out"
expect 1 "expire: bad lifetime" "$P" expire "$E" --name ttl soon
expect 1 "expire: no lifetime" "$P" expire "$E" --name ttl
expect 0 "expire NAME --name KEYNAME 3600" "$P" expire "$E" --name ttl 3600
expect 0 "ls after expire" "$P" ls "$E"
assert "ls shows the time left" grep -Eq " (60m|59m)$" "$T/out"
expect 0 "ls --json after expire" "$P" ls "$E" --json
assert "ls --json: ttl_ms" [ "$(json_get "$T/out" '0 < j[0]["ttl_ms"] <= 3600000')" = True ]
expect 0 "expire never" "$P" expire "$E" --name ttl never
expect 0 "expire 0 evicts at once" "$P" expire "$E" --name ttl 0
expect 2 "get after expire 0" "$P" get "$E" --name ttl
expect 2 "expire: no such key" "$P" expire "$E" --name ttl 5

# ---- names: put --name keeps them; ls shows and filters; evict --prefix ----

newseg
N=$SEG
"$P" create "$N" --size 4M
echo 1 | "$P" put "$N" --name sim/step/1 >/dev/null
echo 2 | "$P" put "$N" --name sim/step/2 >/dev/null
echo 3 | "$P" put "$N" --name other >/dev/null
u=$(echo 4 | "$P" put "$N")
"$P" future "$N" --name sim/step/3 >/dev/null
"$P" future "$N" --name sim/step/4 >/dev/null
printf 'four' | "$P" set "$N" --name sim/step/4
expect 0 "ls with names" "$P" ls "$N"
assert "ls shows a stored name" grep -Eq "^[0-9a-f]{32} +sim/step/1 +value " "$T/out"
assert "ls shows - for a value without a name" grep -Eq "^$u +- +value " "$T/out"
assert "ls shows a pending future's name" grep -Eq "^[0-9a-f]{32} +sim/step/3 +pending " "$T/out"
assert "ls: a set future keeps its name" grep -Eq "^[0-9a-f]{32} +sim/step/4 +value " "$T/out"
expect 0 "ls --prefix" "$P" ls "$N" --prefix sim/
assert "ls --prefix: the four sim/ names" [ "$(grep -c ' sim/step/' "$T/out")" -eq 4 ]
assert "ls --prefix: nothing else" line_count "$T/out" 5
expect 0 "ls --json with names" "$P" ls "$N" --json
assert "ls --json: the names" [ "$(json_get "$T/out" 'sorted(str(e["name"]) for e in j)')" = "['None', 'other', 'sim/step/1', 'sim/step/2', 'sim/step/3', 'sim/step/4']" ]
expect 1 "put: a KEYNAME too long to keep" "$P" put "$N" --name "$(printf 'x%.0s' $(seq 256))" "$T/val"
expect 1 "future: a KEYNAME too long to keep" "$P" future "$N" --name "$(printf 'x%.0s' $(seq 256))"
expect 0 "evict --prefix" "$P" evict "$N" --prefix sim/
assert "evict --prefix: counts them, futures too" grep -q "^$N: evicted 4 keys$" "$T/out"
expect 0 "check after evict --prefix: every name block freed" "$P" check "$N"
expect 0 "ls after evict --prefix" "$P" ls "$N"
assert "evict --prefix: the others stay" [ "$(grep -c ' value ' "$T/out")" -eq 2 ]
expect 2 "get of an evicted name" "$P" get "$N" --name sim/step/1
expect 0 "get of a kept one" "$P" get "$N" --name other
expect 1 "evict --prefix with --name" "$P" evict "$N" --prefix x --name other

# ---- messages for people -------------------------------------------------------

expect 1 "create --size 4096" "$P" create "$NONE" --size 4096
assert "says the minimum size" grep -q "at least 1M" "$T/err"
expect 1 "ls of a proxy" "$P" ls "pxs://${E#/}/ffffffffffffffffffffffffffffffff"
assert "ls of a proxy: says to give the NAME" grep -q "is a proxy: give the segment NAME" "$T/err"
expect 1 "a bad segment name" "$P" stat "/bad name"
assert "says the name rule" grep -q "letters, digits" "$T/err"
expect 2 "ls: no such segment" "$P" ls "$NONE"
assert "ls: says the segment does not exist" grep -q "segment $NONE does not exist" "$T/err"
expect 7 "create an existing segment" "$P" create "$E"
assert "create: says what to do" grep -q "already exists (attach to it with --exist-ok" "$T/err"
expect 0 "wait --help" "$P" wait --help
assert "a subcommand's help has no exit-code table" eval "! grep -q '^  4 ' '$T/out'"
assert "it points to proxyshm --help" grep -q "Exit codes: see 'proxyshm --help'" "$T/out"

# Every example of every --help runs, in order, as it is written (with
# /demo renamed so that parallel runs do not meet).
for c in $commands; do
	"$P" "$c" --help | sed -n 's/^  \$ //p' >"$T/ex.sh"
	[ -s "$T/ex.sh" ] || { not_ok "$c --help has examples"; continue; }
	newseg
	sed -i "s|/demo|$SEG|g" "$T/ex.sh"
	if (proxyshm() { "$P" "$@"; }; cd "$T" && set -e && . "$T/ex.sh"; wait) >"$T/ex.out" 2>&1; then
		ok "$c --help: every example runs"
	else
		not_ok "$c --help: an example failed"
		sed 's/^/#   /' "$T/ex.sh" "$T/ex.out" | head -20
	fi
	"$P" rm -f "$SEG"
done

# Every "$ " example of docs/cli.md runs, in order, in one shell (with /sim
# renamed): each must exit 0, or with the code that the "$ echo $?" after
# it shows. CLIMD is docs/cli.md, found beside this script.
CLIMD=$(dirname "$(realpath "$0")")/../../docs/cli.md
newseg
python3 - "$CLIMD" "$SEG" >"$T/climd.sh" <<'PY'
import shlex, sys
lines = open(sys.argv[1]).read().split("\n")
seg = sys.argv[2]
fence, cmds = False, []  # cmds: [command, the output lines after it]
for line in lines:
    if line.startswith("```"):
        fence = not fence
    elif fence and line.startswith("$ "):
        cmds.append([line[2:], []])
    elif fence and cmds:
        cmds[-1][1].append(line)
print("fail=0")
for i, (cmd, out) in enumerate(cmds):
    if cmd == "echo $?":
        continue
    want = "0"
    if i + 1 < len(cmds) and cmds[i + 1][0] == "echo $?":
        want = cmds[i + 1][1][0]
    cmd = cmd.replace("pxs://sim/", "pxs://%s/" % seg[1:]).replace("/sim", seg)
    # a line that needs jq runs where jq is installed
    need = "command -v jq >/dev/null" if "| jq " in cmd else "true"
    print("if %s; then { %s\n} >>climd.out 2>&1; rc=$?; else rc=%s; fi"
          % (need, cmd, want))
    print("[ $rc -eq %s ] || { echo %s; fail=1; }"
          % (want, shlex.quote("exit $rc, want %s: %s" % (want, cmd))))
print("exit $fail")
PY
printf 'results\n' >"$T/results.bin"
printf '{"steps": 42}\n' >"$T/config.json"
if (proxyshm() { "$P" "$@"; }; cd "$T" && . "$T/climd.sh") >"$T/climd.err" 2>&1; then
	ok "cli.md: every \$ example runs"
else
	not_ok "cli.md: an example failed"
	sed 's/^/#   /' "$T/climd.err" | head -20
fi
"$P" rm -f "$SEG"

# ---- check, reap ---------------------------------------------------------------

expect 0 "check a healthy segment" "$P" check "$S"
assert "check says consistent" grep -q "^$S: consistent" "$T/out"
expect 0 "check --json" "$P" check "$S" --json
assert "check --json is JSON" json_ok "$T/out"
assert "check --json: ok" [ "$(json_get "$T/out" 'j["ok"] and j["errors"] == 0')" = True ]
expect 6 "check: not a proxyshm segment" "$P" check "$G"
expect 2 "check: no such segment" "$P" check "$NONE"
expect 0 "reap" "$P" reap "$S"
assert "reap reports a count" grep -Eq "^$S: reaped [0-9]+ dead process" "$T/out"
expect 2 "reap: no such segment" "$P" reap "$NONE"

# Corrupt a heap block header: the 16 bytes before a value's first byte.
newseg
C=$SEG
"$P" create "$C" --size 4M
printf 'PXSCLIMARKER%.0s' 1 2 3 4 5 6 7 8 | "$P" put "$C" >/dev/null
off=$(grep -obUa PXSCLIMARKER "/dev/shm$C" | head -n 1 | cut -d: -f1)
printf '\377%.0s' $(seq 16) |
	dd of="/dev/shm$C" bs=1 seek=$((off - 16)) conv=notrunc 2>/dev/null
expect 6 "check: a corrupt heap" "$P" check "$C"
assert "check: names the first error" grep -q "error" "$T/out"
expect 6 "check --json: a corrupt heap" "$P" check "$C" --json
assert "check --json: not ok" [ "$(json_get "$T/out" 'not j["ok"] and j["errors"] > 0')" = True ]

# ---- watch ---------------------------------------------------------------------

expect 0 "watch --count 2" "$P" watch "$S" --count 2 --interval 0.05
assert "watch drew two frames" [ "$(grep -c "^proxyshm watch $S" "$T/out")" -eq 2 ]
assert "watch draws a heap bar" grep -Eq '^heap +\[#*\.*\] +[0-9]+%' "$T/out"
expect 1 "watch: bad count" "$P" watch "$S" --count 0
"$P" watch "$S" >"$T/watch" 2>&1 &
wpid=$!
eventually 10 grep -q "^proxyshm watch" "$T/watch"
kill -INT "$wpid"
wait "$wpid"
assert "watch exits 0 on SIGINT" [ $? -eq 0 ]
expect 2 "watch: no such segment" "$P" watch "$NONE" --count 1

# ---- a Redis store (when redis-server is installed and the build has it) -----

if command -v redis-server >/dev/null 2>&1; then
	RPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null)
	redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 &
	rpid=$!
	R=redis://127.0.0.1:$RPORT/cli-$$
	if eventually 10 "$P" create "$R" && [ -n "$RPORT" ]; then
		ok "redis: create"
		echo hello >"$T/in"
		expect 0 "redis: put --name" "$P" put "$R" "$T/in" --name greet
		expect 0 "redis: get --name" "$P" get "$R" --name greet
		assert "redis: get wrote the value" grep -qx hello "$T/out"
		expect 0 "redis: ls" "$P" ls "$R"
		assert "redis: ls shows the value" grep -q "value" "$T/out"
		expect 0 "redis: stat" "$P" stat "$R"
		expect 0 "redis: future" "$P" future "$R" --name later
		RPX=$(cat "$T/out")
		assert "redis: future prints a redis proxy" grep -q "^redis://127.0.0.1:$RPORT/cli-$$/[0-9a-f]\{32\}$" "$T/out"
		"$P" wait "$RPX" --timeout 10 >"$T/waited" 2>&1 &
		wpid=$!
		echo done >"$T/val"
		eventually 10 "$P" set "$RPX" "$T/val"
		wait "$wpid"
		assert "redis: wait woken by set" grep -qx done "$T/waited"
		expect 0 "redis: stream new" "$P" stream new "$R" --name steps --window 4
		expect 7 "redis: stream new on a key in use" "$P" stream new "$R" --name steps
		expect 2 "redis: stream info of no stream" "$P" stream info "$R" --name nothing
		expect 5 "redis: stream info of a plain value" "$P" stream info "$R" --name greet
		"$P" stream tail "$R" --name steps -f --timeout 10 >"$T/rfollowed" 2>/dev/null &
		rtpid=$!
		printf 'a\nb\nc\n' >"$T/rlines"
		expect 0 "redis: stream append --lines" "$P" stream append "$R" --name steps --lines "$T/rlines"
		assert "redis: stream append printed the seqs" cmp -s "$T/out" <(printf '0\n1\n2\n')
		expect 0 "redis: stream read 1" "$P" stream read "$R" --name steps 1
		assert "redis: stream read gave item 1" cmp -s "$T/out" <(printf b)
		expect 3 "redis: stream read of an item not appended yet" "$P" stream read "$R" --name steps 3 --timeout 0.2
		assert "redis: stream tail -f saw the items as they came" eventually 10 cmp -s "$T/rfollowed" <(printf 'a\nb\nc\n')
		kill "$rtpid" 2>/dev/null
		wait "$rtpid" 2>/dev/null
		seq 4 9 | "$P" stream append "$R" --name steps --lines >/dev/null
		expect 5 "redis: stream read of a slid-out item" "$P" stream read "$R" --name steps 0
		expect 0 "redis: stream tail --from 0 skips what slid out" "$P" stream tail "$R" --name steps --from 0
		assert "redis: stream tail: the window's items" cmp -s "$T/out" <(printf '6\n7\n8\n9\n')
		expect 0 "redis: stream info --json" "$P" stream info "$R" --name steps --json
		assert "redis: stream info --json: first and next" grep -q '"first": 5, "next": 9' "$T/out"
		expect 0 "redis: check" "$P" check "$R"
		expect 2 "redis: get of a missing name" "$P" get "$R" --name nothing
		expect 0 "redis: rm" "$P" rm "$R"
		expect 2 "redis: stat after rm" "$P" stat "$R"
	else
		not_ok "redis: create"
	fi
	kill "$rpid" 2>/dev/null
	wait "$rpid" 2>/dev/null
fi

tap_done

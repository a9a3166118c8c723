#!/bin/sh
# A real single-node Slurm cluster from Debian's packages (munge, slurmctld,
# slurmd, slurm-client), started as root in a temporary folder, runs the
# example job array examples/slurm/eval_array.sbatch (3 tasks, 9 bundled
# Fashion-MNIST images) and merge.sbatch after it (--dependency=afterok);
# the merged results equal one neuromask eval process's, the seconds
# aside. Then a second array has its task 1 killed (scancel) mid-way;
# merge refuses, naming the unfinished images; the task resubmitted alone
# (sbatch --array=1) finishes it with --resume, and the merge equals the
# single run again. Every daemon started here is stopped by its pid. A
# cluster that does not start fails the test with the daemons' logs.
set -u
. "$(dirname "$0")/cli_check.sh"
nm_check_setup test_slurm
BIN=$NM_BIN
case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
case $SRC in /*) ;; *) SRC=$(pwd)/$SRC ;; esac
chmod 755 "$T"   # munged wants its socket's folder searchable by all
PIDS=""
stop_daemons() {
    for pid in $PIDS; do kill "$pid" 2>/dev/null; done
    for pid in $PIDS; do
        n=0
        while kill -0 "$pid" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
        kill -9 "$pid" 2>/dev/null
    done
    PIDS=""
}
trap 'stop_daemons; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM
logs() {
    for f in "$T"/munged.log "$T"/slurmctld.log "$T"/slurmd.log "$T"/*.out; do
        [ -f "$f" ] && { echo "----- $f"; tail -n 40 "$f"; }
    done
}
die() {
    echo "FAIL: $*"
    logs
    exit 1
}

[ "$(id -u)" = 0 ] || die "the Slurm test starts munged, slurmctld and slurmd as root; run it as root"
for tool in munged mungekey slurmctld slurmd sbatch squeue scancel sinfo python3; do
    command -v $tool >/dev/null 2>&1 || die "$tool missing: tools/install_deps.sh --test installs it"
done

# ---------------------------------------------------------------- the cluster
mkdir -p "$T/state" "$T/spool"
mungekey --create --keyfile="$T/munge.key" >"$T/mungekey.log" 2>&1 || die "mungekey failed: $(cat "$T/mungekey.log")"
chmod 400 "$T/munge.key"
munged --key-file="$T/munge.key" --socket="$T/munge.socket" --pid-file="$T/munged.pid" \
    --log-file="$T/munged.log" --seed-file="$T/munged.seed" || die "munged did not start"
PIDS="$(cat "$T/munged.pid")"
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
HOST=$(hostname -s)
NODE=$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]* //')   # CPUs, sockets, cores, RealMemory
cat >"$T/slurm.conf" <<EOF
ClusterName=nmtest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$T/munge.socket
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
KillWait=5
NodeName=$HOST NodeAddr=127.0.0.1 $NODE State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$T/slurm.conf"
slurmctld -D -f "$SLURM_CONF" >"$T/slurmctld.out" 2>&1 &
PIDS="$PIDS $!"
slurmd -D -f "$SLURM_CONF" >"$T/slurmd.out" 2>&1 &
PIDS="$PIDS $!"
n=0
while [ "$(sinfo -h -o %t 2>/dev/null)" != idle ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
[ "$(sinfo -h -o %t 2>/dev/null)" = idle ] || die "the node did not come up idle: $(sinfo 2>&1)"
echo "ok: the cluster is up ($(sinfo -h -o '%P %D %c %t') after $((n / 10)) s)"

# ------------------------------------------------------- the reference: one run
export NEUROMASK="$BIN" NM_MODEL="$SRC/models/fashion_cnn.onnx" NM_IMAGES="$SRC/data/fashion"
export NM_METHODS=gradient,rise,neuromask NM_SHARDS=3
export NM_EVAL_ARGS="--limit 9 --auc-steps 28 --rise-masks 64 --steps 150 --labels $SRC/data/fashion/labels.csv"
export OMP_NUM_THREADS=1
# shellcheck disable=SC2086
"$BIN" eval --model "$NM_MODEL" --methods "$NM_METHODS" --out "$T/single" --threads 1 --quiet $NM_EVAL_ARGS \
    "$NM_IMAGES" 2>"$T/single.err" || die "the single-process run failed: $(cat "$T/single.err")"

# Merged equals single: results.csv without its seconds column, the run
# header, the image table, the pictures byte for byte; summary.md and
# index.html with their times blanked.
no_seconds() {   # no_seconds RESULTS.CSV: the file without its 'seconds' column
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "seconds") s = i }
             { out = ""; for (i = 1; i <= NF; i++) if (i != s) out = out (out == "" && i == 1 ? "" : ",") $i; print out }' "$1"
}
no_times() {     # summary.md's last column (seconds); index.html's data-sec, seconds cells and "sec N.NN"
    sed -E 's/\| [0-9.]+ \|$/| - |/; s/ data-sec="[^"]*"//g; s/<td data-k="sec">[^<]*<\/td>//g; s/sec [0-9.e+-]+/sec -/g' "$1"
}
same_as_single() {   # same_as_single DIR LABEL
    no_seconds "$T/single/results.csv" >"$T/single.rows"
    no_seconds "$1/results.csv" >"$T/merged.rows"
    check "$2: results.csv equals the single run's but for the seconds ($(wc -l <"$T/merged.rows") lines)" \
        cmp "$T/single.rows" "$T/merged.rows"
    for f in run.txt images.tsv; do check "$2: $f equals the single run's" cmp "$T/single/$f" "$1/$f"; done
    for f in summary.md index.html; do
        no_times "$T/single/$f" >"$T/a"
        no_times "$1/$f" >"$T/b"
        check "$2: $f equals the single run's but for the times" cmp "$T/a" "$T/b"
    done
    check "$2: img/ equals the single run's byte for byte" diff -r "$T/single/img" "$1/img"
}

# ----------------------------------------- the array, then merge after it
export NM_OUT="$T/out"
jid=$(sbatch --parsable --array=0-2 -o "$T/eval-%a.out" "$SRC/examples/slurm/eval_array.sbatch") ||
    die "sbatch of the array failed"
sbatch --wait --dependency="afterok:$jid" -o "$T/merge.out" "$SRC/examples/slurm/merge.sbatch" >/dev/null
rc=$?
check "the array and the merge job after it ran (merge rc $rc)" test $rc -eq 0
[ $rc -eq 0 ] || logs
check "three shard folders" test "$(ls -d "$T"/out/shard-*-of-3 | wc -l)" -eq 3
same_as_single "$T/out" "array"

# ------------------------------ task 1 killed mid-way, resubmitted alone
export NM_OUT="$T/killed"
jid=$(sbatch --parsable --array=0-2 -o "$T/killed-%a.out" "$SRC/examples/slurm/eval_array.sbatch") ||
    die "sbatch of the second array failed"
S1="$T/killed/shard-1-of-3/results.csv"
n=0
while [ "$(tail -n +2 "$S1" 2>/dev/null | wc -l)" -lt 3 ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n + 1)); done
scancel "${jid}_1"
n=0
while squeue -h -j "$jid" 2>/dev/null | grep -q . && [ $n -lt 1200 ]; do sleep 0.1; n=$((n + 1)); done
rows=$(tail -n +2 "$S1" 2>/dev/null | wc -l)
check "task 1 was killed after its first image: 3 to 8 of its 9 rows written ($rows)" test "$rows" -ge 3 -a "$rows" -lt 9
check "task 1 stopped on SIGTERM with complete rows (exit 143 in its log)" grep -q "rerun with --resume" "$T/killed-1.out"
"$BIN" merge "$T/killed" 2>"$T/merge_killed.err"
rc=$?
check "merge refuses the unfinished run (rc $rc)" test $rc -eq 1
check "... naming the unfinished images ($(head -c 300 "$T/merge_killed.err"))" \
    grep -q "not finished by .* shard: .*fashion/.*rerun its task" "$T/merge_killed.err"
check "... and writing nothing" test ! -e "$T/killed/results.csv"
sbatch --wait --array=1 -o "$T/resubmitted.out" "$SRC/examples/slurm/eval_array.sbatch" >/dev/null
rc=$?
check "task 1 resubmitted alone (sbatch --array=1) finished (rc $rc)" test $rc -eq 0
check "... keeping the rows written before the kill" grep -q "kept from" "$T/resubmitted.out"
"$BIN" merge "$T/killed" 2>"$T/merge_killed.err"
check "merge after the resubmission succeeds ($(head -c 300 "$T/merge_killed.err"))" test $? -eq 0
same_as_single "$T/killed" "killed and resubmitted"

stop_daemons
left=""
for f in munged.pid slurmctld.pid slurmd.pid; do
    pid=$(cat "$T/$f" 2>/dev/null) && kill -0 "$pid" 2>/dev/null && left="$left $f:$pid"
done
check "every daemon stopped ($left)" test -z "$left"
[ "$fail" -eq 0 ] || logs
nm_check_done

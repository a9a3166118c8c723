#!/bin/sh
# Shards (--shard K/N, --shards N, Slurm's and Kubernetes' variables) of
# eval and explain on 6 bundled Fashion-MNIST images: an image's rows do
# not depend on N (N = 1, 3, 8 with empty shards); neuromask merge equals
# the single run (results.csv but for the seconds, run.txt, images.tsv,
# img/ byte for byte); merge refuses other models, methods and options,
# naming the file and the line, and lists missing and duplicated images; a
# truncated shard is finished with --resume; inconsistent shard settings
# are usage errors; explain's shards write a whole run's files.
set -u
. "$(dirname "$0")/cli_check.sh"
nm_check_setup test_shard_cli
BIN=$NM_BIN
OUT=$T
unset SLURM_ARRAY_TASK_ID SLURM_ARRAY_TASK_MIN SLURM_ARRAY_TASK_MAX SLURM_ARRAY_TASK_COUNT SLURM_ARRAY_TASK_STEP \
    JOB_COMPLETION_INDEX
no_seconds() {   # results.csv without its 'seconds' column
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "seconds") s = i }
             { out = ""; for (i = 1; i <= NF; i++) if (i != s) out = out (out == "" && i == 1 ? "" : ",") $i; print out }' "$1"
}

MODEL=$SRC/models/fashion_cnn.onnx
ARGS="--model $MODEL --methods gradient,rise,neuromask --rise-masks 64 --steps 40 --auc-steps 28 --limit 6
      --labels $SRC/data/fashion/labels.csv --quiet"
eval_run() {   # eval_run OUT [options]: eval of the 6 images into OUT
    d=$1
    shift
    # shellcheck disable=SC2086
    "$BIN" eval $ARGS --out "$d" "$@" "$SRC/data/fashion" 2>>"$OUT/err"
}
eval_run "$OUT/single"
check "the single run exits 0 ($(head -c 300 "$OUT/err"))" test $? -eq 0
no_seconds "$OUT/single/results.csv" >"$OUT/single.rows"

# Rows of image i are the same for N = 1, 3 and 8 (two shards of 8 are empty).
for n in 1 3 8; do
    k=0
    while [ $k -lt $n ]; do eval_run "$OUT/n$n" --shard $k/$n || echo "FAIL: shard $k/$n"; k=$((k + 1)); done
    for f in "$OUT/n$n"/shard-*-of-$n/results.csv; do no_seconds "$f" | tail -n +2; done | sort >"$OUT/n$n.rows"
    check "N=$n: the shards' rows equal the single run's" sh -c "tail -n +2 '$OUT/single.rows' | sort | cmp -s - '$OUT/n$n.rows'"
done
check "N=8: shard 0 (empty) exists with a header and no rows" test "$(wc -l <"$OUT/n8/shard-0-of-8/results.csv")" -eq 1

# The environment: a Slurm array (ids 5..7: shard = id - min), --shards N
# with the array id, a Kubernetes index.
for id in 5 6 7; do
    SLURM_ARRAY_TASK_ID=$id SLURM_ARRAY_TASK_MIN=5 SLURM_ARRAY_TASK_MAX=7 SLURM_ARRAY_TASK_COUNT=3 \
        SLURM_ARRAY_TASK_STEP=1 eval_run "$OUT/slurm" || echo "FAIL: Slurm task $id"
done
check "a Slurm array's tasks 5..7 write shard-0..2-of-3" test -d "$OUT/slurm/shard-0-of-3" -a \
    -d "$OUT/slurm/shard-1-of-3" -a -d "$OUT/slurm/shard-2-of-3"
no_seconds "$OUT/slurm/shard-2-of-3/results.csv" >"$OUT/a"
no_seconds "$OUT/n3/shard-2-of-3/results.csv" >"$OUT/b"
check "... with the rows of --shard 2/3" cmp "$OUT/a" "$OUT/b"
SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_COUNT=1 eval_run "$OUT/slurm" --shards 3
check "--shards 3 in a resubmitted task (--array=1) is shard 1/3" test -s "$OUT/slurm/shard-1-of-3/run.txt"
check "... its run.txt equals --shard 1/3's" cmp -s "$OUT/slurm/shard-1-of-3/run.txt" \
    "$OUT/n3/shard-1-of-3/run.txt"
JOB_COMPLETION_INDEX=2 eval_run "$OUT/k8s" --shards 3
check "Kubernetes: JOB_COMPLETION_INDEX=2 with --shards 3 writes shard-2-of-3" test -s "$OUT/k8s/shard-2-of-3/results.csv"

# merge equals the single run.
"$BIN" merge "$OUT/n3" 2>"$OUT/err"
check "merge of 3 shards exits 0 ($(head -c 300 "$OUT/err"))" test $? -eq 0
no_seconds "$OUT/n3/results.csv" >"$OUT/merged.rows"
check "merged results.csv equals the single run's but for the seconds" cmp "$OUT/single.rows" "$OUT/merged.rows"
for f in run.txt images.tsv; do check "merged $f equals the single run's" cmp "$OUT/single/$f" "$OUT/n3/$f"; done
check "merged img/ equals the single run's byte for byte" diff -r "$OUT/single/img" "$OUT/n3/img"
no_times='s/ data-sec="[^"]*"//g; s/<td data-k="sec">[^<]*<\/td>//g; s/sec [0-9.e+-]+/sec -/g'
sed -E "$no_times" "$OUT/single/index.html" >"$OUT/a"
sed -E "$no_times" "$OUT/n3/index.html" >"$OUT/b"
check "merged index.html equals the single run's but for the times" cmp "$OUT/a" "$OUT/b"
sed -E 's/\| [0-9.]+ \|$/| - |/' "$OUT/single/summary.md" >"$OUT/a"
sed -E 's/\| [0-9.]+ \|$/| - |/' "$OUT/n3/summary.md" >"$OUT/b"
check "merged summary.md equals the single run's but for the seconds" cmp "$OUT/a" "$OUT/b"
"$BIN" merge --quiet "$OUT/n8" "$OUT"/n8/shard-*-of-8
check "merge of 8 shards, two empty, named explicitly, exits 0" test $? -eq 0
no_seconds "$OUT/n8/results.csv" >"$OUT/merged.rows"
check "... with the single run's rows" cmp "$OUT/single.rows" "$OUT/merged.rows"
"$BIN" merge "$OUT/n3" 2>"$OUT/err"
check "a second merge without --force fails, the files exist (rc $?)" grep -q "exists (use --force" "$OUT/err"

# Refusals: another model's digest, another method list, other options.
mk() {   # mk NAME: a copy of the 3 shards
    rm -rf "$OUT/$1"
    mkdir -p "$OUT/$1"
    cp -r "$OUT"/n3/shard-* "$OUT/$1/"
}
merge_fails() {   # merge_fails DIR PATTERN DESCRIPTION
    "$BIN" merge "$1" 2>"$OUT/err"
    rc=$?
    check "$3: merge fails (rc $rc)" test $rc -eq 1
    check "... saying '$2' ($(head -c 300 "$OUT/err"))" grep -q -- "$2" "$OUT/err"
    check "... writing nothing" test ! -e "$1/results.csv"
}
mk model
sed -i 's/^model_sha256=.*/model_sha256=0000/' "$OUT/model/shard-1-of-3/run.txt"
merge_fails "$OUT/model" "shard-1-of-3/run.txt: 'model_sha256' is '0000', but .*shard-0-of-3/run.txt has" \
    "another model"
mk methods
eval_run "$OUT/methods" --shard 1/3 --force --methods gradient,rise
merge_fails "$OUT/methods" "shard-1-of-3/run.txt: 'method' is absent" "fewer methods"
mk options
eval_run "$OUT/options" --shard 2/3 --force --auc-steps 14
merge_fails "$OUT/options" "shard-2-of-3/run.txt: 'auc_steps' is '14', but" "other options"
mk missing
rm -r "$OUT/missing/shard-1-of-3"
merge_fails "$OUT/missing" "1 shard not given: shard-1-of-3 (images 2 to 3)" "a missing shard"
mk unfinished
head -n 4 "$OUT/n3/shard-2-of-3/results.csv" >"$OUT/unfinished/shard-2-of-3/results.csv"
merge_fails "$OUT/unfinished" "1 image not finished by its shard: .*/2_Trouser.png" "a shard cut short"
eval_run "$OUT/unfinished" --shard 2/3 --resume
"$BIN" merge "$OUT/unfinished" 2>"$OUT/err"
check "... finished with --resume, it merges ($(head -c 300 "$OUT/err"))" test $? -eq 0
no_seconds "$OUT/unfinished/results.csv" >"$OUT/merged.rows"
check "... to the single run's rows" cmp "$OUT/single.rows" "$OUT/merged.rows"
mk twice
"$BIN" merge "$OUT/twice/x" "$OUT/twice/shard-0-of-3" "$OUT/twice/shard-1-of-3" "$OUT/twice/shard-2-of-3" \
    "$OUT/twice/shard-1-of-3" 2>"$OUT/err"
check "a shard given twice: merge fails (rc $?)" grep -q "2 images given twice: .*18_Bag.png, .*19_T_shirt_top.png" \
    "$OUT/err"
# Damaged shard files: one line naming the file and the problem, exit 1.
mk broken
printf 'garbage without an equals sign\n' >>"$OUT/broken/shard-0-of-3/run.txt"
merge_fails "$OUT/broken" "shard-0-of-3/run.txt: line [0-9]*: not a 'key=value' line" "a damaged run.txt"
mk broken
printf '1\tx\t3\tpath\n' >>"$OUT/broken/shard-1-of-3/images.tsv"
merge_fails "$OUT/broken" "shard-1-of-3/images.tsv: line 4: not 'index<TAB>label<TAB>pred<TAB>path'" \
    "a damaged images.tsv"
mk broken
printf '9\t1\t1\t/elsewhere.png\n' >>"$OUT/broken/shard-2-of-3/images.tsv"
merge_fails "$OUT/broken" "shard-2-of-3/images.tsv: line 4 holds image 9, but shard 2 of 3 of 6 images holds 4 to 5" \
    "an image outside the shard"
mk broken
printf 'a,b\n1,2\n' >"$OUT/broken/shard-1-of-3/results.csv"
merge_fails "$OUT/broken" "shard-1-of-3/results.csv: not the results.csv of neuromask eval" "a foreign results.csv"
mk broken
sed -i 's/^images=6$/images=999999999/' "$OUT"/broken/shard-*/run.txt
merge_fails "$OUT/broken" "999999999 images: more than merge handles" "an absurd image count"
mkdir -p "$OUT/none"
"$BIN" merge "$OUT/none" 2>"$OUT/err"
check "a folder without shards: merge fails saying so" grep -q "no shard-K-of-N folders to merge" "$OUT/err"

# Inconsistent settings are usage errors (exit 2), each one line.
usage() {   # usage PATTERN DESCRIPTION VAR=VALUE... -- eval options
    pat=$1 desc=$2 vars=""
    shift 2
    while [ "$1" != -- ]; do vars="$vars $1"; shift; done
    shift
    # shellcheck disable=SC2086
    env $vars "$BIN" eval --model "$MODEL" --methods gradient --out "$OUT/u" "$@" "$SRC/data/fashion" 2>"$OUT/err"
    rc=$?
    check "$desc: usage error (rc $rc, $(head -c 200 "$OUT/err"))" test $rc -eq 2 -a "$(wc -l <"$OUT/err")" -eq 1
    check "... saying '$pat'" grep -q -- "$pat" "$OUT/err"
}
usage "0 <= K < N" "--shard 3/3" -- --shard 3/3
usage "0 <= K < N" "--shard 1/0" -- --shard 1/0
usage "not both" "--shard with --shards" -- --shard 1/3 --shards 3
usage "needs the task's index" "--shards without an index" -- --shards 3
usage "not below --shards 3" "an index beyond --shards" SLURM_ARRAY_TASK_ID=3 -- --shards 3
usage "disagree" "Kubernetes and Slurm indexes disagree" SLURM_ARRAY_TASK_ID=1 JOB_COMPLETION_INDEX=2 -- --shards 3
usage "not a task of a contiguous array" "a stepped array" SLURM_ARRAY_TASK_ID=2 SLURM_ARRAY_TASK_MIN=0 \
    SLURM_ARRAY_TASK_MAX=4 SLURM_ARRAY_TASK_COUNT=3 SLURM_ARRAY_TASK_STEP=2 --
usage "give --shards N" "JOB_COMPLETION_INDEX without --shards" JOB_COMPLETION_INDEX=1 --
usage "cannot run as shard 1 of 3" "the grid pointing game in a shard" -- --shard 1/3 --grid-pointing \
    --labels "$SRC/data/fashion/labels.csv"
check "no output folder was made by the usage errors" test ! -e "$OUT/u"

# explain: shards (NeuroMask batches of 4 kept whole) write what one run writes.
EX="--model $MODEL --steps 40 --batch 4 --quiet"
# shellcheck disable=SC2086
"$BIN" explain $EX --out "$OUT/ex1" "$SRC/data/fashion" 2>"$OUT/err"
check "explain: the single run exits 0 ($(head -c 200 "$OUT/err"))" test $? -eq 0
for k in 0 1 2; do
    # shellcheck disable=SC2086
    "$BIN" explain $EX --out "$OUT/ex3" --shard $k/3 "$SRC/data/fashion" 2>>"$OUT/err" || echo "FAIL: explain shard $k"
done
differ=""
files=$(cd "$OUT/ex1" && find . -type f | sort)
for name in $files; do
    case $name in
    *.json) grep -v '"seconds' "$OUT/ex1/$name" >"$OUT/a"; grep -v '"seconds' "$OUT/ex3/$name" >"$OUT/b" 2>/dev/null ;;
    *) cp "$OUT/ex1/$name" "$OUT/a"; cp "$OUT/ex3/$name" "$OUT/b" 2>/dev/null || : >"$OUT/b" ;;
    esac
    cmp -s "$OUT/a" "$OUT/b" || differ="$differ $name"
done
check "explain: 3 shards write the single run's $(echo "$files" | wc -l) files (JSON times aside) ($differ)" \
    test -z "$differ" -a "$(echo "$files" | wc -l)" -eq "$(cd "$OUT/ex3" && find . -type f | wc -l)" -a \
    "$(echo "$files" | wc -l)" -ge 50

nm_check_done

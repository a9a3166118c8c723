# Sourced by CLI script tests: nm_check_setup NAME checks NM_BIN and
# NM_SOURCE_DIR (as SRC), creates the temporary folder $T (removed on exit);
# check DESCRIPTION COMMAND... counts and reports; nm_check_done ends the test.
nm_check_setup() {
  NM_BIN=${NM_BIN:?NM_BIN must name the neuromask executable}
  SRC=${NM_SOURCE_DIR:?}
  T=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || exit 1
  trap 'rm -rf "$T"' EXIT INT TERM
  export OMP_NUM_THREADS=1
  pass=0 fail=0
}
check() {  # description, command...
  d=$1; shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $d"; fi
}
nm_check_done() {
  echo "$pass passed, $fail failed"
  test $fail = 0
}

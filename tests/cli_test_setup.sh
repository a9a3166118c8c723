# Sourced by the table-driven CLI tests that generate their fixtures in Python
# (test_cli_bad_input.sh, test_hostile_inputs.sh): one set-up for both.
# nm_cli_test_setup MODULES NAME: makes NM_BIN absolute, sets PY, skips the
# test (exit 77) when `import MODULES` fails, creates the temporary folder $T
# (removed on exit) and moves into its working folder $T/w.
nm_cli_test_setup() {
  NM_BIN=${NM_BIN:?NM_BIN must name the neuromask executable}
  PY=/usr/bin/python3
  case "$NM_BIN" in /*) ;; *) NM_BIN="$(pwd)/$NM_BIN" ;; esac
  if ! "$PY" -c "import $1" 2>/dev/null; then
    echo "python3 modules $1 missing: skipped"
    exit 77
  fi
  T=$(mktemp -d "${TMPDIR:-/tmp}/$2.XXXXXX") || exit 1
  trap 'rm -rf "$T"' EXIT INT TERM
  mkdir "$T/w" && cd "$T/w" || exit 1
}

#!/bin/sh
# libneuromask.so exports exactly the functions include/neuromask.h declares:
# each declared function is defined and nothing else is visible.
# Usage: test_exports.sh LIBNEUROMASK.so neuromask.h
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Declarations with comments removed by the preprocessor; a function is a name followed by '('.
${CC:-cc} -E -P -D_GNU_SOURCE "$2" | grep -o '\bnm_[a-z0-9_]*[[:space:]]*(' | tr -d ' (' | sort -u >"$tmp/header"
nm -D --defined-only "$1" | awk '{print $NF}' | sort -u >"$tmp/library"
[ -s "$tmp/header" ] || { echo "test_exports: no functions found in $2" >&2; exit 1; }
if ! diff "$tmp/header" "$tmp/library" >"$tmp/diff"; then
  echo "test_exports: '<' declared but not exported, '>' exported but not declared:" >&2
  cat "$tmp/diff" >&2
  exit 1
fi
echo "test_exports: $(wc -l <"$tmp/header") functions, as declared"

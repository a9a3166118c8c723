#!/bin/sh
# Installs the build into a temporary prefix, then builds
# examples/explain_one.c against it as a user would, through pkg-config
# (shared, and static with --static) and through find_package(neuromask),
# and runs each on the bundled Fashion-MNIST model. The shared builds must
# load the installed libneuromask.so, not the build tree's.
# env: NM_BUILD_DIR, NM_SOURCE_DIR; NM_CONSUMER_FLAGS: compiler flags a
# consumer of this build needs (the sanitizers in an ASan build).
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/prefix"
prefix=$(cd "$tmp/prefix" && pwd -P)
fail() { echo "test_install: $*" >&2; exit 1; }
NM_SOURCE_DIR=$(cd "$NM_SOURCE_DIR" && pwd)

cmake --install "$NM_BUILD_DIR" --prefix "$prefix" >/dev/null
version=$(sed -n 's/^project(neuromask VERSION \([0-9.]*\).*/\1/p' "$NM_SOURCE_DIR/CMakeLists.txt")
soname=libneuromask.so.$(echo "$version" | cut -d. -f1-2)
pc=$(find "$prefix" -name neuromask.pc)
[ -n "$pc" ] || fail "not installed: neuromask.pc"
libdir=$(cd "$(dirname "$pc")/.." && pwd -P)   # lib, or lib/<multiarch> for a /usr build
for f in bin/neuromask include/neuromask.h; do
  [ -e "$prefix/$f" ] || fail "not installed: $f"
done
for f in libneuromask.a libneuromask.so $soname libneuromask.so.$version cmake/neuromask/neuromaskConfig.cmake \
         cmake/neuromask/neuromaskConfigVersion.cmake cmake/neuromask/neuromaskTargets.cmake; do
  [ -e "$libdir/$f" ] || fail "not installed: $libdir/$f"
done
[ ! -e "$libdir/libnm_proto.a" ] || fail "libnm_proto.a installed; the static library should carry it"
objdump -p "$libdir/libneuromask.so" | grep -q "SONAME *$soname\$" || fail "soname is not $soname"
"$prefix/bin/neuromask" --help >/dev/null || fail "installed neuromask --help failed"

model=$NM_SOURCE_DIR/models/fashion_cnn.onnx
image=$NM_SOURCE_DIR/data/fashion/0_Ankle_boot.png
example=$NM_SOURCE_DIR/examples/explain_one.c
flags=${NM_CONSUMER_FLAGS:-}
# Runs a built example; checks its answer line and which libneuromask it loaded.
check_run() {  # NAME BINARY shared|static
  out=$("$2" "$model" fashion "$image") || fail "$1: explain_one failed"
  echo "$out" | grep -Eq '^class 9: p 0\.[0-9]+ -> [01]\.[0-9]+ with the mask' || fail "$1: unexpected output: $out"
  loaded=$(ldd "$2" | sed -n 's/^[[:space:]]*libneuromask[^ ]* => \([^ ]*\).*/\1/p')
  [ -z "$loaded" ] || loaded=$(cd "$(dirname "$loaded")" && echo "$(pwd -P)/$(basename "$loaded")")
  if [ "$3" = shared ]; then
    [ "$loaded" = "$libdir/$soname" ] || fail "$1: loads '$loaded', not $libdir/$soname"
  else
    [ -z "$loaded" ] || fail "$1: static build loads $loaded"
  fi
  echo "$1: $out"
}

export PKG_CONFIG_PATH="$libdir/pkgconfig"
pkg-config --exact-version="$version" neuromask || fail "pkg-config: neuromask $version not found"
# shellcheck disable=SC2046
cc $flags $(pkg-config --cflags neuromask) "$example" -o "$tmp/pc_shared" \
  $(pkg-config --libs neuromask) -Wl,-rpath,"$(pkg-config --variable=libdir neuromask)"
check_run pkg-config "$tmp/pc_shared" shared
# shellcheck disable=SC2046
cc $flags $(pkg-config --cflags neuromask) "$example" -o "$tmp/pc_static" \
  -Wl,-Bstatic -lneuromask -Wl,-Bdynamic $(pkg-config --static --libs-only-other --libs-only-L neuromask) \
  $(pkg-config --static --libs-only-l neuromask | sed 's/-lneuromask//')
check_run pkg-config-static "$tmp/pc_static" static

CFLAGS="$flags" cmake -S "$NM_SOURCE_DIR/tests/install_consumer" -B "$tmp/consumer" \
  -DCMAKE_PREFIX_PATH="$prefix" -DNM_EXAMPLE="$example" >/dev/null || fail "find_package(neuromask) failed"
cmake --build "$tmp/consumer" >/dev/null || fail "consumer build failed"
check_run find_package "$tmp/consumer/explain_one" shared

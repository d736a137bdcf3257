#!/usr/bin/env bash
# Compiles every library .c file for aarch64 (e.g. GH200 nodes) with Debian's cross compiler
# (gcc-aarch64-linux-gnu) into build-aarch64/libcsft.a: proves the code builds without x86
# intrinsics. The libraries' headers are taken from the host (the arm64 -dev packages are not
# installed): cjson, yaml, oneDNN, utf8proc, PCRE2, snappy-c, zstd, zlib, lz4 and brotli headers are
# architecture-independent, Open MPI's mpi.h is the same for both LP64 little-endian targets.
# Only the headers are linked into the cross build's include path, never the host's libc.
# Linking the CLI needs the arm64 libraries and is left to a native build.
set -euo pipefail
cd "$(dirname "$0")/.."
CROSS=${CROSS:-aarch64-linux-gnu-gcc}
command -v "$CROSS" > /dev/null || { echo "cross-aarch64: $CROSS not found (apt-get install gcc-aarch64-linux-gnu)" >&2; exit 1; }
inc=build-aarch64/include
rm -rf "$inc" && mkdir -p "$inc"
for h in cjson yaml.h oneapi dnnl.h dnnl_config.h dnnl_types.h dnnl_version.h dnnl_debug.h utf8proc.h pcre2.h \
    snappy-c.h zstd.h zstd_errors.h zlib.h zconf.h lz4.h lz4frame.h brotli; do
    [ -e "/usr/include/$h" ] || { echo "cross-aarch64: /usr/include/$h missing (run scripts/setup.sh)" >&2; exit 1; }
    ln -s "/usr/include/$h" "$inc/$h"
done
make --no-print-directory BUILD=build-aarch64 CC="$CROSS" OPT="-O2 -isystem $inc" build-aarch64/libcsft.a
n=$(find build-aarch64/src -name '*.o' | wc -l)
aarch64-linux-gnu-readelf -h build-aarch64/src/core/util.o | grep -q AArch64 || { echo "cross-aarch64: objects are not aarch64" >&2; exit 1; }
echo "cross-aarch64: $n objects compiled for aarch64 into build-aarch64/libcsft.a"

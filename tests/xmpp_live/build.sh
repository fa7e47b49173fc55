#!/bin/sh
# build.sh BUILD_DIR: links xmpp_live against the module libraries of an existing CMake build
# (kept out of CMake on purpose: it needs a running Prosody, so it is no ctest target).
set -e
B=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cmake --build "$B" --target sg_xmpp sg_core >/dev/null
FLAGS=
if grep -q '^SG_SANITIZE:BOOL=ON' "$B/CMakeCache.txt"; then
    FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer"
fi
${CC:-cc} -std=gnu17 -g -O1 -Wall -Wextra -Werror -D_GNU_SOURCE $FLAGS -I"$ROOT/src" \
    "$ROOT/tests/xmpp_live/xmpp_live.c" "$B/libsg_xmpp.a" "$B/libsg_core.a" \
    $(pkg-config --cflags --libs libuv openssl expat libgsasl inih) -o "$B/xmpp_live"
echo "$B/xmpp_live"

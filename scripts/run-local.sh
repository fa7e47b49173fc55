#!/usr/bin/env bash
# run-local.sh: what `make run` does after building: a local Prosody with demo users on
# loopback, then the gateway in the foreground, with the demo page's URL printed.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var
listen=${SPARKGATE_HTTP_LISTEN:-127.0.0.1:8080}
# browsers treat http://localhost as a secure context (passkeys, service workers) and accept
# it as a WebAuthn RP id; an IP address is neither
public=${SPARKGATE_HTTP_PUBLIC_URL:-http://localhost:${listen##*:}}

info=$(mktemp)
node tests/harness/run-prosody.mjs --dir var/prosody >"$info" 2>var/prosody-harness.log &
prosody_pid=$!
cleanup() { kill "$prosody_pid" 2>/dev/null || true; wait "$prosody_pid" 2>/dev/null || true; rm -f "$info"; }
trap cleanup EXIT INT TERM

for _ in $(seq 1 150); do
  grep -q c2sPort "$info" && break
  kill -0 "$prosody_pid" 2>/dev/null || { cat var/prosody-harness.log; exit 1; }
  sleep 0.2
done
c2s=$(grep -o '"c2sPort":[0-9]*' "$info" | cut -d: -f2)
[ -n "$c2s" ] || { echo "Prosody did not start"; cat var/prosody-harness.log; exit 1; }

cat <<MSG

  Prosody (XMPP) on 127.0.0.1:$c2s with demo users alice, bob, carol
  (passwords alice-pass, bob-pass, carol-pass).

  Demo page:  $public/
  Stop with Ctrl-C.

MSG
SPARKGATE_HTTP_LISTEN=$listen SPARKGATE_HTTP_PUBLIC_URL=$public \
SPARKGATE_XMPP_DOMAIN=localhost SPARKGATE_XMPP_HOST=127.0.0.1 SPARKGATE_XMPP_PORT="$c2s" \
SPARKGATE_XMPP_TLS=off SPARKGATE_STORE_PATH=var/state \
  ./build/sparkgate "$@"

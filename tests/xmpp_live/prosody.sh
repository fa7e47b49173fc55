#!/bin/sh
# prosody.sh DIR PORT [VARIANT]: writes a throw-away Prosody 0.12 config (plain c2s allowed,
# STARTTLS offered with a self-signed certificate for "localhost", internal_hashed => SCRAM-SHA-1
# and PLAIN, XEP-0198 on), creates users alice/bob/carol (password "secret"), then runs Prosody
# in the foreground. The CA file for the gateway is DIR/localhost.crt.
#
# VARIANT (default "base"):
#   base      mod_register loaded but allow_registration = false (in-band registration refused)
#   fast      allow_registration = true, plus SASL2/FAST from Debian's prosody-modules
#             (mod_sasl2, mod_sasl2_fast, mod_sasl2_bind2 under /usr/lib/prosody/modules)
#   fast-raw  as fast, but without the 0.12 compatibility shim (shows what breaks: see below)
#
# The prosody-modules snapshot in Debian 12 (hg 2023-02-23) targets Prosody trunk and breaks on
# 0.12.3: mod_sasl2_fast reads event.stream.from, which 0.12's mod_c2s does not pass with
# "stream-features" (so every unauthenticated stream errors and gets no features); mod_sasl2
# calls conn:ssl_info(), which 0.12's connections lack (so every STARTTLS stream errors too);
# and mod_sasl2_fast formats a fractional expiry with 0.12's util.datetime, which Lua 5.4's
# os.date rejects (so a login that is granted a token never gets its <success/>); and a FAST
# login calls stanza:get_child_attr(), which 0.12's util.stanza lacks (no answer at all).
# The "fast" variant loads mod_sasl2_compat012 from DIR/plugins, which supplies all four.
set -e
DIR=${1:?dir}; PORT=${2:?port}; VARIANT=${3:-base}
mkdir -p "$DIR/data" "$DIR/plugins"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost" -keyout "$DIR/localhost.key" \
    -out "$DIR/localhost.crt" 2>/dev/null
MODS='"roster"; "saslauth"; "tls"; "disco"; "ping"; "smacks"; "presence"; "register"'
REG=false
LOG=info
case "$VARIANT" in
base) ;;
fast | fast-raw)
    REG=true
    LOG=debug
    MODS="$MODS; \"sasl2\"; \"sasl2_fast\"; \"sasl2_bind2\""
    if [ "$VARIANT" = fast ]; then
        MODS="$MODS; \"sasl2_compat012\""
        cp "$(dirname "$0")/../harness/fixtures/mod_sasl2_compat012.lua" "$DIR/plugins/"
    fi
    ;;
*) echo "unknown variant $VARIANT" >&2; exit 2 ;;
esac
cat > "$DIR/prosody.cfg.lua" <<CFG
run_as_root = true
daemonize = false
pidfile = "$DIR/prosody.pid"
data_path = "$DIR/data"
plugin_paths = { "$DIR/plugins" }
interfaces = { "127.0.0.1" }
c2s_ports = { $PORT }
s2s_ports = {}
http_ports = {}
https_ports = {}
modules_enabled = { $MODS }
modules_disabled = { "s2s" }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
allow_registration = $REG
authentication = "internal_hashed"
smacks_hibernation_time = 5
certificates = "$DIR"
log = { $LOG = "$DIR/prosody.log" }
ssl = { certificate = "$DIR/localhost.crt"; key = "$DIR/localhost.key" }
VirtualHost "localhost"
CFG
prosodyctl --config "$DIR/prosody.cfg.lua" register alice localhost secret
prosodyctl --config "$DIR/prosody.cfg.lua" register bob localhost secret
prosodyctl --config "$DIR/prosody.cfg.lua" register carol localhost secret
exec prosody --config "$DIR/prosody.cfg.lua"

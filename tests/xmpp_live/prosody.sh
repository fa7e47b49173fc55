#!/bin/sh
# prosody.sh DIR PORT: writes a throw-away Prosody 0.12 config (plain c2s allowed, STARTTLS
# offered with a self-signed certificate for "localhost", internal_hashed => SCRAM-SHA-1 and
# PLAIN, XEP-0198 on), creates users alice/bob/carol (password "secret"), then runs Prosody in the
# foreground. The CA file for the gateway is DIR/localhost.crt.
set -e
DIR=${1:?dir}; PORT=${2:?port}
mkdir -p "$DIR/data"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost" -keyout "$DIR/localhost.key" \
    -out "$DIR/localhost.crt" 2>/dev/null
cat > "$DIR/prosody.cfg.lua" <<CFG
run_as_root = true
daemonize = false
pidfile = "$DIR/prosody.pid"
data_path = "$DIR/data"
interfaces = { "127.0.0.1" }
c2s_ports = { $PORT }
s2s_ports = {}
http_ports = {}
https_ports = {}
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "smacks"; "presence" }
modules_disabled = { "s2s" }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_hashed"
smacks_hibernation_time = 5
certificates = "$DIR"
log = { info = "$DIR/prosody.log" }
ssl = { certificate = "$DIR/localhost.crt"; key = "$DIR/localhost.key" }
VirtualHost "localhost"
CFG
prosodyctl --config "$DIR/prosody.cfg.lua" register alice localhost secret
prosodyctl --config "$DIR/prosody.cfg.lua" register bob localhost secret
prosodyctl --config "$DIR/prosody.cfg.lua" register carol localhost secret
exec prosody --config "$DIR/prosody.cfg.lua"

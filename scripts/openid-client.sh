#!/usr/bin/env bash
# A real relying party against sesame: openid-client (npm, v6) signs in a
# user with the code flow answered by `response_mode=form_post`, PKCE and
# DPoP-bound tokens (a tenant that requires DPoP nonces), for a declared
# resource server (RFC 8707), then calls userinfo with a DPoP proof and
# refreshes. It prints what it got and exits non-zero on any failure. The
# "browser" is plain fetch: the sign-in form is filled in, and the
# auto-submitting form_post page is read and submitted as a browser would.
# Not part of CI.
#
#   scripts/openid-client.sh            # builds sesame (debug) first
#   SESAME_BIN=target/release/sesame scripts/openid-client.sh
#
# openid-client is installed from npm into target/openid-client/node.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
node_dir=$root/target/openid-client/node
mkdir -p "$node_dir"
if [ ! -d "$node_dir/node_modules/openid-client" ]; then
    (cd "$node_dir" && { [ -f package.json ] || echo '{"private":true}' > package.json; } \
        && npm install --no-audit --no-fund openid-client@6)
fi

bin=${SESAME_BIN:-}
if [ -z "$bin" ]; then
    (cd "$root" && cargo build --bin sesame)
    bin=$target/debug/sesame
fi

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The argon2id hash of "wonderland", alice's password.
hash='$argon2id$v=19$m=19456,t=2,p=1$NsHg1qjI2jqUgdLfsM+dKA$BpKVbbPKfz1wafWi/RkozYWTB0CYgl6+ub/G00BwWoU'
cat > "$work/sesame.yaml" <<YAML
server: { listen: "127.0.0.1:$port" }
database: { url: "sqlite://$work/sesame.db" }
tenants:
  - id: demo
    issuer: http://127.0.0.1:$port/demo
    signing: { alg: ES256 }
    dpop: { require_nonce: true }
    scopes:
      api.read: { description: Read the API }
    users:
      - username: alice
        password_hash: "$hash"
        claims: { name: Alice Martin, email: alice@example.com }
    resource_servers:
      - { identifier: "https://api.example", client: api, scopes: [api.read] }
    clients:
      - id: rp
        secret: rp-secret
        skip_consent: true
        dpop_bound_access_tokens: true
        redirect_uris: [http://rp.test/cb]
        grant_types: [authorization_code, refresh_token]
        scopes: [openid, profile, email, offline_access, api.read]
      - { id: api, secret: api-secret, grant_types: [client_credentials], scopes: [] }
YAML
"$bin" serve -c "$work/sesame.yaml" > "$work/stdout.log" 2> "$work/stderr.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
    grep -q "sesame listening on" "$work/stdout.log" 2>/dev/null && break
    sleep 0.2
done
grep -q "sesame listening on" "$work/stdout.log" || { cat "$work/stderr.log"; exit 1; }

NODE_DIR=$node_dir ISSUER=http://127.0.0.1:$port/demo \
    node "$root/scripts/openid-client/interop.mjs"

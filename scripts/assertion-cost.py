#!/usr/bin/env python3
"""What private_key_jwt and DPoP cost the server, in CPU per request,
beside client_secret_basic, in one run.

Starts the release build of sesame on one SQLite database (a tenant that
signs ES256 JWT access tokens) with client_credentials clients, `basic` (client_secret_basic, a secret in
clear) and `keyed` (private_key_jwt, an ES256 key in `jwks`), and drives
it with `wrk`, alternating the two scenarios for several rounds:

  cc-basic   POST /demo/token, HTTP Basic
  cc-jwt     POST /demo/token, client_assertion: a fresh ES256 assertion
             per request (each jti is single use), made beforehand
  cc-hs256   the same with client_secret_jwt (HMAC): what an assertion
             costs besides its signature (parsing, the claims, the jti write)
  cc-dpop    cc-basic with a DPoP proof (RFC 9449): a fresh ES256 proof per
             request, made beforehand; the token comes back DPoP-bound

Assertions and proofs are made here with the `cryptography` package (pip), not with
sesame's code. The server's CPU (user + system, from /proc/<pid>/stat) over
a run, divided by the requests wrk completed, is the cost per request.

    cargo build --release && python3 scripts/assertion-cost.py [--seconds 5] [--rounds 3]
"""
import argparse, base64, hashlib, hmac, json, os, re, socket, subprocess, sys, tempfile, time, urllib.request

try:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
except ImportError:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "cryptography"], check=True)
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "sesame")
TICK = os.sysconf("SC_CLK_TCK")


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



def line_per_request_lua(path, body, headers):
    """wrk Lua sending one line of `path` per request (the body or a header,
    as `body` and `headers` say, reading it as `lines[n]`). Each of wrk's
    two threads takes every other line, so no line goes twice."""
    return f"""
local counter = 0
function setup(thread) thread:set("id", counter); counter = counter + 1 end
function init(args)
  lines = {{}}
  local i = 0
  for line in io.lines("{path}") do
    if i % 2 == id then table.insert(lines, line) end
    i = i + 1
  end
  n = 0
end
function request()
  n = n + 1
  return wrk.format("POST", nil, {headers}, {body})
end
done = function(s) io.write(string.format("non2xx %d\\n", s.errors.status)) end
"""

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


HS_SECRET = "hmac-secret-0123456789-0123456789-0123456789"


def assertion(key, aud, n, client="keyed"):
    alg = "ES256" if client == "keyed" else "HS256"
    header = b64(json.dumps({"alg": alg, "kid": "bench-1", "typ": "JWT"}).encode())
    now = int(time.time())
    claims = {"iss": client, "sub": client, "aud": aud, "jti": f"bench-{n}-{os.urandom(8).hex()}",
              "iat": now, "exp": now + 500}
    payload = b64(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    if client != "keyed":
        return f"{header}.{payload}.{b64(hmac.new(HS_SECRET.encode(), signing_input, hashlib.sha256).digest())}"
    return f"{header}.{payload}.{es256(key, signing_input)}"


def es256(key, signing_input):
    der = key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))


def dpop_proof(key, jwk, htu, n):
    header = b64(json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}).encode())
    claims = {"jti": f"proof-{n}-{os.urandom(8).hex()}", "htm": "POST", "htu": htu, "iat": int(time.time())}
    payload = b64(json.dumps(claims).encode())
    return f"{header}.{payload}.{es256(key, f'{header}.{payload}'.encode())}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--assertions", type=int, default=120_000, help="made per round (more than wrk sends)")
    a = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    key = ec.generate_private_key(ec.SECP256R1())
    pub = key.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "kid": "bench-1",
           "x": b64(pub.x.to_bytes(32, "big")), "y": b64(pub.y.to_bytes(32, "big"))}
    with tempfile.TemporaryDirectory() as d:
        port = free_port()
        cfg = os.path.join(d, "sesame.yaml")
        with open(cfg, "w") as f:
            f.write(f"""server: {{ listen: "127.0.0.1:{port}" }}
database: {{ url: "sqlite://{d}/bench.db" }}
tenants:
  - id: demo
    issuer: http://127.0.0.1:{port}/demo
    # ES256 access tokens: the token's own signature (RSA costs ~0.25 ms)
    # doesn't drown what client authentication adds.
    signing: {{ alg: ES256 }}
    # Proofs are made before each round, so they may be a minute old.
    dpop: {{ max_age: 5m }}
    scopes: {{ api: {{ description: The API }} }}
    clients:
      - {{ id: basic, secret: basic-secret-0123456789, grant_types: [client_credentials], scopes: [api] }}
      - {{ id: hmac, secret: {HS_SECRET}, token_endpoint_auth_method: client_secret_jwt, grant_types: [client_credentials], scopes: [api] }}
      - {{ id: keyed, token_endpoint_auth_method: private_key_jwt, jwks: {json.dumps({"keys": [jwk]})}, grant_types: [client_credentials], scopes: [api] }}
""")
        log = open(os.path.join(d, "server.log"), "w")
        p = subprocess.Popen([BIN, "serve", "-c", cfg], stdout=log, stderr=log,
                             env=dict(os.environ, SESAME_LOG="warn"))
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/demo/.well-known/openid-configuration", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        else:
            sys.exit("the server did not start")
        aud = base + "/demo/token"
        basic_lua = os.path.join(d, "basic.lua")
        auth = base64.b64encode(b"basic:basic-secret-0123456789").decode()
        with open(basic_lua, "w") as f:
            f.write('wrk.method = "POST"\n'
                    f'wrk.headers["Authorization"] = "Basic {auth}"\n'
                    'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
                    'wrk.body = "grant_type=client_credentials"\n'
                    'done = function(s) io.write(string.format("non2xx %d\\n", s.errors.status)) end\n')
        results = {}
        try:
            for r in range(a.rounds):
                scripts = {"cc-basic": basic_lua}
                for name, client in (("cc-jwt", "keyed"), ("cc-hs256", "hmac")):
                    bodies = os.path.join(d, f"bodies-{name}-{r}.txt")
                    with open(bodies, "w") as f:
                        for n in range(a.assertions):
                            f.write("grant_type=client_credentials&client_assertion_type="
                                    "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
                                    f"&client_assertion={assertion(key, aud, n, client)}\n")
                    lua = os.path.join(d, f"{name}-{r}.lua")
                    scripts[name] = lua
                    with open(lua, "w") as f:
                        f.write(line_per_request_lua(bodies, "lines[n]",
                                                     '{ ["Content-Type"] = "application/x-www-form-urlencoded" }'))
                # cc-dpop: Basic, and one proof per request as its DPoP header.
                proof_key = ec.generate_private_key(ec.SECP256R1())
                pn = proof_key.public_key().public_numbers()
                proof_jwk = {"kty": "EC", "crv": "P-256",
                             "x": b64(pn.x.to_bytes(32, "big")), "y": b64(pn.y.to_bytes(32, "big"))}
                proofs = os.path.join(d, f"proofs-{r}.txt")
                with open(proofs, "w") as f:
                    for n in range(a.assertions):
                        f.write(dpop_proof(proof_key, proof_jwk, aud, n) + "\n")
                scripts["cc-dpop"] = os.path.join(d, f"cc-dpop-{r}.lua")
                with open(scripts["cc-dpop"], "w") as f:
                    f.write(line_per_request_lua(
                        proofs, '"grant_type=client_credentials"',
                        '{ ["Content-Type"] = "application/x-www-form-urlencoded", '
                        f'["Authorization"] = "Basic {auth}", ["DPoP"] = lines[n] }}'))
                for name, script in scripts.items():
                    before = cpu_seconds(p.pid)
                    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{a.seconds}s", "-s", script, aud],
                                         capture_output=True, text=True, check=True).stdout
                    used = cpu_seconds(p.pid) - before
                    n = int(re.search(r"(\d+) requests in", out).group(1))
                    bad = int(re.search(r"non2xx (\d+)", out).group(1))
                    if name != "cc-basic" and n >= a.assertions:
                        sys.exit("wrk sent more requests than there are assertions: raise --assertions")
                    us = used / max(n, 1) * 1e6
                    results.setdefault(name, []).append(us)
                    print(f"round {r + 1} {name:<9} {n / a.seconds:8.0f} req/s  {us:6.1f} µs CPU/request"
                          f"  ({bad} non-2xx)", flush=True)
        finally:
            p.terminate()
            p.wait()
            log.close()
        med = {k: sorted(v)[len(v) // 2] for k, v in results.items()}
        print(f"\nmedian CPU/request: client_secret_basic {med['cc-basic']:.1f} µs, "
              f"private_key_jwt (ES256) {med['cc-jwt']:.1f} µs: "
              f"+{med['cc-jwt'] - med['cc-basic']:.1f} µs per request; "
              f"client_secret_jwt (HS256) {med['cc-hs256']:.1f} µs: "
              f"+{med['cc-hs256'] - med['cc-basic']:.1f} µs; "
              f"DPoP proof (ES256) {med['cc-dpop']:.1f} µs: "
              f"+{med['cc-dpop'] - med['cc-basic']:.1f} µs")


if __name__ == "__main__":
    main()

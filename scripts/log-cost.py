#!/usr/bin/env python3
"""What JSON access logs cost the server, in CPU per request.

Starts the release build of sesame twice per round on one SQLite database,
once with `log_format: json` at `info` (an access line per request, written
to a file) and once at `warn` (no access lines), alternating for several
rounds, and drives each with `wrk` for a few seconds on two scenarios:

  cc-opaque   POST /demo/token, client_credentials, HTTP Basic, opaque token
  discovery   GET /demo/.well-known/openid-configuration

The server's CPU (user + system, from /proc/<pid>/stat) over the run,
divided by the requests wrk completed, is the cost per request.

    cargo build --release && python3 scripts/log-cost.py [--seconds 5] [--rounds 3]
"""
import argparse, base64, os, re, socket, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "sesame")
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def config(port, db, fmt):
    return f"""server: {{ listen: "127.0.0.1:{port}", log_format: {fmt} }}
database: {{ url: "sqlite://{db}" }}
tenants:
  - id: demo
    issuer: http://127.0.0.1:{port}/demo
    access_token_format: opaque
    scopes: {{ api: {{ description: The API }} }}
    clients:
      - {{ id: svc, secret: svc-secret-0123456789, grant_types: [client_credentials], scopes: [api] }}
"""


def start(dirname, port, logs_on):
    cfg = os.path.join(dirname, f"sesame-{port}.yaml")
    with open(cfg, "w") as f:
        f.write(config(port, os.path.join(dirname, "log-cost.db"), "json"))
    env = dict(os.environ, SESAME_LOG="info" if logs_on else "warn")
    log = open(os.path.join(dirname, f"server-{port}.log"), "w")
    p = subprocess.Popen([BIN, "serve", "-c", cfg], stdout=log, stderr=log, env=env)
    url = f"http://127.0.0.1:{port}/demo/.well-known/openid-configuration"
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return p, log
        except OSError:
            time.sleep(0.05)
    p.kill()
    sys.exit(f"the server on port {port} did not start: see {log.name}")


def run_wrk(url, seconds, script=None):
    cmd = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", url]
    if script:
        cmd[1:1] = ["-s", script]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    m = re.search(r"(\d+) requests in", out)
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    with tempfile.TemporaryDirectory() as d:
        lua = os.path.join(d, "cc.lua")
        basic = base64.b64encode(b"svc:svc-secret-0123456789").decode()
        with open(lua, "w") as f:
            f.write('wrk.method = "POST"\n'
                    f'wrk.headers["Authorization"] = "Basic {basic}"\n'
                    'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
                    'wrk.body = "grant_type=client_credentials"\n')
        results = {}
        for r in range(a.rounds):
            for logs_on in (True, False):
                port = free_port()
                p, log = start(d, port, logs_on)
                try:
                    for name, path, script in [
                        ("cc-opaque", "/demo/token", lua),
                        ("discovery", "/demo/.well-known/openid-configuration", None),
                    ]:
                        before = cpu_seconds(p.pid)
                        n = run_wrk(f"http://127.0.0.1:{port}{path}", a.seconds, script)
                        used = cpu_seconds(p.pid) - before
                        us = used / max(n, 1) * 1e6
                        results.setdefault((name, logs_on), []).append(us)
                        print(f"round {r + 1} {name:<10} logs {'on ' if logs_on else 'off'}  "
                              f"{n / a.seconds:8.0f} req/s  {us:6.1f} µs CPU/request", flush=True)
                finally:
                    p.terminate()
                    p.wait()
                    log.close()
                if logs_on:
                    lines = sum(1 for _ in open(log.name))
                    print(f"         (the server wrote {lines} log lines)", flush=True)
        print()
        for name in ("cc-opaque", "discovery"):
            on = sorted(results[(name, True)])[len(results[(name, True)]) // 2]
            off = sorted(results[(name, False)])[len(results[(name, False)]) // 2]
            print(f"{name:<10} median CPU/request: logs on {on:.1f} µs, off {off:.1f} µs, "
                  f"JSON access logs cost {100 * (on - off) / off:+.1f}%")


if __name__ == "__main__":
    main()

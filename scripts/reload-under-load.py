#!/usr/bin/env python3
"""Client credentials under load while the configuration reloads.

Starts the release build of sesame on SQLite with two client_credentials
clients — one with a plain `secret`, one with an argon2id `secret_hash` —
and drives `/token` with `wrk` (64 connections, both clients in turn):
first for a while with no reload, then as long again while the config
file is rewritten and SIGHUP sent ten times a second (each reload a new
generation: a third client's name flips). Prints throughput, non-2xx
answers and socket errors of both runs, and how many reloads were applied.

    cargo build --release && python3 scripts/reload-under-load.py [--seconds 30]
"""
import argparse, base64, os, re, signal, socket, subprocess, sys, tempfile, threading, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "sesame")
HASH = "$argon2id$v=19$m=19456,t=2,p=1$Qg/txViz9yvM99GKfZaUMQ$EDC+LFRDzze98EjqImfU0ivzn6O7GUn5VighV8Z3RQQ"


def config(port, db, flip):
    return f"""server: {{ listen: "127.0.0.1:{port}", log_format: json }}
database: {{ url: "sqlite://{db}", pool_size: 8 }}
tenants:
  - id: demo
    issuer: http://127.0.0.1:{port}/demo
    access_token_format: opaque
    scopes: {{ api: {{ description: The API }} }}
    clients:
      - {{ id: plain, secret: plain-secret-0123456789, grant_types: [client_credentials], scopes: [api] }}
      - {{ id: hashed, secret_hash: "{HASH}", grant_types: [client_credentials], scopes: [api] }}
      - {{ id: flipper, name: "flip {flip}", secret: flip-secret-0123456789, grant_types: [client_credentials], scopes: [api] }}
"""


def wrk(url, seconds, lua):
    out = subprocess.run(["wrk", "-t2", "-c64", f"-d{seconds}s", "-s", lua, url],
                         capture_output=True, text=True, check=True).stdout
    n = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return n / seconds, int(bad.group(1)) if bad else 0, errors.group(1) if errors else "none"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=30)
    a = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    with tempfile.TemporaryDirectory() as d:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cfg, db = os.path.join(d, "sesame.yaml"), os.path.join(d, "reload.db")
        with open(cfg, "w") as f:
            f.write(config(port, db, 0))
        log = open(os.path.join(d, "server.log"), "w")
        p = subprocess.Popen([BIN, "serve", "-c", cfg], stdout=log, stderr=log)
        try:
            for _ in range(200):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.05)
            lua = os.path.join(d, "cc.lua")
            plain = base64.b64encode(b"plain:plain-secret-0123456789").decode()
            hashed = base64.b64encode(b"hashed:hashed-secret-9f2c41").decode()
            with open(lua, "w") as f:
                f.write(f'''wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local n = 0
request = function()
  n = n + 1
  if n % 2 == 0 then wrk.headers["Authorization"] = "Basic {plain}"
  else wrk.headers["Authorization"] = "Basic {hashed}" end
  return wrk.format()
end
''')
            url = f"http://127.0.0.1:{port}/demo/token"
            quiet = wrk(url, a.seconds, lua)
            print(f"no reloads:        {quiet[0]:8.0f} req/s, non-2xx {quiet[1]}, socket errors: {quiet[2]}", flush=True)
            stop = threading.Event()
            sent = [0]

            def reloader():
                flip = 0
                while not stop.is_set():
                    flip += 1
                    with open(cfg + ".tmp", "w") as f:
                        f.write(config(port, db, flip))
                    os.replace(cfg + ".tmp", cfg)
                    p.send_signal(signal.SIGHUP)
                    sent[0] += 1
                    stop.wait(0.1)

            t = threading.Thread(target=reloader)
            t.start()
            busy = wrk(url, a.seconds, lua)
            stop.set()
            t.join()
            time.sleep(1)
            print(f"10 reloads/second: {busy[0]:8.0f} req/s, non-2xx {busy[1]}, socket errors: {busy[2]}", flush=True)
            log.flush()
            text = open(log.name).read()
            applied = text.count('"event":"config.reloaded"')
            rejected = text.count('"event":"config.rejected"')
            print(f"SIGHUPs sent {sent[0]}, reloads applied {applied}, rejected {rejected}")
            print(f"throughput during reloads: {100 * busy[0] / quiet[0]:.0f}% of without")
        finally:
            p.terminate()
            p.wait()


if __name__ == "__main__":
    main()

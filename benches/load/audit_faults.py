#!/usr/bin/env python3
"""Audit under collector faults: checks straight at tollgate (examples/
grpc_load, N in flight) against four tollgate processes from the same
config, in interleaved rounds of one run:

  off      no audit
  file     audit on, JSON lines to a rotated file
  stopped  audit on, OTLP to a collector port that refuses connections
  slow     audit on, OTLP to a collector that accepts connections and never
           answers (each export waits out audit.otlp.timeout, 2 s)

A check never waits on the export, so stopped and slow should cost what
file costs; the drop counters say what happened to the records.

Usage (from the repository root; needs a release build: run.py builds it):
  python3 benches/load/audit_faults.py [-d 10s] [--rounds 2] [-c 32]
Everything goes to target/load/<UTC time>-audit-faults/.
"""

import argparse
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as bench  # noqa: E402  (the helpers of benches/load/run.py)

VARIANTS = ("off", "file", "stopped", "slow")


def blackhole():
    """A listener that accepts connections and never reads or answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return
    threading.Thread(target=accept, daemon=True).start()
    return server


def metrics(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return [line for line in text.splitlines() if line.startswith("tollgate_audit_records")]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-d", "--duration", default="10s")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    args = parser.parse_args()
    target = bench.target_dir()
    tollgate = str(target / "release/tollgate")
    run_dir = target / "load" / (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-audit-faults")
    run_dir.mkdir(parents=True)
    print(f"run directory: {run_dir}", flush=True)
    tokens = bench.mint(run_dir, "RS256", 1000, "tokens.txt")
    closed = bench.free_port()  # nothing listens there: connection refused
    hole = blackhole()
    sinks = {
        "off": "",
        "file": f'audit:\n  file: {{ path: "{run_dir / "audit.jsonl"}", max_bytes: 104857600, max_files: 2 }}\n',
        "stopped": f"audit:\n  otlp: {{ endpoint: http://127.0.0.1:{closed}, timeout: 2s }}\n",
        "slow": f"audit:\n  otlp: {{ endpoint: http://127.0.0.1:{hole.getsockname()[1]}, timeout: 2s }}\n",
    }
    processes, ports = {}, {}
    try:
        for name in VARIANTS:
            grpc, admin = bench.free_port(), bench.free_port()
            values = dict(tollgate_grpc_port=grpc, tollgate_admin_port=admin, http_listen_line="",
                          log_level="info", issuer=bench.ISSUER, audience=bench.AUDIENCE,
                          jwks_file=str(bench.ROOT / "tests/fixtures/keys/jwks.json"))
            config = bench.render("tollgate.yaml.tmpl", run_dir / f"tollgate-{name}.yaml", **values)
            with open(config, "a") as file:
                file.write(sinks[name])
            processes[name] = subprocess.Popen([tollgate, "serve", "--config", str(config)],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            bench.wait_for_port(grpc, processes[name], f"tollgate ({name})")
            ports[name] = (grpc, admin)
        results = {name: [] for name in VARIANTS}
        for round_number in range(args.rounds):
            for name in VARIANTS:
                grpc, _ = ports[name]
                cmd = [str(target / "release/examples/grpc_load"), "load", "--tokens", str(tokens),
                       "--target", f"http://127.0.0.1:{grpc}", "--concurrency", str(args.concurrency),
                       "--duration", args.duration]
                result = json.loads(bench.run(cmd, cwd=run_dir).stdout.strip().splitlines()[-1])
                results[name].append(result)
                print(f"round {round_number + 1}/{args.rounds} {name}: {result['rps']:.0f} checks/s, "
                      f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
                      f"denied+errors {result['denied'] + result['errors']}", flush=True)
        counters = {name: metrics(ports[name][1]) for name in VARIANTS if name != "off"}
        rss = {name: bench.rss_kib(processes[name].pid) for name in VARIANTS}
    finally:
        for process in processes.values():
            process.terminate()
            process.wait(timeout=10)
        hole.close()
    lines = ["| audit | checks/s | p50 | p99 | denied + errors | vs off | VmRSS after |", "|---|---:|---:|---:|---:|---:|---:|"]
    off = statistics.median(r["rps"] for r in results["off"])
    for name in VARIANTS:
        r = results[name]
        rps = statistics.median(x["rps"] for x in r)
        lines.append(f"| {name} | {rps:.0f} | {statistics.median(x['p50_ms'] for x in r):.2f} ms | "
                     f"{statistics.median(x['p99_ms'] for x in r):.2f} ms | "
                     f"{sum(x['denied'] + x['errors'] for x in r)} | {rps / off:.2f}x | {rss[name] / 1024:.1f} MiB |")
    lines.append("")
    for name, lines_of in counters.items():
        lines.append(f"- {name}: " + "; ".join(lines_of))
    lines.append(f"- grpc_load {args.concurrency} in flight, {args.duration} per run, {args.rounds} interleaved "
                 f"round(s) (medians), 1,000 RS256 tokens; machine: {bench.machine()}")
    table = "\n".join(lines)
    (run_dir / "results.md").write_text(table + "\n")
    print()
    print(table)


if __name__ == "__main__":
    main()

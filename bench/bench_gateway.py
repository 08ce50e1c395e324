"""Gateway benchmark: a flux node's HTTP gateway against nginx serving the same bytes from disk.

Set-up (all on 127.0.0.1): a `flux-node run` on its own data dir with the gateway on port 0 and
two pinned files (16 KiB and 100 MiB, CIDv1 by default like world packages); nginx (Debian's
`nginx-light`) with a temporary prefix and config on a free port, serving the same two files
from disk with sendfile on, access log off, keep-alive unlimited, and a fixed `/healthz`.
Load from `wrk` (Debian's `wrk`); nginx and wrk are installed by this bench when missing
(`apt-get install -y nginx-light wrk`, after one `apt-get update` if that fails). Without wrk,
a Python aiohttp load generator in a separate process stands in (much slower itself: say so).

Figures, gateway vs nginx, --runs alternating pairs after a warm-up, ratio pair by pair:
  16 KiB at c=50 and at c=200   requests/s and p99 latency (wrk --latency)
  100 MiB at c=4                MiB/s (bytes read / duration, partial responses included)
  /healthz at c=50              requests/s (nginx answers a constant from its config)
and the node's memory (VmRSS sampled from /proc, VmHWM) idle and under 200 concurrent
downloads of the 100 MiB file. Every wrk run's socket errors and non-2xx answers are counted
and printed: requests/s that include errors would flatter the server.

    .venv/bin/python bench/bench_gateway.py [--runs 5] [--duration 5] [--nginx-workers auto]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from harness import Bench

ROOT = Path(__file__).resolve().parents[1]
FLUX = str(Path(sys.executable).with_name("flux-node"))
NGINX = "/usr/sbin/nginx"
SMALL, BIG = 16 << 10, 100 << 20

WRK_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"bytes":%d,"duration_us":%d,"socket_errors":%d,' ..
    '"timeouts":%d,"non2xx":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.bytes, summary.duration, e.connect + e.read + e.write,
    e.timeout, e.status, latency:percentile(50), latency:percentile(99)))
end
"""

NGINX_CONF = """
user {user};
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
daemon off;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 10000000;
  keepalive_timeout 65;
  client_body_temp_path {prefix}/tmp/body;
  proxy_temp_path {prefix}/tmp/proxy;
  fastcgi_temp_path {prefix}/tmp/fastcgi;
  uwsgi_temp_path {prefix}/tmp/uwsgi;
  scgi_temp_path {prefix}/tmp/scgi;
  default_type application/octet-stream;
  server {{
    listen 127.0.0.1:{port};
    root {prefix}/html;
    location = /healthz {{ default_type application/json; return 200 '{{"ok":true}}'; }}
  }}
}}
"""


def ensure_tools() -> tuple[bool, bool]:
    """(nginx usable, wrk usable), installing Debian's packages if they are missing."""
    if Path(NGINX).exists() and shutil.which("wrk"):
        return True, True
    if shutil.which("apt-get") and os.geteuid() == 0:
        if not Path("/usr/sbin/policy-rc.d").exists():
            print("note: no policy-rc.d: Debian's nginx package may start its own service")
        cmd = ["apt-get", "install", "-y", "-q", "nginx-light", "wrk"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        print(f"installing: {' '.join(cmd)}", flush=True)
        if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
            subprocess.run(cmd, env=env, capture_output=True)
    else:
        print("note: cannot install nginx-light/wrk here (needs root and apt-get)")
    return Path(NGINX).exists(), shutil.which("wrk") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(bench: Bench, port: int, what: str) -> None:
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            bench.check_time(what)
            time.sleep(0.05)


def fetch_sha256(url: str) -> str:
    with urllib.request.urlopen(url, timeout=60) as resp:
        h = hashlib.sha256()
        while chunk := resp.read(1 << 20):
            h.update(chunk)
        return h.hexdigest()


def start_nginx(bench: Bench, prefix: Path, small: Path, big: Path, workers: str) -> str:
    (prefix / "html").mkdir(parents=True)
    (prefix / "tmp").mkdir()
    shutil.copyfile(small, prefix / "html" / "small.bin")
    shutil.copyfile(big, prefix / "html" / "big.bin")
    port = free_port()
    user = pwd.getpwuid(os.geteuid()).pw_name  # workers must read the 0700 temp dir
    conf = NGINX_CONF.format(user=user, workers=workers, prefix=prefix, port=port)
    (prefix / "nginx.conf").write_text(conf)
    argv = [NGINX, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", "nginx.conf"]
    bench.track(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
    wait_port(bench, port, "nginx to listen")
    return f"http://127.0.0.1:{port}"


def start_node(bench: Bench, data: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    argv = [FLUX, "run", "--data-dir", str(data), "--listen", "/ip4/127.0.0.1/tcp/0"]
    with log.open("w") as out:
        proc = bench.track(
            subprocess.Popen(
                [*argv, "--gateway", "127.0.0.1:0"], stdout=out, stderr=subprocess.STDOUT
            )
        )
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"flux-node exited {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            return proc, json.loads((data / "node.json").read_text())["gateway_url"]
        except (FileNotFoundError, ValueError):
            bench.check_time("the node to start")
            time.sleep(0.05)


class Load:
    """One load run: wrk, or the aiohttp stand-in; returns the parsed summary."""

    def __init__(self, bench: Bench, tmp: Path, use_wrk: bool, duration: int) -> None:
        self.bench, self.use_wrk, self.duration = bench, use_wrk, duration
        self.lua = tmp / "report.lua"
        self.lua.write_text(WRK_LUA)

    def run(self, url: str, conns: int, duration: int | None = None) -> dict[str, Any]:
        secs = duration or self.duration
        if self.use_wrk:
            threads = max(1, min(conns, os.cpu_count() or 1))
            argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{secs}s", "--latency"]
            argv += ["--timeout", "30s", "-s", str(self.lua), url]
        else:
            argv = [sys.executable, __file__, "--loadgen", url, str(conns), str(secs)]
        proc = self.bench.track(subprocess.Popen(argv, stdout=subprocess.PIPE, text=True))
        out, _ = proc.communicate()
        self.bench.stop(proc)
        line = next((x for x in out.splitlines() if x.startswith("WRKJSON ")), None)
        if proc.returncode != 0 or line is None:
            raise SystemExit(f"load generator failed ({proc.returncode}): {out[-2000:]}")
        r: dict[str, Any] = json.loads(line[8:])
        elapsed = r["duration_us"] / 1e6
        r["rps"] = r["requests"] / elapsed
        r["mibs"] = r["bytes"] / elapsed / (1 << 20)
        r["p99_ms"] = r["p99_us"] / 1000
        r["errors"] = r["socket_errors"] + r["timeouts"] + r["non2xx"]
        return r


def scenario(
    bench: Bench, load: Load, label: str, gw: str, ngx: str, conns: int, big: bool
) -> None:
    goal_rps = {"16 KiB at c=50": ">= 0.2", "/healthz at c=50": "gateway >= 10,000 req/s"}
    goal_rps = goal_rps.get(label, "")
    gw_runs, ngx_runs = bench.alternate(lambda: load.run(gw, conns), lambda: load.run(ngx, conns))
    if big:
        bench.compare(
            f"{label}: MiB/s",
            "gateway",
            [r["mibs"] for r in gw_runs],
            "nginx",
            [r["mibs"] for r in ngx_runs],
            "MiB/s",
            goal=">= 0.5",
        )
    else:
        bench.compare(
            f"{label}: requests/s",
            "gateway",
            [r["rps"] for r in gw_runs],
            "nginx",
            [r["rps"] for r in ngx_runs],
            "req/s",
            goal=goal_rps,
            fmt=".0f",
        )
        bench.compare(
            f"{label}: p99 latency",
            "gateway",
            [r["p99_ms"] for r in gw_runs],
            "nginx",
            [r["p99_ms"] for r in ngx_runs],
            "ms",
            higher_is_better=False,
            goal="p99 < 10 ms (absolute)" if "16 KiB at c=50" in label else "",
            fmt=".2f",
        )
    errors = [r["errors"] for r in gw_runs], [r["errors"] for r in ngx_runs]
    print(f"  errors per run (socket + timeout + non-2xx): gateway {errors[0]}, nginx {errors[1]}")
    bench.record(f"{label}: errors", gateway=errors[0], nginx=errors[1])


def vm(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def memory_under_load(
    bench: Bench, load: Load, node_pid: int, url: str, conns: int, duration: int
) -> None:
    idle = vm(node_pid)
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            samples.append(vm(node_pid)["VmRSS"])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        r = load.run(url, conns, duration)
    finally:
        stop.set()
        sampler.join()
    after = vm(node_pid)
    mib = 1024.0
    print(
        f"node memory, {conns} concurrent downloads of the 100 MiB file for {duration} s "
        f"({r['mibs']:.0f} MiB/s, {r['errors']} errors): VmRSS idle {idle['VmRSS'] / mib:.1f} "
        f"MiB, max under load {max(samples, default=0) / mib:.1f} MiB ({len(samples)} samples), "
        f"VmHWM {idle['VmHWM'] / mib:.1f} -> {after['VmHWM'] / mib:.1f} MiB"
    )
    bench.record(
        f"node RSS under {conns} concurrent 100 MiB downloads",
        unit="MiB",
        idle_rss=idle["VmRSS"] / mib,
        max_rss=max(samples, default=0) / mib,
        hwm_before=idle["VmHWM"] / mib,
        hwm_after=after["VmHWM"] / mib,
        mibs=r["mibs"],
        errors=r["errors"],
    )


def main(args: argparse.Namespace) -> None:
    (ROOT / "build").mkdir(exist_ok=True)
    with (
        Bench("bench_gateway", timeout_s=args.timeout, runs=args.runs) as bench,
        tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp,
    ):
        have_nginx, have_wrk = ensure_tools()
        if not have_nginx:
            raise SystemExit("bench_gateway: nginx is missing and could not be installed")
        t = Path(tmp)
        bench.scratch.append(t)
        loadgen = "wrk" if have_wrk else "aiohttp stand-in (wrk could not be installed)"
        print(f"load generator: {loadgen}; {args.duration:.0f} s per run")
        bench.notes.update(
            loadgen=loadgen,
            duration_s=args.duration,
            nginx_workers=args.nginx_workers,
            cid_version=args.cid_version,
        )
        small, big = t / "small.bin", t / "big.bin"
        small.write_bytes(os.urandom(SMALL))
        with big.open("wb") as fh:
            for _ in range(BIG >> 20):
                fh.write(os.urandom(1 << 20))
        data = t / "node"
        cids = {}
        for f in (small, big):
            add = [FLUX, "add", "--data-dir", str(data), "-q", "--cid-version"]
            add += [str(args.cid_version), str(f)]
            cids[f] = subprocess.run(add, capture_output=True, text=True, check=True).stdout.strip()
        node, gw = start_node(bench, data, t / "node.log")
        ngx = start_nginx(bench, t / "nginx", small, big, args.nginx_workers)
        urls = {
            "small": (f"{gw}/ipfs/{cids[small]}", f"{ngx}/small.bin"),
            "big": (f"{gw}/ipfs/{cids[big]}", f"{ngx}/big.bin"),
        }
        for f, key in ((small, "small"), (big, "big")):
            want = hashlib.sha256(f.read_bytes()).hexdigest()
            got = [fetch_sha256(u) for u in urls[key]]
            if got != [want, want]:
                raise SystemExit(f"bench_gateway: {key} file: served bytes differ from the file")
        print(f"gateway {gw} (node pid {node.pid}), nginx {ngx} ({args.nginx_workers} workers)")
        print("same bytes from both checked (sha256)", flush=True)
        load = Load(bench, t, have_wrk, args.duration)
        health = f"{gw}/healthz"
        try:
            urllib.request.urlopen(health, timeout=10).close()
        except OSError:
            health = f"{gw}/api/v0/node"
            print("note: no /healthz on the gateway; measuring /api/v0/node instead")
        scenario(bench, load, "16 KiB at c=50", urls["small"][0], urls["small"][1], 50, False)
        scenario(bench, load, "16 KiB at c=200", urls["small"][0], urls["small"][1], 200, False)
        scenario(bench, load, "100 MiB at c=4", urls["big"][0], urls["big"][1], 4, True)
        scenario(bench, load, "/healthz at c=50", health, f"{ngx}/healthz", 50, False)
        memory_under_load(bench, load, node.pid, urls["big"][0], 200, args.mem_duration)
        bench.stop_all()
        log = (t / "node.log").read_text(errors="replace")
        tracebacks = log.count("Traceback (most recent call last)")
        print(f"node log: {len(log.splitlines())} lines, {tracebacks} tracebacks")
        bench.record("node log", lines=len(log.splitlines()), tracebacks=tracebacks)
        bench.finish()


def loadgen(url: str, conns: int, duration: float) -> None:
    """The aiohttp stand-in for wrk: `conns` keep-alive connections for `duration` seconds."""
    import asyncio

    import aiohttp

    async def run() -> None:
        lat: list[float] = []
        stats = {"bytes": 0, "errors": 0, "non2xx": 0}
        end = time.perf_counter() + duration
        limit = aiohttp.TCPConnector(limit=conns)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=limit, timeout=timeout) as session:

            async def worker() -> None:
                while time.perf_counter() < end:
                    t0 = time.perf_counter()
                    try:
                        async with session.get(url) as resp:
                            async for chunk in resp.content.iter_chunked(1 << 16):
                                stats["bytes"] += len(chunk)
                            stats["non2xx"] += resp.status >= 300
                    except (aiohttp.ClientError, TimeoutError):
                        stats["errors"] += 1
                        continue
                    lat.append(time.perf_counter() - t0)

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(conns)))
            elapsed = time.perf_counter() - start
        lat.sort()
        pick = lambda q: int(lat[min(len(lat) - 1, int(q * len(lat)))] * 1e6) if lat else 0  # noqa: E731
        out = {
            "requests": len(lat),
            "bytes": stats["bytes"],
            "duration_us": int(elapsed * 1e6),
            "socket_errors": stats["errors"],
            "timeouts": 0,
            "non2xx": stats["non2xx"],
            "p50_us": pick(0.5),
            "p99_us": pick(0.99),
        }
        print("WRKJSON " + json.dumps(out), flush=True)

    asyncio.run(run())


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--loadgen":
        loadgen(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
        sys.exit(0)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5, help="seconds of load per run")
    ap.add_argument("--mem-duration", type=int, default=15, help="seconds of the memory run")
    ap.add_argument("--nginx-workers", default="auto", help="nginx worker_processes")
    ap.add_argument("--cid-version", type=int, choices=[0, 1], default=1)
    ap.add_argument("--timeout", type=float, default=1500, help="seconds for the whole bench")
    main(ap.parse_args())

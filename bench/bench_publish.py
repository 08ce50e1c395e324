"""Publish benchmark: `flux-node publish` of the example world, wall time from the CLI, against
`flux-node world pack` of the same folder into the same data dir (the import and pin publish
does too), with `flux-node version` (interpreter + CLI start) as the floor. One node runs on the
data dir with no peers, so whatever publish waits for beyond pack is the node's own work
(signing, the admin round trip, best-effort DHT put/provide).

    .venv/bin/python bench/bench_publish.py [--runs 5] [--world docs/examples/hello-world]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eth_account import Account
from harness import Bench, timed

ROOT = Path(__file__).resolve().parents[1]
FLUX = str(Path(sys.executable).with_name("flux-node"))


def main(args: argparse.Namespace) -> None:
    (ROOT / "build").mkdir(exist_ok=True)
    with (
        Bench("bench_publish", timeout_s=args.timeout, runs=args.runs) as bench,
        tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp,
    ):
        t = Path(tmp)
        bench.scratch.append(t)
        data = t / "node"
        argv = [FLUX, "run", "--data-dir", str(data), "--listen", "/ip4/127.0.0.1/tcp/0"]
        with (t / "node.log").open("w") as log:
            proc = bench.track(
                subprocess.Popen([*argv, "--no-gateway"], stdout=log, stderr=subprocess.STDOUT)
            )
        while not (data / "node.json").exists():
            if proc.poll() is not None:
                raise SystemExit(f"node exited {proc.returncode}: {(t / 'node.log').read_text()}")
            bench.check_time("the node to start")
            time.sleep(0.05)
        key = t / "owner.key"
        key.write_text(Account.create().key.hex())
        key.chmod(0o600)
        world = str(Path(args.world).resolve())
        seq = iter(range(1, 10_000))
        publish = [FLUX, "publish", "--data-dir", str(data), world, "--slug", "bench"]
        publish += ["--key-file", str(key)]
        pack = [FLUX, "world", "pack", "--data-dir", str(data), world]

        def run_publish() -> float:
            cmd = [*publish, "--seq", str(next(seq))]
            secs = timed(lambda: subprocess.run(cmd, check=True, capture_output=True, timeout=120))
            return secs * 1000

        def run(cmd: list[str]) -> float:
            return timed(lambda: subprocess.run(cmd, check=True, capture_output=True)) * 1000

        out = subprocess.run([*publish, "--seq", str(next(seq))], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"publish failed: {out.stderr}")
        print(f"published {json.loads(out.stdout)['cid']} from {world}")
        bench.pair(
            "`flux-node publish` vs `flux-node world pack` of the same world, wall ms",
            ("publish", run_publish),
            ("world pack", lambda: run(pack)),
            "ms",
            higher_is_better=False,
            goal="publish < 1000 ms (absolute)",
            fmt=".0f",
        )
        bench.series("`flux-node version` (the floor)", lambda: run([FLUX, "version"]), "ms")
        bench.stop_all()
        bench.finish()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--world", default=str(ROOT / "docs" / "examples" / "hello-world"))
    ap.add_argument("--timeout", type=float, default=600, help="seconds for the whole bench")
    main(ap.parse_args())

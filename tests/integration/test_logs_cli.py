"""`flux-node run --log-format json`: the node's log is JSON lines from its first line on."""

from __future__ import annotations

import json

import pytest

from tests.conftest import NodeFactory, clean_env

pytestmark = pytest.mark.slow


def test_run_logs_json_lines(nodes: NodeFactory) -> None:
    a = nodes.start("a", "--log-format", "json")
    info = a.wait_ready()
    a.terminate()
    lines = [line for line in a.log().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    ready = [e for e in entries if e["message"].startswith("ready ")]
    assert len(ready) == 1 and info["peer_id"] in ready[0]["message"]
    assert ready[0]["level"] == "info" and ready[0]["logger"] == "fluxnode.node"
    assert any(e["message"] == "stopping" for e in entries)


def test_a_bad_log_format_is_a_usage_error(nodes: NodeFactory) -> None:
    a = nodes.start("a", "--log-format", "xml")
    assert a.proc.wait(30) == 2
    assert "--log-format" in a.log() and "Traceback" not in a.log()
    b = nodes.start("b", env=clean_env(FLUX_LOG_FORMAT="xml"))
    assert b.proc.wait(30) == 2
    assert "log.format" in b.log() and "Traceback" not in b.log()

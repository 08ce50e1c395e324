"""The one error tree: unique codes, rebuilding by code, reasons, and no leaf outside it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from fluxnode.core import errors
from fluxnode.core.errors import (
    BadRequest,
    BlockTooLarge,
    ChainUnavailable,
    ConfigError,
    FluxError,
    LocalError,
    NotFound,
    RecordInvalid,
    RemoteError,
    error_class,
    error_from_json,
)

ROOT = Path(__file__).resolve().parents[2]


def test_every_code_names_one_class() -> None:
    seen: dict[str, type[FluxError]] = {}
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, FluxError) and "code" in vars(value):
            assert value.code not in seen, f"{value.code} used by {seen[value.code]} and {value}"
            seen[value.code] = value
            assert error_class(value.code) is value


def test_a_second_class_with_a_taken_code_is_refused() -> None:
    with pytest.raises(TypeError, match="block_too_large"):

        class Again(RemoteError):
            code = "block_too_large"


def test_errors_rebuild_as_their_own_class_from_json() -> None:
    for exc in (
        NotFound("no such world"),
        ChainUnavailable("all endpoints down"),
        BadRequest("bad peer id"),
        ConfigError("network.listen", "not a multiaddr", "flag --listen"),
    ):
        body = exc.to_json()
        again = error_from_json(body, status=exc.http_status)
        assert type(again) is type(exc)
        assert str(again) == str(exc)
        assert again.http_status == exc.http_status


def test_reason_travels_with_the_error() -> None:
    exc = RecordInvalid("expired", "issued 40 days ago")
    body = exc.to_json()
    assert body == {
        "code": "record_invalid",
        "message": "expired: issued 40 days ago",
        "reason": "expired",
    }
    again = error_from_json(body, status=400)
    assert isinstance(again, RecordInvalid)
    assert again.reason == "expired"


@pytest.mark.parametrize(("status", "kind"), [(404, RemoteError), (503, LocalError)])
def test_an_unknown_code_falls_back_by_status(status: int, kind: type[FluxError]) -> None:
    again = error_from_json({"code": "from_a_newer_node", "message": "x"}, status=status)
    assert type(again) is kind
    assert str(again) == "x"


def test_one_block_too_large_for_files_cars_and_peers() -> None:
    from fluxnode.core import bitswap_wire
    from fluxnode.storage import blockstore

    assert bitswap_wire.BlockTooLarge is blockstore.BlockTooLarge is BlockTooLarge


def _error_classes_defined_outside_the_tree() -> list[str]:
    found = []
    for folder in ("core", "storage", "chain", "p2p", "gateway", "node", "contracts"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.parent == ROOT / "core" / "errors":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in tree.body:
                if not isinstance(node, ast.ClassDef):
                    continue
                bases = {ast.unparse(b) for b in node.bases}
                if any(b.endswith(("Error", "Exception", "Invalid", "Denied")) for b in bases):
                    found.append(f"{path.relative_to(ROOT)}:{node.name}")
    return found


def test_error_classes_live_in_core_errors() -> None:
    # EntryChanged is an OSError on purpose: the importer reports it like any other failure to
    # read a file; it never leaves the importer as anything but a FluxError.
    # RecordRejected is the ValueError py-libp2p's DHT validators must raise to refuse a record.
    allowed = {"storage/importer.py:EntryChanged", "p2p/dht.py:RecordRejected"}
    assert set(_error_classes_defined_outside_the_tree()) <= allowed

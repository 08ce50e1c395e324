"""Node URLs and share links as `fluxnode.client` and `flux-node visit` read them."""

from __future__ import annotations

import pytest

from fluxnode.client import WorldTarget, http_base, parse_target, session_url
from fluxnode.core.errors import BadRequest

ALICE = "0x" + "aB" * 20


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8011", "ws://127.0.0.1:8011/session"),
        ("http://127.0.0.1:8011/", "ws://127.0.0.1:8011/session"),
        ("https://node.example", "wss://node.example/session"),
        ("HTTPS://node.example/session", "wss://node.example/session"),
        ("http://node.example/flux/", "ws://node.example/flux/session"),
        ("ws://127.0.0.1:9/custom", "ws://127.0.0.1:9/custom"),
        ("wss://node.example", "wss://node.example/session"),
    ],
)
def test_session_url(url: str, expected: str) -> None:
    assert session_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://node.example", "is not an http(s):// or ws(s):// URL with a host"),
        ("http://", "is not an http(s):// or ws(s):// URL with a host"),
        ("node.example:8011", "is not an http(s):// or ws(s):// URL with a host"),
        ("http://node.example:99999", "has a bad port"),
        ("http://node.example/?x=1", "must not carry a query, fragment or credentials"),
        ("http://u:p@node.example", "must not carry a query, fragment or credentials"),
    ],
)
def test_bad_node_urls(url: str, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        session_url(url)
    assert message in str(info.value)


def test_http_base() -> None:
    assert http_base("wss://node.example:8443/session") == "https://node.example:8443"
    assert http_base("http://127.0.0.1:8011/x") == "http://127.0.0.1:8011"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("land:7", WorldTarget("land:7", None)),
        (f"{ALICE}/plaza", WorldTarget(f"{ALICE}/plaza", None)),
        ("http://127.0.0.1:8011/w/land:7", WorldTarget("land:7", "http://127.0.0.1:8011")),
        ("https://node.example/w/land%3A7/", WorldTarget("land:7", "https://node.example")),
        (
            f"https://node.example/w/{ALICE}/plaza",
            WorldTarget(f"{ALICE}/plaza", "https://node.example"),
        ),
    ],
)
def test_share_links_and_world_ids(text: str, expected: WorldTarget) -> None:
    assert parse_target(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "give a world id or a share link"),
        ("plaza", "bad world id 'plaza'"),
        ("http://node.example/x/land:7", "is not http(s)://host/w/<world_id>"),
        ("ws://node.example/w/land:7", "is not http(s)://host/w/<world_id>"),
        ("http://node.example/w/", "bad world id ''"),
        ("http://node.example/w/land:07", "bad world id 'land:07'"),
    ],
)
def test_bad_targets(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_target(text)
    assert message in str(info.value)

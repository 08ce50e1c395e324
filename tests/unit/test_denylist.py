"""Parsing and matching of the operator denylist (IPFS compact denylist format, IPIP-383)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxnode.core.cid import DAG_PB, RAW, Cid, b58encode
from fluxnode.core.denylist import ContentDenied, Denylist
from fluxnode.core.errors import ConfigError

V0 = Cid.hash_block(b"alice", 0, DAG_PB)
V1 = V0.to_v1()
RAW_SAME_HASH = Cid(1, RAW, V0.multihash)
OTHER = Cid.hash_block(b"bob", 1, RAW)


def sha256_mh_b58(text: str) -> str:
    return b58encode(b"\x12\x20" + hashlib.sha256(text.encode()).digest())


def test_plain_cid_rules_match_by_multihash_in_every_version() -> None:
    for text in (f"/ipfs/{V0}", f"/ipfs/{V1}", str(V0), str(V1)):
        deny = Denylist.parse(text + "\n", "t.deny")
        assert len(deny) == 1
        assert deny.is_denied(V0) and deny.is_denied(V1) and deny.is_denied(RAW_SAME_HASH)
        assert not deny.is_denied(OTHER)
        # `/ipfs/CID` does not block subpaths by itself (spec); enforcement blocks the root.
        assert not deny.is_denied(V0, ["a"])


def test_path_rules_exact_and_prefix() -> None:
    deny = Denylist.parse(
        f"/ipfs/{V0}/docs/secret%20file.txt\n/ipfs/{V1}/media*\n/ipfs/{OTHER}/*\n", "t.deny"
    )
    assert deny.is_denied(V1, ["docs", "secret file.txt"])
    assert not deny.is_denied(V1, ["docs"]) and not deny.is_denied(V1)
    assert deny.is_denied(V0, ["media"]) and deny.is_denied(V0, ["media2", "x"])
    assert deny.is_denied(V0, ["media", "a", "b"]) and not deny.is_denied(V0, ["medi"])
    assert deny.is_denied(OTHER) and deny.is_denied(OTHER, ["anything", "at", "all"])
    # `/ipfs/CID/path/` == `/ipfs/CID/path`; `/ipfs/CID/ab/*` == `/ipfs/CID/ab*`
    deny = Denylist.parse(f"/ipfs/{V0}/x/\n/ipfs/{OTHER}/ab/*\n", "t.deny")
    assert deny.is_denied(V0, ["x"]) and deny.is_denied(OTHER, ["abc"])


def test_spec_examples_double_hash_modern_and_legacy() -> None:
    # From the spec's example list: modern double hash of a multihash blocks v0 and v1 alike.
    deny = Denylist.parse("//QmX9dhRcQcKUw3Ws8485T5a9dtjrSCQaUAHnG4iK9i4ceM\n", "t.deny")
    assert deny.is_denied(Cid.parse("QmVTF1yEejXd9iMgoRTFDxBv7HAz9kuZcQNBzHrceuK9HR"))
    assert deny.is_denied(Cid.parse("bafybeidjwik6im54nrpfg7osdvmx7zojl5oaxqel5cmsz46iuelwf5acja"))
    # The spec's note: //QmSju6... blocks /ipfs/bafybeihrw75.../my/path and nothing else.
    cid = Cid.parse("bafybeihrw75yfhdx5qsqgesdnxejtjybscwuclpusvxkuttep6h7pkgmze")
    deny = Denylist.parse("//QmSju6XPmYLG611rmK7rEeCMFVuL6EHpqyvmEU6oGx3GR8\n", "t.deny")
    assert deny.is_denied(cid, ["my", "path"]) and not deny.is_denied(cid)
    # Legacy badbits anchors: sha256 hex of "CIDV1_BASE32/" and "CIDV1_BASE32/path".
    legacy = Cid.parse("bafybeiefwqslmf6zyyrxodaxx4vwqircuxpza5ri45ws3y5a62ypxti42e")
    deny = Denylist.parse(
        "# legacy\n//d9d295bde21f422d471a90f2a37ec53049fdf3e5fa3ee2e8f20e10003da429e7\n"
        "//3f8b9febd851873b3774b937cce126910699ceac56e72e64b866f8e258d09572\n",
        "badbits.deny",
    )
    assert deny.is_denied(legacy) and deny.is_denied(legacy, ["path"])
    assert not deny.is_denied(legacy, ["other"])
    # Legacy anchors are over the CIDv1 string, so a CIDv0 of the same dag-pb block matches too.
    assert deny.is_denied(Cid(0, DAG_PB, legacy.multihash))


def test_double_hash_computed_like_the_spec_says() -> None:
    anchor = hashlib.sha256(f"{V1}/".encode()).hexdigest()
    modern = sha256_mh_b58(b58encode(V0.multihash))
    modern_path = sha256_mh_b58(b58encode(V0.multihash) + "/a/b")
    deny = Denylist.parse(f"//{anchor}\n", "t")
    assert deny.is_denied(V0) and deny.is_denied(V1) and not deny.is_denied(RAW_SAME_HASH)
    deny = Denylist.parse(f"//{modern}\n//{modern_path}\n", "t")
    assert deny.is_denied(RAW_SAME_HASH) and deny.is_denied(V0, ["a", "b"])
    assert not deny.is_denied(V0, ["a"])


def test_header_comments_hints_negation_and_ipns() -> None:
    text = (
        "version: 1\nname: test list\nhints:\n  gateway_status: 410\n---\n"
        "# a comment\n\n"
        f"/ipfs/{V0}/photo* reason:abuse\n"
        f"!/ipfs/{V0}/photo123.jpg\n"
        f"!/ipfs/{OTHER}\n/ipfs/{OTHER}\n"
        "/ipns/bad.example\n"
    )
    deny = Denylist.parse(text, "t.deny")
    assert len(deny) == 4 and deny.ignored == 1
    assert deny.is_denied(V0, ["photo1.jpg"]) and not deny.is_denied(V0, ["photo123.jpg"])
    assert deny.is_denied(OTHER)  # the deny rule comes after the allow rule
    allow_later = Denylist.parse(f"/ipfs/{OTHER}\n", "a").merge(
        Denylist.parse(f"!/ipfs/{OTHER}\n", "b")
    )
    assert not allow_later.is_denied(OTHER) and len(allow_later) == 2
    assert allow_later.sources == ("a", "b")


def test_merge_and_empty() -> None:
    empty = Denylist()
    assert len(empty) == 0 and not empty and not empty.is_denied(V0)
    merged = Denylist.parse(str(V0), "a").merge(Denylist.parse(f"/ipfs/{OTHER}", "b"))
    assert len(merged) == 2 and merged.is_denied(V1) and merged.is_denied(OTHER)
    with pytest.raises(ContentDenied) as info:
        merged.check(V0)
    assert info.value.http_status == 451 and info.value.code == "content_denied"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("# ok\n/ipfs/notacid\n", 2, "invalid CID"),
        (f"{V0}\n\n/ipfs/{V0}/a*b\n", 3, "'*'"),
        ("//zzzz\n", 1, "bad double hash"),
        ("//" + "ab" * 31 + "\n", 1, "bad double hash"),
        (f"/ipfs/{V0}/a//b\n", 1, "empty path segment"),
        ("/unknown/thing\n", 1, "unsupported rule"),
        (f"/ipfs/{V0} nothint\n", 1, "bad hint"),
        ("/ipns/\n", 1, "empty IPNS name"),
        ("version: 2\n---\n", 1, "unsupported list version"),
        ("name: x\nthis is not yaml\n---\n", 2, "header line"),
        (f"/ipfs/{V0}/%ff\n", 1, "line 1"),
    ],
)
def test_malformed_lines_name_source_and_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        Denylist.parse(text, "lists/x.deny")
    message = str(info.value)
    assert f"line {line}:" in message and fragment in message and "lists/x.deny" in message
    assert info.value.key == "content.denylist"


def test_limits() -> None:
    with pytest.raises(ConfigError, match="larger than 10 bytes"):
        Denylist.parse(f"{V0}\n", "t", max_bytes=10)
    with pytest.raises(ConfigError, match="line 3: more than 2 rules"):
        Denylist.parse(f"{V0}\n{V1}\n{OTHER}\n", "t", max_entries=2)
    with pytest.raises(ConfigError, match="line 1: line longer than"):
        Denylist.parse(f"/ipfs/{V0}/" + "a" * (2 << 20), "t")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_parser_fuzz_only_raises_config_error(text: str) -> None:
    try:
        deny = Denylist.parse(text, "fuzz")
    except ConfigError as exc:
        message = str(exc)
    else:
        deny.is_denied(V0, ["a", "b"])
        return
    assert "fuzz" in message


_LINE = st.one_of(
    st.just(f"/ipfs/{V0}"),
    st.just(f"!/ipfs/{V1}/x*"),
    st.just(str(OTHER)),
    st.just("# comment"),
    st.just(""),
    st.just("//" + sha256_mh_b58("x")),
    st.text(alphabet="/!*#%:abQm19 \t", max_size=30),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINE, max_size=20))
def test_parser_fuzz_rule_like_lines(lines: list[str]) -> None:
    try:
        deny = Denylist.parse("\n".join(lines), "fuzz")
    except ConfigError as exc:
        message = str(exc)
    else:
        assert len(deny) <= 2 * len(lines)
        deny.is_denied(V0)
        deny.is_denied(OTHER, ["x"])
        return
    assert "line " in message and "fuzz" in message

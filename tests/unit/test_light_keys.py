"""Key handling without libp2p or eth-account: the node's Ed25519 identity in libp2p's key
format (`fluxnode.p2p.identity`) and wallet signing with coincurve (`fluxnode.chain.keys`).
Both must give exactly what the heavy libraries give: the same key bytes and peer IDs, the same
signature bytes, recoverable by eth-account."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from hypothesis import given, settings
from hypothesis import strategies as st
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.serialization import deserialize_private_key
from libp2p.peer.id import ID

from fluxnode.chain.keys import WalletKey, load_wallet_key, read_key_secret, recover_personal
from fluxnode.chain.records import recover_owner, sign_record, verify_record
from fluxnode.chain.siwe_verify import recover_address
from fluxnode.core.errors import IdentityError, KeyFileError
from fluxnode.core.siwe import SiweError
from fluxnode.p2p import identity

#: A fixed Ed25519 seed and the peer ID py-libp2p 0.8.1 gives its key (checked below too).
SEED = bytes(range(32))
KEY_FILE = b"\x08\x01\x12\x20" + SEED
FIXED_PEER_ID = "12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB"
#: Anvil's well-known dev key 0 and its address.
ANVIL_KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
ANVIL_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def libp2p_peer_id(data: bytes) -> str:
    return ID.from_pubkey(deserialize_private_key(data).get_public_key()).to_base58()


# -- node identity ---------------------------------------------------------------------------


def test_peer_id_of_a_fixed_key_is_libp2ps() -> None:
    assert identity.peer_id_from_private_key(KEY_FILE) == FIXED_PEER_ID
    assert libp2p_peer_id(KEY_FILE) == FIXED_PEER_ID


def test_keys_made_by_libp2p_load_and_give_libp2ps_peer_ids() -> None:
    for _ in range(20):
        pair = create_new_key_pair()
        data = pair.private_key.serialize()
        assert identity.load_private_key(data) == pair.private_key.to_bytes()
        assert (
            identity.peer_id_from_private_key(data) == ID.from_pubkey(pair.public_key).to_base58()
        )


def test_generated_keys_are_libp2ps_format() -> None:
    for _ in range(20):
        data = identity.generate_private_key()
        key = deserialize_private_key(data)
        assert key.serialize() == data  # the same on-disk bytes libp2p writes
        assert identity.peer_id_from_private_key(data) == libp2p_peer_id(data)
        assert identity.key_pair_from_private_key(data).private_key.serialize() == data


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "missing key type"),
        (b"\x08\x01", "missing key type or key data"),
        (b"\x08\x01\x12\x20" + b"\x00" * 31, "truncated field"),
        (b"\x08\x01\x12\x10" + b"\x00" * 16, "seed is 16 bytes"),
        (b"\x08\x02\x12\x21" + b"\x02" * 33, "unsupported key type Secp256k1"),
        (b"\x08\x00\x12\x01\x00", "unsupported key type RSA"),
        (b"\x0d\x00\x00\x00\x00", "unexpected wire type 5"),
        (b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", "varint"),
        (b"\x00" * 5000, "5000 bytes"),
    ],
)
def test_bad_keys_are_refused_by_name(data: bytes, needle: str) -> None:
    with pytest.raises(IdentityError, match=needle):
        identity.load_private_key(data)


def test_cli_key_paths_import_neither_libp2p_nor_eth_account() -> None:
    code = (
        "import sys, json\n"
        "import fluxnode.node.datadir, fluxnode.p2p.identity, fluxnode.chain.records\n"
        "import fluxnode.chain.keys, fluxnode.node.cli\n"
        "print(json.dumps(sorted(m for m in ('libp2p', 'trio', 'eth_account', 'web3', 'py_ecc')"
        " if m in sys.modules)))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUX_")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert json.loads(out.stdout) == []


# -- wallet signing --------------------------------------------------------------------------


def eth_account_signature(secret: bytes, text: str) -> bytes:
    return bytes(Account.from_key(secret).sign_message(encode_defunct(text=text)).signature)


def test_anvil_key_address_and_signature_match_eth_account() -> None:
    wallet = WalletKey.from_secret(ANVIL_KEY)
    assert wallet.address == ANVIL_ADDRESS
    text = "flux world record\nseq: 1\n"
    sig = wallet.sign_personal(text)
    assert sig == eth_account_signature(ANVIL_KEY, text)
    assert recover_address(text, sig) == ANVIL_ADDRESS
    assert "ac0974" not in repr(wallet)  # the key never shows in a repr


@settings(max_examples=60, deadline=None)
@given(
    secret=st.integers(min_value=1, max_value=SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big")),
    text=st.text(max_size=300),
)
def test_signatures_are_byte_identical_to_eth_accounts(secret: bytes, text: str) -> None:
    wallet = WalletKey.from_secret(secret)
    assert wallet.address == Account.from_key(secret).address
    sig = wallet.sign_personal(text)
    assert sig == eth_account_signature(secret, text)
    assert recover_address(text, sig) == wallet.address


def test_sign_record_is_the_same_with_either_key_and_verifies() -> None:
    account = Account.from_key(ANVIL_KEY)
    wallet = WalletKey.from_secret(ANVIL_KEY)
    fields = {
        "world_id": f"{ANVIL_ADDRESS.lower()}/plaza",
        "cid": "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354",
        "seq": 3,
        "visibility": "public",
        "issued_at": 1_767_225_600,
    }
    ours = sign_record(account=wallet, **fields)
    theirs = sign_record(account=account, **fields)
    assert ours.to_wire() == theirs.to_wire()
    assert recover_owner(ours) == ANVIL_ADDRESS
    asyncio.run(verify_record(ours, oracle=None, now=1_767_225_600))


@pytest.mark.parametrize("secret", [0, SECP256K1_N, SECP256K1_N + 1])
def test_out_of_range_keys_are_refused(tmp_path: Path, secret: int) -> None:
    key = tmp_path / "k"
    key.write_text(f"0x{secret:064x}\n")
    key.chmod(0o600)
    with pytest.raises(KeyFileError, match="not hold a valid secp256k1 private key"):
        load_wallet_key(key, env_var="FLUX_TEST_KEY")
    with pytest.raises(ValueError, match="not a secp256k1 private key"):
        WalletKey.from_secret(secret.to_bytes(32, "big"))


def test_key_file_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = tmp_path / "k"
    key.write_text(ANVIL_KEY.hex())
    key.chmod(0o644)
    with pytest.raises(KeyFileError, match="too open"):
        read_key_secret(key, "FLUX_TEST_KEY")
    key.chmod(0o600)
    assert load_wallet_key(key, "FLUX_TEST_KEY").address == ANVIL_ADDRESS
    monkeypatch.delenv("FLUX_TEST_KEY", raising=False)
    with pytest.raises(KeyFileError, match="set FLUX_TEST_KEY"):
        read_key_secret(None, "FLUX_TEST_KEY")
    monkeypatch.setenv("FLUX_TEST_KEY", "0x" + ANVIL_KEY.hex())
    assert read_key_secret(None, "FLUX_TEST_KEY") == (
        ANVIL_KEY,
        "environment variable FLUX_TEST_KEY",
    )
    monkeypatch.setenv("FLUX_TEST_KEY", "not hex")
    with pytest.raises(KeyFileError, match="32-byte hex"):
        read_key_secret(None, "FLUX_TEST_KEY")


# -- recovery --------------------------------------------------------------------------------


def eth_account_recovery(text: str, sig: bytes) -> str | None:
    try:
        return recover_address(text, sig)
    except SiweError:
        return None


def ours(text: str, sig: bytes) -> str | None:
    try:
        return recover_personal(text, sig)
    except ValueError:
        return None


@settings(max_examples=300, deadline=None)
@given(
    rs=st.binary(min_size=64, max_size=64)
    | st.tuples(
        st.sampled_from([0, 1, SECP256K1_N - 1, SECP256K1_N, 2**256 - 1]),
        st.integers(min_value=0, max_value=2**256 - 1),
    ).map(lambda t: t[0].to_bytes(32, "big") + t[1].to_bytes(32, "big")),
    v=st.sampled_from([0, 1, 2, 26, 27, 28, 29, 255]),
    text=st.text(max_size=50),
)
def test_recovery_agrees_with_eth_account_on_any_signature(rs: bytes, v: int, text: str) -> None:
    sig = rs + bytes([v])
    assert ours(text, sig) == eth_account_recovery(text, sig)


def test_recovery_of_real_and_malleated_signatures_agrees() -> None:
    text = "flux world record\n"
    sig = WalletKey.from_secret(ANVIL_KEY).sign_personal(text)
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    high_s = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # the twin (s, v)
    for candidate in (sig, sig[:64] + bytes([v - 27]), high_s):
        assert ours(text, candidate) == eth_account_recovery(text, candidate)
    assert ours(text, sig) == ANVIL_ADDRESS
    with pytest.raises(ValueError, match="65 bytes"):
        recover_personal(text, sig[:64])

"""keccak-256 and EIP-55 checksums (fluxnode.core.siwe.address), against eth-utils."""

from __future__ import annotations

import os

import pytest
from eth_utils.address import to_checksum_address as ref_checksum
from eth_utils.crypto import keccak as ref_keccak
from hypothesis import given
from hypothesis import strategies as st

from fluxnode.core.siwe import (
    is_checksum_address,
    keccak256,
    to_checksum_address,
)

# -- keccak / EIP-55 ---------------------------------------------------------------------------


def test_keccak256_known_vectors() -> None:
    empty = "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak256(b"").hex() == empty
    abc = "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
    assert keccak256(b"abc").hex() == abc


@given(st.binary(max_size=600))
def test_keccak256_matches_eth_utils(data: bytes) -> None:
    assert keccak256(data) == ref_keccak(data)


def test_keccak256_at_rate_boundaries() -> None:
    for n in (135, 136, 137, 271, 272, 273):
        data = os.urandom(n)
        assert keccak256(data) == ref_keccak(data), n


@pytest.mark.parametrize(
    "address",
    [  # the examples of EIP-55
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ],
)
def test_eip55_examples(address: str) -> None:
    assert to_checksum_address(address.lower()) == address
    assert to_checksum_address(address.upper().replace("0X", "0x")) == address
    assert is_checksum_address(address)
    assert not is_checksum_address(address.lower())


@given(st.binary(min_size=20, max_size=20))
def test_checksum_matches_eth_utils(raw: bytes) -> None:
    assert to_checksum_address("0x" + raw.hex()) == ref_checksum("0x" + raw.hex())

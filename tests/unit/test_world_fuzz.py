"""world.json fuzzing: random bytes, documents and mutations only raise WorldManifestInvalid."""

from __future__ import annotations

import json
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluxnode.core.world import (
    WorldManifest,
    check_relative_path,
)
from tests.unit.world_samples import (
    VALID,
    encode,
    json_values,
    mutations,
    parses_or_is_invalid,
)

# --- fuzzing ---------------------------------------------------------------------------------


@given(st.binary(max_size=512))
def test_random_bytes_only_ever_raise_world_manifest_invalid(raw: bytes) -> None:
    parses_or_is_invalid(raw)


@given(st.one_of(json_values, st.dictionaries(st.sampled_from(sorted(VALID)), json_values)))
def test_random_json_only_ever_raises_world_manifest_invalid(doc: object) -> None:
    parses_or_is_invalid(json.dumps(doc).encode())


@given(st.sampled_from([b"NaN", b"Infinity", b"1e400", b"[", b"}", b'"\\ud800"', b",", b"\xff"]))
def test_spliced_garbage_only_ever_raises_world_manifest_invalid(junk: bytes) -> None:
    raw = encode(VALID)
    for at in range(0, len(raw), 37):
        parses_or_is_invalid(raw[:at] + junk + raw[at:])


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_mutations_of_a_valid_manifest_are_valid_or_invalid_never_a_crash(doc: object) -> None:
    result = parses_or_is_invalid(encode(doc))
    if isinstance(result, WorldManifest):
        for path in result.asset_paths():
            assert check_relative_path(path) is None


def test_adversarial_inputs_stay_fast() -> None:
    started = time.monotonic()
    for raw in [
        b"[" * (1 << 20),
        b'"\\' * (1 << 19),
        b'"' * (1 << 20),
        b"[" + b'"\\"' * (1 << 18),
        b"[" + b"1," * ((1 << 19) - 2) + b"1]",
        b'{"a": 1, ' + b'"b": NaN, ' * 90_000 + b'"c": 2}',
    ]:
        parses_or_is_invalid(raw[: 1 << 20])
    assert time.monotonic() - started < 20

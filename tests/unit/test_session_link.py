"""`/flux/session/1` without sockets: framing limits and the per-peer inbound budgets."""

from __future__ import annotations

import pytest

from fluxnode.core.cid import encode_varint
from fluxnode.core.errors import FrameInvalid
from fluxnode.p2p.session_frames import (
    MAX_LINK_FRAME,
    InboundLimiter,
    LinkFrameDecoder,
    SessionLinkLimits,
    encode_frames,
)


def test_frames_round_trip_in_order_whatever_the_chunking() -> None:
    frames = [b"", b"a", b"x" * 200, b"y" * MAX_LINK_FRAME, b"end"]
    wire = encode_frames(frames)
    for step in (1, 2, 3, 7, 1000, len(wire)):
        decoder = LinkFrameDecoder()
        got: list[bytes] = []
        for i in range(0, len(wire), step):
            got += decoder.feed(wire[i : i + step])
        assert got == frames
        assert decoder.at_boundary()


def test_a_partial_frame_is_buffered_not_delivered() -> None:
    decoder = LinkFrameDecoder()
    assert decoder.feed(encode_varint(10) + b"12345") == []
    assert not decoder.at_boundary()
    assert decoder.feed(b"67890") == [b"1234567890"]
    assert decoder.at_boundary()


def test_encoding_refuses_a_frame_over_the_max_and_encodes_nothing() -> None:
    with pytest.raises(FrameInvalid, match="exceeds"):
        encode_frames([b"ok", b"z" * (MAX_LINK_FRAME + 1)])


def test_an_oversized_length_prefix_is_refused_before_its_body_arrives() -> None:
    decoder = LinkFrameDecoder()
    assert decoder.feed(encode_varint(MAX_LINK_FRAME + 1)) == []
    assert isinstance(decoder.error, FrameInvalid)
    assert "exceeds" in str(decoder.error)
    assert decoder.buffered == 0
    assert not decoder.at_boundary()


def test_a_length_prefix_longer_than_any_allowed_is_refused_at_once() -> None:
    decoder = LinkFrameDecoder()
    decoder.feed(b"\xff\xff\xff")  # three continuation bytes: >= 2**21
    assert isinstance(decoder.error, FrameInvalid)
    assert "prefix exceeds" in str(decoder.error)


def test_a_non_minimal_length_prefix_is_refused() -> None:
    decoder = LinkFrameDecoder()
    decoder.feed(b"\x81\x00")
    assert isinstance(decoder.error, FrameInvalid)


def test_frames_before_a_refused_prefix_arrive_and_none_after_it() -> None:
    wire = encode_frames([b"good"]) + encode_varint(MAX_LINK_FRAME + 1) + encode_frames([b"late"])
    decoder = LinkFrameDecoder()
    assert decoder.feed(wire) == [b"good"]
    assert decoder.error is not None
    assert decoder.feed(encode_frames([b"later"])) == []


def test_a_flooding_peer_is_cut_to_its_burst_while_another_flows() -> None:
    limits = SessionLinkLimits(frames_per_s=10, frame_burst=20)
    limiter = InboundLimiter(limits)
    flood = [limiter.admit("flood", 100, now=0.0) for _ in range(100)]
    calm = [limiter.admit("calm", 100, now=0.0) for _ in range(20)]
    assert flood.count(True) == 20
    assert all(calm)
    assert limiter.dropped_by("flood") == 80
    assert limiter.dropped_by("calm") == 0
    assert limiter.dropped == 80
    # One second later the flooder has earned `frames_per_s` more, no more.
    assert [limiter.admit("flood", 100, now=1.0) for _ in range(15)].count(True) == 10


def test_the_byte_budget_drops_large_frames_and_a_refusal_costs_no_frame_token() -> None:
    limits = SessionLinkLimits(
        frames_per_s=1000, frame_burst=1000, bytes_per_s=MAX_LINK_FRAME, byte_burst=MAX_LINK_FRAME
    )
    limiter = InboundLimiter(limits)
    assert limiter.admit("p", MAX_LINK_FRAME, now=0.0)
    assert not limiter.admit("p", MAX_LINK_FRAME, now=0.0)
    assert limiter.dropped_by("p") == 1
    assert not limiter.admit("p", 1, now=0.0)  # no byte left, however many frames are
    assert limiter.admit("p", 64, now=0.001)  # 65.5 bytes earned in 1 ms


def test_forgetting_a_peer_clears_its_counts() -> None:
    limiter = InboundLimiter(SessionLinkLimits(frames_per_s=1, frame_burst=1))
    limiter.admit("p", 1, 0.0)
    limiter.admit("p", 1, 0.0)
    assert limiter.peers() == ("p",)
    limiter.forget("p")
    assert limiter.peers() == ()
    assert limiter.dropped_by("p") == 0
    assert limiter.dropped == 1  # the total keeps what happened


@pytest.mark.parametrize(
    "kwargs",
    [{"byte_burst": MAX_LINK_FRAME - 1}, {"send_queue": 0}, {"max_streams_per_peer": 0}],
)
def test_limits_that_could_never_work_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        SessionLinkLimits(**kwargs)  # type: ignore[arg-type]


def test_a_frame_refused_for_bytes_does_not_spend_a_frame_token() -> None:
    limits = SessionLinkLimits(
        frames_per_s=0.001, frame_burst=2, bytes_per_s=MAX_LINK_FRAME, byte_burst=MAX_LINK_FRAME
    )
    limiter = InboundLimiter(limits)
    assert limiter.admit("p", MAX_LINK_FRAME, now=0.0)
    assert not limiter.admit("p", MAX_LINK_FRAME, now=0.0)  # out of bytes, 1 frame token left
    # A second later the bytes are back; the frame token the refusal did not take is still there.
    assert limiter.admit("p", MAX_LINK_FRAME, now=1.0)
    assert not limiter.admit("p", 1, now=1.0)  # and now the frame tokens are spent

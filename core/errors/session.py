"""Errors of live sessions: frames, state ops, transforms, chat, seats, entry proofs, bans."""

from __future__ import annotations

from fluxnode.core.errors.base import LocalError, ReasonError, RemoteError

# --- live sessions (fluxnode.core.session) ----------------------------------------------------


class SessionError(RemoteError):
    """Base for bad input on a live session: frames, state operations, transforms, chat."""

    code = "session_error"


class FrameInvalid(SessionError):
    """A session frame is malformed, oversized, of an unknown type or has a bad field."""

    code = "frame_invalid"


class OpRejected(SessionError):
    """A world-state operation failed its signature, bounds or permission check."""

    code = "op_rejected"
    http_status = 403


class TransformRejected(SessionError):
    """An avatar transform is out of bounds (not finite, outside the world, too fast, too often)."""

    code = "transform_rejected"


class ChatRejected(SessionError):
    """A chat message is empty, too long or over the sender's rate."""

    code = "chat_rejected"


class RateLimited(SessionError):
    """A visitor (or peer) sent more of something than its rate allows: try again later.
    Nothing of the refused request was kept."""

    code = "rate_limited"
    http_status = 429


class SignalRefused(SessionError):
    """A WebRTC `Signal` was not forwarded: the peer is not in the sender's instance, the link
    is not in its mesh plan, the sender is over its signalling rate, or there is no such
    channel on this node."""

    code = "signal_refused"


class SilenceRefused(SessionError):
    """A `Silence` was not applied: its author is not the world owner's visitor, its
    signature does not check, or it is for another instance or an unknown visitor."""

    code = "silence_refused"
    http_status = 403


class SeatUnavailable(SessionError):
    """No seat can be had in this instance (full as far as this node knows, or not a member)."""

    code = "seat_unavailable"
    http_status = 409


# -- entering a world: entry proofs, session keys, owner bans (fluxnode.core.session) ----------


class EntryProofInvalid(ReasonError, SessionError):
    """An entry proof (the visitor's signed SIWE message naming a session key) is malformed,
    refused (wrong domain/chain, expired, nonce spent, not the wallet's signature) or cannot
    be checked now (``chain_unavailable``, 503). `reason` names the failed rule."""

    code = "entry_proof_invalid"


class TokenInvalid(SessionError):
    """A light client's session token (`POST /api/auth/verify`) is missing, malformed, unknown
    to this node or expired: sign in again."""

    code = "token_invalid"
    http_status = 401


class SessionSignatureInvalid(SessionError):
    """Something that must be signed by the visitor's session key (Ed25519) is not."""

    code = "session_signature_invalid"
    http_status = 401


class BanListInvalid(ReasonError, RemoteError):
    """An owner-signed ban list is malformed, forged or not signed by the world's owner.

    `reason`: ``malformed``, ``too_large``, ``bad_signature``, ``signer_mismatch``,
    ``not_world_owner``, ``from_future``, ``chain_unavailable``; and when a node is handed
    one to publish: ``stale`` (not newer than the list it holds), ``full`` (it holds lists of
    as many worlds as it keeps).
    """

    code = "ban_list_invalid"


# -- the visitor's side of a session (fluxnode.client) -----------------------------------------


class SessionDenied(SessionError):
    """The node refused the sign-in (a `Denied` frame after `Hello`); `reason` is its text,
    e.g. ``denied: entry proof refused (nonce_reused)``."""

    code = "session_denied"
    http_status = 403

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class JoinDenied(SessionDenied):
    """The node refused to seat the visitor in a world (`Denied` after `Join`), e.g.
    ``denied: no valid ticket for this world``, or redirected it a second time."""

    code = "join_denied"


class SessionLost(SessionError):
    """The connection to the node could not be opened, closed, or the node broke the protocol
    (garbage or an unexpected frame where the handshake needs a particular one)."""

    code = "session_lost"
    http_status = 502


class NoManifest(LocalError):
    """The visitor was asked to interact but has no manifest of the world to plan the op with."""

    code = "no_manifest"

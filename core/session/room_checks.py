"""Signature checks of one room: who may sign which state ops and chat lines.

A state op must be signed by its clock actor's session key (a visitor id is that key) and its
``author`` must be the address that actor's entry proof proved. The room learns those bindings
from its own sign-ins and from members' `VisitorIn` frames (whose proofs the edge verified), and
keeps them after the visitor leaves, so its late ops still check. For ops in a late joiner's
`StateSync` whose actor left before we saw its proof, the address cannot be checked: such ops
are taken only on objects without an ``owner`` (where any address may write anyway), so a lying
member can never write an owned object in someone else's name. Chat lines name their author by
visitor id, so their key is always known.
"""

from __future__ import annotations

import collections
from typing import Final

from fluxnode.core.session.chat import ChatMessage
from fluxnode.core.session.entry import SessionVerify
from fluxnode.core.session.state import StateOp
from fluxnode.core.session.visitors import session_key_of
from fluxnode.core.world import WorldManifest

MAX_BINDINGS: Final = 4096  # visitor id -> address remembered per room, departed visitors too


class Signatures:
    def __init__(self, manifest: WorldManifest, verify_session: SessionVerify) -> None:
        self._verify_session = verify_session
        self._owners = {o.id: o.permissions.owner for o in manifest.objects}
        self._bindings: collections.OrderedDict[str, tuple[str, bytes]] = collections.OrderedDict()
        self.syncing = False  # set while a member's StateSync is loaded

    def bind(self, visitor: str, author: str, key: bytes) -> None:
        """`visitor`'s entry proof (verified at the edge) names `author` (lower-case)."""
        self._bindings[visitor] = (author, key)
        self._bindings.move_to_end(visitor)
        while len(self._bindings) > MAX_BINDINGS:
            self._bindings.popitem(last=False)

    def verify_op(self, op: StateOp) -> bool:
        actor = op.hlc.actor
        bound = self._bindings.get(actor)
        if bound is not None:
            author, key = bound
            if author != op.author:
                return False
        else:
            unbound_key = session_key_of(actor) if isinstance(actor, str) else None
            if not self.syncing or unbound_key is None or self._owners.get(op.object_id):
                return False
            key = unbound_key
        return self._verify_session(key, op.signing_bytes(), op.signature)

    def verify_chat(self, message: ChatMessage) -> bool:
        key = session_key_of(message.author)
        return key is not None and self._verify_session(
            key, message.signing_bytes(), message.signature
        )

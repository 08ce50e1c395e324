"""Moderation on a running node: owners' ban lists, the operator's address denylist and
visitors' reports, in one object the daemon holds (`Node.moderation`) and the session engine
asks.

- `bans` (`BanDirectory`): owner-signed ban lists, gossiped on `BANS_TOPIC` and kept in
  `bans.db`; `publish_bans` takes one from the admin socket, stores it, then gossips it.
- `denied` : the addresses of `session.deny_addresses`, loaded once at start (a malformed file
  is a ConfigError and the node does not start).
- `reports` (`ReportsStore`): what visitors reported, in `reports.db`, for `flux-node reports`.

`refusal(world_id, address)` is the one question the session engine asks on join and on
every frame: None, or why this address may not be in this world on this node.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fluxnode.core.errors import BadRequest
from fluxnode.node.bans import BANS_DB, BANS_TOPIC, BanDirectory, BanStore
from fluxnode.node.config import Config
from fluxnode.node.denylist_files import load_address_denylist
from fluxnode.node.reports_store import REPORTS_DB, ReportsStore

if TYPE_CHECKING:
    from fluxnode.chain.oracle import Oracle

__all__ = ["BANNED_BY_OWNER", "DENIED_BY_OPERATOR", "Moderation"]

#: Refusal reasons, as a visitor is told them.
BANNED_BY_OWNER = "banned from this world by its owner"
DENIED_BY_OPERATOR = "this node's operator does not admit this address"


class Moderation:
    def __init__(
        self,
        cfg: Config,
        *,
        oracle: Oracle | None,
        own_peer_id: str,
        publish: Callable[[str, bytes], Awaitable[None]],
    ) -> None:
        self.denied = load_address_denylist(cfg)
        self.bans = BanDirectory(
            oracle=oracle, own_peer_id=own_peer_id, store=BanStore(cfg.data_dir / BANS_DB)
        )
        self.reports = ReportsStore(cfg.data_dir / REPORTS_DB, max_rows=cfg.session.reports_max)
        self._publish = publish

    async def load(self) -> None:
        """Before gossip is validated: a restart must know every ban list it held."""
        await self.bans.load()

    def refusal(self, world_id: str, address: str) -> str | None:
        """Why `address` may not be in `world_id` through this node, or None. Sync, in memory."""
        if address.lower() in self.denied:
            return DENIED_BY_OPERATOR
        if self.bans.is_banned(world_id, address):
            return BANNED_BY_OWNER
        return None

    async def publish_bans(self, wire: bytes) -> dict[str, Any]:
        """Check and store a ban list (BanListInvalid if refused), then gossip it."""
        ban_list = await self.bans.publish_local(wire)
        await self._publish(BANS_TOPIC, ban_list.to_wire())
        return {"world_id": ban_list.world_id, "seq": ban_list.seq, "banned": len(ban_list.banned)}

    def ban_list(self, world_id: str) -> dict[str, Any] | None:
        return self.bans.describe(world_id)

    async def report_list(self, world_id: str | None, limit: int) -> list[dict[str, Any]]:
        if world_id is not None and not world_id:
            raise BadRequest("world must not be empty")
        return [r.to_json() for r in await self.reports.list(world_id, limit=limit)]

    def statistics(self) -> dict[str, Any]:
        return {
            "bans": self.bans.statistics(),
            "denied_addresses": len(self.denied),
            "reports": {"added": self.reports.added, "rate_limited": self.reports.rate_limited},
        }

    async def aclose(self) -> None:
        if self.bans.store is not None:
            await self.bans.store.aclose()
        await self.reports.aclose()

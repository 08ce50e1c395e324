"""The running node's answer to `flux-node status` (GET /v0/status on the admin socket).

One JSON object. Programs read it (`flux-node status --json`, tests), and `status_table`
renders it for a terminal. Fields are only ever added, never renamed or removed, so callers
written against an older node keep working.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fluxnode.core.replication import Replicas
from fluxnode.core.session.hub import SessionHub
from fluxnode.storage.repo import Repo

if TYPE_CHECKING:
    from fluxnode.node.daemon import Node


async def gather(node: Node) -> dict[str, Any]:
    data = (await node.status()).to_json()
    data["bridge"] = asdict(node.host.statistics())
    data["loops"] = node.loops.statistics()
    if node.chain is not None:
        endpoints = node.chain.pool.statistics()
        data["chain"] = {
            "last_indexed_block": node.chain.index.last_block,
            "endpoints": endpoints,
            "oracle": asdict(node.chain.oracle.stats),
            "healthy_endpoints": sum(1 for e in endpoints if e.get("state") == "healthy"),
        }
    if node.hosting is not None:
        hosting = node.hosting
        data["hosting"] = {
            "mode": hosting.policy.mode.value,
            **asdict(hosting.stats),
            "claims": {r.peer_id: sorted(r.cids) for r in hosting.table.live(time.time())},
            "failed_claims": hosting.table.failures(),
            "target": hosting.policy.replication,
            "replicas": replicas_json(await hosting.replicas()),
            "fetched_blocks": hosting.fetch_meter.blocks,
            "fetched_bytes": hosting.fetch_meter.bytes,
        }
    data["announce"] = asdict(node.announce)
    data["worlds"] = {
        "known": len(node.worlds.book),
        **asdict(node.worlds.stats),
        "rejections": dict(node.worlds.rejections),
    }
    data.update(node.moderation.statistics())  # "bans", "denied_addresses", "reports"
    if node.sessions is not None:
        data["sessions"] = {
            **node.sessions.statistics(),
            "instances": instances_json(node.sessions.hub),
        }
    if node.repo is not None:
        data["disk"] = await asyncio.to_thread(disk_json, node.repo, node.cfg.data_dir)
    return data


def replicas_json(replicas: list[Replicas]) -> list[dict[str, Any]]:
    return [
        {
            "world_id": r.world_id,
            "cid": r.cid,
            "replicas": len(r.holders),
            "target": r.target,
            "holders": list(r.holders),
            "hosted_here": r.hosted_here,
            "current": r.current,
        }
        for r in replicas
    ]


def instances_json(hub: SessionHub) -> list[dict[str, Any]]:
    """This node's part of each open instance: its own seated visitors and the ones other
    member nodes relay."""
    return [
        {
            "world_id": room.world.world_id,
            "instance": room.instance,
            "visitors_local": sum(1 for v in room.local.values() if v.seated),
            "visitors_remote": len(room.remote),
            "capacity": room.world.capacity,
            "member_nodes": len(room.seats.members),
        }
        for room in sorted(hub.rooms.values(), key=lambda r: (r.world.world_id, r.instance))
    ]


def disk_json(repo: Repo, data_dir: Path) -> dict[str, Any]:
    """The block store's bytes against its quota, and the file system's own free space (a
    quota larger than the disk is no promise). Runs in a worker thread. The store is counted
    afresh, not from the size this process tracks: CLI commands (`add`, `publish`) write to
    the same store from other processes."""
    st = repo.stat()
    used, quota = st.bytes, st.quota
    return {
        "used_bytes": used,
        "blocks": st.blocks,
        "max_bytes": quota,
        "free_bytes": None if quota is None else max(0, quota - used),
        "fs_free_bytes": shutil.disk_usage(data_dir).free,
        "pins": len(repo.pins.list()),
    }

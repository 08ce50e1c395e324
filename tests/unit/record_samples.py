"""Sample world records for the record and record-book tests: accounts, ids, signed records."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from fluxnode.chain.records import sign_record
from fluxnode.core.cid import Cid
from fluxnode.core.world import Visibility
from fluxnode.core.world_record import UnsignedRecord, WorldRecord

CID_V0 = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
CID_V1 = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
OWNER = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
FAKE_SIG = bytes(range(64)) + b"\x1b"


def new_account() -> LocalAccount:
    acct: LocalAccount = Account.create()
    return acct


def personal_id(acct: LocalAccount, slug: str = "my-world") -> str:
    return f"{acct.address.lower()}/{slug}"


def signed(acct: LocalAccount, **kw: Any) -> WorldRecord:
    args: dict[str, Any] = {
        "world_id": personal_id(acct),
        "cid": CID_V1,
        "seq": 1,
        "visibility": "public",
        "issued_at": NOW,
    }
    args.update(kw)
    return sign_record(account=acct, **args)


def unsigned(**kw: Any) -> UnsignedRecord:
    args: dict[str, Any] = {
        "world_id": f"{OWNER.lower()}/plaza",
        "cid": Cid.parse(CID_V0),
        "seq": 7,
        "visibility": Visibility.PRIVATE,
        "access": ("0x" + "11" * 20, "0x" + "ab" * 20),
        "owner": OWNER,
        "issued_at": NOW,
    }
    args.update(kw)
    return UnsignedRecord(**args)

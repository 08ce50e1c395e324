"""The node's logging: text or JSON lines on stderr, and never a secret in either.

Secrets reach log lines by accident (an exception message quoting a request body, a debug line
printing a dict), so rather than trusting every call site, one filter on the handler rewrites
every record, its traceback included, before any formatter sees it. What it removes: anything
shaped like a secp256k1 private key (32 bytes of hex, with or without 0x), signatures (65 or
more bytes of 0x hex: SIWE/EIP-191/EIP-1271), bearer tokens, and the values of fields named
like tokens, signatures or private keys (`token=…`, `"signature": "…"`).
"""

from __future__ import annotations

import enum
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import IO, Any

REDACTED = "[REDACTED]"


class LogFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_HEX = "0-9a-fA-F"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # `Authorization: Bearer <token>`, or a bare "Bearer <token>".
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"), rf"\1{REDACTED}"),
    # A named secret: token=…, "session_token": "…", 'signature': '…', private_key=…
    (
        re.compile(
            r"(?i)((?:\b|_)(?:[a-z]+_)?(?:token|signature|private_key|secret|password)"
            r"""["']?\s*[:=]\s*["']?)[^\s"',;&)}\]]+"""
        ),
        rf"\1{REDACTED}",
    ),
    # Signatures: 65 bytes (r, s, v) or longer (EIP-1271 contract wallets).
    (re.compile(rf"(?<![{_HEX}x])0x[{_HEX}]{{130,}}(?![{_HEX}])"), REDACTED),
    # A private key's shape: exactly 32 bytes of hex (this also hides 32-byte hashes such as
    # transaction hashes: a price worth paying, since a leaked key cannot be taken back).
    (re.compile(rf"(?<![{_HEX}x])(?:0x)?[{_HEX}]{{64}}(?![{_HEX}])"), REDACTED),
)


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites each record in place: the formatted message, the traceback and the stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a call with the wrong arguments: keep what we can
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts (UTC, ISO 8601), level, logger, message, and exc when the
    record carries a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)


def make_handler(fmt: LogFormat, stream: IO[str] | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(RedactSecrets())
    handler.setFormatter(
        JsonFormatter() if fmt is LogFormat.JSON else logging.Formatter(TEXT_FORMAT)
    )
    return handler


def configure_logging(level: str, fmt: LogFormat, stream: IO[str] | None = None) -> None:
    """The root logger writes through one redacting handler (replacing any there were)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(make_handler(fmt, stream))
    root.setLevel(level.upper())

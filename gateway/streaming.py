"""Sending a body that a blocking iterator produces (file bytes, a CAR), honestly.

Until the status line is out, a failure can still be answered with a JSON error: so the first
chunk is produced before the headers are sent, which catches a bad first block (and every
error of the set-up) as a proper error status. After that the client has been promised a body —
a Content-Length, or chunked encoding whose terminating chunk means "complete" — and no status
can be taken back: a failure then closes the connection without the missing bytes or the final
chunk, so the client sees a truncated transfer, never a clean end and never error text inside
the content. Such a failure is logged once, without a traceback. A client that stops reading
for `write_stall_s` is dropped the same way; a client that goes away is logged at debug level.

A part may be a `FileRegion` (a range of a block file verified before): it goes out with
sendfile(2), no copy through Python, and its file is checked again after the send; a file that
changed meanwhile cuts the transfer like any other failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import TypeVar

from aiohttp import web

from fluxnode.core.content import FileRegion
from fluxnode.core.errors import BlockCorrupted, FluxError
from fluxnode.gateway.errors import client_gone

log = logging.getLogger("fluxnode.gateway")

T = TypeVar("T")
Part = bytes | FileRegion
#: File regions one thread hop produces at most.
MAX_REGIONS = 16


async def in_thread(fn: Callable[..., T], *args: object) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def _next_batch(chunks: Iterator[Part]) -> list[Part]:
    """The next parts, up to MAX_REGIONS file regions (which hold no memory and no open file)
    and at most one chunk of bytes, which ends the batch: one thread hop per batch, and at most
    two chunks in memory per response (this one and the one read ahead)."""
    batch: list[Part] = []
    for chunk in chunks:
        if not chunk:
            continue
        batch.append(chunk)
        if isinstance(chunk, bytes) or len(batch) >= MAX_REGIONS:
            break
    return batch


def _quiet(future: asyncio.Future[list[Part]]) -> None:
    """A read-ahead nobody awaits any more (the response ended first): its error is moot."""
    if not future.cancelled():
        future.exception()


async def _send_region(request: web.BaseRequest, region: FileRegion) -> None:
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client's connection is closed")
    # Opening a block file that is in the page cache takes microseconds: done on the loop, so
    # that a batch of regions holds no open files while it waits.
    with open(region.path, "rb") as file:  # noqa: ASYNC230 (see above)
        if not region.verified(file):
            raise BlockCorrupted("a block file changed on disk since it was verified")
        loop = asyncio.get_running_loop()
        try:
            await loop.sendfile(transport, file, region.offset, region.count)
        except (BrokenPipeError, ConnectionResetError):
            # The socket says the client went away; the transport has not noticed yet (it
            # does on its own writes only). Close it, so this is logged as a departure.
            transport.abort()
            raise
        if not region.verified(file):
            raise BlockCorrupted("a block file changed on disk while it was sent; transfer cut")


def _drop(request: web.BaseRequest, *, reset: bool = False) -> None:
    """Close the connection: what was sent stays the client's; what was promised never comes.
    aiohttp's own attempt to finish the response then fails on the closed transport, quietly.
    `reset` discards unsent bytes at once: for a client that does not read, a graceful close
    would wait for it to drain them and so keep the connection alive."""
    transport = request.transport
    if reset and transport is not None:
        transport.abort()
    request.protocol.force_close()


async def stream(
    request: web.Request,
    resp: web.StreamResponse,
    chunks: Iterator[Part],
    write_stall_s: float,
) -> web.StreamResponse:
    ahead: asyncio.Future[list[Part]] | None = None
    try:
        if request.method == "HEAD":
            await resp.prepare(request)
            return resp
        batch = await in_thread(_next_batch, chunks)  # a failure here is still a JSON error
        await resp.prepare(request)
        sent = 0
        try:
            while batch:
                # Read the next batch while this one goes out.
                ahead = asyncio.ensure_future(in_thread(_next_batch, chunks))
                for part in batch:
                    async with asyncio.timeout(write_stall_s):
                        if isinstance(part, FileRegion):
                            await _send_region(request, part)
                            sent += part.count
                        else:
                            await resp.write(part)
                            sent += len(part)
                batch, ahead = await ahead, None
            async with asyncio.timeout(write_stall_s):
                await resp.write_eof()
        except ConnectionError as exc:
            if client_gone(request):
                log.debug(
                    "%s %s: client left after %d bytes", request.method, _where(request), sent
                )
            else:
                log.warning(
                    "%s %s: response cut after %d bytes: %s",
                    request.method,
                    _where(request),
                    sent,
                    exc,
                )
                _drop(request)
        except TimeoutError:
            log.info(
                "%s %s: client took no data for %.0f s; dropped after %d bytes",
                request.method,
                _where(request),
                write_stall_s,
                sent,
            )
            _drop(request, reset=True)
        except FluxError as exc:
            log.warning(
                "%s %s: response cut after %d bytes: %s (%s)",
                request.method,
                _where(request),
                sent,
                exc,
                exc.code,
            )
            _drop(request)
        except Exception:
            log.exception(
                "%s %s: response cut after %d bytes", request.method, _where(request), sent
            )
            _drop(request)
        return resp
    finally:
        if ahead is not None:
            ahead.add_done_callback(_quiet)
        close = getattr(chunks, "close", None)
        # If the handler was cancelled while a worker thread runs the generator, it cannot be
        # closed from here (ValueError); it is then dropped when that thread is done with it.
        if close is not None:
            with contextlib.suppress(ValueError):
                close()


def _where(request: web.BaseRequest) -> str:
    # The raw path (a decoded one could carry a newline into the log), without the query
    # (it can carry credentials).
    return request.rel_url.raw_path

"""`GET /metrics`: Prometheus text exposition, written by prometheus-client.

Two parts. Request counters (by route template, method and status) and bytes served are
prometheus-client `Counter`s in a registry of this app (not the process-global one, so two
apps in one process, as in tests, count apart), updated by a middleware. The node's own numbers
(peers, pins, worlds, instances, visitors, chain health, bridge queue depths) are read at
scrape time through `MetricsSource.gauges` and exposed by a collector built for that scrape,
so a value is never older than the scrape and nothing is sampled in between.

Route labels are the route templates (`/api/worlds/{world_id}`), never raw paths, so the
number of series stays bounded whatever clients ask for; unmatched paths count as
`unmatched`, methods other than the usual seven as `other`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fluxnode.core.node_metrics import MetricsSource, NodeGauges

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

METRICS_KEY = web.AppKey("metrics", object)
SOURCE_KEY = web.AppKey("metrics_source", MetricsSource)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"))


class RequestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "flux_http_requests",
            "HTTP requests answered, by route template, method and status",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.bytes = Counter(
            "flux_http_response_bytes",
            "Response body bytes sent, by route template",
            ("route",),
            registry=self.registry,
        )

        self.sessions_dropped = Counter(
            "flux_session_clients_dropped",
            "Session WebSocket clients the gateway dropped, by reason (slow: frames not read)",
            ("reason",),
            registry=self.registry,
        )
        self.sessions_dropped.labels("slow")  # the series exists (at 0) before the first drop

        # Label children by key: `labels()` costs a lock and a string per call, and this runs
        # once a request. Bounded like the series (route templates x methods x statuses).
        self._children: dict[tuple[str, str, int], tuple[Counter, Counter]] = {}

    def observe(self, route: str, method: str, status: int, size: int) -> None:
        if method not in _METHODS:
            method = "other"  # any token is a method to aiohttp: keep the series bounded
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(route, method, str(status)), self.bytes.labels(route))
            self._children[key] = children
        children[0].inc()
        if size:
            children[1].inc(size)


def route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return "unmatched" if resource is None else resource.canonical


def response_size(response: web.StreamResponse) -> int:
    if response.prepared:
        return int(response.body_length)
    body = getattr(response, "body", None)
    return len(body) if isinstance(body, bytes | bytearray) else 0


class _GaugeCollector(Collector):
    def __init__(self, gauges: NodeGauges) -> None:
        self._g = gauges

    def collect(self) -> Iterator[Metric]:
        g = self._g
        simple = (
            ("flux_peers", "Connected libp2p peers", g.peers),
            ("flux_pins", "Pinned DAGs in the block store", g.pins),
            ("flux_worlds", "Worlds whose signed records this node holds", g.worlds),
            ("flux_instances", "Open instances in the gossiped directory", g.instances),
            ("flux_visitors", "Visitors in open instances (all nodes)", g.visitors),
            ("flux_local_visitors", "Visitors connected to this node", g.local_visitors),
            ("flux_node_channels", "Visitors' WebRTC channels to this node", g.node_channels),
        )
        for name, doc, value in simple:
            yield GaugeMetricFamily(name, doc, value=value)
        if g.chain_healthy is not None:
            yield GaugeMetricFamily(
                "flux_chain_healthy", "1 if the last chain read worked", value=int(g.chain_healthy)
            )
        if g.chain_head is not None:
            yield GaugeMetricFamily("flux_chain_head", "Newest block seen", value=g.chain_head)
        depth = GaugeMetricFamily(
            "flux_bridge_queue_depth", "Items waiting in a bridge queue", labels=("queue",)
        )
        for queue, n in sorted(g.bridge_queues.items()):
            depth.add_metric((queue,), n)
        yield depth
        dropped = GaugeMetricFamily(
            "flux_bridge_dropped", "Items a bridge queue dropped since start", labels=("queue",)
        )
        for queue, n in sorted(g.bridge_dropped.items()):
            dropped.add_metric((queue,), n)
        yield dropped


async def metrics(request: web.Request) -> web.Response:
    counters = request.app[METRICS_KEY]
    assert isinstance(counters, RequestMetrics)
    text = generate_latest(counters.registry)
    source = request.app.get(SOURCE_KEY)
    if source is not None:
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(_GaugeCollector(await source.gauges()))
        text += generate_latest(scrape)
    return web.Response(body=text, headers={"Content-Type": CONTENT_TYPE})


def add_metrics_route(
    app: web.Application, counters: RequestMetrics, source: MetricsSource | None
) -> None:
    app[METRICS_KEY] = counters
    if source is not None:
        app[SOURCE_KEY] = source
    app.router.add_get("/metrics", metrics)

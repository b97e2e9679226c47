// Prometheus metrics of one server: its own registry (so several servers in one process,
// as in tests, never share counters), Node process metrics, RPC and plain-route counts.
import { collectDefaultMetrics, Counter, Histogram, Registry } from "prom-client";
import type { PlainRoute } from "../http/plain.js";

export interface Metrics {
  readonly registry: Registry;
  observeRpc(service: string, method: string, code: string, seconds: number): void;
  /** Requests answered outside the Connect router; `route` must come from a small fixed set. */
  countHttp(route: string, method: string, status: number): void;
  /** GET /metrics. */
  readonly route: PlainRoute;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const rpcRequests = new Counter({
    name: "identity_rpc_requests_total",
    help: "RPCs handled, by service, method and Connect code (ok for success).",
    labelNames: ["service", "method", "code"] as const,
    registers: [registry],
  });
  const rpcDuration = new Histogram({
    name: "identity_rpc_duration_seconds",
    help: "Time from an RPC's request headers to its outcome.",
    labelNames: ["service", "method"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const httpRequests = new Counter({
    name: "identity_http_requests_total",
    help: "Plain HTTP requests (not RPCs), by route, method and status.",
    labelNames: ["route", "method", "status"] as const,
    registers: [registry],
  });

  // The labelled children of each (service, method, code), made once rather than per call (each
  // labels() call builds a child and a bound function). prom-client still hashes the label
  // object on every inc/observe, children included (bench/RESULTS.md, "Left as they are").
  // Bounded by methods × codes.
  const series = new Map<string, { count: Counter.Internal; duration: Histogram.Internal<"service" | "method"> }>();

  return {
    registry,
    observeRpc(service, method, code, seconds) {
      const key = `${service}/${method}/${code}`;
      let s = series.get(key);
      if (!s) {
        s = { count: rpcRequests.labels(service, method, code), duration: rpcDuration.labels(service, method) };
        series.set(key, s);
      }
      s.count.inc();
      s.duration.observe(seconds);
    },
    countHttp(route, method, status) {
      httpRequests.inc({ route, method, status: String(status) });
    },
    async route(req, res, url) {
      if (url.pathname !== "/metrics" || req.method !== "GET") return false;
      const body = await registry.metrics();
      res.writeHead(200, { "content-type": registry.contentType, "cache-control": "no-store" });
      res.end(body);
      return true;
    },
  };
}

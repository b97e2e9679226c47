// Transports for Node callers (backends, scripts, tests), through @connectrpc/connect-node.
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";

export type NodeTransportOptions = {
  /** The service's origin, e.g. "http://identity:8080" or "https://identity.internal". */
  baseUrl: string;
  /** Run on every call below the SDK's session handling (logging, tracing, metrics). */
  interceptors?: Interceptor[];
} & (
  | { protocol: "grpc" }
  /** Connect JSON; HTTP/2 by default (cleartext prior knowledge on http:, ALPN on https:). */
  | { protocol: "connect"; httpVersion?: "1.1" | "2" }
);

export function createNodeTransport(options: NodeTransportOptions): Transport {
  const { baseUrl, interceptors } = options;
  // gRPC only runs over HTTP/2, so it takes no httpVersion.
  if (options.protocol === "grpc") return createGrpcTransport({ baseUrl, interceptors });
  return createConnectTransport({ baseUrl, interceptors, httpVersion: options.httpVersion ?? "2" });
}

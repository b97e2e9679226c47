// Transports for browsers, through @connectrpc/connect-web (fetch). The server must list the
// page's origin in CORS_ORIGINS. Browsers cannot speak gRPC itself: Connect or gRPC-Web.
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";

export interface WebTransportOptions {
  /** The service's origin, e.g. "https://identity.example.com". */
  baseUrl: string;
  /** "connect": Connect JSON (readable in dev tools); "grpc-web": binary gRPC-Web. */
  protocol: "connect" | "grpc-web";
  /** Run on every call below the SDK's session handling (logging, tracing, metrics). */
  interceptors?: Interceptor[];
}

export function createWebTransport({ baseUrl, protocol, interceptors }: WebTransportOptions): Transport {
  return protocol === "grpc-web" ? createGrpcWebTransport({ baseUrl, interceptors }) : createConnectTransport({ baseUrl, interceptors });
}

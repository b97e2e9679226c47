// The server of DESIGN §3: one port, every protocol. Composes the listener, the Connect
// router (API services, health, reflection), the interceptors, CORS and the plain routes.
import { setMaxListeners } from "node:events";
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import type { OutageLog } from "../store/store-errors.js";
import { createCors, CORS_VARY } from "./http/cors.js";
import { createRestGateway } from "./rest/gateway.js";
import { createGrpcUnaryPath } from "./grpc/unary.js";
import { createConnectUnaryPath } from "./connect/unary.js";
import { createUnaryCalls } from "./unary/calls.js";
import { createReadiness, healthRoutes, registerHealth, type ReadinessCheck } from "./endpoints/health.js";
import { sendError, strictUtf8, type NodeRequest, type NodeResponse, type PlainRoute, type PlainRouteContext } from "./http/plain.js";
import { abandonOnAbort, callObserver, contextValuesFor, errorInterceptor, readRequestMeta, requestMetaOf, toConnectError, trustedProxies } from "./calls/interceptors.js";
import { startListener, type ListenerTimeouts } from "./http/listener.js";
import { createMetrics } from "./endpoints/metrics.js";
import { createPreRouting, undecodableAsInvalidArgument } from "./http/protocol-answers.js";
import { registerReflection } from "./endpoints/reflection.js";

/** Connect responses this large or larger are compressed when the client accepts it (connect-node's default). */
const COMPRESS_MIN_BYTES = 1024;

export interface ServerDeps {
  config: Config;
  logger: Logger;
  /** Registers the API services on the router. */
  routes: (router: ConnectRouter) => void;
  /** Extra interceptors (e.g. auth); they run inside the built-in ones (observation, error mapping). */
  interceptors?: Interceptor[];
  /** What /readyz and the gRPC health check verify (e.g. PostgreSQL, Redis). */
  readiness: ReadinessCheck[];
  /** Routes outside the router (JWKS, OpenAPI, console), tried in order before the REST paths and the final 404. */
  plainRoutes?: (ctx: PlainRouteContext) => PlainRoute[];
  /** Services whose google.api.http annotations are served as REST paths (rest/gateway.ts). */
  restServices?: readonly DescService[];
  /** Where calls failed by an unreachable store are reported (the stores' outage log). */
  outages?: OutageLog;
  /** Listener timeouts, for tests; production uses the defaults. */
  timeouts?: Partial<ListenerTimeouts>;
}

export interface RunningServer {
  port: number;
  /** Base URL (http or https), e.g. for clients in tests. */
  url: string;
  /** Graceful stop within config.shutdownGraceSeconds; the same promise on every call. */
  close(): Promise<void>;
}

export async function startServer(deps: ServerDeps): Promise<RunningServer> {
  const { config, logger } = deps;
  const metrics = createMetrics();
  const readiness = createReadiness(deps.readiness, logger);
  const proxies = trustedProxies(config.trustedProxies);
  const observer = callObserver(logger, metrics, deps.outages);
  const cors = createCors(config.corsOrigins);
  // What the front handler adds to every response without an Origin, for the calls served on HTTP/2 streams.
  const streamHead: Readonly<Record<string, string>> = Object.freeze(cors ? { vary: CORS_VARY } : ({} as Record<string, string>));
  // Aborted when the grace period ends: handlers see their signal abort before the sockets go.
  const shutdown = new AbortController();
  // Every call in flight links its own signal to this one: no listener limit (Node warns past 10).
  setMaxListeners(0, shutdown.signal);

  const interceptors = [observer.interceptor, errorInterceptor, ...(deps.interceptors ?? [])];
  // Unary calls of the API services, over gRPC, Connect and REST, bypass connect-node's protocol
  // handlers (an equivalent context, the same interceptors, observation and error mapping; see
  // unary/calls.ts).
  const unaryCalls = createUnaryCalls({ interceptors, startCall: observer.start, readMaxBytes: config.maxRequestBytes, shutdownSignal: shutdown.signal });
  const grpcUnary = createGrpcUnaryPath(unaryCalls);

  // connect-node's default set, named here because the gRPC answer to any other encoding lists them.
  const acceptCompression = [compressionGzip, compressionBrotli];
  // Unknown fields are ignored (the default), so clients may be newer than the server;
  // zero values are written out so app models see every field. JSON that is not UTF-8 is
  // refused (invalid_argument) rather than read with replacement characters, as binary
  // messages with invalid UTF-8 in a string are (connect's JSON serialization takes a
  // textDecoder from these options, though their type does not list it).
  const jsonOptions = { ignoreUnknownFields: true, alwaysEmitImplicit: true, ...{ textDecoder: strictUtf8 } };
  const connectUnary = createConnectUnaryPath({ calls: unaryCalls, acceptCompression, compressMinBytes: COMPRESS_MIN_BYTES, readMaxBytes: config.maxRequestBytes, jsonOptions });
  let router: ConnectRouter | undefined;
  const rpcHandler = connectNodeAdapter({
    routes(r) {
      router = r;
      deps.routes(unaryCalls.recording(r));
      registerHealth(r, readiness, () => [...new Set(r.handlers.map((h) => h.service.typeName))]);
      registerReflection(r);
    },
    // connect-node would still send a handler's result after the call's deadline or the shutdown
    // grace: abandonOnAbort answers such calls at once (the server's own unary paths do so themselves).
    interceptors: [observer.interceptor, errorInterceptor, abandonOnAbort, ...(deps.interceptors ?? [])],
    acceptCompression,
    requestGate(ctx) {
      undecodableAsInvalidArgument(ctx);
      observer.requestGate(ctx);
    },
    readMaxBytes: config.maxRequestBytes,
    compressMinBytes: COMPRESS_MIN_BYTES,
    jsonOptions,
    shutdownSignal: shutdown.signal,
    contextValues: contextValuesFor,
    // The adapter hands over the server's own response object (typed narrower by connect-node).
    fallback: (req, res) => void servePlain(req, res as NodeResponse),
  });
  if (!router) throw new Error("connectNodeAdapter did not call routes()");
  const preRouting = createPreRouting({ handlers: router.handlers, encodings: acceptCompression.map((c) => c.name) });
  const rest = deps.restServices && createRestGateway({ calls: unaryCalls, contextValuesFor, services: deps.restServices, maxBodyBytes: config.maxRequestBytes, logger });

  const { healthz, readyz } = healthRoutes(readiness);
  const plainRoutes: Array<[name: string, route: PlainRoute]> = [
    ["healthz", healthz],
    ["readyz", readyz],
    ["metrics", metrics.route],
    ...(deps.plainRoutes?.({ router, contextValuesFor }) ?? []).map((route): [string, PlainRoute] => ["plain", route]),
    // Last: it answers every unknown /api/ path with a JSON 404.
    ...(rest ? [["rest", rest.route] as [string, PlainRoute]] : []),
  ];

  async function servePlain(req: NodeRequest, res: NodeResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    let route = "not_found";
    try {
      for (const [name, handle] of plainRoutes) {
        route = name;
        const handled = await handle(req, res, url);
        // A REST call: counted with the RPCs, like the same call on the HTTP/2 stream path.
        if (handled === "rpc") return;
        if (handled) break;
        route = "not_found";
      }
      if (route === "not_found") sendError(res, Code.NotFound, `No route for ${req.method} ${url.pathname}`);
    } catch (err) {
      // `route` names the route that threw.
      const error = toConnectError(err);
      if (error.code === Code.Internal) logger.error({ err, requestId: requestMetaOf(req).requestId, path: url.pathname }, "plain route failed");
      if (res.headersSent) res.destroy();
      else sendError(res, error.code, error.rawMessage);
    }
    metrics.countHttp(route, req.method ?? "", res.statusCode);
  }

  const listener = await startListener({
    port: config.port,
    host: config.host,
    tls: config.tls && { cert: await readFile(config.tls.certFile), key: await readFile(config.tls.keyFile) },
    logger,
    timeouts: deps.timeouts,
    handler(req, res) {
      const meta = requestMetaOf(req, proxies);
      res.setHeader("x-request-id", meta.requestId);
      if (cors?.(req, res)) {
        metrics.countHttp("preflight", "OPTIONS", res.statusCode);
        return;
      }
      // Unknown gRPC methods, unsupported grpc-encoding, a method an RPC path does not take.
      if (preRouting(req, res)) {
        metrics.countHttp("rpc_rejected", req.method ?? "", res.statusCode);
        return;
      }
      // Unary Connect calls (connect/unary.ts); the rest goes to connect-node, which hands what
      // it does not route to the plain routes (servePlain).
      if (connectUnary.serve(req, res)) return;
      rpcHandler(req, res);
    },
    // Unary gRPC, Connect and REST calls are served on the stream itself (browsers' calls, with an
    // Origin, go the way above for CORS); every other stream becomes a request for the handler above.
    streamHandler(stream, headers) {
      const meta = () => readRequestMeta({ headers, socket: stream.session?.socket }, proxies);
      if (grpcUnary.serve(stream, headers, meta)) return true;
      if (headers.origin !== undefined) return false;
      return connectUnary.serveStream(stream, headers, meta, streamHead) || (rest?.serveStream(stream, headers, meta, streamHead) ?? false);
    },
  });

  const scheme = config.tls ? "https" : "http";
  const host = config.host === "0.0.0.0" ? "127.0.0.1" : config.host === "::" ? "::1" : config.host;
  const url = `${scheme}://${isIP(host) === 6 ? `[${host}]` : host}:${listener.port}`;
  logger.info({ port: listener.port, tls: Boolean(config.tls) }, "server listening");

  let closed: Promise<void> | undefined;
  return {
    port: listener.port,
    url,
    close() {
      closed ??= listener.close(config.shutdownGraceSeconds * 1000, () => shutdown.abort(new ConnectError("Server is shutting down", Code.Unavailable)));
      return closed;
    },
  };
}

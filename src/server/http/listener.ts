// The one listening port (DESIGN §3). Cleartext: the first bytes of each connection tell
// HTTP/2 prior knowledge (the client preface) from HTTP/1.1. TLS: ALPN picks h2 or
// http/1.1. Either way the connection is handed to an http or http2 server that never
// listens itself, so both protocols share one request handler, one set of timeouts and
// one graceful shutdown.
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import type { Duplex } from "node:stream";
import type { Logger } from "../../logger.js";
import type { NodeRequest, NodeResponse } from "./plain.js";
import { renewStreamTablesAfterFullCollections } from "./http2-stream-tables.js";
import { answerHeadersTooLarge, fieldSectionSize } from "./protocol-answers.js";

export interface ListenerTimeouts {
  /** Time to receive a request's headers (HTTP/1.1), the first bytes or the TLS handshake. */
  headersMs: number;
  /** Time to receive a whole HTTP/1.1 request. */
  requestMs: number;
  /** Idle time before an HTTP/1.1 keep-alive connection is closed; above common load-balancer idle timeouts (60 s). */
  keepAliveMs: number;
  /** Idle time (no frames at all) before an HTTP/2 session is closed. */
  sessionIdleMs: number;
}

const MAX_CONCURRENT_STREAMS = 1000;
/**
 * The request headers served, in bytes: the HTTP/1.1 head (node answers 431 above it), the
 * HTTP/2 field section as RFC 9113 §6.5.2 counts it (name + value + 32 per field; answered 431,
 * or resource_exhausted for gRPC, above it).
 */
export const MAX_HEADER_BYTES = 16 * 1024;
/**
 * HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE: what the server advertises and node enforces (it resets a
 * stream over it before any code sees it). Above MAX_HEADER_BYTES so that a request between the
 * two is read and answered; 64 KiB is also the most node's and curl's HTTP/2 clients send by
 * default, and peers that honour the setting (C-core) refuse to send more themselves.
 */
export const H2_MAX_HEADER_LIST_SIZE = 64 * 1024;

export const defaultTimeouts: ListenerTimeouts = { headersMs: 20_000, requestMs: 120_000, keepAliveMs: 65_000, sessionIdleMs: 300_000 };

export interface ListenerOptions {
  handler: (req: NodeRequest, res: NodeResponse) => void;
  /**
   * Offered every HTTP/2 stream first: returns true when it serves the stream itself on node's
   * core stream API; otherwise the stream becomes a request for `handler`.
   */
  streamHandler?: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => boolean;
  port: number;
  host: string;
  /** PEM certificate chain and key: serve TLS (h2 and http/1.1 by ALPN) instead of cleartext. */
  tls?: { cert: Buffer; key: Buffer };
  logger: Logger;
  timeouts?: Partial<ListenerTimeouts>;
}

export interface Listener {
  readonly port: number;
  /**
   * Stops accepting connections, lets in-flight requests finish for up to `graceMs`, then
   * calls `onDeadline` (if still waiting) and, a moment later, destroys what is left. Idle
   * connections are closed at once. Resolves when every connection is gone.
   */
  close(graceMs: number, onDeadline?: () => void): Promise<void>;
}

const h2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** After the grace period, how long handlers that were told to stop have to answer. */
const lastWordsMs = 250;

export async function startListener(opts: ListenerOptions): Promise<Listener> {
  const timeouts = { ...defaultTimeouts, ...opts.timeouts };
  const log = opts.logger;

  /** Every accepted connection, for the final sweep. */
  const connections = new Set<net.Socket>();
  /** Cleartext connections whose first bytes have not arrived yet. */
  const undecided = new Set<net.Socket>();
  /** In-flight requests per HTTP/1.1 connection, to close idle ones at shutdown. */
  const h1Connections = new Map<Duplex, number>();
  const sessions = new Set<http2.ServerHttp2Session>();
  let closing = false;

  const h1 = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES, headersTimeout: timeouts.headersMs, requestTimeout: timeouts.requestMs, connectionsCheckingInterval: Math.min(1000, timeouts.headersMs) }, (req, res) => {
    const socket = req.socket;
    h1Connections.set(socket, (h1Connections.get(socket) ?? 0) + 1);
    res.once("close", () => {
      const active = (h1Connections.get(socket) ?? 1) - 1;
      h1Connections.set(socket, active);
      if (closing && active === 0) closeSoon(socket);
    });
    if (closing) res.setHeader("connection", "close");
    opts.handler(req, res);
  });
  h1.keepAliveTimeout = timeouts.keepAliveMs;
  // Node enforces headersTimeout/requestTimeout from a timer armed on "listening"; this
  // server never listens, so arm it by hand (close() disarms it).
  h1.emit("listening");

  // Streams per connection are capped (Node's default is unlimited): one client cannot hold
  // the whole instance; gRPC clients queue beyond the limit.
  // A field counts at least 32 bytes, so the header list size, not node's count of fields
  // (128 by default, then a reset), is what limits a request.
  const h2 = http2.createServer(
    { settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, maxHeaderListSize: H2_MAX_HEADER_LIST_SIZE }, maxHeaderListPairs: H2_MAX_HEADER_LIST_SIZE / 32 },
    (req, res) => opts.handler(req, res),
  );
  // Node's compatibility layer (the request/response objects of `handler`) is a "stream"
  // listener of the server: streams answered here or taken by the stream handler must not reach it.
  const streamHandler = opts.streamHandler;
  const compat = h2.listeners("stream") as Array<(...args: unknown[]) => void>;
  h2.removeAllListeners("stream");
  h2.on("stream", (stream: http2.ServerHttp2Stream, headers, ...rest: unknown[]) => {
    if (fieldSectionSize(headers) > MAX_HEADER_BYTES) return answerHeadersTooLarge(stream, headers, MAX_HEADER_BYTES);
    if (streamHandler?.(stream, headers)) return;
    for (const listener of compat) listener.call(h2, stream, headers, ...rest);
  });
  h2.setTimeout(timeouts.sessionIdleMs);
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    if (closing) session.close();
  });
  h2.on("sessionError", (err) => log.debug({ err }, "http2 session error"));

  const dispatch = (socket: Duplex, protocol: "h1" | "h2") => {
    if (protocol === "h2") {
      h2.emit("connection", socket);
      return;
    }
    h1Connections.set(socket, 0);
    socket.once("close", () => h1Connections.delete(socket));
    h1.emit("connection", socket);
  };

  let server: net.Server;
  if (opts.tls) {
    server = tls.createServer({ ...opts.tls, ALPNProtocols: ["h2", "http/1.1"], handshakeTimeout: timeouts.headersMs }, (socket) => {
      dispatch(socket, socket.alpnProtocol === "h2" ? "h2" : "h1");
    });
    server.on("tlsClientError", (err) => log.debug({ err }, "tls handshake failed"));
  } else {
    server = net.createServer((socket) => {
      undecided.add(socket);
      socket.once("close", () => undecided.delete(socket));
      sniff(socket, timeouts.headersMs, (protocol) => {
        undecided.delete(socket);
        dispatch(socket, protocol);
      });
    });
  }
  server.on("connection", (socket: net.Socket) => {
    socket.setNoDelay(true);
    connections.add(socket);
    socket.once("close", () => connections.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (err) => log.error({ err }, "listener error"));
  // Keeps finished streams from being held until the next full collection (see the module).
  const tableRenewal = renewStreamTablesAfterFullCollections(sessions, log);

  let closed: Promise<void> | undefined;
  return {
    port: (server.address() as net.AddressInfo).port,
    close(graceMs, onDeadline) {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        server.close(() => {
          tableRenewal.stop();
          resolve();
        });
        h1.close();
        for (const socket of undecided) socket.destroy();
        for (const [socket, active] of h1Connections) if (active === 0) closeSoon(socket);
        for (const session of sessions) session.close();
        const destroyAll = () => {
          for (const session of sessions) session.destroy();
          for (const socket of connections) socket.destroy();
        };
        let timer = setTimeout(() => {
          if (!onDeadline) return destroyAll();
          // Handlers told to stop get a moment to send their answer before the sockets go.
          onDeadline();
          timer = setTimeout(destroyAll, lastWordsMs);
        }, graceMs);
        server.once("close", () => clearTimeout(timer));
      });
      return closed;
    },
  };
}

/**
 * Reads until the bytes either match the HTTP/2 preface or diverge from it, then pushes
 * them back and hands the socket on. The HTTP/2 session reads the pushed-back bytes
 * itself (resuming would lose them); the HTTP/1.1 parser needs the stream flowing.
 */
function sniff(socket: net.Socket, timeoutMs: number, onProtocol: (protocol: "h1" | "h2") => void): void {
  let seen = Buffer.alloc(0);
  const onError = () => socket.destroy();
  const onTimeout = () => socket.destroy();
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, h2Preface.length);
    const isH2 = seen.subarray(0, n).equals(h2Preface.subarray(0, n));
    if (isH2 && seen.length < h2Preface.length) return;
    socket.off("data", onData).off("error", onError).off("timeout", onTimeout);
    socket.setTimeout(0);
    socket.pause();
    socket.unshift(seen);
    onProtocol(isH2 ? "h2" : "h1");
    if (!isH2) socket.resume();
  };
  socket.on("data", onData).on("error", onError).on("timeout", onTimeout);
  socket.setTimeout(timeoutMs);
}

/** Ends a connection once what was written to it is flushed. */
function closeSoon(socket: Duplex): void {
  if (socket.writableLength === 0) socket.destroy();
  else socket.end(() => socket.destroy());
}

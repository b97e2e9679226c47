// One HTTP request and its response, as the unary paths (connect/unary.ts, rest/gateway.ts) use
// it: over node's HTTP/1.1 and HTTP/2 compatibility objects (requests the server's front
// handler has seen: CORS and X-Request-Id already on the response), or straight on an HTTP/2
// stream (no compatibility objects, which cost more than the rest of a call; bench/RESULTS.md,
// issue 19).
import http2 from "node:http2";
import type { IncomingHttpHeaders } from "node:http";
import type { TLSSocket } from "node:tls";
import type { NodeRequest, NodeResponse } from "./plain.js";

export interface HttpExchange {
  readonly method: string;
  /** The request target: path and query. */
  readonly target: string;
  readonly headers: IncomingHttpHeaders;
  /** The request body, as a stream of chunks. */
  readonly body: NodeRequest | http2.ServerHttp2Stream;
  /** HTTP/1.x: a refused body is left unread, so the connection must close after the answer. */
  readonly http1: boolean;
  /** The request's absolute URL, as the client addressed it. */
  url(): string;
  /** Whether the response can still be sent. */
  readonly open: boolean;
  /** Listens for the end of the exchange (answered, or the client gone). */
  onClose(listener: () => void): void;
  offClose(listener: () => void): void;
  /** Sends the whole response; throws when HTTP refuses the headers. */
  respond(status: number, headers: Record<string, string>, body: Uint8Array): void;
  /** Ends an exchange that cannot be answered properly: the stream is reset, the HTTP/1.1 connection closed. */
  destroy(): void;
}

/** A request header as fetch would show it (repeated fields joined), or null. */
export function headerValue(value: string | string[] | undefined): string | null {
  return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
}

function absoluteUrl(socket: unknown, headers: IncomingHttpHeaders, target: string): string {
  const encrypted = (socket as Partial<TLSSocket> | undefined)?.encrypted === true;
  return `${encrypted ? "https" : "http"}://${headers[":authority"] ?? headers.host}${target}`;
}

/** An exchange on node's request and response objects (HTTP/1.1, or HTTP/2's compatibility layer). */
class NodeExchange implements HttpExchange {
  constructor(
    private readonly req: NodeRequest,
    private readonly res: NodeResponse,
  ) {}

  get method(): string {
    return this.req.method ?? "GET";
  }

  get target(): string {
    return this.req.url ?? "/";
  }

  get headers(): IncomingHttpHeaders {
    return this.req.headers;
  }

  get body(): NodeRequest {
    return this.req;
  }

  get http1(): boolean {
    return this.req.httpVersionMajor === 1;
  }

  url(): string {
    return absoluteUrl(this.req.socket, this.req.headers, this.target);
  }

  get open(): boolean {
    const res = this.res;
    if (res.writableEnded) return false;
    return res instanceof http2.Http2ServerResponse ? !res.stream.destroyed : !res.destroyed;
  }

  onClose(listener: () => void): void {
    this.res.on("close", listener);
  }

  offClose(listener: () => void): void {
    this.res.off("close", listener);
  }

  respond(status: number, headers: Record<string, string>, body: Uint8Array): void {
    this.res.writeHead(status, headers);
    this.res.end(body);
  }

  destroy(): void {
    const res = this.res;
    if (res instanceof http2.Http2ServerResponse) res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    else res.destroy();
  }
}

export function nodeExchange(req: NodeRequest, res: NodeResponse): HttpExchange {
  return new NodeExchange(req, res);
}

const ignore = (): void => {};

/**
 * An exchange on an HTTP/2 stream. Every response carries X-Request-Id and `head` (what the
 * front handler would have added to it, e.g. Vary).
 */
class StreamExchange implements HttpExchange {
  readonly http1 = false;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    readonly headers: http2.IncomingHttpHeaders,
    private readonly requestId: string,
    private readonly head: Readonly<Record<string, string>>,
  ) {
    // A peer's reset with an error code is also emitted as an error: without a listener it would
    // take the process down. The call ends through "close".
    stream.on("error", ignore);
  }

  get method(): string {
    return this.headers[":method"] ?? "GET";
  }

  get target(): string {
    return this.headers[":path"] ?? "/";
  }

  get body(): http2.ServerHttp2Stream {
    return this.stream;
  }

  url(): string {
    return absoluteUrl(this.stream.session?.socket, this.headers, this.target);
  }

  get open(): boolean {
    return !this.stream.closed && !this.stream.destroyed;
  }

  onClose(listener: () => void): void {
    this.stream.on("close", listener);
  }

  offClose(listener: () => void): void {
    this.stream.off("close", listener);
  }

  respond(status: number, headers: Record<string, string>, body: Uint8Array): void {
    this.stream.respond({ ...this.head, ...headers, "x-request-id": this.requestId, ":status": status });
    this.stream.end(body);
  }

  destroy(): void {
    this.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  }
}

export function streamExchange(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, requestId: string, head: Readonly<Record<string, string>>): HttpExchange {
  return new StreamExchange(stream, headers, requestId, head);
}

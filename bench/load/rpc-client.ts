// A lean unary RPC client for the load workers: gRPC, Connect JSON and REST (the methods'
// google.api.http routes, rest.ts) over cleartext HTTP/2 (node:http2, a few connections shared
// round-robin), Connect JSON and REST over HTTP/1.1 (keep-alive sockets, one per call in
// flight). It does what a load generator needs and no more: no retries, no deadlines, and
// every non-OK answer becomes an RpcError with its code, so that gRPC errors (HTTP 200 +
// grpc-status) count as errors; Connect and REST errors share one JSON form ({code, message}).
import { create, fromBinary, fromJsonString, toBinary, toJsonString, type DescMethodUnary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import http from "node:http";
import http2 from "node:http2";
import { decodeRestResponse, encodeRestRequest } from "./rest.js";

export type Wire = "grpc" | "connect-h2" | "connect-h1" | "rest-h2" | "rest-h1";

/** HTTP/1.1 (one keep-alive connection per call in flight) rather than h2c. */
export const isH1 = (wire: Wire): boolean => wire === "connect-h1" || wire === "rest-h1";
const isRest = (wire: Wire): boolean => wire === "rest-h1" || wire === "rest-h2";

/** A request sent as it is: the body already encoded for the wire. */
export interface RawRequest {
  wire: Wire;
  /** HTTP method: POST, but for REST routes bound to another (GET /api/auth/me). */
  verb: string;
  path: string;
  /** Empty: the request has no body. */
  body: Buffer;
  /** Every header to send: the wire's (content type…) and the call's (authorization). */
  headers: Record<string, string>;
}

export class RpcError extends Error {
  override name = "RpcError";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export interface RpcClient {
  /** Sends a prepared request; resolves with the response message bytes (gRPC: unframed). */
  send(request: RawRequest): Promise<Buffer>;
  unary<I extends DescMessage, O extends DescMessage>(method: DescMethodUnary<I, O>, input: MessageInitShape<I>, token?: string): Promise<MessageShape<O>>;
  close(): void;
}

const GRPC_CODES = ["ok", "canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists", "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range", "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated"];

/** The 5-byte gRPC message prefix (uncompressed) and the message. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** The request of `method` encoded for `wire`, for clients that replay it unchanged. */
export function encodeRequest<I extends DescMessage>(wire: Wire, method: DescMethodUnary<I>, input: MessageInitShape<I>, headers: Record<string, string> = {}): RawRequest {
  const message = create(method.input, input);
  if (isRest(wire)) {
    const rest = encodeRestRequest(method, message);
    return { wire, verb: rest.verb, path: rest.path, body: rest.body, headers: { ...rest.headers, ...headers } };
  }
  const path = `/${method.parent.typeName}/${method.name}`;
  if (wire === "grpc") return { wire, verb: "POST", path, body: grpcFrame(toBinary(method.input, message)), headers: { "content-type": "application/grpc", te: "trailers", ...headers } };
  return { wire, verb: "POST", path, body: Buffer.from(toJsonString(method.input, message)), headers: { "content-type": "application/json", ...headers } };
}

/** The response message of `method` from the body `send` resolved with. */
function decodeResponse<O extends DescMessage>(wire: Wire, method: DescMethodUnary<DescMessage, O>, body: Buffer): MessageShape<O> {
  if (wire === "grpc") return fromBinary(method.output, body);
  if (isRest(wire)) return decodeRestResponse(method, body);
  return fromJsonString(method.output, body.toString("utf8"), { ignoreUnknownFields: true });
}

function connectError(status: number, body: Buffer): RpcError {
  try {
    const { code, message } = JSON.parse(body.toString("utf8")) as { code?: string; message?: string };
    return new RpcError(code ?? `http_${status}`, message ?? "");
  } catch {
    return new RpcError(`http_${status}`, body.toString("utf8").slice(0, 200));
  }
}

function grpcResult(status: number, grpcStatus: string | undefined, grpcMessage: string | undefined, body: Buffer): Buffer {
  if (status !== 200) throw new RpcError(`http_${status}`, "gRPC call answered with a non-200 HTTP status");
  const code = Number(grpcStatus ?? NaN);
  if (code !== 0) throw new RpcError(GRPC_CODES[code] ?? `grpc_status_${grpcStatus}`, decodeURIComponent(grpcMessage ?? ""));
  if (body.length < 5 || body[0] !== 0) throw new RpcError("internal", "malformed gRPC response frame");
  return body.subarray(5, 5 + body.readUInt32BE(1));
}

function sendH2(session: http2.ClientHttp2Session, { wire, verb, path, body, headers }: RawRequest): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": verb, ":path": path, ...headers }, { endStream: body.length === 0 });
    const chunks: Buffer[] = [];
    let status = 0;
    let grpcStatus: string | undefined;
    let grpcMessage: string | undefined;
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      // A trailers-only gRPC answer carries the status in the headers.
      grpcStatus = h["grpc-status"] as string | undefined;
      grpcMessage = h["grpc-message"] as string | undefined;
    });
    stream.on("trailers", (t) => {
      grpcStatus = t["grpc-status"] as string | undefined;
      grpcMessage = t["grpc-message"] as string | undefined;
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", reject);
    stream.on("end", () => {
      const payload = Buffer.concat(chunks);
      try {
        if (wire === "grpc") resolve(grpcResult(status, grpcStatus, grpcMessage, payload));
        else if (status === 200) resolve(payload);
        else reject(connectError(status, payload));
      } catch (err) {
        reject(err);
      }
    });
    if (body.length) stream.end(body);
  });
}

function sendH1(agent: http.Agent, url: URL, { verb, path, body, headers }: RawRequest): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const length = body.length ? { "content-length": String(body.length) } : {};
    const req = http.request({ agent, host: url.hostname, port: url.port, method: verb, path, headers: { ...headers, ...length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(connectError(res.statusCode ?? 0, Buffer.concat(chunks)))));
    });
    req.on("error", reject);
    if (body.length) req.end(body);
    else req.end();
  });
}

/**
 * `connections` HTTP/2 sessions for the h2c wires; for the HTTP/1.1 ones up to `inFlight`
 * keep-alive sockets. Every call of one client uses the same `wire`.
 */
export function createRpcClient(baseUrl: string, wire: Wire, opts: { connections: number; inFlight: number }): RpcClient {
  const url = new URL(baseUrl);
  let send: (request: RawRequest) => Promise<Buffer>;
  let close: () => void;
  if (isH1(wire)) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: opts.inFlight });
    send = (request) => sendH1(agent, url, request);
    close = () => agent.destroy();
  } else {
    const sessions = Array.from({ length: opts.connections }, () => {
      const session = http2.connect(url, { peerMaxConcurrentStreams: 1000 });
      session.on("error", () => undefined); // surfaces on the streams
      return session;
    });
    let next = 0;
    send = (request) => sendH2(sessions[next++ % sessions.length]!, request);
    close = () => sessions.forEach((s) => s.close());
  }
  return {
    send,
    async unary(method, input, token) {
      const request = encodeRequest(wire, method, input, token ? { authorization: `Bearer ${token}` } : {});
      return decodeResponse(wire, method, await send(request));
    },
    close,
  };
}

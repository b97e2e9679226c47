// A lean unary RPC client for the load workers: gRPC and Connect JSON over cleartext HTTP/2
// (node:http2, a few connections shared round-robin) and Connect JSON over HTTP/1.1
// (keep-alive sockets, one per call in flight). It does what a load generator needs and no
// more: no retries, no deadlines, and every non-OK answer becomes an RpcError with its code,
// so that gRPC errors (HTTP 200 + grpc-status) count as errors.
import { create, fromBinary, fromJsonString, toBinary, toJsonString, type DescMethodUnary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import http from "node:http";
import http2 from "node:http2";

export type Wire = "grpc" | "connect-h2" | "connect-h1";

/** A request sent as it is: the body already encoded for the wire. */
export interface RawRequest {
  wire: Wire;
  path: string;
  body: Buffer;
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
  const body = wire === "grpc" ? grpcFrame(toBinary(method.input, message)) : Buffer.from(toJsonString(method.input, message));
  return { wire, path: `/${method.parent.typeName}/${method.name}`, body, headers };
}

export function requestHeaders(wire: Wire): Record<string, string> {
  return wire === "grpc" ? { "content-type": "application/grpc", te: "trailers" } : { "content-type": "application/json" };
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

function sendH2(session: http2.ClientHttp2Session, { wire, path, body, headers }: RawRequest): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "POST", ":path": path, ...requestHeaders(wire), ...headers });
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
    stream.end(body);
  });
}

function sendH1(agent: http.Agent, url: URL, { path, body, headers }: RawRequest): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ agent, host: url.hostname, port: url.port, method: "POST", path, headers: { ...requestHeaders("connect-h1"), ...headers, "content-length": String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(connectError(res.statusCode ?? 0, Buffer.concat(chunks)))));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * `connections` HTTP/2 sessions for wires gRPC and connect-h2; for connect-h1 up to
 * `inFlight` keep-alive sockets. Every call of one client uses the same `wire`.
 */
export function createRpcClient(baseUrl: string, wire: Wire, opts: { connections: number; inFlight: number }): RpcClient {
  const url = new URL(baseUrl);
  let send: (request: RawRequest) => Promise<Buffer>;
  let close: () => void;
  if (wire === "connect-h1") {
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
      const body = await send(request);
      return wire === "grpc" ? fromBinary(method.output, body) : fromJsonString(method.output, body.toString("utf8"), { ignoreUnknownFields: true });
    },
    close,
  };
}

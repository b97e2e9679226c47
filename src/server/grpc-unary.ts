// The fast path of unary gRPC calls (internal backends call GetMe-style methods on every
// request they serve). connect-node's gRPC handler treats every call as a stream: async
// iterables for the body and the response, fetch-style request and response objects, an
// extra AbortController per request, an AbortError built (stack trace included) at the end
// of every call. On a busy instance that costs more than the methods themselves. This path
// serves the common case directly on the HTTP/2 request and response:
//
//   POST /<service>/<method> of a unary method registered with router.service() or
//   router.rpc() (without per-route options), content-type application/grpc or
//   application/grpc+proto, no compression (grpc-encoding absent or identity).
//
// and hands everything else to connect-node (gRPC-Web, Connect, JSON, compression, streaming
// methods, unknown paths, HTTP/1.1). What a call sees is the same either way: connect's own
// HandlerContext (deadline from grpc-timeout, the server's shutdown signal), the same request
// gate and interceptors run by connect's own unary invoker, the same error mapping (connect's
// setTrailerStatus: grpc-status, grpc-message, grpc-status-details-bin), the same codes for
// malformed requests as connect-node's gRPC handler.
import http2 from "node:http2";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createHandlerContext,
  createMethodImplSpec,
  createServiceImplSpec,
  type ConnectRouter,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
} from "@connectrpc/connect";
import { invokeUnaryImplementation } from "@connectrpc/connect/protocol";
import { contentTypeProto, parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";

type UnarySpec = Extract<MethodImplSpec, { kind: "unary" }>;

export interface GrpcUnaryOptions {
  interceptors: Interceptor[];
  requestGate: (ctx: HandlerContext) => void | Promise<void>;
  contextValues: (req: http2.Http2ServerRequest) => ContextValues;
  readMaxBytes: number;
  shutdownSignal: AbortSignal;
}

export interface GrpcUnaryPath {
  /** Wraps a router so that the unary methods registered through it are served here too. */
  recording(router: ConnectRouter): ConnectRouter;
  /** Serves the request if it is a call this path takes (see the top of this file); false otherwise. */
  serve(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): boolean;
}

const GRPC_CONTENT_TYPES = new Set(["application/grpc", "application/grpc+proto"]);
const HEADER_SIZE = 5;
const COMPRESSED_FLAG = 0b1;

/** Aborts the signal of a call that ended (cheaper than abort() without a reason, which builds an AbortError). */
const CALL_ENDED = new ConnectError("the call ended", Code.Canceled);

/** The request's headers without the HTTP/2 pseudo-headers, as connect-node passes them. */
function requestHeaders(req: http2.Http2ServerRequest): Array<[string, string]> {
  const headers: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.push([name, v]);
    else headers.push([name, String(value)]);
  }
  return headers;
}

function nodeHeaders(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => (out[name] = value));
  return out;
}

/** The request body, at most `limit` bytes (resource_exhausted beyond). */
function readBody(req: http2.Http2ServerRequest, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let ended = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.resume();
        reject(new ConnectError(`message size is larger than configured readMaxBytes ${limit - HEADER_SIZE}`, Code.ResourceExhausted));
      } else chunks.push(chunk);
    });
    req.once("end", () => {
      ended = true;
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    req.once("error", reject);
    req.once("close", () => {
      if (!ended) reject(new ConnectError("the client closed the stream", Code.Canceled));
    });
  });
}

/** The one request message of a unary call, with connect-node's codes for malformed envelopes. */
function parseRequest(spec: UnarySpec, body: Buffer, readMaxBytes: number) {
  if (body.length === 0) throw new ConnectError("protocol error: missing input message for unary method", Code.Unimplemented);
  if (body.length < HEADER_SIZE) throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
  const length = body.readUInt32BE(1);
  if (length > readMaxBytes) throw new ConnectError(`message size ${length} is larger than configured readMaxBytes ${readMaxBytes}`, Code.ResourceExhausted);
  const end = HEADER_SIZE + length;
  if (body.length < end) throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
  if (body.length > end) throw new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented);
  if (body[0]! & COMPRESSED_FLAG) throw new ConnectError("received compressed envelope, but do not know how to decompress", Code.Internal);
  try {
    return fromBinary(spec.method.input, body.subarray(HEADER_SIZE, end));
  } catch (err) {
    throw new ConnectError(`parse binary: ${err instanceof Error ? err.message : String(err)}`, Code.Internal);
  }
}

function envelope(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(HEADER_SIZE + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, HEADER_SIZE);
  return frame;
}

export function createGrpcUnaryPath(opts: GrpcUnaryOptions): GrpcUnaryPath {
  const specs = new Map<string, UnarySpec>();
  const add = (spec: MethodImplSpec) => {
    if (spec.kind === "unary") specs.set(`/${spec.method.parent.typeName}/${spec.method.name}`, spec);
  };

  async function handle(spec: UnarySpec, req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): Promise<void> {
    const grpcTimeout = req.headers["grpc-timeout"];
    const timeout = parseTimeout(Array.isArray(grpcTimeout) ? grpcTimeout.join(", ") : (grpcTimeout ?? null), Number.MAX_SAFE_INTEGER);
    const encrypted = "encrypted" in req.socket && req.socket.encrypted;
    const context = createHandlerContext({
      service: spec.method.parent,
      method: spec.method,
      protocolName: "grpc",
      requestMethod: "POST",
      url: `${encrypted ? "https" : "http"}://${req.authority}${req.url}`,
      timeoutMs: timeout.timeoutMs,
      shutdownSignal: opts.shutdownSignal,
      requestHeader: requestHeaders(req),
      responseHeader: { "content-type": contentTypeProto },
      responseTrailer: { "grpc-status": "0" },
      contextValues: opts.contextValues(req),
    });
    let answered = false;
    req.once("close", () => {
      if (!answered) context.abort(new ConnectError(`http/2 stream closed with error code ${req.stream.rstCode}`, Code.Canceled));
    });

    let body: Buffer = Buffer.alloc(0);
    let error: ConnectError | undefined;
    try {
      // Like connect: the gate runs before the body is read, a bad grpc-timeout fails the call.
      await opts.requestGate(context);
      if (timeout.error) throw timeout.error;
      const input = parseRequest(spec, await readBody(req, opts.readMaxBytes + HEADER_SIZE), opts.readMaxBytes);
      const output = await invokeUnaryImplementation(spec, context, input, opts.interceptors);
      body = envelope(toBinary(spec.method.output, output));
    } catch (err) {
      error = err instanceof ConnectError ? err : new ConnectError("internal error", Code.Internal, undefined, undefined, err);
      setTrailerStatus(context.responseTrailer, error);
    }
    answered = true;
    try {
      if (!res.stream.destroyed) {
        res.writeHead(200, nodeHeaders(context.responseHeader));
        res.addTrailers(nodeHeaders(context.responseTrailer));
        res.end(body);
      }
    } catch (err) {
      // Headers a handler set that HTTP/2 refuses: the call cannot be answered properly.
      error = new ConnectError("internal error", Code.Internal, undefined, undefined, err);
      res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    } finally {
      // Ends the call for those listening on its signal (its log line and metrics).
      context.abort(error ?? CALL_ENDED);
    }
  }

  return {
    recording(router) {
      const recorder: ConnectRouter = {
        get handlers() {
          return router.handlers;
        },
        service(service, impl, options) {
          if (!options) for (const spec of Object.values(createServiceImplSpec(service, impl).methods)) add(spec);
          router.service(service, impl, options);
          return recorder;
        },
        rpc(method, impl, options) {
          if (!options) add(createMethodImplSpec(method, impl));
          router.rpc(method, impl, options);
          return recorder;
        },
      };
      return recorder;
    },

    serve(req, res) {
      if (req.method !== "POST") return false;
      const spec = specs.get(req.url.split("?", 1)[0]!);
      const contentType = req.headers["content-type"];
      if (!spec || !contentType || !GRPC_CONTENT_TYPES.has(contentType)) return false;
      const encoding = req.headers["grpc-encoding"];
      if (encoding !== undefined && encoding !== "identity") return false;
      void handle(spec, req, res);
      return true;
    },
  };
}

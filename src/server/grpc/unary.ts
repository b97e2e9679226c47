// Unary gRPC calls served on the HTTP/2 stream itself, on the server's call engine
// (unary/calls.ts): internal backends call GetMe-style methods on every request they serve, and
// connect-node's gRPC handler (async iterables, fetch-style objects, AbortControllers per call)
// cost more than the methods (bench/RESULTS.md, S3, S19). Taken: POST to a unary method served
// there, content-type application/grpc or application/grpc+proto, no grpc-encoding (or
// identity), no Origin (CORS stays with the other way). Everything else goes on: Connect and REST
// to their own paths; gRPC-Web, compression, streaming and unknown paths to connect-node. Errors
// map as connect's do (setTrailerStatus), malformed requests get connect-node's codes.
import http2 from "node:http2";
import { fromBinary, toBinary, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { contentTypeProto, parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { RequestMeta } from "../../domain/caller.js";
import { contextValuesOf } from "../calls/interceptors.js";
import { readBody } from "../http/body.js";
import { headerValue } from "../http/exchange.js";
import { internalError, UnaryCall, type UnarySpec } from "../unary/call.js";
import type { UnaryCalls } from "../unary/calls.js";

export interface GrpcUnaryPath {
  /**
   * Serves the stream if it is a call this path takes (see the top of this file) and returns
   * true; false otherwise, and the stream is left untouched. `meta` reads the request meta
   * (client IP, user agent, request id), only for a call this path takes.
   */
  serve(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, meta: () => RequestMeta): boolean;
}

const GRPC_CONTENT_TYPES = new Set(["application/grpc", "application/grpc+proto"]);
const HEADER_SIZE = 5;
const COMPRESSED_FLAG = 0b1;
const RESPONSE_HEADER = Object.freeze({ "content-type": contentTypeProto });

const ignore = (): void => {};

class GrpcCall extends UnaryCall<Buffer> {
  readonly protocolName = "grpc";
  private readonly timeout?: ReturnType<typeof parseTimeout>;
  private readonly requestId: string;

  constructor(
    spec: UnarySpec,
    private readonly stream: http2.ServerHttp2Stream,
    private readonly headers: http2.IncomingHttpHeaders,
    meta: RequestMeta,
  ) {
    const grpcTimeout = headerValue(headers["grpc-timeout"]);
    const timeout = grpcTimeout === null ? undefined : parseTimeout(grpcTimeout, Number.MAX_SAFE_INTEGER);
    super(spec, "POST", headers, contextValuesOf(meta), timeout?.timeoutMs, RESPONSE_HEADER);
    this.timeout = timeout;
    this.requestId = meta.requestId;
  }

  get url(): string {
    const socket = this.stream.session?.socket;
    const encrypted = socket !== undefined && "encrypted" in socket && socket.encrypted;
    return `${encrypted ? "https" : "http"}://${this.headers[":authority"] ?? this.headers.host}${this.headers[":path"]}`;
  }

  protected get open(): boolean {
    return !this.stream.closed && !this.stream.destroyed;
  }

  watch(): void {
    const stream = this.stream;
    const onClose = () => {
      stream.off("close", onClose);
      if (!this.answered) this.end(new ConnectError(`http/2 stream closed with error code ${stream.rstCode}`, Code.Canceled));
    };
    stream.on("close", onClose);
    // A peer's reset with an error code is also emitted as an error: without a listener it would
    // take the process down. It ends the call through "close" above.
    stream.on("error", ignore);
  }

  async readInput(readMaxBytes: number): Promise<Message> {
    // Like connect: a bad grpc-timeout fails the call before its body is read.
    if (this.timeout?.error) throw this.timeout.error;
    return parseRequest(this.spec, await readBody(this.stream, { limit: readMaxBytes + HEADER_SIZE, readMaxBytes }), readMaxBytes);
  }

  encode(output: Message): Buffer {
    return envelope(toBinary(this.spec.method.output, output));
  }

  /** Headers, the message (none for an error) and the trailers with the status. */
  protected send(body: Buffer | undefined, error: ConnectError | undefined): ConnectError | undefined {
    const stream = this.stream;
    try {
      if (error) setTrailerStatus(this.responseTrailer, error);
      const trailers: http2.OutgoingHttpHeaders = {};
      this.responseTrailer.copyTo(trailers);
      if (!error) trailers["grpc-status"] = "0";
      const onWantTrailers = () => {
        stream.off("wantTrailers", onWantTrailers);
        try {
          stream.sendTrailers(trailers);
        } catch {
          // Trailers HTTP/2 refuses (a handler's invalid metadata): the call cannot end properly.
          stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        }
      };
      stream.on("wantTrailers", onWantTrailers);
      const head: http2.OutgoingHttpHeaders = { "x-request-id": this.requestId };
      this.responseHeader.copyTo(head);
      head[":status"] = 200;
      stream.respond(head, { waitForTrailers: true });
      stream.end(body);
      return undefined;
    } catch (err) {
      stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      return internalError(err);
    }
  }
}

/** The one request message of a unary call, with connect-node's codes for malformed envelopes. */
function parseRequest(spec: UnarySpec, body: Buffer, readMaxBytes: number): Message {
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
    // The client's fault (connect-node says internal; see http/protocol-answers.ts).
    throw new ConnectError(`parse binary: ${err instanceof Error ? err.message : String(err)}`, Code.InvalidArgument);
  }
}

function envelope(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(HEADER_SIZE + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, HEADER_SIZE);
  return frame;
}

export function createGrpcUnaryPath(calls: UnaryCalls): GrpcUnaryPath {
  return {
    serve(stream, headers, meta) {
      if (headers[":method"] !== "POST" || headers.origin !== undefined) return false;
      const method = calls.atPath((headers[":path"] ?? "").split("?", 1)[0]!);
      const contentType = headers["content-type"];
      if (!method || !contentType || !GRPC_CONTENT_TYPES.has(contentType)) return false;
      const encoding = headers["grpc-encoding"];
      if (encoding !== undefined && encoding !== "identity") return false;
      void calls.run(new GrpcCall(method.spec, stream, headers, meta()), method);
      return true;
    },
  };
}

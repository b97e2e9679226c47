// The fast path of unary gRPC calls (internal backends call GetMe-style methods on every
// request they serve). connect-node's gRPC handler treats every call as a stream: async
// iterables for the body and the response, fetch-style request and response objects, an
// extra AbortController per request, an AbortError built (stack trace included) at the end
// of every call. On a busy instance that costs more than the methods themselves. This path
// serves the common case directly on the HTTP/2 stream (node's core API: no compatibility
// request and response objects either):
//
//   POST /<service>/<method> of a unary method registered with router.service() or
//   router.rpc() (without per-route options), content-type application/grpc or
//   application/grpc+proto, no compression (grpc-encoding absent or identity), no Origin
//   header (browsers do not speak this protocol; CORS stays with the other path).
//
// and hands everything else to connect-node (gRPC-Web, Connect, JSON, compression, streaming
// methods, unknown paths, HTTP/1.1). What a call sees is the same either way: a HandlerContext
// (deadline from grpc-timeout, aborted at the server's shutdown, at the deadline, when the
// client goes and when the call ends), the same interceptors in the same order, the same
// observation (log line, metrics), the same error mapping (connect's setTrailerStatus:
// grpc-status, grpc-message, grpc-status-details-bin), the same codes for malformed requests
// as connect-node's gRPC handler.
//
// A call abandoned by its deadline or by the end of the shutdown grace is answered at once with
// that status (deadline_exceeded, unavailable) in proper trailers: its signal aborts first (the
// database work it started is cancelled and rolled back: store/transaction.ts), and whatever the
// handler returns later is dropped. A call whose deadline passed while its handler ran answers
// deadline_exceeded, never the handler's result.
//
// The context is built for the common case, where nobody looks at the call's signal: the
// AbortController is made only when the signal is read (or a deadline needs it), the call is
// told of a shutdown through a set of live calls rather than a listener of its own, and the
// observer is told of the end directly. connect's own context costs two AbortControllers,
// three listeners, three fetch Headers and an abort event per call, which the profiles of a
// bare echo showed at a fifth of its time.
//
// Letting go. Whatever a finished call leaves reachable from an object in the old generation,
// even a dead one, survives the scavenges that follow and is promoted, and a busy server then
// runs a full collection every few hundred milliseconds, stopping every call in flight
// (bench/RESULTS.md, S22 and S24). Three such holds were found and are avoided: node's HTTP/2
// session keeps its streams in hash tables that V8 chains together (renewed after each full
// collection: http/http2-stream-tables.ts); a long-lived Set of calls would do the same (InFlight
// instead: in-flight.ts); getters made per call for the request held their call (shared
// accessors instead: newRequest below). And a stream must not hold on to its call: the
// listeners this path puts on a stream go as soon as they are done (only the shared error
// listener stays), and an ended call drops its request and observer.
import http2 from "node:http2";
import { create, fromBinary, toBinary, type DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createMethodImplSpec,
  createServiceImplSpec,
  type ConnectRouter,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { contentTypeProto, parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { CallHeaders } from "./call-headers.js";
import { InFlight } from "./in-flight.js";
import type { RequestMeta } from "../../domain/caller.js";
import { contextValuesOf, type EndCall } from "../calls/interceptors.js";

type UnarySpec = Extract<MethodImplSpec, { kind: "unary" }>;
type UnaryFn = (req: UnaryRequest) => Promise<UnaryResponse>;

export interface GrpcUnaryOptions {
  /** Applied in this order, as connect applies them. */
  interceptors: Interceptor[];
  /** Starts observing a call (its log line and metrics); the returned function ends it. */
  startCall: (ctx: HandlerContext) => EndCall;
  readMaxBytes: number;
  shutdownSignal: AbortSignal;
}

export interface GrpcUnaryPath {
  /** Wraps a router so that the unary methods registered through it are served here too. */
  recording(router: ConnectRouter): ConnectRouter;
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

const ignore = (): void => {};

/** The reason a call's signal carries once the call ended normally. */
const CALL_ENDED = new ConnectError("the call ended", Code.Canceled);
const NO_TIMEOUT = (): undefined => undefined;
const RESPONSE_HEADER = Object.freeze({ "content-type": contentTypeProto });
const RESPONSE_TRAILER = Object.freeze({ "grpc-status": "0" });
const deadlineExceeded = () => new ConnectError("the operation timed out", Code.DeadlineExceeded);

/** The context of one call on this path (see the top of this file). */
class UnaryCallContext implements HandlerContext {
  readonly requestMethod = "POST";
  readonly protocolName = "grpc";
  readonly requestHeader: CallHeaders;
  readonly responseHeader = new CallHeaders(RESPONSE_HEADER);
  readonly responseTrailer = new CallHeaders(RESPONSE_TRAILER);
  readonly timeoutMs: () => number | undefined = NO_TIMEOUT;
  /** The request as the interceptors first see it. */
  request?: UnaryRequest;
  /** Where the call is among the calls in flight (InFlight). */
  inFlightIndex = -1;
  /** Set once the response is on its way (or can no longer be sent): later answers are dropped. */
  answered = false;
  /** When the deadline passes (performance.now()); undefined without a grpc-timeout. */
  private readonly deadline?: number;
  private controller?: AbortController;
  private timer?: NodeJS.Timeout;
  private ended = false;
  private endReason: unknown;
  private endObservation?: EndCall;

  constructor(
    readonly spec: UnarySpec,
    private readonly stream: http2.ServerHttp2Stream,
    private readonly headers: http2.IncomingHttpHeaders,
    readonly values: ContextValues,
    timeoutMs: number | undefined,
    private readonly requestId: string,
    private readonly onEnd: (call: UnaryCallContext) => void,
  ) {
    this.requestHeader = new CallHeaders(headers);
    if (timeoutMs !== undefined) {
      const deadline = performance.now() + timeoutMs;
      this.deadline = deadline;
      this.timeoutMs = () => deadline - performance.now();
      this.timer = setTimeout(() => this.end(deadlineExceeded()), Math.max(timeoutMs, 0));
    }
  }

  /** True once the deadline (if any) has passed, even when its timer has not fired yet. */
  get expired(): boolean {
    return this.deadline !== undefined && performance.now() >= this.deadline;
  }

  get method(): UnarySpec["method"] {
    return this.spec.method;
  }

  get service(): DescService {
    return this.spec.method.parent;
  }

  get url(): string {
    const socket = this.stream.session?.socket;
    const encrypted = socket !== undefined && "encrypted" in socket && socket.encrypted;
    return `${encrypted ? "https" : "http"}://${this.headers[":authority"] ?? this.headers.host}${this.headers[":path"]}`;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.ended) this.controller.abort(this.endReason);
    }
    return this.controller.signal;
  }

  /** Hands the end of the call to the observer started for it. */
  observe(end: EndCall): void {
    this.endObservation = end;
  }

  /**
   * Ends the call once: aborts its signal (when anyone holds it: the work it started is
   * cancelled), answers with the reason if the call was not answered yet (deadline, shutdown),
   * and ends its observation.
   */
  end(reason: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.endReason = reason;
    clearTimeout(this.timer);
    this.onEnd(this);
    this.controller?.abort(reason);
    let answeredWith: ConnectError | undefined;
    if (!this.answered && !this.stream.closed && !this.stream.destroyed) {
      answeredWith = reason instanceof ConnectError ? reason : new ConnectError("internal error", Code.Internal, undefined, undefined, reason);
      setTrailerStatus(this.responseTrailer, answeredWith);
      const refused = this.answer(undefined);
      if (refused !== undefined) answeredWith = new ConnectError("internal error", Code.Internal, undefined, undefined, refused);
    }
    this.answered = true;
    const observation = this.endObservation;
    // Let go of what only the call in flight needed (see "Letting go" at the top of this file).
    this.endObservation = undefined;
    this.request = undefined;
    observation?.(reason === CALL_ENDED ? undefined : reason, answeredWith);
  }

  /**
   * Sends the response: headers, the message (none for an error) and the trailers, once; later
   * calls do nothing. Returns what HTTP/2 threw when it refused the headers (a handler's invalid
   * metadata): the stream is then reset.
   */
  answer(body: Buffer | undefined): unknown {
    if (this.answered) return undefined;
    this.answered = true;
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return undefined;
    try {
      const trailers: http2.OutgoingHttpHeaders = {};
      this.responseTrailer.copyTo(trailers);
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
      return err;
    }
  }

  /** The context a handler sees when an interceptor passed on a request of its own. */
  derive(req: UnaryRequest): HandlerContext {
    return {
      method: this.method,
      service: req.service,
      requestMethod: this.requestMethod,
      url: req.url,
      get signal() {
        return req.signal;
      },
      timeoutMs: this.timeoutMs,
      requestHeader: req.header,
      responseHeader: this.responseHeader,
      responseTrailer: this.responseTrailer,
      protocolName: this.protocolName,
      values: req.contextValues,
    };
  }
}

/** The call a request of this path belongs to (interceptors that copy a request copy this too). */
const CALL = Symbol("unary call");
type CallRequest = UnaryRequest & { [CALL]: UnaryCallContext };

// A request's url and signal are read from its call when asked for (the signal's controller is
// made only then). They are own enumerable accessors, as in an object literal, so that an
// interceptor that spreads a request into a new one copies them; but the getters are shared by
// every request rather than closures made per call: an object literal with getters costs ~0.5 µs
// to build (V8 gives each such object a dictionary of its own), and its getter closures, holding
// the call, kept every finished call alive through the scavenges that followed it (bench/RESULTS.md, S24).
const URL_ACCESSOR: PropertyDescriptor = {
  get(this: CallRequest) {
    return this[CALL].url;
  },
  enumerable: true,
  configurable: true,
};
const SIGNAL_ACCESSOR: PropertyDescriptor = {
  get(this: CallRequest) {
    return this[CALL].signal;
  },
  enumerable: true,
  configurable: true,
};

function newRequest(call: UnaryCallContext, message: UnaryRequest["message"]): CallRequest {
  return new CallRequestOf(call, message) as unknown as CallRequest;
}

class CallRequestOf {
  readonly [CALL]: UnaryCallContext;
  readonly stream = false;
  readonly service: DescService;
  readonly method: UnarySpec["method"];
  readonly requestMethod: string;
  readonly header: CallHeaders;
  readonly contextValues: ContextValues;

  constructor(
    call: UnaryCallContext,
    readonly message: UnaryRequest["message"],
  ) {
    this[CALL] = call;
    this.service = call.service;
    this.method = call.method;
    this.requestMethod = call.requestMethod;
    Object.defineProperty(this, "url", URL_ACCESSOR);
    Object.defineProperty(this, "signal", SIGNAL_ACCESSOR);
    this.header = call.requestHeader;
    this.contextValues = call.values;
  }
}

/** A method's implementation behind the interceptors, composed once per method (connect composes them per call). */
function composeUnary(spec: UnarySpec, interceptors: Interceptor[]): UnaryFn {
  const output = spec.method.output;
  const implementation: UnaryFn = async (req) => {
    const call = (req as CallRequest)[CALL];
    const ctx = req === call.request ? call : call.derive(req);
    const message = create(output, await spec.impl(req.message as never, ctx));
    return { stream: false, service: call.service, method: spec.method, header: call.responseHeader, trailer: call.responseTrailer, message };
  };
  let next = implementation;
  for (let i = interceptors.length - 1; i >= 0; i--) next = interceptors[i]!(next as never) as UnaryFn;
  return next;
}

/** An interceptor's response headers or trailers replace the call's, as connect copies them. */
function adopt(from: Headers, to: CallHeaders): void {
  if (from === to) return;
  for (const name of [...to.keys()]) to.delete(name);
  from.forEach((value, name) => to.set(name, value));
}

/**
 * The request body, at most `limit` bytes (resource_exhausted beyond). A stream that fails
 * also closes: the caller keeps an error listener on every stream it takes. The listeners go
 * once the body is read or refused (see "Letting go" at the top of this file).
 */
function readBody(stream: http2.ServerHttp2Stream, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      stream.off("data", onData).off("end", onEnd).off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else {
        done();
        stream.resume();
        reject(new ConnectError(`message size is larger than configured readMaxBytes ${limit - HEADER_SIZE}`, Code.ResourceExhausted));
      }
    };
    const onEnd = () => {
      done();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onClose = () => {
      done();
      reject(new ConnectError("the client closed the stream", Code.Canceled));
    };
    stream.on("data", onData).on("end", onEnd).on("close", onClose);
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

export function createGrpcUnaryPath(opts: GrpcUnaryOptions): GrpcUnaryPath {
  const specs = new Map<string, { spec: UnarySpec; invoke: UnaryFn }>();
  const add = (spec: MethodImplSpec) => {
    if (spec.kind === "unary") specs.set(`/${spec.method.parent.typeName}/${spec.method.name}`, { spec, invoke: composeUnary(spec, opts.interceptors) });
  };

  // Calls in flight, told when the server shuts down.
  const live = new InFlight<UnaryCallContext>();
  const forget = (call: UnaryCallContext) => live.delete(call);
  opts.shutdownSignal.addEventListener("abort", () => {
    for (const call of live.snapshot()) call.end(opts.shutdownSignal.reason);
  }, { once: true });

  async function handle(spec: UnarySpec, invoke: UnaryFn, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, meta: RequestMeta): Promise<void> {
    const grpcTimeout = headers["grpc-timeout"];
    const timeout = grpcTimeout === undefined ? undefined : parseTimeout(Array.isArray(grpcTimeout) ? grpcTimeout.join(", ") : grpcTimeout, Number.MAX_SAFE_INTEGER);
    const call = new UnaryCallContext(spec, stream, headers, contextValuesOf(meta), timeout?.timeoutMs, meta.requestId, forget);
    call.observe(opts.startCall(call));
    live.add(call);
    if (opts.shutdownSignal.aborted) call.end(opts.shutdownSignal.reason);
    const onClose = () => {
      stream.off("close", onClose);
      if (!call.answered) call.end(new ConnectError(`http/2 stream closed with error code ${stream.rstCode}`, Code.Canceled));
    };
    stream.on("close", onClose);
    // A peer's reset with an error code is also emitted as an error: without a listener it would
    // take the process down. It ends the call through "close" above.
    stream.on("error", ignore);

    let body: Buffer | undefined;
    let error: ConnectError | undefined;
    try {
      // Like connect: a bad grpc-timeout fails the call before its body is read.
      if (timeout?.error) throw timeout.error;
      const input = parseRequest(spec, await readBody(stream, opts.readMaxBytes + HEADER_SIZE), opts.readMaxBytes);
      // Abandoned meanwhile (deadline, shutdown, client gone): the call has its answer.
      if (call.answered) return;
      call.request = newRequest(call, input);
      const { message, header, trailer } = await invoke(call.request);
      if (call.answered) return;
      // The deadline passed while the handler ran (its timer may not have fired yet).
      if (call.expired) return call.end(deadlineExceeded());
      adopt(header, call.responseHeader);
      adopt(trailer, call.responseTrailer);
      body = envelope(toBinary(spec.method.output, message));
    } catch (err) {
      if (call.answered) return;
      error = err instanceof ConnectError ? err : new ConnectError("internal error", Code.Internal, undefined, undefined, err);
      setTrailerStatus(call.responseTrailer, error);
    } finally {
      // Headers HTTP/2 refuses: the call could not be answered properly.
      const refused = call.answer(body);
      if (refused !== undefined) error = new ConnectError("internal error", Code.Internal, undefined, undefined, refused);
      call.end(error ?? CALL_ENDED);
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

    serve(stream, headers, meta) {
      if (headers[":method"] !== "POST" || headers.origin !== undefined) return false;
      const entry = specs.get((headers[":path"] ?? "").split("?", 1)[0]!);
      const contentType = headers["content-type"];
      if (!entry || !contentType || !GRPC_CONTENT_TYPES.has(contentType)) return false;
      const encoding = headers["grpc-encoding"];
      if (encoding !== undefined && encoding !== "identity") return false;
      void handle(entry.spec, entry.invoke, stream, headers, meta());
      return true;
    },
  };
}

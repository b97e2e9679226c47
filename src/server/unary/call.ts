// One unary call on the server's own paths (gRPC on an HTTP/2 stream, Connect, REST): the
// HandlerContext handlers and interceptors see, and the request objects they are handed. Each
// protocol subclasses UnaryCall with how it reads its input and writes its answer; calls.ts
// drives every call the same way. Unlike connect's context (two AbortControllers, three
// listeners, three fetch Headers per call) it makes its AbortController only when the signal is
// read or a deadline needs it, and tells its observer of its end directly. Letting go: whatever a
// finished call leaves reachable from the old generation is promoted and brings full collections
// (bench/RESULTS.md, S22, S24): no long-lived Set of calls (in-flight.ts), shared accessors rather
// than closures on requests, transport listeners removed when done, an ended call drops its
// request and observer.
import { create, type DescService, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, type HandlerContext, type Interceptor, type MethodImplSpec, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { CallHeaders } from "./call-headers.js";
import type { EndCall } from "../calls/interceptors.js";

export type UnarySpec = Extract<MethodImplSpec, { kind: "unary" }>;
export type UnaryFn = (req: UnaryRequest) => Promise<UnaryResponse>;
type HeaderSource = ConstructorParameters<typeof CallHeaders>[0];

/** The reason a call's signal carries once the call ended normally. */
export const CALL_ENDED = new ConnectError("the call ended", Code.Canceled);
export const deadlineExceeded = (): ConnectError => new ConnectError("the operation timed out", Code.DeadlineExceeded);
/** What a call answers for anything thrown that is not a ConnectError (the original kept as cause, for the log). */
export const internalError = (cause: unknown): ConnectError => new ConnectError("internal error", Code.Internal, undefined, undefined, cause);
const NO_TIMEOUT = (): undefined => undefined;
const EMPTY: HeaderSource = Object.freeze({});

/**
 * A call in flight. `Body` is what the protocol encodes a response message into (unary/calls.ts
 * encodes it before answering, so that an encoding failure is answered as an error).
 */
export abstract class UnaryCall<Body = unknown> implements HandlerContext {
  abstract readonly protocolName: string;
  readonly requestHeader: CallHeaders;
  readonly responseHeader: CallHeaders;
  readonly responseTrailer: CallHeaders;
  readonly timeoutMs: () => number | undefined = NO_TIMEOUT;
  /** The request as the interceptors first see it. */
  request?: UnaryRequest;
  /** Where the call is among the calls in flight (InFlight). */
  inFlightIndex = -1;
  /** Set once the answer is on its way (or can no longer be sent): later answers are dropped. */
  answered = false;
  /** Told when the call ends (the calls in flight forget it). */
  onEnd?(call: UnaryCall<Body>): void;
  /** When the deadline passes (performance.now()); undefined without a timeout. */
  private readonly deadline?: number;
  private controller?: AbortController;
  private timer?: NodeJS.Timeout;
  private ended = false;
  private endReason: unknown;
  private endObservation?: EndCall;

  constructor(
    readonly spec: UnarySpec,
    readonly requestMethod: string,
    requestHeaders: HeaderSource,
    readonly values: ContextValues,
    timeoutMs: number | undefined,
    responseHeaders: HeaderSource = EMPTY,
  ) {
    this.requestHeader = new CallHeaders(requestHeaders);
    this.responseHeader = new CallHeaders(responseHeaders);
    this.responseTrailer = new CallHeaders(EMPTY);
    if (timeoutMs !== undefined) {
      const deadline = performance.now() + timeoutMs;
      this.deadline = deadline;
      this.timeoutMs = () => deadline - performance.now();
      this.timer = setTimeout(() => this.end(deadlineExceeded()), Math.max(timeoutMs, 0));
    }
  }

  /** The URL of the request. */
  abstract get url(): string;

  /**
   * Reads and parses the request message. Throws the protocol's errors (a bad timeout, an
   * oversized or undecodable body) as ConnectErrors.
   */
  abstract readInput(readMaxBytes: number): Promise<Message>;

  /** Encodes a response message (a promise when that takes I/O, e.g. compression). */
  abstract encode(output: Message): Body | Promise<Body>;

  /**
   * Puts the listeners on the transport that end the call when the client goes before the
   * answer; each removes itself once it has fired or the exchange is over.
   */
  abstract watch(): void;

  /** Whether the transport can still carry the answer. */
  protected abstract get open(): boolean;

  /**
   * Writes the answer: the body, or the error (body undefined). Returns the error the call was
   * answered with instead, when the transport refused the answer (invalid metadata) or it
   * could not be sent as it was.
   */
  protected abstract send(body: Body | undefined, error: ConnectError | undefined): ConnectError | undefined;

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

  /** Answers once; later calls do nothing. See send() for what it returns. */
  answer(body: Body | undefined, error: ConnectError | undefined): ConnectError | undefined {
    if (this.answered) return undefined;
    this.answered = true;
    if (!this.open) return undefined;
    return this.send(body, error);
  }

  /**
   * Ends the call once: aborts its signal (when anyone holds it: the work it started is
   * cancelled), answers with the reason if the call was not answered yet (deadline, shutdown,
   * client gone), and ends its observation.
   */
  end(reason: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.endReason = reason;
    clearTimeout(this.timer);
    this.onEnd?.(this);
    this.controller?.abort(reason);
    let answeredWith: ConnectError | undefined;
    if (!this.answered) {
      answeredWith = reason instanceof ConnectError ? reason : internalError(reason);
      answeredWith = this.answer(undefined, answeredWith) ?? answeredWith;
    }
    const observation = this.endObservation;
    // Let go of what only the call in flight needed (see the top of this file).
    this.endObservation = undefined;
    this.request = undefined;
    observation?.(reason === CALL_ENDED ? undefined : reason, answeredWith);
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

/** The call a request belongs to (interceptors that copy a request copy this too). */
const CALL = Symbol("unary call");
type CallRequest = UnaryRequest & { [CALL]: UnaryCall };

// A request's url and signal are read from its call when asked for (the signal's controller is
// made only then). They are own enumerable accessors, as in an object literal, so that an
// interceptor that spreads a request into a new one copies them; but the getters are shared by
// every request rather than closures made per call: an object literal with getters costs ~0.5 µs
// to build, and its getter closures, holding the call, kept every finished call alive through
// the scavenges that followed it (bench/RESULTS.md, S24).
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

class CallRequestOf {
  readonly [CALL]: UnaryCall;
  readonly stream = false;
  readonly service: DescService;
  readonly method: UnarySpec["method"];
  readonly requestMethod: string;
  readonly header: CallHeaders;
  readonly contextValues: ContextValues;

  constructor(
    call: UnaryCall,
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

export function newRequest(call: UnaryCall, message: UnaryRequest["message"]): UnaryRequest {
  return new CallRequestOf(call, message) as unknown as UnaryRequest;
}

/** A method's implementation behind the interceptors, composed once per method (connect composes them per call). */
export function composeUnary(spec: UnarySpec, interceptors: Interceptor[]): UnaryFn {
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
export function adopt(from: Headers, to: CallHeaders): void {
  if (from === to) return;
  for (const name of [...to.keys()]) to.delete(name);
  from.forEach((value, name) => to.set(name, value));
}

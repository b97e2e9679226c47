// The unary methods the server serves on its own paths, and how each call runs. Methods are
// recorded as they are registered on the Connect router (without per-route options), their
// interceptors composed once; gRPC (grpc/unary.ts), Connect (connect/unary.ts) and REST
// (rest/gateway.ts) run their calls through run(), so every protocol gets the same context,
// interceptors, observation, error mapping, deadline and shutdown handling. A call abandoned by
// its deadline, its client or the end of the shutdown grace is answered at once with that status,
// its signal aborted first (its database work is cancelled: store/transaction.ts) and a later
// result dropped; a call whose deadline passed while its handler ran answers deadline_exceeded.
import type { DescMethod } from "@bufbuild/protobuf";
import { ConnectError, createMethodImplSpec, createServiceImplSpec, type ConnectRouter, type HandlerContext, type Interceptor, type MethodImplSpec } from "@connectrpc/connect";
import type { EndCall } from "../calls/interceptors.js";
import { adopt, CALL_ENDED, composeUnary, deadlineExceeded, internalError, newRequest, type UnaryCall, type UnaryFn, type UnarySpec } from "./call.js";
import { InFlight } from "./in-flight.js";

export interface UnaryCallsOptions {
  /** Applied in this order, as connect applies them. */
  interceptors: Interceptor[];
  /** Starts observing a call (its log line and metrics); the returned function ends it. */
  startCall: (ctx: HandlerContext) => EndCall;
  readMaxBytes: number;
  shutdownSignal: AbortSignal;
}

/** A unary method served here: its implementation and the interceptors around it. */
export interface UnaryMethod {
  spec: UnarySpec;
  invoke: UnaryFn;
}

export interface UnaryCalls {
  /** Wraps a router so that the unary methods registered through it are served here too. */
  recording(router: ConnectRouter): ConnectRouter;
  /** The method served at a path ("/identity.v1.UserAuthService/GetMe"), if it is served here. */
  atPath(path: string): UnaryMethod | undefined;
  /** The method, if it is served here. */
  of(method: DescMethod): UnaryMethod | undefined;
  /** Runs a call to completion: observed, read, invoked, answered, ended. */
  run(call: UnaryCall, method: UnaryMethod): Promise<void>;
}

export function createUnaryCalls(opts: UnaryCallsOptions): UnaryCalls {
  const byPath = new Map<string, UnaryMethod>();
  const byMethod = new Map<DescMethod, UnaryMethod>();
  const add = (spec: MethodImplSpec) => {
    if (spec.kind !== "unary") return;
    const method: UnaryMethod = { spec, invoke: composeUnary(spec, opts.interceptors) };
    byPath.set(`/${spec.method.parent.typeName}/${spec.method.name}`, method);
    byMethod.set(spec.method, method);
  };

  // Calls in flight, told when the server shuts down.
  const live = new InFlight<UnaryCall>();
  const forget = (call: UnaryCall) => live.delete(call);
  opts.shutdownSignal.addEventListener("abort", () => {
    for (const call of live.snapshot()) call.end(opts.shutdownSignal.reason);
  }, { once: true });

  async function run(call: UnaryCall, { invoke }: UnaryMethod): Promise<void> {
    call.onEnd = forget;
    call.observe(opts.startCall(call));
    live.add(call);
    if (opts.shutdownSignal.aborted) call.end(opts.shutdownSignal.reason);
    call.watch();

    let body: unknown;
    let error: ConnectError | undefined;
    try {
      const input = await call.readInput(opts.readMaxBytes);
      // Abandoned meanwhile (deadline, shutdown, client gone): the call has its answer.
      if (call.answered) return;
      call.request = newRequest(call, input);
      const { message, header, trailer } = await invoke(call.request);
      if (call.answered) return;
      // The deadline passed while the handler ran (its timer may not have fired yet).
      if (call.expired) return call.end(deadlineExceeded());
      adopt(header, call.responseHeader);
      adopt(trailer, call.responseTrailer);
      const encoded = call.encode(message);
      body = encoded instanceof Promise ? await encoded : encoded;
    } catch (err) {
      if (call.answered) return;
      error = err instanceof ConnectError ? err : internalError(err);
    } finally {
      const replaced = call.answer(body, error);
      call.end(replaced ?? error ?? CALL_ENDED);
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
    atPath: (path) => byPath.get(path),
    of: (method) => byMethod.get(method),
    run,
  };
}

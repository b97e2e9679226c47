// What every call goes through: request meta in the context (client IP, user agent,
// request id), domain errors turned into Connect errors, and one log line plus metrics
// per call.
import { randomUUID } from "node:crypto";
import { BlockList, isIP } from "node:net";
import { Code, ConnectError, createContextKey, createContextValues, type ContextValues, type HandlerContext, type Interceptor, type StreamRequest, type UnaryRequest } from "@connectrpc/connect";
import { BadRequestSchema, RetryInfoSchema } from "../../../gen/google/rpc/error_details_pb.js";
import type { RequestMeta } from "../../domain/caller.js";
import { DomainError, type ErrorKind } from "../../domain/errors.js";
import type { Logger } from "../../logger.js";
import { createOutageLog, storeFailure, StoreUnavailableError, STORE_RETRY_AFTER_SECONDS, type OutageLog } from "../../store/store-errors.js";
import { requestMetaKey } from "./context.js";
import { codeName, type NodeRequest } from "../http/plain.js";
import type { Metrics } from "../endpoints/metrics.js";

// ---------------------------------------------------------------------------------------
// Request meta

/** The CIDRs (IPv4 and IPv6) whose X-Forwarded-For is believed; undefined when there are none. */
export function trustedProxies(cidrs: string[]): BlockList | undefined {
  if (!cidrs.length) return undefined;
  const list = new BlockList();
  for (const entry of cidrs) {
    const [addr = "", bits] = entry.split("/");
    const type = isIP(addr) === 6 ? "ipv6" : "ipv4";
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
  }
  return list;
}

const requestIdPattern = /^[A-Za-z0-9._:-]{8,128}$/;
const maxUserAgentLength = 512;
const metaByRequest = new WeakMap<NodeRequest, RequestMeta>();

/** What request meta is read from: an HTTP request, or an HTTP/2 stream's headers and socket. */
export interface RequestSource {
  headers: Record<string, string | string[] | undefined>;
  socket: { remoteAddress?: string } | undefined;
}

/** The request meta of a request (see requestMetaOf). Without `proxies`, X-Forwarded-For is not believed. */
export function readRequestMeta(source: RequestSource, proxies?: BlockList): RequestMeta {
  const id = header(source, "x-request-id");
  return {
    ip: clientIp(source, proxies),
    userAgent: (header(source, "user-agent") ?? "").slice(0, maxUserAgentLength),
    requestId: id !== undefined && requestIdPattern.test(id) ? id : randomUUID(),
  };
}

/**
 * The request meta of an HTTP request, computed once and remembered: the server's front
 * handler computes it first (with the trusted proxies) and everything after reads the
 * same values.
 */
export function requestMetaOf(req: NodeRequest, proxies?: BlockList): RequestMeta {
  let meta = metaByRequest.get(req);
  if (!meta) {
    meta = readRequestMeta(req, proxies);
    metaByRequest.set(req, meta);
  }
  return meta;
}

/** Context values for a call made with this request meta. */
export function contextValuesOf(meta: RequestMeta): ContextValues {
  return createContextValues().set(requestMetaKey, meta);
}

/** Context values for a call made on behalf of this HTTP request (connectNodeAdapter's `contextValues`). */
export function contextValuesFor(req: NodeRequest): ContextValues {
  return contextValuesOf(requestMetaOf(req));
}

function header(source: RequestSource, name: string): string | undefined {
  const v = source.headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}

/**
 * The socket peer, unless it is a trusted proxy: then X-Forwarded-For is walked from the
 * right (the hop nearest to us) and the first address that is not a trusted proxy is the
 * client. Everything left of it was written by the client and proves nothing.
 */
function clientIp(req: RequestSource, proxies: BlockList | undefined): string {
  let ip = normalizeIp(req.socket?.remoteAddress ?? "");
  if (!proxies || !isTrusted(proxies, ip)) return ip;
  const hops = (header(req, "x-forwarded-for") ?? "").split(",").map((h) => h.trim()).filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeIp(stripPort(hops[i]!));
    // Garbage in the header: stop at the last address we can vouch for.
    if (!isIP(hop)) break;
    ip = hop;
    if (!isTrusted(proxies, hop)) break;
  }
  return ip;
}

function isTrusted(proxies: BlockList, ip: string): boolean {
  const family = isIP(ip);
  return family !== 0 && proxies.check(ip, family === 6 ? "ipv6" : "ipv4");
}

/** IPv4-mapped IPv6 ("::ffff:10.0.0.1") is reported as the IPv4 address it carries. */
function normalizeIp(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return mapped ? mapped[1]! : ip;
}

/** "1.2.3.4:5678" and "[2001:db8::1]:443" (some proxies add the port) to the bare address. */
function stripPort(hop: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hop);
  if (bracketed) return bracketed[1]!;
  const v4 = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(hop);
  return v4 ? v4[1]! : hop;
}

// ---------------------------------------------------------------------------------------
// Errors

const codeOfKind: Record<ErrorKind, Code> = {
  invalid_argument: Code.InvalidArgument,
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  resource_exhausted: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
};

/**
 * DomainError → ConnectError with its code and standard details (BadRequest field
 * violations, RetryInfo plus a Retry-After header); ConnectError as is; a store that is
 * unreachable (src/store/store-errors.ts decides) → unavailable with RetryInfo, the
 * StoreUnavailableError as `cause`; anything else → internal "Internal error", the original
 * kept as `cause` for the log only.
 */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (!(err instanceof DomainError)) {
    const failure = storeFailure(err);
    if (!failure) return new ConnectError("Internal error", Code.Internal, undefined, undefined, err);
    return retryable("Service temporarily unavailable; try again shortly", Code.Unavailable, [], STORE_RETRY_AFTER_SECONDS, failure);
  }
  const { violations, retryAfterSeconds } = err.extra;
  const details: ErrorDetail[] = [];
  if (violations?.length) {
    details.push({ desc: BadRequestSchema, value: { fieldViolations: violations.map((v) => ({ field: v.field, description: v.description })) } });
  }
  return retryable(err.message, codeOfKind[err.kind], details, retryAfterSeconds, err);
}

type ErrorDetail = NonNullable<ConstructorParameters<typeof ConnectError>[3]>[number];

/** A ConnectError with these details, plus RetryInfo and a Retry-After header when a delay is given. */
function retryable(message: string, code: Code, details: ErrorDetail[], retryAfterSeconds: number | undefined, cause: unknown): ConnectError {
  const metadata: Record<string, string> = {};
  if (retryAfterSeconds !== undefined) {
    details.push({ desc: RetryInfoSchema, value: { retryDelay: { seconds: BigInt(retryAfterSeconds) } } });
    metadata["retry-after"] = String(retryAfterSeconds);
  }
  return new ConnectError(message, code, metadata, details, cause);
}

/**
 * Maps whatever a handler (or an inner interceptor) throws with toConnectError, streams
 * included. When the call's signal was aborted (deadline, client gone, shutdown), an
 * error that is not already a Connect or domain error is taken to come from that abort
 * and answered with its reason rather than as an internal error.
 */
export const errorInterceptor: Interceptor = (next) => async (req) => {
  try {
    const res = await next(req);
    if (!res.stream) return res;
    return { ...res, message: mapStreamErrors(res.message, (err) => callError(req, err)) };
  } catch (err) {
    throw callError(req, err);
  }
};

function callError(req: UnaryRequest | StreamRequest, err: unknown): ConnectError {
  return req.signal.aborted && !(err instanceof ConnectError) && !(err instanceof DomainError) ? ConnectError.from(req.signal.reason) : toConnectError(err);
}

/**
 * For connect-node's protocol handlers (gRPC-Web, Connect GET and streaming, gRPC beside the
 * server's own unary paths): connect-node aborts a call's signal at its deadline, when the
 * client goes and at the end of the shutdown grace, but waits for the handler and sends
 * whatever it returns, even after that. This answers a unary call with the signal's reason
 * (deadline_exceeded, unavailable) as soon as it aborts, and never with a result that came
 * after; the handler's database work is cancelled through the same signal (Caller.signal). The
 * server's own unary paths do the same themselves (unary/calls.ts), without this interceptor.
 */
export const abandonOnAbort: Interceptor = (next) => async (req) => {
  if (req.stream) return next(req);
  const signal = req.signal;
  signal.throwIfAborted();
  let onAbort!: () => void;
  const abandoned = new Promise<never>((_, reject) => (onAbort = () => reject(signal.reason)));
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    const res = await Promise.race([next(req), abandoned]);
    signal.throwIfAborted();
    return res;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
};

async function* mapStreamErrors<T>(messages: AsyncIterable<T>, map: (err: unknown) => ConnectError): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (err) {
    throw map(err);
  }
}

// ---------------------------------------------------------------------------------------
// Logging and metrics

interface CallRecord {
  /** The outcome as the outermost interceptor saw it; unset when the call never got there. */
  outcome?: { error?: ConnectError };
}

const callRecordKey = createContextKey<CallRecord | undefined>(undefined, { description: "call observation" });

/**
 * Ends the observation of a call (once; later calls do nothing), with what ended it: an error, or
 * nothing for a call that completed. `answered`: the error the call was answered with whatever
 * the interceptors saw (a call abandoned at its deadline or at shutdown).
 */
export type EndCall = (reason?: unknown, answered?: ConnectError) => void;

export interface CallObserver {
  /** Starts a call's clock; the call is logged and counted when the returned function is called. */
  start(ctx: HandlerContext): EndCall;
  /** connect-node's request gate: start(), ended when the call's signal aborts. */
  requestGate(ctx: HandlerContext): void;
  /** Records the outcome as the outermost interceptor sees it. */
  interceptor: Interceptor;
}

/**
 * One log line and the RPC metrics per call. Interceptors only see calls whose request
 * was read and parsed, so the clock starts before the body is read and the line is written
 * when the call ends: connect-node aborts each call's signal at its end, with the error as
 * the reason when one ended it (requestGate); the server's own unary paths end their calls
 * directly (start). A malformed or oversized request is therefore logged and counted too.
 */
export function callObserver(logger: Logger, metrics: Metrics, outages: OutageLog = createOutageLog(logger)): CallObserver {
  // Calls failed by an unreachable store go to `outages` (one warn line per outage), not one error line each.
  const finish = (ctx: HandlerContext, record: CallRecord, started: bigint, reason: unknown, answered: ConnectError | undefined) => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    // After a success connect-node aborts without a reason (which reads as "canceled"), so the
    // interceptor's view wins; the reason decides for calls that never reached it (request
    // unreadable or too large) or that ended before it settled (client gone, deadline).
    const error = answered ?? (record.outcome ? record.outcome.error : reason === undefined ? undefined : ConnectError.from(reason, Code.Internal));
    const code = codeName(error?.code);
    const service = ctx.service.typeName;
    const method = ctx.method.name;
    metrics.observeRpc(service, method, code, seconds);
    if (error?.cause instanceof StoreUnavailableError) outages.report(error.cause);
    const serverFault = error !== undefined && [Code.Internal, Code.Unknown, Code.DataLoss].includes(error.code);
    // Built only when it is written (LOG_LEVEL=warn and above keep only failures).
    if (!serverFault && !logger.isLevelEnabled("info")) return;
    const meta = ctx.values.get(requestMetaKey);
    const line = { requestId: meta.requestId, ip: meta.ip, procedure: `/${service}/${method}`, protocol: ctx.protocolName, code, durationMs: Math.round(seconds * 1e4) / 10 };
    if (serverFault) logger.error({ ...line, err: error.cause ?? error }, "rpc failed");
    else logger.info(line, "rpc");
  };

  const start = (ctx: HandlerContext): EndCall => {
    const started = process.hrtime.bigint();
    const record: CallRecord = {};
    ctx.values.set(callRecordKey, record);
    let ended = false;
    return (reason, answered) => {
      if (ended) return;
      ended = true;
      finish(ctx, record, started, reason, answered);
    };
  };

  return {
    start,
    requestGate(ctx) {
      const end = start(ctx);
      if (ctx.signal.aborted) end(ctx.signal.reason);
      else ctx.signal.addEventListener("abort", () => end(ctx.signal.reason), { once: true });
    },
    interceptor: (next) => async (req) => {
      const record = req.contextValues.get(callRecordKey);
      try {
        const res = await next(req);
        if (!res.stream) {
          settle(record);
          return res;
        }
        return { ...res, message: settleAfter(res.message, record) };
      } catch (err) {
        settle(record, err);
        throw err;
      }
    },
  };
}

const SUCCEEDED: CallRecord["outcome"] = Object.freeze({});

/** Records a call's outcome (the first one wins); a record is missing when the call was not observed. */
function settle(record: CallRecord | undefined, err?: unknown): void {
  if (record && !record.outcome) record.outcome = err === undefined ? SUCCEEDED : { error: ConnectError.from(err, Code.Internal) };
}

async function* settleAfter<T>(messages: AsyncIterable<T>, record: CallRecord | undefined): AsyncIterable<T> {
  try {
    yield* messages;
    settle(record);
  } catch (err) {
    settle(record, err);
    throw err;
  }
}

// Which errors mean "a store is unreachable right now" (retryable: the caller sees
// `unavailable`), as opposed to a bug (`internal`). The one place that classifies them; the
// server's error mapping and the job worker both ask here. Also the outage log: one warn line
// when a store starts failing, one info line when it has been quiet again for a while, instead
// of a stack trace per failed call.
import { AccessDeniedError, ConnectionError, InvalidConnectionError } from "sequelize";
import type { Logger } from "../logger.js";

export type StoreName = "postgres" | "redis";

/** What a caller is told to wait before retrying a call that failed on an unreachable store. */
export const STORE_RETRY_AFTER_SECONDS = 1;

/** A store failure, classified; `cause` is the error the driver raised. */
export class StoreUnavailableError extends Error {
  override name = "StoreUnavailableError";
  constructor(
    readonly store: StoreName,
    readonly reason: string,
    options: { cause: unknown },
  ) {
    super(`${store} is unavailable: ${reason}`, options);
  }
}

// PostgreSQL SQLSTATEs of a server that is going away, restarting or refusing connections:
// class 08 (connection exception), 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03
// cannot_connect_now (starting up, or recovering), 53300 too_many_connections.
const PG_TRANSIENT_STATE = /^(08[0-9A-Z]{3}|57P0[123]|53300)$/;
// Socket errors (node's errno codes) on any store connection.
const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ECONNABORTED", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "EHOSTDOWN", "ENETUNREACH", "ENETDOWN", "ENOTFOUND", "EAI_AGAIN"]);
// What pg and pg-pool say when a connection dies or cannot be had (they set no code).
const PG_CONNECTION_MESSAGES = [/^Connection terminated/, /is not queryable/, /^timeout exceeded when trying to connect/];
// What ioredis says when a command could not be served: bounded by commandTimeout, flushed
// after reconnection attempts, refused without a connection, or the connection closed; a
// cluster without a slot map or node, redirected too often (a slot moving or failing over), or
// closing; no sentinel reachable to name the primary.
const REDIS_MESSAGES = [
  /^Command timed out$/,
  /^Connection is closed\.?$/,
  /^Stream isn't writeable and enableOfflineQueue options is false$/,
  /^None of startup nodes is available/,
  /^Failed to refresh slots cache/,
  /^Cluster isn't ready and enableOfflineQueue options is false$/,
  /^Too many Cluster redirections/,
  /^Cluster is ended\.?$/,
  /^All sentinels are unreachable/,
];
const REDIS_ERROR_NAMES = new Set(["MaxRetriesPerRequestError", "ClusterAllFailedError"]);
// Redis replies of a server that is loading, failing over, read-only after a switch-over, or
// out of memory under maxmemory-policy noeviction (it cannot serve writes: not a bug of ours);
// and cluster redirections the client passed on instead of following (MOVED/ASK: the command
// did not run). ioredis follows a redirection of a single command, but an auto-pipelined batch
// whose commands were redirected for different slots, e.g. while their master is down, fails as is.
const REDIS_TRANSIENT_REPLY = /^(LOADING|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|OOM|MOVED|ASK)\b/;

interface ErrorLike {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  parent?: unknown;
  original?: unknown;
}

function classifyOne(e: ErrorLike): StoreUnavailableError | undefined {
  const message = typeof e.message === "string" ? e.message : "";
  const name = typeof e.name === "string" ? e.name : "";
  const code = typeof e.code === "string" ? e.code : "";
  if (e instanceof ConnectionError) {
    // Wrong credentials or a malformed address are configuration bugs, not outages.
    if (e instanceof AccessDeniedError || e instanceof InvalidConnectionError) return undefined;
    return new StoreUnavailableError("postgres", name || "ConnectionError", { cause: e });
  }
  if (REDIS_ERROR_NAMES.has(name) || REDIS_MESSAGES.some((m) => m.test(message)) || (name === "ReplyError" && REDIS_TRANSIENT_REPLY.test(message))) {
    return new StoreUnavailableError("redis", name === "ReplyError" ? message.split(" ")[0]! : message || name, { cause: e });
  }
  if (PG_TRANSIENT_STATE.test(code)) return new StoreUnavailableError("postgres", `SQLSTATE ${code}`, { cause: e });
  if (PG_CONNECTION_MESSAGES.some((m) => m.test(message))) return new StoreUnavailableError("postgres", message, { cause: e });
  // ioredis never hands a socket error to a command (it fails them with the messages above),
  // so a raw one comes from pg.
  if (NETWORK_CODES.has(code)) return new StoreUnavailableError("postgres", code, { cause: e });
  return undefined;
}

/**
 * The store failure an error stands for, or undefined when it is something else (a bug, a
 * constraint violation, a domain error…). Follows Sequelize's `parent`/`original` to the
 * driver's error, not `cause`: an outbound HTTP call's "fetch failed" carries a socket error
 * as its cause, and is no store's failure.
 */
export function storeFailure(err: unknown): StoreUnavailableError | undefined {
  if (err instanceof StoreUnavailableError) return err;
  let current: unknown = err;
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const e = current as ErrorLike;
    const found = classifyOne(e);
    if (found) return new StoreUnavailableError(found.store, found.reason, { cause: err });
    // A Sequelize connection error that classifyOne refused (credentials, address) stays a bug.
    if (e instanceof ConnectionError) return undefined;
    current = e.parent ?? e.original;
  }
  return undefined;
}

/**
 * Runs an optional store operation (a cache read or write): `fallback` when the store is
 * unreachable, so the caller goes on without it; any other error is thrown.
 */
export async function withStoreFallback<T>(op: () => Promise<T>, fallback: T): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (storeFailure(err)) return fallback;
    throw err;
  }
}

export interface OutageLog {
  /** Records a failed operation: the first of an outage is logged at warn, the rest counted. */
  report(failure: StoreUnavailableError): void;
  /** Says the store answered again (ends the outage now rather than after the quiet period). */
  recovered(store: StoreName): void;
}

/**
 * One warn line per store outage ("store unavailable", with the store and the first reason),
 * then silence; "store available again" at info, with the count of failures, once the store
 * has been quiet for `quietMs` or recovered() says it is back.
 */
export function createOutageLog(logger: Logger, quietMs = 10_000): OutageLog {
  const outages = new Map<StoreName, { since: number; last: number; failures: number; timer: NodeJS.Timeout }>();
  const end = (store: StoreName) => {
    const outage = outages.get(store);
    if (!outage) return;
    clearInterval(outage.timer);
    outages.delete(store);
    logger.info({ store, failures: outage.failures, seconds: Math.round((Date.now() - outage.since) / 100) / 10 }, "store available again");
  };
  return {
    report(failure) {
      const now = Date.now();
      const outage = outages.get(failure.store);
      if (outage) {
        outage.failures++;
        outage.last = now;
        return;
      }
      const timer = setInterval(() => {
        const o = outages.get(failure.store);
        if (o && Date.now() - o.last >= quietMs) end(failure.store);
      }, Math.max(100, Math.floor(quietMs / 2)));
      timer.unref();
      outages.set(failure.store, { since: now, last: now, failures: 1, timer });
      logger.warn({ store: failure.store, reason: failure.reason }, "store unavailable");
    },
    recovered: end,
  };
}

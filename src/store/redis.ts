// Redis: short-lived shared state (OTPs, verification tokens, rate-limit counters, denied
// token ids — DESIGN §5). Every key this process touches carries config.redisKeyPrefix.
//
// Lua scripts and the key prefix (verified in test/integration/store.test.ts):
// - ioredis prefixes the keys passed as KEYS — to a defineCommand script (numberOfKeys) as to
//   a plain EVAL/EVALSHA — so the script sees KEYS[1] == prefix + key. ARGV pass unchanged.
// - A key name the script builds itself (concatenated in Lua, or taken from ARGV) gets no
//   prefix: it escapes the namespace and breaks Redis Cluster. Pass every key through KEYS.
// - Key names coming back from Redis (SCAN, KEYS, a script returning KEYS[1]) carry the prefix.
// - For Redis Cluster, keys one script touches together must share a hash tag, e.g.
//   `otp:{<identifier hash>}:code` and `otp:{<identifier hash>}:tries`. The prefix is
//   prepended outside the tag, so the tag alone still decides the slot (keep braces out of
//   the prefix).
import { Redis } from "ioredis";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import { createOutageLog, StoreUnavailableError, type OutageLog } from "./store-errors.js";

/**
 * A standalone client with the key prefix. Commands issued in the same tick of the event loop
 * go out in one write (auto-pipelining): every authenticated call asks Redis, and on a busy
 * instance one socket write (a system call, which wakes Redis up) for many calls costs far
 * less than one each.
 *
 * Redis going away never hangs a call (issue 15): every command, queued or already written,
 * fails after `redisCommandTimeoutMs` (ioredis's commandTimeout and socketTimeout; the call
 * answers `unavailable`). Once the connection has failed (an error, a socket timeout), commands fail at once instead of
 * queueing (the offline queue is switched off until the connection is ready again), and a
 * connection that closes fails the commands it carried rather than resending them later
 * (maxRetriesPerRequest 0): a caller told `unavailable` must not see its command run
 * seconds afterwards. Connection errors go to the outage log (one warn line per outage),
 * never thrown as unhandled 'error' events.
 */
export function openRedis(config: Pick<Config, "redisUrl" | "redisKeyPrefix"> & Partial<Pick<Config, "redisCommandTimeoutMs">>, logger: Logger, outages?: OutageLog): Redis {
  const log = logger.child({ component: "redis" });
  const outageLog = outages ?? createOutageLog(log);
  const redis = new Redis(config.redisUrl, {
    keyPrefix: config.redisKeyPrefix,
    connectionName: "identity-service",
    enableAutoPipelining: true,
    connectTimeout: 5_000,
    commandTimeout: config.redisCommandTimeoutMs ?? 1_000,
    // A connection that received nothing for that long while awaiting replies is dropped
    // (its commands fail at once, the client reconnects). Without it, auto-pipelined commands
    // queued behind a pipeline in flight on a stalled connection would wait for that
    // pipeline's timeout before their own started: twice the bound.
    socketTimeout: config.redisCommandTimeoutMs ?? 1_000,
    maxRetriesPerRequest: 0,
    // Exponential backoff from 100 ms, capped at 3 s, with jitter so that a fleet of
    // instances does not reconnect in lockstep after a Redis restart.
    retryStrategy: (attempt) => Math.min(100 * 2 ** (attempt - 1), 3_000) + Math.floor(Math.random() * 100),
  });
  redis.on("error", (err: Error) => {
    // Down, not just reconnecting: fail commands at once until the connection is ready.
    redis.options.enableOfflineQueue = false;
    outageLog.report(new StoreUnavailableError("redis", err.message || err.name, { cause: err }));
    log.debug({ err }, "redis connection error");
  });
  redis.on("ready", () => {
    redis.options.enableOfflineQueue = true;
    outageLog.recovered("redis");
  });
  return redis;
}

/**
 * Defines a Lua script on the client and returns a typed caller for it. `keys` must hold
 * exactly `numberOfKeys` names (unprefixed: ioredis adds the prefix); see the notes at the
 * top of this file.
 */
export function defineScript<Result>(
  redis: Redis,
  name: string,
  lua: string,
  numberOfKeys: number,
): (keys: readonly string[], args?: ReadonlyArray<string | number>) => Promise<Result> {
  redis.defineCommand(name, { lua, numberOfKeys });
  const command = (redis as unknown as Record<string, (...args: Array<string | number>) => Promise<Result>>)[name]!.bind(redis);
  return (keys, args = []) => {
    if (keys.length !== numberOfKeys) throw new Error(`script ${name} takes ${numberOfKeys} keys, got ${keys.length}`);
    return command(...keys, ...args);
  };
}

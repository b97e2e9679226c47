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
//
// Three deployments (config.redisTopology, README "Redis deployments"): a standalone server
// (REDIS_URL), a primary found through Sentinel, or a Redis Cluster. Each gets the same key
// prefix, auto-pipelining and fail-fast bounds; the domain code sees one RedisClient.
import { Cluster, Redis, type RedisOptions } from "ioredis";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import { createOutageLog, StoreUnavailableError, type OutageLog } from "./store-errors.js";

/** A standalone or Sentinel-managed connection, or a Redis Cluster: the commands are the same. */
export type RedisClient = Redis | Cluster;

export type RedisConfig = Pick<Config, "redisUrl" | "redisKeyPrefix"> & Partial<Pick<Config, "redisCommandTimeoutMs" | "redisTopology">>;

// Exponential backoff from 100 ms, capped at 3 s, with jitter so that a fleet of instances does
// not reconnect in lockstep after a Redis restart.
const reconnectDelay = (attempt: number) => Math.min(100 * 2 ** (attempt - 1), 3_000) + Math.floor(Math.random() * 100);

/**
 * A client with the key prefix. Commands issued in the same tick of the event loop go out in
 * one write (auto-pipelining; per node in a cluster): every authenticated call asks Redis, and
 * on a busy instance one socket write (a system call, which wakes Redis up) for many calls
 * costs far less than one each.
 *
 * Redis going away never hangs a call (issue 15): every command, queued or already written,
 * fails after `redisCommandTimeoutMs` (ioredis's commandTimeout and socketTimeout; the call
 * answers `unavailable`). Once the connection has failed (an error, a socket timeout), commands fail at once instead of
 * queueing (the offline queue is switched off until the connection is ready again), and a
 * connection that closes fails the commands it carried rather than resending them later
 * (maxRetriesPerRequest 0; in a cluster, no retry on a closed connection either): a caller told
 * `unavailable` must not see its command run seconds afterwards. Connection errors go to the
 * outage log (one warn line per outage), never thrown as unhandled 'error' events.
 */
export function openRedis(config: RedisConfig, logger: Logger, outages?: OutageLog): RedisClient {
  const log = logger.child({ component: "redis" });
  const outageLog = outages ?? createOutageLog(log);
  const timeout = config.redisCommandTimeoutMs ?? 1_000;
  const connection = {
    connectionName: "identity-service",
    connectTimeout: 5_000,
    commandTimeout: timeout,
    // A connection that received nothing for that long while awaiting replies is dropped
    // (its commands fail at once, the client reconnects). Without it, auto-pipelined commands
    // queued behind a pipeline in flight on a stalled connection would wait for that
    // pipeline's timeout before their own started: twice the bound.
    socketTimeout: timeout,
    maxRetriesPerRequest: 0,
  } satisfies RedisOptions;
  const topology = config.redisTopology ?? { mode: "standalone" };
  let client: RedisClient;
  if (topology.mode === "cluster") {
    client = new Cluster(topology.nodes, {
      keyPrefix: config.redisKeyPrefix,
      enableAutoPipelining: true,
      redisOptions: { ...connection, ...topology.auth },
      clusterRetryStrategy: reconnectDelay,
      // A command whose connection closed may have run: not resent (as maxRetriesPerRequest 0).
      retryDelayOnFailover: 0,
      // CLUSTERDOWN and TRYAGAIN (a slot migrating or failing over) did not run: retried every
      // 100 ms, at most about the command timeout in all.
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      maxRedirections: Math.max(2, Math.floor(timeout / 100)),
      slotsRefreshTimeout: timeout,
    });
  } else {
    const common = { ...connection, keyPrefix: config.redisKeyPrefix, enableAutoPipelining: true, retryStrategy: reconnectDelay };
    client =
      topology.mode === "sentinel"
        ? new Redis({
            ...common,
            ...topology.auth,
            sentinels: topology.sentinels,
            name: topology.name,
            sentinelPassword: topology.sentinelPassword,
            sentinelCommandTimeout: timeout,
            // Reconnect as soon as the sentinels announce a new primary, not at the next backoff step.
            failoverDetector: true,
          })
        : new Redis(config.redisUrl, common);
  }
  const down = () => void (client.options.enableOfflineQueue = false);
  const report = (err: Error) => {
    outageLog.report(new StoreUnavailableError("redis", err.message || err.name, { cause: err }));
    log.debug({ err }, "redis connection error");
  };
  client.on("error", (err: Error) => {
    // Down, not just reconnecting: fail commands at once until the connection is ready.
    down();
    report(err);
  });
  if (client instanceof Cluster) {
    // One node failing (the others serve their slots): logged as an outage all the same.
    client.on("node error", report);
    // A cluster queues commands while it has no node (status close, reconnecting) and gives
    // them no timeout: fail them at once instead. (A standalone client's queue is bounded by
    // commandTimeout.)
    client.on("close", down);
  }
  client.on("ready", () => {
    client.options.enableOfflineQueue = true;
    outageLog.recovered("redis");
  });
  return client;
}

/** The servers that hold the data: every master of a cluster, or the one connection. */
export function redisMasters(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes("master") : [client];
}

/**
 * Throws unless Redis can serve writes now (/readyz): a standalone or Sentinel client must be
 * connected to a primary (a demoted one answers READONLY); a cluster must be ready, every
 * master it knows must answer, and the cluster must say its state is ok.
 */
export async function checkRedis(client: RedisClient): Promise<void> {
  if (!(client instanceof Cluster)) {
    // ROLE is an @admin command: a user without it (managed Redis ACLs) gets PING instead.
    const reply = await client.role().catch((err: Error) => {
      if (/^NOPERM/.test(err.message)) return null;
      throw err;
    });
    if (reply === null) await client.ping();
    else if (reply[0] !== "master") throw new Error(`Redis answers as ${String(reply[0])}, not as a primary`);
    return;
  }
  if (client.status !== "ready") throw new Error(`Redis Cluster ${client.status}`);
  const masters = client.nodes("master");
  if (!masters.length) throw new Error("Redis Cluster has no master");
  await Promise.all(masters.map((m) => m.ping()));
  const info = String(await client.cluster("INFO"));
  if (!/^cluster_state:ok\b/m.test(info)) throw new Error(`Redis Cluster state: ${/^cluster_state:(\w+)/m.exec(info)?.[1] ?? "unknown"}`);
}

/**
 * Deletes every key whose full name (prefix included) matches `pattern`, with SCAN on every
 * master (a cluster's keys are spread over them); returns how many were deleted. For cleanups
 * (tests, the bench) on a client without a key prefix.
 */
export async function deleteKeysMatching(client: RedisClient, pattern: string): Promise<number> {
  // A cluster knows its masters once it has its slot map.
  if (client instanceof Cluster && client.status !== "ready") {
    let timer: NodeJS.Timeout | undefined;
    await new Promise((resolve, reject) => {
      client.once("ready", resolve);
      timer = setTimeout(() => reject(new Error(`Redis Cluster not ready within 10 s (${client.status})`)), 10_000);
    }).finally(() => clearTimeout(timer));
  }
  let deleted = 0;
  for (const node of redisMasters(client)) {
    let cursor = "0";
    do {
      const [next, keys] = await node.scan(cursor, "MATCH", pattern, "COUNT", 1000);
      cursor = next;
      // One DEL per key, in one pipeline: in a cluster, keys of one SCAN page hash to different slots.
      const replies = keys.length ? ((await node.pipeline(keys.map((k) => ["del", k])).exec()) ?? []) : [];
      for (const [err, n] of replies) {
        if (err) throw err;
        deleted += Number(n);
      }
    } while (cursor !== "0");
  }
  return deleted;
}

/**
 * Defines a Lua script on the client and returns a typed caller for it. `keys` must hold
 * exactly `numberOfKeys` names (unprefixed: ioredis adds the prefix); see the notes at the
 * top of this file.
 */
export function defineScript<Result>(
  redis: RedisClient,
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

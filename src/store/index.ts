// The stores of one process: PostgreSQL (created and migrated at start, DESIGN §8) and Redis.
import type { Sequelize } from "sequelize";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import { ensureDatabase, openDatabase } from "./database.js";
import { migrate } from "./migrate.js";
import { defineModels, type Models } from "./models/index.js";
import { openRedis, type RedisClient } from "./redis.js";
import { createOutageLog, type OutageLog } from "./store-errors.js";

export { writeAudit, writeChangeWithAudit, writeKeyedChangeWithAudit } from "./audit-writer.js";
export * from "./models/index.js";
export { queryPrepared } from "./prepared.js";
export { checkRedis, defineScript, type RedisClient } from "./redis.js";
export { runTransaction } from "./transaction.js";

export interface Stores {
  sequelize: Sequelize;
  models: Models;
  redis: RedisClient;
  /** The process's store outages: one warn line per outage of each store (src/store/store-errors.ts). */
  outages: OutageLog;
  /** Closes the pool and the Redis connection; safe to call more than once. */
  close(): Promise<void>;
}

export type StoreConfig = Pick<Config, "databaseUrl" | "redisUrl" | "redisKeyPrefix"> &
  Partial<Pick<Config, "nodeEnv" | "redisCommandTimeoutMs" | "redisTopology" | "databaseDirectUrl" | "databasePreparedStatements">>;

async function closeRedis(redis: RedisClient): Promise<void> {
  if (redis.status === "end") return;
  if (redis.status === "ready") {
    // QUIT lets replies in flight arrive. Its promise settles on the reply, before the socket
    // closes: wait for "end" so that close() really means closed.
    const ended = new Promise((resolve) => redis.once("end", resolve));
    try {
      await redis.quit();
      await ended;
      return;
    } catch {
      // The connection broke meanwhile: drop it below.
    }
  }
  // Not connected: QUIT would only wait for a reconnection. This also cancels a pending one
  // (ioredis then emits no "end", so nothing to wait for).
  redis.disconnect();
}

async function closeAll(sequelize: Sequelize, redis: RedisClient): Promise<void> {
  const results = await Promise.allSettled([sequelize.close(), closeRedis(redis)]);
  const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failure) throw failure.reason;
}

/**
 * How long a starting process waits for Redis. The client fails commands at the first failed
 * connection attempt (src/store/redis.ts), so the start retries for a while: Redis and the
 * service are often started together.
 */
const REDIS_START_WAIT_MS = 3_000;

async function pingWithin(redis: RedisClient, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      // Bounded: a cluster queues commands until its first slot map, however long that takes.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("no answer")), Math.max(100, deadline - Date.now()))));
      await Promise.race([redis.ping(), late]).finally(() => clearTimeout(timer));
      return;
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** Where Redis is, without credentials, for error messages. */
function redisAddress(config: StoreConfig): string {
  const topology = config.redisTopology ?? { mode: "standalone" };
  const list = (nodes: Array<{ host: string; port: number }>) => nodes.map((n) => `${n.host}:${n.port}`).join(",");
  if (topology.mode === "cluster") return `cluster ${list(topology.nodes)}`;
  if (topology.mode === "sentinel") return `sentinels ${list(topology.sentinels)} (${topology.name})`;
  const u = new URL(config.redisUrl);
  return `${u.hostname}:${u.port || 6379}`;
}

/**
 * Applies the pending migrations over the direct connection (DATABASE_DIRECT_URL): DDL and
 * the migration lock are no business of a transaction pooler. Same URL: on `sequelize` itself.
 */
async function migrateDirect(config: StoreConfig, sequelize: Sequelize, logger: Logger): Promise<string[]> {
  const directUrl = config.databaseDirectUrl ?? config.databaseUrl;
  if (directUrl === config.databaseUrl) return migrate(sequelize, logger);
  const direct = openDatabase({ ...config, databaseUrl: directUrl }, logger);
  try {
    return await migrate(direct, logger);
  } finally {
    await direct.close();
  }
}

/**
 * Creates the database if missing, applies pending migrations, connects Redis. Fails (and
 * leaves nothing open) when either store is unreachable, so a misconfigured instance stops
 * at start with the reason.
 */
export async function openStores(config: StoreConfig, logger: Logger): Promise<Stores> {
  const log = logger.child({ component: "store" });
  if (await ensureDatabase(config.databaseDirectUrl ?? config.databaseUrl)) log.info("created the database");
  const sequelize = openDatabase(config, logger);
  const outages = createOutageLog(log);
  const redis = openRedis(config, logger, outages);
  try {
    const applied = await migrateDirect(config, sequelize, logger);
    log.info({ applied }, applied.length ? "database migrated" : "database schema up to date");
    await pingWithin(redis, REDIS_START_WAIT_MS).catch((err: Error) => {
      throw new Error(`Redis at ${redisAddress(config)} is unavailable: ${err.message}`, { cause: err });
    });
  } catch (err) {
    await closeAll(sequelize, redis).catch(() => undefined);
    throw err;
  }
  let closing: Promise<void> | undefined;
  return { sequelize, models: defineModels(sequelize), redis, outages, close: () => (closing ??= closeAll(sequelize, redis)) };
}

// A Redis Sentinel set of the test's own on free loopback ports: one primary, one replica and
// three sentinels (quorum 2), private redis-servers (test/support/private-redis.ts) whose files
// (the replica's RDB, the sentinels' rewritten configs) live in a temporary folder. Timings are
// short so that a failover takes seconds: a primary is "down" after 1 s without an answer, and a
// failover attempt that failed (a split vote) is tried again after 4 s.
//
//   const set = await startRedisSentinels();
//   set.sentinelsEnv, set.name   // REDIS_SENTINELS, REDIS_SENTINEL_NAME
//   await set.primary.stop();    // SIGKILL: the sentinels promote the replica
//   await set.masterPort()       // the primary the sentinels name now
//   await set.close();           // every process killed, the folder removed (safe after a failure)
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, redisCommand as ask, startPrivateRedis, type PrivateRedis } from "./private-redis.js";

export interface RedisSentinelSet {
  readonly primary: PrivateRedis;
  readonly replica: PrivateRedis;
  readonly sentinels: PrivateRedis[];
  /** The monitored primary's name (REDIS_SENTINEL_NAME). */
  readonly name: string;
  /** host:port of every sentinel, comma-separated (REDIS_SENTINELS). */
  readonly sentinelsEnv: string;
  /** The port of the primary the first sentinel that answers names. */
  masterPort(): Promise<number>;
  close(): Promise<void>;
}

/** A flat [field, value, …] reply as an object. */
const fields = (reply: unknown) => Object.fromEntries((reply as string[]).flatMap((v, i, a) => (i % 2 ? [] : [[v, a[i + 1]]]))) as Record<string, string>;

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`Redis Sentinel set: ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * `password`: the primary and the replica require it (the sentinels are told it); `sentinelPassword`:
 * the sentinels require that one of their clients (and use it among themselves).
 */
export async function startRedisSentinels(name = "identity", options: { password?: string; sentinelPassword?: string } = {}): Promise<RedisSentinelSet> {
  const dir = await mkdtemp(join(tmpdir(), "identity-redis-sentinel-"));
  const servers: PrivateRedis[] = [];
  const close = async () => {
    await Promise.allSettled(servers.map((s) => s.close()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const primary = await startPrivateRedis({ args: ["--dir", dir], password: options.password });
    servers.push(primary);
    const replica = await startPrivateRedis({ args: ["--dir", dir, "--replicaof", "127.0.0.1", String(primary.port)], password: options.password });
    servers.push(replica);
    await waitUntil("the replica in sync", 15_000, async () => /master_link_status:up/.test(String(await ask(replica.port, "INFO", "replication"))));
    const sentinels: PrivateRedis[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const configFile = join(dir, `sentinel-${port}.conf`);
      await writeFile(
        configFile,
        [
          `sentinel monitor ${name} 127.0.0.1 ${primary.port} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          // Also how long a sentinel waits (twice this) before trying again after a split vote.
          `sentinel failover-timeout ${name} 2000`,
          `sentinel parallel-syncs ${name} 1`,
          "sentinel announce-ip 127.0.0.1",
          ...(options.password === undefined ? [] : [`sentinel auth-pass ${name} ${JSON.stringify(options.password)}`]),
          "",
        ].join("\n"),
      );
      const sentinel = await startPrivateRedis({ port, configFile, args: ["--sentinel", "--dir", dir], password: options.sentinelPassword });
      servers.push(sentinel);
      sentinels.push(sentinel);
    }
    // Every sentinel must know the replica and the two other sentinels before a failover can be
    // agreed on (they find each other through the primary within a few seconds).
    for (const s of sentinels) {
      await waitUntil("sentinels discovering each other and the replica", 20_000, async () => {
        const m = fields(await ask(s.port, "SENTINEL", "MASTER", name));
        return m["num-slaves"] === "1" && m["num-other-sentinels"] === "2" && m.flags === "master";
      });
    }
    const masterPort = async () => {
      for (const s of sentinels) {
        const reply = (await ask(s.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name).catch(() => null)) as [string, string] | null;
        if (reply) return Number(reply[1]);
      }
      throw new Error("no sentinel answered");
    };
    return { primary, replica, sentinels, name, sentinelsEnv: sentinels.map((s) => `127.0.0.1:${s.port}`).join(","), masterPort, close };
  } catch (err) {
    await close();
    throw err;
  }
}

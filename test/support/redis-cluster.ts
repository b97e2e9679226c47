// A Redis Cluster of the test's own: three masters (no replicas) on free loopback ports, each a
// private redis-server in cluster mode (test/support/private-redis.ts) with its nodes.conf in a
// temporary folder, joined by `redis-cli --cluster create`:
//
//   const cluster = await startRedisCluster();
//   cluster.nodesEnv     // "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3", for REDIS_CLUSTER_NODES
//   cluster.masters      // the three servers (pause/resume/stop…)
//   await cluster.close(); // every process killed, the folder removed (safe after a failure)
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort, redisCommand, startPrivateRedis, type PrivateRedis } from "./private-redis.js";

const run = promisify(execFile);

export interface RedisCluster {
  readonly masters: PrivateRedis[];
  /** host:port of every master, comma-separated (REDIS_CLUSTER_NODES). */
  readonly nodesEnv: string;
  /** Resolves once every master says cluster_state:ok (bounded by timeoutMs). */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** The master that holds `key` (its full name, prefix included). */
  masterOf(key: string): Promise<PrivateRedis>;
  close(): Promise<void>;
}

/** The fields of CLUSTER INFO on the server at `port`. */
export async function clusterInfo(port: number): Promise<Record<string, string>> {
  const text = String(await redisCommand(port, "CLUSTER", "INFO"));
  return Object.fromEntries(text.split(/\r?\n/).filter(Boolean).map((line) => line.split(":") as [string, string]));
}

/** `password`: every node requires it (AUTH), and the nodes use it among themselves. */
export async function startRedisCluster(masters = 3, options: { password?: string } = {}): Promise<RedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), "identity-redis-cluster-"));
  const servers: PrivateRedis[] = [];
  const close = async () => {
    await Promise.allSettled(servers.map((s) => s.close()));
    await rm(dir, { recursive: true, force: true });
  };
  const waitHealthy = async (timeoutMs = 15_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = await Promise.all(servers.map((s) => clusterInfo(s.port).then((i) => i.cluster_state, () => "unreachable")));
      if (states.every((s) => s === "ok")) return;
      if (Date.now() > deadline) throw new Error(`Redis Cluster not ok within ${timeoutMs} ms: ${states.join(", ")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      // A short node timeout: a paused or killed node is noticed in seconds, not the default 15.
      servers.push(await startPrivateRedis({ port, args: ["--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`, "--cluster-node-timeout", "3000", "--dir", dir], password: options.password }));
    }
    const addresses = servers.map((s) => `127.0.0.1:${s.port}`);
    const env = options.password === undefined ? process.env : { ...process.env, REDISCLI_AUTH: options.password };
    await run("redis-cli", ["--cluster", "create", ...addresses, "--cluster-replicas", "0", "--cluster-yes"], { timeout: 30_000, env });
    await waitHealthy();
    const masterOf = async (key: string) => {
      const port = servers[0]!.port;
      const slot = Number(await redisCommand(port, "CLUSTER", "KEYSLOT", key));
      const ranges = (await redisCommand(port, "CLUSTER", "SLOTS")) as Array<[number, number, [string, number, ...unknown[]]]>;
      const owner = ranges.find(([from, to]) => slot >= from && slot <= to)?.[2][1];
      const server = servers.find((s) => s.port === owner);
      if (!server) throw new Error(`no master holds slot ${slot}`);
      return server;
    };
    return { masters: servers, nodesEnv: addresses.join(","), waitHealthy, masterOf, close };
  } catch (err) {
    await close();
    throw err;
  }
}

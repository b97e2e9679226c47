// What /readyz asks of a standalone or Sentinel-managed Redis (checkRedis, src/store/redis.ts),
// on private redis-servers: a primary is ready, a replica is not (writes would fail READONLY),
// and a user whose ACL forbids ROLE (an @admin command) is checked with PING instead.
import { expect } from "chai";
import { createLogger } from "../../src/logger.js";
import { checkRedis, openRedis, type RedisClient } from "../../src/store/redis.js";
import { startPrivateRedis, type PrivateRedis } from "../support/private-redis.js";

describe("Redis readiness check", function () {
  this.timeout(30_000);
  let primary: PrivateRedis;
  let replica: PrivateRedis;
  const clients: RedisClient[] = [];
  const open = (redisUrl: string) => {
    const client = openRedis({ redisUrl, redisKeyPrefix: "readiness:" }, createLogger("silent"));
    clients.push(client);
    return client;
  };

  before(async () => {
    primary = await startPrivateRedis({ args: ["--user", "limited", "on", ">limited-secret", "~*", "+@all", "-@dangerous"] });
    // The replica keeps its RDB in memory only (diskless load) so that nothing lands in the working folder.
    replica = await startPrivateRedis({ args: ["--replicaof", "127.0.0.1", String(primary.port), "--repl-diskless-load", "swapdb"] });
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await replica?.close();
    await primary?.close();
  });

  it("passes on a primary", async () => {
    await checkRedis(open(primary.url));
  });

  it("fails on a replica", async () => {
    let error: Error | undefined;
    await checkRedis(open(replica.url)).catch((e: Error) => (error = e));
    expect(error?.message).to.match(/answers as slave, not as a primary/);
  });

  it("passes with PING for a user that may not run ROLE", async () => {
    await checkRedis(open(`redis://limited:limited-secret@127.0.0.1:${primary.port}/0`));
  });
});

// Mocha root hooks: drop this run's databases and Redis keys when the run ends.
import pg from "pg";
import { Redis } from "ioredis";
import { DB_PREFIX, PG_ADMIN_URL, REDIS_PREFIX, REDIS_URL } from "./env.js";

async function dropDatabases(): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE $1", [`${DB_PREFIX}%`]);
    for (const { datname } of rows) {
      await client.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`).catch((err: Error) => console.error(`could not drop ${datname}: ${err.message}`));
    }
  } finally {
    await client.end();
  }
}

async function dropKeys(): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true });
  await redis.connect();
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${REDIS_PREFIX}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

export const mochaHooks = {
  async afterAll(this: Mocha.Context) {
    this.timeout(60000);
    if (process.env.TEST_KEEP_STATE) return;
    await Promise.allSettled([dropDatabases(), dropKeys()]);
  },
};

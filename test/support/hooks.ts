// Mocha root hooks: drop this run's databases and Redis keys when the run ends.
import pg from "pg";
import { Redis } from "ioredis";
import { deleteKeysMatching } from "../../src/store/redis.js";
import { DB_PREFIX, PG_ADMIN_URL, REDIS_PREFIX, REDIS_URL } from "./env.js";

/** Drops the run's databases, a few at a time (each DROP waits for a checkpoint; one by one a
 * large run's cleanup took over a minute on a loaded machine). */
async function dropDatabases(): Promise<void> {
  const list = new pg.Client({ connectionString: PG_ADMIN_URL });
  await list.connect();
  let names: string[];
  try {
    const { rows } = await list.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE $1", [`${DB_PREFIX}%`]);
    names = rows.map((r) => r.datname);
  } finally {
    await list.end();
  }
  const dropper = async () => {
    const client = new pg.Client({ connectionString: PG_ADMIN_URL });
    await client.connect();
    try {
      for (let name = names.pop(); name !== undefined; name = names.pop()) {
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch((err: Error) => console.error(`could not drop ${name}: ${err.message}`));
      }
    } finally {
      await client.end();
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, names.length) }, dropper));
}

async function dropKeys(): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true });
  await redis.connect();
  try {
    await deleteKeysMatching(redis, `${REDIS_PREFIX}*`);
  } finally {
    redis.disconnect();
  }
}

export const mochaHooks = {
  async afterAll(this: Mocha.Context) {
    this.timeout(300_000);
    if (process.env.TEST_KEEP_STATE) return;
    await Promise.allSettled([dropDatabases(), dropKeys()]);
  },
};

// Versioned migrations (umzug, recorded in schema_migrations). Several instances may start
// at once: a PostgreSQL advisory lock lets one migrate while the others wait, then find
// nothing pending.
import { QueryTypes, type Sequelize, type Transaction } from "sequelize";
import { SequelizeStorage, Umzug } from "umzug";
import type { Logger } from "../logger.js";
import type { MigrationContext } from "./migrations/context.js";
import { migrations } from "./migrations/index.js";

/** Names this service's migration lock among the advisory locks of its database. */
const MIGRATION_LOCK_KEY = "7413559601";

function migrator(sequelize: Sequelize, logger: Logger): Umzug<MigrationContext> {
  const log = logger.child({ component: "migrate" });
  return new Umzug<MigrationContext>({
    migrations: [...migrations],
    context: { sequelize },
    storage: new SequelizeStorage({ sequelize, tableName: "schema_migrations" }),
    logger: {
      info: (m) => log.info(m, String(m.event ?? "migration")),
      warn: (m) => log.warn(m, String(m.event ?? "migration")),
      error: (m) => log.error(m, String(m.event ?? "migration")),
      debug: (m) => log.debug(m, String(m.event ?? "migration")),
    },
  });
}

/**
 * Runs `fn` while holding the migration lock. The lock is transaction-scoped, so it is
 * released when the holding transaction ends, or when its connection dies with the process.
 * The transaction only holds the lock: migrations run on connections of their own.
 */
async function withMigrationLock<T>(sequelize: Sequelize, logger: Logger, fn: () => Promise<T>): Promise<T> {
  const lock: Transaction = await sequelize.transaction();
  try {
    const lockQuery = (name: string) =>
      sequelize.query<{ locked: boolean }>(`SELECT ${name}(:key) AS locked`, {
        replacements: { key: MIGRATION_LOCK_KEY },
        type: QueryTypes.SELECT,
        plain: true,
        transaction: lock,
      });
    const tried = await lockQuery("pg_try_advisory_xact_lock");
    if (!tried?.locked) {
      logger.info("another instance is migrating the database; waiting for it");
      await lockQuery("pg_advisory_xact_lock");
    }
    return await fn();
  } finally {
    // Nothing was written in this transaction; ending it frees the lock. If the connection
    // is already gone, so is the lock.
    await lock.rollback().catch(() => undefined);
  }
}

/** Applies the pending migrations; returns the names applied (empty when up to date). */
export async function migrate(sequelize: Sequelize, logger: Logger): Promise<string[]> {
  return withMigrationLock(sequelize, logger, async () => {
    const applied = await migrator(sequelize, logger).up();
    return applied.map((m) => m.name);
  });
}

/** Reverts the most recently applied migration; returns its name (undefined when none). */
export async function revertLastMigration(sequelize: Sequelize, logger: Logger): Promise<string | undefined> {
  return withMigrationLock(sequelize, logger, async () => {
    const [reverted] = await migrator(sequelize, logger).down();
    return reverted?.name;
  });
}

// `npm run migrate` applies pending migrations (creating the database if needed) and exits;
// `npm run migrate -- down` reverts the most recent one (refused in production: reverting
// drops tables and their data). Configuration as for the service; it connects to DATABASE_DIRECT_URL.
import { ConfigError, loadConfig } from "../config.js";
import { createLogger } from "../logger.js";
import { ensureDatabase, openDatabase } from "./database.js";
import { migrate, revertLastMigration } from "./migrate.js";

const USAGE = "usage: migrate [up|down]";

async function main(command: string): Promise<void> {
  if (command !== "up" && command !== "down") throw new Error(USAGE);
  const config = loadConfig();
  if (command === "down" && config.nodeEnv === "production") throw new Error("migrate down is refused in production");
  const logger = createLogger(config.logLevel, { command: "migrate" });
  // Migrations connect directly (DATABASE_DIRECT_URL), never through a transaction pooler.
  const direct = { ...config, databaseUrl: config.databaseDirectUrl };
  if (await ensureDatabase(direct.databaseUrl)) logger.info("created the database");
  const sequelize = openDatabase(direct, logger);
  try {
    if (command === "up") {
      const applied = await migrate(sequelize, logger);
      logger.info({ applied }, applied.length ? "database migrated" : "database schema up to date");
    } else {
      const reverted = await revertLastMigration(sequelize, logger);
      logger.info({ reverted }, reverted ? "migration reverted" : "no migration to revert");
    }
  } finally {
    await sequelize.close();
  }
}

main(process.argv[2] ?? "up").catch((err: unknown) => {
  // Expected refusals print one line; anything else prints with its stack.
  const expected = err instanceof ConfigError || (err instanceof Error && /^(usage:|migrate down)/.test(err.message));
  console.error(expected ? (err as Error).message : err);
  process.exitCode = 1;
});

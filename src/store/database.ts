// PostgreSQL: create the database when it is missing (DESIGN §8) and open the Sequelize
// instance every store shares.
import pg from "pg";
import { Sequelize } from "sequelize";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import { usePreparedStatements } from "./prepared.js";

const CONNECT_TIMEOUT_MS = 10_000;

/** PostgreSQL error codes this module reacts to. */
const INVALID_CATALOG_NAME = "3D000";
const DUPLICATE_DATABASE = "42P04";
const UNIQUE_VIOLATION = "23505";

function pgCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err ? String((err as { code: unknown }).code) : undefined;
}

function databaseName(databaseUrl: string): string {
  const name = decodeURIComponent(new URL(databaseUrl).pathname.replace(/^\//, ""));
  // Without a path pg would silently fall back to a database named after the user.
  if (!name) throw new Error("DATABASE_URL names no database (expected postgres://…/<database>)");
  return name;
}

/**
 * Creates the database of `databaseUrl` when it does not exist; returns true if this call
 * created it. The target is tried first, so a service whose role may not connect to the
 * `postgres` maintenance database (or lacks CREATEDB) still starts once the database exists.
 * Safe when several processes race: losing the race counts as success.
 */
export async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  const name = databaseName(databaseUrl);
  const probe = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  try {
    await probe.connect();
    return false;
  } catch (err) {
    if (pgCode(err) !== INVALID_CATALOG_NAME) throw err;
  } finally {
    await probe.end().catch(() => undefined);
  }

  const maintenanceUrl = new URL(databaseUrl);
  maintenanceUrl.pathname = "/postgres";
  const admin = new pg.Client({ connectionString: maintenanceUrl.toString(), connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    return true;
  } catch (err) {
    // 42P04 when the other creator committed first; 23505 (pg_database_datname_index)
    // when both inserted the catalog row at the same moment.
    const code = pgCode(err);
    if (code === DUPLICATE_DATABASE || code === UNIQUE_VIOLATION) return false;
    throw err;
  } finally {
    await admin.end().catch(() => undefined);
  }
}

/**
 * The Sequelize instance of the service. Timestamps are written and read in UTC; models
 * map camelCase attributes to snake_case columns. SQL is logged at debug level, and only
 * outside production: raw queries carry their values inline (e-mail addresses, document
 * numbers), which must never reach production logs. `databasePreparedStatements: false`
 * (behind a transaction pooler) sends the hot paths' SQL unnamed (src/store/prepared.ts).
 */
export function openDatabase(config: Pick<Config, "databaseUrl"> & Partial<Pick<Config, "nodeEnv" | "databasePreparedStatements">>, logger: Logger): Sequelize {
  const log = logger.child({ component: "sql" });
  const debug = (config.nodeEnv === "development" || config.nodeEnv === "test") && log.isLevelEnabled("debug");
  const sequelize = new Sequelize(config.databaseUrl, {
    dialect: "postgres",
    dialectModule: pg,
    // Parameters from the URL's query string (sslmode, application_name…) override these.
    dialectOptions: { application_name: "identity-service", keepAlive: true, connectionTimeoutMillis: CONNECT_TIMEOUT_MS },
    timezone: "+00:00",
    define: { underscored: true },
    benchmark: debug,
    logging: debug ? (sql: string, ms?: number) => log.debug({ ms }, sql) : false,
    // Each instance serves many concurrent RPCs, most of them one or two short queries;
    // ten connections per instance keeps a fleet of instances well under max_connections.
    pool: { max: 10, min: 0, idle: 10_000, acquire: 30_000 },
  });
  usePreparedStatements(sequelize, config.databasePreparedStatements ?? true);
  return sequelize;
}

// Where Agenda keeps its jobs (DESIGN §6) — the only module that knows. MONGODB_URI set:
// MongoDB through the official driver (the production choice); unset: PostgreSQL, in table
// `agenda_jobs` of the service's own database (created by the backend).
//
// Both traps of Agenda 6 are handled here:
// - Agenda's constructor calls backend.connect() and never catches it: an unreachable store
//   becomes an unhandled rejection. So the store is connected here first, where a failure is
//   an ordinary rejected promise, and Agenda gets a wrapper whose connect() has nothing left
//   to do.
// - Agenda's stop() closes connections only when it "owns" them. The wrapper says it does not:
//   JobStore.close() closes them, once, after the worker has released its locks.
import pg from "pg";
import type { AgendaBackend } from "agenda";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";

export type JobStoreKind = "mongodb" | "postgres";

export interface JobStore {
  kind: JobStoreKind;
  /** Connected; hand it to `new Agenda({ backend })`. */
  backend: AgendaBackend;
  /** Closes the store's connections; safe to call more than once. */
  close(): Promise<void>;
}

export const AGENDA_TABLE = "agenda_jobs";
export const AGENDA_COLLECTION = "agendaJobs";
const CONNECT_TIMEOUT_MS = 10_000;
/** Serialises the backends' CREATE TABLE/INDEX/TRIGGER when several instances start at once. */
const SCHEMA_LOCK_KEY = "7413559602";

/** Exposes a backend that is already connected, and leaves closing it to JobStore.close(). */
class ConnectedBackend implements AgendaBackend {
  readonly ownsConnection = false;
  constructor(private readonly inner: AgendaBackend) {}
  get name() {
    return this.inner.name;
  }
  get repository() {
    return this.inner.repository;
  }
  get notificationChannel() {
    return this.inner.notificationChannel;
  }
  get logger() {
    return this.inner.logger;
  }
  async connect(): Promise<void> {}
  async disconnect(): Promise<void> {}
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= fn());
}

async function openPostgres(databaseUrl: string, logger: Logger): Promise<JobStore> {
  const { PostgresBackend } = await import("@agendajs/postgres-backend");
  // A small pool of its own: job polling and the LISTEN connection stay off the API's pool.
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, application_name: "identity-jobs" });
  // Without a listener an idle client's error (server restart) would crash the process.
  pool.on("error", (err) => logger.warn({ err }, "job store connection lost; it will reconnect"));
  const backend = new PostgresBackend({ pool, tableName: AGENDA_TABLE, channelName: AGENDA_TABLE });
  try {
    const lock = await pool.connect();
    try {
      await lock.query("SELECT pg_advisory_lock($1)", [SCHEMA_LOCK_KEY]);
      await backend.connect();
    } finally {
      await lock.query("SELECT pg_advisory_unlock($1)", [SCHEMA_LOCK_KEY]).catch(() => undefined);
      lock.release();
    }
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new Error(`job store (PostgreSQL) is unavailable: ${(err as Error).message}`, { cause: err });
  }
  return { kind: "postgres", backend: new ConnectedBackend(backend), close: once(() => pool.end()) };
}

async function openMongo(uri: string, logger: Logger): Promise<JobStore> {
  const [{ MongoClient }, { MongoBackend }] = await Promise.all([import("mongodb"), import("@agendajs/mongo-backend")]);
  const client = new MongoClient(uri, { appName: "identity-jobs", serverSelectionTimeoutMS: CONNECT_TIMEOUT_MS, connectTimeoutMS: CONNECT_TIMEOUT_MS });
  try {
    await client.connect();
    // The database named in MONGODB_URI (e.g. mongodb://db-1,db-2/identity?replicaSet=rs0).
    const db = client.db();
    const backend = new MongoBackend({ mongo: db, collection: AGENDA_COLLECTION });
    await backend.connect();
    // PostgreSQL's backend has a unique index on recurring ("single") job names; MongoDB's
    // has none, so two instances scheduling at the same moment could both insert one.
    await db
      .collection(AGENDA_COLLECTION)
      .createIndex({ name: 1 }, { name: "single_job_name_unique", unique: true, partialFilterExpression: { type: "single" } })
      .catch((err: Error) => logger.warn({ err }, "could not create the unique index of recurring jobs"));
    return { kind: "mongodb", backend: new ConnectedBackend(backend), close: once(() => client.close()) };
  } catch (err) {
    await client.close().catch(() => undefined);
    // The driver's message names hosts, never credentials.
    throw new Error(`job store (MongoDB) is unavailable: ${(err as Error).message}`, { cause: err });
  }
}

/** Connects the job store chosen by the configuration; rejects (leaving nothing open) when it is unreachable. */
export function openJobStore(config: Pick<Config, "mongodbUri" | "databaseUrl">, logger: Logger): Promise<JobStore> {
  const log = logger.child({ component: "job-store" });
  return config.mongodbUri ? openMongo(config.mongodbUri, log) : openPostgres(config.databaseUrl, log);
}

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
//
// PostgreSQL going away (restart, failover, a terminated backend) must never end the process.
// The backend's LISTEN channel emits 'error' when its connection breaks, with nobody
// listening (an uncaught exception), and reconnects every 100 ms without backing off (each
// attempt resets its count, so its 10-attempt limit never applies). The channel used here (ResilientChannel)
// logs through the outage log, backs off from 100 ms to 1 s with jitter, never gives up, and
// says whether it is listening: JobStore.ready() feeds /readyz.
import pg from "pg";
import type { AgendaBackend, NotificationChannel } from "agenda";
import { PostgresNotificationChannel } from "@agendajs/postgres-backend";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import { createOutageLog, storeFailure, type OutageLog } from "../store/store-errors.js";

export type JobStoreKind = "mongodb" | "postgres";

export interface JobStore {
  kind: JobStoreKind;
  /** Connected; hand it to `new Agenda({ backend })`. */
  backend: AgendaBackend;
  /** Whether the store's live connections (PostgreSQL: the LISTEN channel, once Agenda started it) are up. */
  ready(): boolean;
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
  constructor(
    private readonly inner: AgendaBackend,
    private readonly channel: NotificationChannel | undefined = inner.notificationChannel,
  ) {}
  get name() {
    return this.inner.name;
  }
  get repository() {
    return this.inner.repository;
  }
  get notificationChannel() {
    return this.channel;
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

/** Reconnection delays of the LISTEN channel: from 100 ms, doubling, at most 1 s, plus up to 20 % jitter. */
function listenBackoffMs(failures: number): number {
  const base = Math.min(100 * 2 ** failures, 1_000);
  return Math.round(base * (1 + Math.random() * 0.2));
}

/**
 * Agenda's PostgreSQL LISTEN channel, made to survive PostgreSQL: its errors go to the
 * outage log (a listener is always attached), and after a lost connection it reconnects
 * with backoff until it is listening again or is disconnected.
 */
class ResilientChannel extends PostgresNotificationChannel {
  private failures = 0;
  private retry?: NodeJS.Timeout;
  private closed = false;

  constructor(pool: pg.Pool, channelName: string, outages: OutageLog, log: Logger) {
    super({ pool, channelName, reconnect: { enabled: true } });
    this.on("error", (err: unknown) => {
      const failure = storeFailure(err);
      if (failure) outages.report(failure);
      else log.warn({ err }, "job notification channel error");
    });
    this.on("stateChange", (state: string) => {
      if (state === "connected") outages.recovered("postgres");
    });
  }

  protected override setState(state: Parameters<PostgresNotificationChannel["setState"]>[0]): void {
    if (state === "connected") this.failures = 0;
    super.setState(state);
  }

  /** Called by the channel after a lost connection or a failed attempt. */
  protected override scheduleReconnect(): void {
    if (this.closed || this.retry) return;
    this.setState("reconnecting");
    const delay = listenBackoffMs(this.failures++);
    this.retry = setTimeout(() => {
      this.retry = undefined;
      // A failure emits 'error' and calls scheduleReconnect() again before rejecting.
      this.connect().catch(() => undefined);
    }, delay);
  }

  /** The base class also resets its attempt count here, which would undo the backoff. */
  protected override clearReconnect(): void {
    clearTimeout(this.retry);
    this.retry = undefined;
  }

  override async connect(): Promise<void> {
    try {
      await super.connect();
    } catch (err) {
      // The base class keeps a client whose LISTEN failed checked out of the pool: give it back
      // (destroyed), or every failed attempt would leak one of the pool's few connections.
      const self = this as unknown as { listenClient?: pg.PoolClient };
      try {
        self.listenClient?.release(true);
      } catch {
        // already released
      }
      self.listenClient = undefined;
      throw err;
    }
    // Disconnected while this attempt was under way (the worker stopping): let go of the
    // connection, or closing the pool would wait for it forever.
    if (this.closed) await super.disconnect();
  }

  override async disconnect(): Promise<void> {
    this.closed = true;
    this.clearReconnect();
    await super.disconnect();
  }
}

async function openPostgres(databaseUrl: string, logger: Logger, outages: OutageLog): Promise<JobStore> {
  const { PostgresBackend } = await import("@agendajs/postgres-backend");
  // A small pool of its own: job polling and the LISTEN connection stay off the API's pool.
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, application_name: "identity-jobs" });
  // Without a listener an idle client's error (server restart) would crash the process.
  pool.on("error", (err) => {
    const failure = storeFailure(err);
    if (failure) outages.report(failure);
    else logger.warn({ err }, "job store connection lost; it will reconnect");
  });
  // Notifications go through ResilientChannel instead of the backend's own channel.
  const backend = new PostgresBackend({ pool, tableName: AGENDA_TABLE, channelName: AGENDA_TABLE, disableNotifications: true });
  const channel = new ResilientChannel(pool, AGENDA_TABLE, outages, logger);
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
  return { kind: "postgres", backend: new ConnectedBackend(backend, channel), ready: () => channel.state === "connected", close: once(() => pool.end()) };
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
    // MongoDB's backend polls (no live connection of its own to watch).
    return { kind: "mongodb", backend: new ConnectedBackend(backend), ready: () => true, close: once(() => client.close()) };
  } catch (err) {
    await client.close().catch(() => undefined);
    // The driver's message names hosts, never credentials.
    throw new Error(`job store (MongoDB) is unavailable: ${(err as Error).message}`, { cause: err });
  }
}

/** Connects the job store chosen by the configuration; rejects (leaving nothing open) when it is unreachable. */
export function openJobStore(config: Pick<Config, "mongodbUri" | "databaseDirectUrl">, logger: Logger, outages?: OutageLog): Promise<JobStore> {
  const log = logger.child({ component: "job-store" });
  // Session-level: LISTEN and the schema's advisory lock need a connection of their own, never a
  // transaction pooler's (DATABASE_DIRECT_URL).
  return config.mongodbUri ? openMongo(config.mongodbUri, log) : openPostgres(config.databaseDirectUrl, log, outages ?? createOutageLog(log));
}

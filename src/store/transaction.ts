// A call's database transaction, abandoned when the call is: its AbortSignal (deadline,
// client gone, shutdown at the end of the grace period) cancels the statement running on the
// transaction's connection and keeps the transaction from committing, so it rolls back. One
// mechanism for deadlines and shutdown alike.
//
// The statement is cancelled with PostgreSQL's own cancel request (what psql's Ctrl-C sends: the
// backend's process id and secret key on a connection of its own), not pg_cancel_backend(pid):
// behind PgBouncer the pid the client knows is PgBouncer's, which forwards a cancel request to
// the right server connection but would not know what to make of that pid in SQL.
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import type { Sequelize, Transaction, TransactionOptions } from "sequelize";

/** How long a cancel request may take before it is given up (the statement then runs on). */
const CANCEL_TIMEOUT_MS = 2_000;
/** After an abort, the pause between cancel requests while the transaction's work still runs. */
const CANCEL_AGAIN_MS = 50;

/** What pg keeps on a connected client, beyond its typings: the backend key and the TLS settings. */
type CancelTarget = pg.Client & { processID: number | null; secretKey: number | null; ssl?: unknown; sslNegotiation?: string };
type PgConnection = import("node:events").EventEmitter & {
  connect(port: number | string, host?: string): void;
  cancel(processID: number, secretKey: number): void;
  stream: import("node:net").Socket;
};
const Connection = (pg as unknown as { Connection: new (config: object) => PgConnection }).Connection;

/**
 * Asks the server to cancel the statement `client` is running (none: nothing happens). Resolves
 * once the server has taken the request (it closes the connection then), or after a timeout;
 * never rejects.
 */
export function cancelStatement(client: pg.Client): Promise<void> {
  const target = client as CancelTarget;
  if (!target.processID) return Promise.resolve();
  return new Promise((resolve) => {
    const con = new Connection({ ssl: target.ssl, sslNegotiation: target.sslNegotiation });
    const done = () => {
      clearTimeout(timer);
      con.stream.destroy();
      resolve();
    };
    const timer = setTimeout(done, CANCEL_TIMEOUT_MS);
    con.once(target.ssl ? "sslconnect" : "connect", () => con.cancel(target.processID!, target.secretKey!));
    con.once("end", done);
    con.once("error", done);
    if (target.host?.startsWith("/")) con.connect(`${target.host}/.s.PGSQL.${target.port}`);
    else con.connect(target.port, target.host);
  });
}

/**
 * Runs `work` in a transaction (Sequelize's managed form: committed when `work` resolves, rolled
 * back when it throws) that `signal` abandons: once the signal aborts, the running statement is
 * cancelled, the transaction rolls back instead of committing, and the call rejects with the
 * signal's reason. A signal already aborted starts nothing. The cancel is sent again every
 * CANCEL_AGAIN_MS until `work` settles: the statement running at the abort may finish before
 * the first request lands (two calls on one row: the first's rollback frees the second's
 * UPDATE), and work that then starts its next statement would otherwise wait on unchecked (a
 * stop that never finished while that statement waited for a lock).
 */
export function runTransaction<T>(sequelize: Sequelize, signal: AbortSignal | undefined, work: (t: Transaction) => Promise<T>): Promise<T>;
export function runTransaction<T>(sequelize: Sequelize, signal: AbortSignal | undefined, options: TransactionOptions, work: (t: Transaction) => Promise<T>): Promise<T>;
export async function runTransaction<T>(
  sequelize: Sequelize,
  signal: AbortSignal | undefined,
  optionsOrWork: TransactionOptions | ((t: Transaction) => Promise<T>),
  maybeWork?: (t: Transaction) => Promise<T>,
): Promise<T> {
  const [options, work] = typeof optionsOrWork === "function" ? [{}, optionsOrWork] : [optionsOrWork, maybeWork!];
  if (!signal) return sequelize.transaction(options, work);
  signal.throwIfAborted();
  let cancelling: Promise<void> | undefined;
  try {
    return await sequelize.transaction(options, async (t) => {
      // Aborted while waiting for a connection from the pool.
      signal.throwIfAborted();
      const client = (t as unknown as { connection: pg.Client }).connection;
      let settled = false;
      const cancelUntilSettled = async () => {
        while (!settled) {
          await cancelStatement(client);
          if (!settled) await sleep(CANCEL_AGAIN_MS);
        }
      };
      const onAbort = () => (cancelling = cancelUntilSettled());
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        const result = await work(t);
        // Never commit the work of an abandoned call (aborted between statements).
        signal.throwIfAborted();
        return result;
      } finally {
        settled = true;
        signal.removeEventListener("abort", onAbort);
        // The connection goes back to the pool after the rollback: a cancel request still on its
        // way could otherwise hit the next statement someone else runs on it.
        await cancelling;
      }
    });
  } catch (err) {
    // A statement failing because it was cancelled (57014) is the abort, not a fault.
    if (signal.aborted) throw signal.reason;
    throw err;
  }
}

// Wakes the webhook sync right after a user change commits: the outbox table's trigger
// NOTIFYs `identity_outbox` at commit (migration 0002), and a worker LISTENing here asks for
// a sync (JobQueue.syncSoon, which coalesces bursts). The outbox lives in PostgreSQL whatever
// the job store is, so this works with either. Losing the connection only delays syncs until
// the 30-second schedule; the listener reconnects with backoff and, once back, asks for one
// sync to catch up on what committed meanwhile. LISTEN holds a session: `databaseUrl` is
// DATABASE_DIRECT_URL, never a transaction pooler.
import pg from "pg";
import type { Logger } from "../logger.js";
import { storeFailure, type OutageLog } from "../store/store-errors.js";

export const OUTBOX_CHANNEL = "identity_outbox";
const MAX_RECONNECT_DELAY_MS = 30_000;

export interface OutboxListener {
  close(): Promise<void>;
}

export function listenForOutbox({ databaseUrl, logger, onChange, outages }: { databaseUrl: string; logger: Logger; onChange: () => void; outages?: OutageLog }): OutboxListener {
  const log = logger.child({ component: "outbox-listener" });
  // PostgreSQL unreachable: the outage log says so once; the attempts go to debug.
  const warn = (err: unknown, msg: string) => {
    const failure = storeFailure(err);
    if (failure && outages) {
      outages.report(failure);
      log.debug({ reason: failure.reason }, msg);
    } else log.warn({ err }, msg);
  };
  let client: pg.Client | undefined;
  let retry: NodeJS.Timeout | undefined;
  let failures = 0;
  let closed = false;

  function reconnectLater(): void {
    if (closed || retry) return;
    client = undefined;
    const delay = Math.min(1000 * 2 ** failures, MAX_RECONNECT_DELAY_MS);
    failures += 1;
    retry = setTimeout(() => {
      retry = undefined;
      void connect();
    }, delay);
    retry.unref();
  }

  async function connect(): Promise<void> {
    const c = new pg.Client({ connectionString: databaseUrl, application_name: "identity-outbox-listener", connectionTimeoutMillis: 10_000, keepAlive: true });
    c.on("notification", () => onChange());
    c.on("error", (err) => {
      warn(err, "outbox listener connection failed; reconnecting");
      c.end().catch(() => undefined);
      reconnectLater();
    });
    c.on("end", () => {
      if (client === c) reconnectLater();
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${OUTBOX_CHANNEL}`);
    } catch (err) {
      warn(err, "outbox listener could not connect; retrying");
      await c.end().catch(() => undefined);
      reconnectLater();
      return;
    }
    if (closed) {
      await c.end().catch(() => undefined);
      return;
    }
    client = c;
    failures = 0;
    onChange();
  }

  void connect();
  return {
    async close() {
      closed = true;
      clearTimeout(retry);
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}

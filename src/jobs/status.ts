// What operators see (`npm run jobs:status`; a staff RPC can return the same): every job of
// the store with its state, and the webhook sync's backlog and dead letters.
import type { Agenda, JobState } from "agenda";
import type { Sequelize } from "sequelize";
import { select } from "./context.js";
import type { JobStoreKind } from "./store.js";

export interface JobStatus {
  id: string;
  name: string;
  /** Agenda's state: running (locked), failed, repeating, scheduled, queued, completed, paused. */
  state: JobState;
  /** The recurrence, for scheduled jobs; absent for one-off runs. */
  repeat: string | null;
  nextRunAt: Date | null;
  lastRunAt: Date | null;
  lastFinishedAt: Date | null;
  /** Set while a worker holds the job (running, or locked about to run). */
  lockedAt: Date | null;
  /** The instance (host:pid) that last locked or saved it. */
  lastModifiedBy: string | null;
  failCount: number;
  failReason: string | null;
  failedAt: Date | null;
  data: unknown;
}

export interface DeadLetter {
  id: string;
  userId: string;
  endpoint: string;
  attempts: number;
  lastError: string | null;
  lastAttemptAt: Date | null;
  reasons: string[];
}

export interface JobsStatus {
  store: JobStoreKind;
  jobs: JobStatus[];
  /** User changes not yet turned into deliveries. */
  outboxBacklog: number;
  pendingDeliveries: number;
  deadLetterCount: number;
  /** The most recent dead letters (at most `deadLetterLimit`). */
  deadLetters: DeadLetter[];
}

export async function readJobsStatus({ agenda, storeKind, sequelize, deadLetterLimit = 50 }: { agenda: Agenda; storeKind: JobStoreKind; sequelize: Sequelize; deadLetterLimit?: number }): Promise<JobsStatus> {
  const [{ jobs }, [counts], deadLetters] = await Promise.all([
    agenda.queryJobs({ sort: { name: "asc", nextRunAt: "asc" }, limit: 500 }),
    select<{ outbox: number; pending: number; dead: number }>(
      { sequelize },
      `SELECT (SELECT count(*) FROM outbox)::int AS outbox,
              (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending')::int AS pending,
              (SELECT count(*) FROM webhook_deliveries WHERE status = 'dead')::int AS dead`,
    ),
    select<DeadLetter>(
      { sequelize },
      `SELECT id, user_id AS "userId", endpoint, attempts, last_error AS "lastError", last_attempt_at AS "lastAttemptAt", reasons
       FROM webhook_deliveries WHERE status = 'dead' ORDER BY updated_at DESC LIMIT $1`,
      [deadLetterLimit],
    ),
  ]);
  return {
    store: storeKind,
    jobs: jobs.map((j) => ({
      id: String(j._id),
      name: j.name,
      state: j.state,
      repeat: j.repeatInterval === undefined ? null : String(j.repeatInterval),
      nextRunAt: j.nextRunAt ?? null,
      lastRunAt: j.lastRunAt ?? null,
      lastFinishedAt: j.lastFinishedAt ?? null,
      lockedAt: j.lockedAt ?? null,
      lastModifiedBy: j.lastModifiedBy ?? null,
      failCount: j.failCount ?? 0,
      failReason: j.failReason ?? null,
      failedAt: j.failedAt ?? null,
      data: j.data ?? null,
    })),
    outboxBacklog: counts!.outbox,
    pendingDeliveries: counts!.pending,
    deadLetterCount: counts!.dead,
    deadLetters,
  };
}

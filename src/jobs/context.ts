// What a job handler receives, what it declares, and the bounded-batch loop they share.
//
// Handlers must be correct when the same job runs twice at once (Agenda's lock covers one job
// row, but a recurring run and an on-demand run of one name are two rows, and `npm run job`
// runs a handler outside Agenda): every batch claims its rows in SQL (FOR UPDATE SKIP LOCKED,
// conditional updates, upserts), never by reading first and writing later.
import type { ParseArgsConfig } from "node:util";
import type { RedisClient } from "../store/redis.js";
import { QueryTypes, type Sequelize, type Transaction } from "sequelize";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import type { Notifier } from "../notify/index.js";
import type { PushSender } from "../notify/push.js";
import type { Models } from "../store/models/index.js";
import type { JobName } from "./names.js";

export interface JobContext {
  sequelize: Sequelize;
  models: Models;
  redis: RedisClient;
  config: Config;
  logger: Logger;
  notifier: Notifier;
  /** Absent when FCM is not configured: reminders then go by e-mail. */
  push?: PushSender;
  /** Aborted when the worker stops: loops stop between batches (see inBatches). */
  signal: AbortSignal;
}

/** A one-line account of a run (logged by the worker, printed by `npm run job`). */
export type JobSummary = Record<string, string | number | boolean | null>;

export interface JobSpec {
  name: JobName;
  /**
   * Recurrence: a cron expression (evaluated in UTC) or an Agenda interval such as
   * "30 seconds". Absent: the job runs only when enqueued.
   */
  every?: string;
  /** Flags of `npm run job -- <name>`; their parsed values are the job's data. */
  cliOptions?: NonNullable<ParseArgsConfig["options"]>;
  /** `data` is the job's data (from enqueue or the CLI), checked by the handler. */
  run(ctx: JobContext, data: unknown): Promise<JobSummary>;
}

/** Thrown when the worker stops mid-run; Agenda records it and retries the job later. */
export class JobInterrupted extends Error {
  override name = "JobInterrupted";
  constructor() {
    super("interrupted: the worker is stopping");
  }
}

export interface BatchRun {
  batches: number;
  items: number;
  /** False when the time budget ran out with work left (the next run goes on). */
  complete: boolean;
}

/**
 * Calls `batch(size)` until it handles fewer than `size` items (nothing left), the run's time
 * budget (JOB_TIME_BUDGET_SECONDS) is spent, or the worker stops (JobInterrupted). Each batch
 * commits on its own, so an interrupted run keeps the work done and the next run continues.
 */
export async function inBatches(ctx: JobContext, batch: (size: number) => Promise<number>): Promise<BatchRun> {
  const size = ctx.config.jobBatchSize;
  const deadline = Date.now() + ctx.config.jobTimeBudgetSeconds * 1000;
  const run: BatchRun = { batches: 0, items: 0, complete: false };
  for (;;) {
    if (ctx.signal.aborted) throw new JobInterrupted();
    const handled = await batch(size);
    run.batches += 1;
    run.items += handled;
    if (handled < size) return { ...run, complete: true };
    if (Date.now() >= deadline) return run;
  }
}

/** A raw SQL query returning rows ($1… bind parameters). */
export function select<T extends object>(ctx: Pick<JobContext, "sequelize">, sql: string, bind: unknown[] = [], transaction?: Transaction): Promise<T[]> {
  return ctx.sequelize.query<T>(sql, { bind, type: QueryTypes.SELECT, transaction });
}

/** The actor recorded in audit rows written by a job. */
export const jobActor = (name: JobName) => `job:${name}`;

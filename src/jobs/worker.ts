// The job worker (ROLE=worker|all): defines every job on Agenda, schedules the recurring ones,
// processes them, and stops gracefully.
//
// Several workers may run at once (DESIGN §9). Agenda locks each job row before running it,
// so a scheduled run happens on one worker; the recurring schedules are "single" jobs (one
// row per name, upserted), so every worker may declare them at start without duplicates.
// Each worker locks at most one job of a name at a time (lockLimit 1), leaving the others to
// other workers, and renews the lock of a running job every third of its lifetime.
//
// stop(): stops polling and unlocks jobs this worker had locked but not started (Agenda's
// stop), asks running handlers to finish their current batch (AbortSignal; they then fail
// with JobInterrupted, which requeues the job at once), waits for them up to
// SHUTDOWN_GRACE_SECONDS, requeues whatever is still running after that (unlocked and due
// now: another worker reruns it, handlers being idempotent), and closes the job store. The
// process can then exit (see AgendaTuning.lockLifetimeMs for the one timer Agenda leaves).
import type { Agenda, BackoffStrategy, Job } from "agenda";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import type { Notifier } from "../notify/index.js";
import { createPushSender } from "../notify/push.js";
import type { Stores } from "../store/index.js";
import { JobInterrupted, type JobContext, type JobSpec } from "./context.js";
import { listenForOutbox } from "./outbox-listener.js";
import { DEFAULT_TUNING, newAgenda, queueOn, type AgendaTuning, type JobQueue } from "./queue.js";
import { JOBS } from "./registry.js";
import { openJobStore } from "./store.js";
import { createOutageLog, storeFailure } from "../store/store-errors.js";

export interface WorkerDeps {
  config: Config;
  logger: Logger;
  stores: Pick<Stores, "sequelize" | "models" | "redis"> & Partial<Pick<Stores, "outages">>;
  notifier: Notifier;
  /** Tests: faster polling and shorter locks. */
  tuning?: Partial<AgendaTuning>;
  /** Tests: other job definitions (default: all of src/jobs/registry.ts). */
  jobs?: readonly JobSpec[];
}

export interface Worker {
  agenda: Agenda;
  /** Enqueue through this worker's Agenda (ROLE=all needs no separate JobClient). */
  queue: JobQueue;
  /** Whether the job store's live connection is up (PostgreSQL: the LISTEN channel); for /readyz. */
  ready(): boolean;
  /** Graceful stop (see the top of this file); the same promise on every call. */
  stop(): Promise<void>;
}

/**
 * A run interrupted by a stopping worker is due again at once (another worker takes it); a
 * failed run is retried after 10 s, 20 s and 40 s (±20 %), then waits for its schedule.
 */
const RETRY: BackoffStrategy = ({ attempt, error }) => {
  if (error instanceof JobInterrupted) return 0;
  if (attempt > 3) return null;
  return Math.round(10_000 * 2 ** (attempt - 1) * (0.8 + Math.random() * 0.4));
};

function sleep(ms: number): { done: Promise<void>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  return { done, cancel: () => clearTimeout(timer) };
}

export async function startWorker({ config, logger, stores, notifier, tuning: overrides, jobs = JOBS }: WorkerDeps): Promise<Worker> {
  const log = logger.child({ component: "jobs" });
  const tuning: AgendaTuning = { ...DEFAULT_TUNING, ...overrides };
  // Store failures while polling (once per outage), and runs Agenda gave up on (e.g. a lock that expired).
  const outages = stores.outages ?? createOutageLog(log);
  const store = await openJobStore(config, logger, outages);
  const agenda = newAgenda(store, tuning);
  const queue = queueOn(agenda, logger);
  const interrupt = new AbortController();
  const base: Omit<JobContext, "logger"> = {
    sequelize: stores.sequelize,
    models: stores.models,
    redis: stores.redis,
    config,
    notifier,
    push: config.fcm ? createPushSender(config.fcm) : undefined,
    signal: interrupt.signal,
  };

  // Jobs this worker is running, by id, each settled once Agenda has saved its outcome and
  // released its lock (the "complete" event comes after that save).
  const running = new Map<string, { job: Job; settled: Promise<void>; settle(): void }>();
  agenda.on("complete", (job: { attrs?: { _id?: unknown } }, remote?: boolean) => {
    if (remote) return;
    const id = String(job.attrs?._id);
    running.get(id)?.settle();
    running.delete(id);
  });
  agenda.on("error", (err: Error) => {
    const failure = storeFailure(err);
    if (failure) outages.report(failure);
    else log.warn({ err }, "agenda error");
  });

  function handler(spec: JobSpec) {
    // One parameter exactly: Agenda treats a two-parameter function as callback-style.
    return async (job: Job) => {
      const id = String(job.attrs._id);
      let settle!: () => void;
      const settled = new Promise<void>((resolve) => (settle = resolve));
      running.set(id, { job, settled, settle });
      const jobLog = log.child({ job: spec.name, jobId: id });
      if (interrupt.signal.aborted) throw new JobInterrupted();
      // Heartbeat: keeps the lock while the job runs longer than its lifetime. Awaited before
      // returning, so a late touch cannot re-lock the row after Agenda released it.
      let touching: Promise<void> = Promise.resolve();
      const heartbeat = setInterval(() => {
        touching = touching.then(() => job.touch()).catch((err: unknown) => jobLog.warn({ err }, "could not renew the job's lock"));
      }, tuning.lockLifetimeMs / 3);
      heartbeat.unref();
      const started = Date.now();
      try {
        const summary = await spec.run({ ...base, logger: jobLog }, job.attrs.data);
        jobLog.info({ summary, ms: Date.now() - started }, "job finished");
      } catch (err) {
        jobLog.warn({ err, ms: Date.now() - started }, "job failed");
        throw err;
      } finally {
        clearInterval(heartbeat);
        await touching;
      }
    };
  }

  for (const spec of jobs) {
    agenda.define(spec.name, handler(spec), { concurrency: 1, lockLimit: 1, lockLifetime: tuning.lockLifetimeMs, backoff: RETRY });
  }

  const outbox = listenForOutbox({ databaseUrl: config.databaseDirectUrl, logger, onChange: () => queue.syncSoon(), outages });
  try {
    await agenda.start();
    for (const spec of jobs) {
      if (!spec.every) continue;
      // Two instances declaring the same schedule at once may collide on the unique name
      // index; the loser's second try updates the winner's row.
      await agenda.every(spec.every, spec.name, undefined, { timezone: "UTC" }).catch(() => agenda.every(spec.every!, spec.name, undefined, { timezone: "UTC" }));
    }
  } catch (err) {
    await agenda.stop(false).catch(() => undefined);
    await Promise.allSettled([outbox.close(), store.close()]);
    throw err;
  }
  log.info({ store: store.kind, jobs: jobs.map((j) => j.name) }, "job worker started");

  let stopping: Promise<void> | undefined;
  async function shutdown(): Promise<void> {
    // Synchronously (before its first await) Agenda's stop() ends polling; it then unlocks
    // the jobs locked here but not started.
    const stopped = agenda.stop(false);
    interrupt.abort();
    queue.dispose();
    await Promise.all([stopped, outbox.close()]);
    const wait = sleep(config.shutdownGraceSeconds * 1000);
    await Promise.race([Promise.all([...running.values()].map((r) => r.settled)), wait.done]);
    wait.cancel();
    const stuck = [...running.values()].map((r) => r.job.attrs);
    if (stuck.length) {
      log.warn({ jobIds: stuck.map((a) => String(a._id)) }, "jobs still running at shutdown; requeueing them");
      // Unlocking alone would strand a one-off job: Agenda cleared its next_run_at when it
      // started. Due now and unlocked, it goes to the next free worker.
      await Promise.all(stuck.map((attrs) => agenda.db.saveJobState({ ...attrs, lockedAt: undefined, nextRunAt: new Date() }, { lastModifiedBy: agenda.attrs.name }))).catch((err: unknown) =>
        log.warn({ err }, "could not requeue running jobs"),
      );
    }
    await store.close();
    log.info("job worker stopped");
  }

  return { agenda, queue, ready: () => store.ready(), stop: () => (stopping ??= shutdown()) };
}

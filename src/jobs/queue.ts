// Enqueueing jobs. An API-only instance (ROLE=api) opens a JobClient: an Agenda instance that
// is never started, so it writes jobs to the store but runs none. A worker (ROLE=worker|all)
// gets the same JobQueue from startWorker(), on its own Agenda instance.
import { hostname } from "node:os";
import { Agenda } from "agenda";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import type { JobName } from "./names.js";
import { openJobStore, type JobStore, type JobStoreKind } from "./store.js";

export interface JobQueue {
  /** Runs `name` as soon as a worker is free, with `data` (see each job's file for its shape). */
  enqueue(name: JobName, data?: Record<string, unknown>): Promise<void>;
  /**
   * Asks for a webhook sync soon. Calls within a second fold into one store write, and all
   * instances' requests fold into one pending job (Agenda's debounced unique job). Never
   * rejects: a failure is logged, and the 30-second schedule catches up anyway.
   */
  syncSoon(): void;
}

export interface JobClient extends JobQueue {
  agenda: Agenda;
  storeKind: JobStoreKind;
  /** Closes the job store; safe to call more than once. */
  close(): Promise<void>;
}

export interface AgendaTuning {
  /** How often a worker polls the store for due jobs (PostgreSQL also wakes it by NOTIFY). */
  processEveryMs: number;
  /**
   * How long a job's lock holds without a heartbeat: a crashed worker's jobs are taken over
   * after this. Workers renew the lock every third of it while a job runs. Kept short on
   * purpose: after stop() Agenda leaves a timer of half this value pending, which keeps the
   * process alive that long unless it exits (main.ts does).
   */
  lockLifetimeMs: number;
}

export const DEFAULT_TUNING: AgendaTuning = { processEveryMs: 5_000, lockLifetimeMs: 30_000 };

const SYNC_JOB: JobName = "sync-user-data-with-external-services";
const SYNC_COALESCE_MS = 1_000;

/** An Agenda instance on a connected store, named after this process (shown as the lock holder). */
export function newAgenda(store: JobStore, tuning: AgendaTuning = DEFAULT_TUNING): Agenda {
  return new Agenda({
    backend: store.backend,
    name: `${hostname()}:${process.pid}`,
    processEvery: tuning.processEveryMs,
    defaultLockLifetime: tuning.lockLifetimeMs,
  });
}

/** The queue on `agenda`; dispose() drops a sync request still waiting (call it before closing the store). */
export function queueOn(agenda: Agenda, logger: Logger): JobQueue & { dispose(): void } {
  const log = logger.child({ component: "job-queue" });
  let pendingSync: NodeJS.Timeout | undefined;
  return {
    async enqueue(name, data = {}) {
      await agenda.now(name, data);
    },
    syncSoon() {
      if (pendingSync) return;
      pendingSync = setTimeout(() => {
        pendingSync = undefined;
        agenda
          .nowDebounced(SYNC_JOB, { trigger: "change" }, { "data.trigger": "change" }, SYNC_COALESCE_MS, { maxWait: 5 * SYNC_COALESCE_MS })
          .catch((err: unknown) => log.warn({ err }, "could not request a webhook sync"));
      }, SYNC_COALESCE_MS);
      pendingSync.unref();
    },
    dispose() {
      clearTimeout(pendingSync);
      pendingSync = undefined;
    },
  };
}

/** For ROLE=api: enqueue without processing. Rejects when the job store is unreachable. */
export async function openJobQueue({ config, logger }: { config: Pick<Config, "mongodbUri" | "databaseDirectUrl">; logger: Logger }): Promise<JobClient> {
  const store = await openJobStore(config, logger);
  const agenda = newAgenda(store);
  const { dispose, ...queue } = queueOn(agenda, logger);
  return {
    agenda,
    storeKind: store.kind,
    ...queue,
    close: () => {
      dispose();
      return store.close();
    },
  };
}

// Lists the jobs of the configured job store and the webhook sync's dead letters:
//
//   npm run --silent jobs:status            a table per section
//   npm run --silent jobs:status -- --json  the same as one JSON document
//
// Read-only: it opens the job store (without processing anything) and the database.
import { parseArgs } from "node:util";
import { pino } from "pino";
import { ConfigError, loadConfig } from "../config.js";
import { openJobQueue } from "../jobs/queue.js";
import { readJobsStatus, type JobsStatus } from "../jobs/status.js";
import { createLogger } from "../logger.js";
import { openDatabase } from "../store/database.js";

const when = (d: Date | null) => (d ? d.toISOString().replace(/\.\d{3}Z$/, "Z") : "-");

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

function render(status: JobsStatus): string {
  const jobs = table([
    ["NAME", "STATE", "REPEAT", "NEXT RUN", "LAST RUN", "LAST FINISHED", "LOCKED BY", "FAILS", "FAIL REASON"],
    ...status.jobs.map((j) => [
      j.name,
      j.state,
      j.repeat ?? "once",
      when(j.nextRunAt),
      when(j.lastRunAt),
      when(j.lastFinishedAt),
      j.lockedAt ? (j.lastModifiedBy ?? "?") : "-",
      String(j.failCount),
      j.failReason ?? "-",
    ]),
  ]);
  const dead = status.deadLetters.length
    ? table([["DELIVERY", "USER", "ENDPOINT", "ATTEMPTS", "LAST ATTEMPT", "LAST ERROR"], ...status.deadLetters.map((d) => [d.id, d.userId, d.endpoint, String(d.attempts), when(d.lastAttemptAt), d.lastError ?? "-"])])
    : "none";
  return [
    `job store: ${status.store}`,
    "",
    jobs,
    "",
    `webhooks: ${status.outboxBacklog} change(s) in the outbox, ${status.pendingDeliveries} delivery(ies) pending, ${status.deadLetterCount} dead-lettered`,
    `dead letters (newest first; requeue with: npm run job -- sync-user-data-with-external-services --retry-dead):`,
    dead,
  ].join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { json: { type: "boolean" } }, strict: true });
  const config = loadConfig();
  const logger = createLogger(config.logLevel, { cli: "jobs:status" }, pino.destination(2));
  const jobs = await openJobQueue({ config, logger });
  const sequelize = openDatabase(config, logger);
  try {
    const status = await readJobsStatus({ agenda: jobs.agenda, storeKind: jobs.storeKind, sequelize });
    process.stdout.write(`${values.json ? JSON.stringify(status) : render(status)}\n`);
  } finally {
    await Promise.allSettled([jobs.close(), sequelize.close()]);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`jobs:status: ${err instanceof ConfigError ? `configuration error: ${err.message}` : err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});

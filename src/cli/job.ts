// Runs one job now, against the configured stores, and exits:
//
//   npm run --silent job -- <name> [--flags]
//   npm run --silent job -- generate-user-analytics-report --from 2026-11-01 --to 2026-11-08
//   npm run --silent job -- sync-user-data-with-external-services --retry-dead
//
// The handler runs in this process, outside Agenda (no job row, no lock): every handler is
// safe to run while a worker runs the same job (src/jobs/context.ts). Prints one JSON line
// — {"job","ok","ms",…summary} or {"job","ok":false,"error"} — and exits 0, 1 on failure,
// 2 on a usage error. Logs go to stderr. Ctrl-C stops it between batches.
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "../config.js";
import type { JobSpec } from "../jobs/context.js";
import { JOB_NAMES } from "../jobs/names.js";
import { findJob } from "../jobs/registry.js";
import { createLogger } from "../logger.js";
import { createNotifier } from "../notify/index.js";
import { createPushSender } from "../notify/push.js";
import { openStores } from "../store/index.js";
import { pino } from "pino";

const USAGE = `usage: npm run --silent job -- <name> [--flags]\njobs: ${JOB_NAMES.join(", ")}\n`;

class UsageError extends Error {}

function parse(argv: string[]): { spec: JobSpec; data: Record<string, unknown> } {
  const [name, ...rest] = argv;
  const spec = name ? findJob(name) : undefined;
  if (!spec) throw new UsageError(name ? `unknown job "${name}"` : "expected a job name");
  try {
    const { values } = parseArgs({ args: rest, options: spec.cliOptions ?? {}, strict: true, allowPositionals: false });
    return { spec, data: { ...values } };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

async function main(argv: string[]): Promise<void> {
  const { spec, data } = parse(argv);
  const config = loadConfig();
  const logger = createLogger(config.logLevel, { cli: "job", job: spec.name }, pino.destination(2));
  const stores = await openStores(config, logger);
  const notifier = createNotifier(config, logger);
  const interrupt = new AbortController();
  process.once("SIGINT", () => interrupt.abort());
  process.once("SIGTERM", () => interrupt.abort());
  const started = Date.now();
  try {
    const summary = await spec.run(
      { ...stores, config, logger, notifier, push: config.fcm ? createPushSender(config.fcm) : undefined, signal: interrupt.signal },
      data,
    );
    process.stdout.write(`${JSON.stringify({ job: spec.name, ok: true, ms: Date.now() - started, ...summary })}\n`);
  } finally {
    await Promise.allSettled([notifier.close(), stores.close()]);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`job: ${err.message}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const message = err instanceof ConfigError ? `configuration error: ${err.message}` : err instanceof Error ? err.message : String(err);
  process.stdout.write(`${JSON.stringify({ job: process.argv[2], ok: false, error: message })}\n`);
  process.exitCode = 1;
});

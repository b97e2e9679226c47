// Liveness and readiness: GET /healthz (the process answers), GET /readyz (its
// dependencies answer too) and grpc.health.v1.Health, whose overall status ("") and
// per-service statuses follow readiness.
import type { ConnectRouter } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../../gen/grpc/health/v1/health_pb.js";
import type { Logger } from "../../logger.js";
import { sendJson, type PlainRoute } from "../http/plain.js";

export interface ReadinessCheck {
  name: string;
  /** Resolves when the dependency is usable; rejects (or exceeds the timeout) when not. */
  check: () => Promise<void>;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, "ok" | "failed">;
}

export interface Readiness {
  run(): Promise<ReadinessReport>;
}

export function createReadiness(checks: ReadinessCheck[], logger: Logger, timeoutMs = 2000): Readiness {
  // Probes from several load balancers and gRPC clients share one run instead of piling
  // up queries on the database.
  let inFlight: Promise<ReadinessReport> | undefined;
  // Probes come every few seconds: a check is logged when it changes (warn when it starts
  // failing, info when it passes again), each probe only at debug. A check that has not
  // passed yet (the worker still starting) is not news.
  const last = new Map<string, "ok" | "failed">();
  const runOnce = async (): Promise<ReadinessReport> => {
    const results = await Promise.all(
      checks.map(async ({ name, check }) => {
        const before = last.get(name);
        try {
          await withTimeout(check(), timeoutMs, name);
          last.set(name, "ok");
          if (before === "failed") logger.info({ check: name }, "readiness check passing again");
          return [name, "ok"] as const;
        } catch (err) {
          last.set(name, "failed");
          if (before === "ok") logger.warn({ err, check: name }, "readiness check failed");
          else logger.debug({ err, check: name }, "readiness check failed");
          return [name, "failed"] as const;
        }
      }),
    );
    return { ready: results.every(([, r]) => r === "ok"), checks: Object.fromEntries(results) };
  };
  return {
    run() {
      inFlight ??= runOnce().finally(() => (inFlight = undefined));
      return inFlight;
    },
  };
}

async function withTimeout(promise: Promise<void>, ms: number, name: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name} did not answer within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** GET /healthz and GET /readyz. */
export function healthRoutes(readiness: Readiness): { healthz: PlainRoute; readyz: PlainRoute } {
  return {
    healthz(req, res, url) {
      if (url.pathname !== "/healthz" || req.method !== "GET") return false;
      sendJson(res, 200, { status: "ok" });
      return true;
    },
    async readyz(req, res, url) {
      if (url.pathname !== "/readyz" || req.method !== "GET") return false;
      const report = await readiness.run();
      sendJson(res, report.ready ? 200 : 503, { status: report.ready ? "ok" : "unavailable", checks: report.checks });
      return true;
    },
  };
}

/**
 * Registers grpc.health.v1.Health. `services` lists the service names the server
 * publishes (read at call time, so it may include services registered later). Watch is
 * left unimplemented, which the health protocol defines as "do not retry".
 */
export function registerHealth(router: ConnectRouter, readiness: Readiness, services: () => string[]): void {
  const status = async () => ((await readiness.run()).ready ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
  router.service(Health, {
    async check(req) {
      if (req.service !== "" && !services().includes(req.service)) throw new ConnectError(`unknown service ${req.service}`, Code.NotFound);
      return { status: await status() };
    },
    async list() {
      const current = await status();
      return { statuses: Object.fromEntries(["", ...services()].map((name) => [name, { status: current }])) };
    },
  });
}

// What the bench and its load workers (bench/load/worker.ts, one process per row) tell each
// other over the IPC channel of child_process.fork.
import type { Latencies } from "../stats.js";
import type { Wire } from "./rpc-client.js";

/** A signed-in session, as the sign-in flow returns it. */
export interface SessionTokens {
  userId: string;
  accessToken: string;
  refreshToken: string;
}

/**
 * The seeded users signed in by the sign-in scenarios: user i (1 … population) has the phone
 * number +1555 followed by i on seven digits. Flows take users from `next` on, wrapping.
 */
export interface UserCursor {
  next: number;
  population: number;
}

export type Scenario =
  /** The same request again and again (the Node fallback of h2load). */
  | { kind: "fixed"; wire: Wire; verb: string; path: string; bodyBase64: string; headers: Record<string, string> }
  /** RequestOtp → VerifyOtp → Login; with `sessionsOut`, the sessions are written there (JSON). */
  | { kind: "signin"; users: UserCursor; sessionsOut?: string }
  /** GetMe with the access tokens of all sessions in turn. */
  | { kind: "getme"; sessionsFile: string }
  /** RefreshToken over `wire` (default gRPC), each session at most once in flight, with its latest token; the rotated tokens are written back. */
  | { kind: "refresh"; sessionsFile: string; wire?: Wire }
  /** UpdateProfile (a new full name each time) with the sessions' access tokens in turn. */
  | { kind: "update-profile"; sessionsFile: string }
  /**
   * The soak's mix of reads and writes, in a fixed cycle of ten operations: five GetMe, two
   * RefreshToken, two UpdateProfile, one sign-in flow. The sessions are shared: GetMe and
   * UpdateProfile use each session's latest access token (refreshes rotate them), so the mix
   * runs for longer than an access token lives; when a session's token is ten minutes old, a
   * refresh takes the next operation's place (at low rates).
   */
  | { kind: "mix"; sessionsFile: string; users: UserCursor };

export interface WorkerJob {
  url: string;
  scenario: Scenario;
  inFlight: number;
  /** HTTP/2 connections the calls are spread over. */
  connections: number;
  warmupSeconds: number;
  seconds: number;
  /** Stop after this many operations (setup runs). */
  maxOps?: number;
  /** Start at most this many operations per second (open-loop pacing, still at most `inFlight` at once); unset: as fast as they complete. */
  rate?: number;
}

export interface WorkerResult extends Latencies {
  ops: number;
  /** RPCs sent (a sign-in flow is three). */
  requests: number;
  errors: number;
  errorSamples: string[];
  elapsedSeconds: number;
  /** Users the sign-in scenario consumed (warm-up included), to move the cursor on. */
  usersUsed: number;
}

export type ToWorker = { type: "job"; job: WorkerJob } | { type: "go" };
export type FromWorker = { type: "ready" } | { type: "progress"; ops: number; errors: number } | { type: "done"; result: WorkerResult } | { type: "failed"; error: string };

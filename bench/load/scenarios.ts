// The operations of the Node-driven rows. Each scenario turns a job into an Operation for
// drive() and a finish() that runs once the measured window is over (to write sessions out).
import { readFile, writeFile } from "node:fs/promises";
import { OtpPurpose, UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { ProfileService } from "../../gen/identity/v1/profile_pb.js";
import type { Operation } from "./drive.js";
import type { Scenario, SessionTokens, UserCursor } from "./protocol.js";
import type { RpcClient } from "./rpc-client.js";
import { BENCH_OTP_CODE, phoneOf } from "../users.js";

export interface ScenarioRun {
  operation: Operation;
  /** After the run: persists what the scenario produced. */
  finish(): Promise<void>;
  /** Users taken from the cursor so far. */
  usersUsed(): number;
}

const auth = UserAuthService.method;

async function readSessions(file: string): Promise<SessionTokens[]> {
  const sessions = JSON.parse(await readFile(file, "utf8")) as SessionTokens[];
  if (!sessions.length) throw new Error(`${file}: no sessions`);
  return sessions;
}

function signIn(client: RpcClient, users: UserCursor, sessionsOut: string | undefined): ScenarioRun {
  let taken = 0;
  const sessions: SessionTokens[] = [];
  return {
    async operation() {
      const identifier = phoneOf(((users.next - 1 + taken++) % users.population) + 1);
      await client.unary(auth.requestOtp, { identifier, purpose: OtpPurpose.LOGIN });
      const { verificationToken } = await client.unary(auth.verifyOtp, { identifier, otp: BENCH_OTP_CODE, purpose: OtpPurpose.LOGIN });
      const r = await client.unary(auth.login, { identifier, verificationToken });
      if (sessionsOut) sessions.push({ userId: r.userId, accessToken: r.accessToken, refreshToken: r.refreshToken });
    },
    finish: async () => {
      if (sessionsOut) await writeFile(sessionsOut, JSON.stringify(sessions));
    },
    usersUsed: () => taken,
  };
}

/** A different full name on every call (letters only, as the profile rules want), so each call writes. */
function fullName(n: number): string {
  let letters = "";
  do {
    letters += String.fromCharCode(97 + (n % 26));
    n = Math.floor(n / 26);
  } while (n > 0);
  return `Bench ${letters}`;
}

/** GetMe with each session's current access token in turn. */
function getMe(client: RpcClient, sessions: SessionTokens[]): Operation {
  let n = 0;
  return async () => void (await client.unary(auth.getMe, {}, sessions[n++ % sessions.length]!.accessToken));
}

/** UpdateProfile with a new full name each time, each session's current access token in turn. */
function updateProfile(client: RpcClient, sessions: SessionTokens[]): Operation {
  let n = 0;
  return async () => {
    const i = n++;
    await client.unary(ProfileService.method.updateProfile, { fullName: fullName(i) }, sessions[i % sessions.length]!.accessToken);
  };
}

/**
 * RefreshToken through a queue of idle sessions: a session is refreshed by one slot at a time,
 * always with its latest token (a stale one outside the grace window would end the session);
 * the rotated tokens replace the session's in `sessions`.
 */
function refresh(client: RpcClient, sessions: SessionTokens[]): Operation & { oldestTokenAgeMs(): number } {
  const idle = sessions.map((_, i) => i);
  // When each session's tokens were issued (the ones read from the file: about now).
  const issuedAt = sessions.map(() => Date.now());
  const operation = async () => {
    const i = idle.shift();
    if (i === undefined) throw new Error("fewer sessions than calls in flight");
    try {
      const r = await client.unary(auth.refreshToken, { refreshToken: sessions[i]!.refreshToken });
      sessions[i] = { ...sessions[i]!, accessToken: r.accessToken, refreshToken: r.refreshToken };
      issuedAt[i] = Date.now();
    } finally {
      idle.push(i);
    }
  };
  // The queue's head is the session refreshed longest ago.
  return Object.assign(operation, { oldestTokenAgeMs: () => (idle.length ? Date.now() - issuedAt[idle[0]!]! : 0) });
}

/** The soak's cycle of ten operations (protocol.ts, Scenario "mix"). */
const MIX = ["getme", "refresh", "getme", "update-profile", "getme", "signin", "getme", "refresh", "getme", "update-profile"] as const;
/**
 * The mix refreshes instead once a session's access token is this old: at a low rate two
 * refreshes in ten would not get round all the sessions within the service's access-token
 * lifetime (15 minutes by default), and GetMe would fail on expired tokens.
 */
const MIX_MAX_TOKEN_AGE_MS = 10 * 60_000;

export async function startScenario(scenario: Scenario, client: RpcClient): Promise<ScenarioRun> {
  const none = { finish: async () => undefined, usersUsed: () => 0 };
  switch (scenario.kind) {
    case "fixed": {
      const request = { wire: scenario.wire, verb: scenario.verb, path: scenario.path, body: Buffer.from(scenario.bodyBase64, "base64"), headers: scenario.headers };
      return { ...none, operation: async () => void (await client.send(request)) };
    }
    case "signin":
      return signIn(client, scenario.users, scenario.sessionsOut);
    case "getme":
      return { ...none, operation: getMe(client, await readSessions(scenario.sessionsFile)) };
    case "update-profile":
      return { ...none, operation: updateProfile(client, await readSessions(scenario.sessionsFile)) };
    case "refresh": {
      const sessions = await readSessions(scenario.sessionsFile);
      return { ...none, operation: refresh(client, sessions), finish: () => writeFile(scenario.sessionsFile, JSON.stringify(sessions)) };
    }
    case "mix": {
      const sessions = await readSessions(scenario.sessionsFile);
      const signInRun = signIn(client, scenario.users, undefined);
      const refresher = refresh(client, sessions);
      const operations = { getme: getMe(client, sessions), refresh: refresher, "update-profile": updateProfile(client, sessions), signin: signInRun.operation };
      let n = 0;
      return {
        operation: (slot) => (refresher.oldestTokenAgeMs() > MIX_MAX_TOKEN_AGE_MS ? refresher(slot) : operations[MIX[n++ % MIX.length]!](slot)),
        finish: () => writeFile(scenario.sessionsFile, JSON.stringify(sessions)),
        usersUsed: signInRun.usersUsed,
      };
    }
  }
}

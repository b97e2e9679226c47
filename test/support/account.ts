// Helpers of the account-lifecycle end-to-end tests (DESIGN §10): plain REST calls, users
// with an e-mail address as well as a test phone, proofs of the purposes that need a caller,
// and reads of what the database holds about a user.
import { QueryTypes } from "sequelize";
import { OtpPurpose, UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { bearer, clientFor, testPhone, type SignedUp, type Wire } from "./clients.js";
import type { FakeSmtp } from "./fake-smtp.js";
import { TEST_CODE, TEST_PHONE_PREFIX, type TestServer } from "./server.js";

export type Json = Record<string, unknown>;

/** A REST call over plain HTTP/1.1 JSON. */
export async function rest(server: TestServer, method: string, path: string, opts: { token?: string; body?: unknown } = {}): Promise<{ status: number; body: Json; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${server.url}${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Json) : {}, headers: res.headers };
}

let counter = 0;
/** An e-mail address unique in this process. */
export const uniqueEmail = (label = "u") => `${label}.${process.pid}.${++counter}.${Math.random().toString(36).slice(2, 7)}@example.com`;

/** Registers a test-range phone number (proven with the test code) with an e-mail address as well. */
export async function signUpWithEmail(url: string, email = uniqueEmail()): Promise<SignedUp & { email: string }> {
  const auth = clientFor(UserAuthService, url);
  const phone = testPhone();
  await auth.requestOtp({ identifier: phone, purpose: OtpPurpose.REGISTER });
  const { verificationToken } = await auth.verifyOtp({ identifier: phone, otp: TEST_CODE, purpose: OtpPurpose.REGISTER });
  const username = `acct_${process.pid}_${++counter}_${Math.random().toString(36).slice(2, 6)}`;
  const r = await auth.register({ verificationToken, username, phoneNumber: phone, email });
  return { userId: r.userId, sessionId: r.sessionId, accessToken: r.accessToken, refreshToken: r.refreshToken, phone, username, email };
}

/** The code of the next mail to `to` that arrives after `send` runs. */
export async function mailedCode(smtp: FakeSmtp, to: string, send: () => Promise<unknown>): Promise<string> {
  const before = smtp.messages.length;
  await send();
  for (let n = before + 1; ; n++) {
    const mail = await smtp.waitFor(n, 10_000);
    if (mail.to.includes(to)) return /\b(\d{6})\b/.exec(mail.text)![1]!;
  }
}

/**
 * A verification token of a purpose that needs a caller, proven with `accessToken` over
 * `wire`: test phone numbers use the test code, e-mail addresses the code mailed to them.
 */
export async function proveAs(url: string, accessToken: string, identifier: string, purpose: OtpPurpose, smtp?: FakeSmtp, wire: Wire = "connect-json-h1"): Promise<string> {
  const auth = clientFor(UserAuthService, url, wire);
  const ask = () => auth.requestOtp({ identifier, purpose }, bearer(accessToken));
  let code = TEST_CODE;
  if (identifier.startsWith(TEST_PHONE_PREFIX)) await ask();
  else code = await mailedCode(smtp!, identifier, ask);
  const { verificationToken } = await auth.verifyOtp({ identifier, otp: code, purpose }, bearer(accessToken));
  return verificationToken;
}

/** Rows of a query on the server's database. */
export function rows<T extends object>(server: TestServer, sql: string, replacements: Record<string, unknown> = {}): Promise<T[]> {
  return server.app.stores.sequelize.query<T>(sql, { replacements, type: QueryTypes.SELECT });
}

/** The audit actions of a user, oldest first. */
export async function auditActions(server: TestServer, userId: string): Promise<string[]> {
  return (await rows<{ action: string }>(server, "SELECT action FROM user_audit_logs WHERE user_id = :userId ORDER BY id", { userId })).map((r) => r.action);
}

/** Rows of user_audit_logs in the whole database (to show that a refusal wrote none). */
export async function auditCount(server: TestServer): Promise<number> {
  const [row] = await rows<{ n: number }>(server, "SELECT count(*)::int AS n FROM user_audit_logs");
  return row!.n;
}

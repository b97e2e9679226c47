// Wording of the messages that carry a code. The text depends only on what was asked
// (purpose, lifetime), never on whether an account exists.
import type { OtpPurpose } from "../domain/otp.js";

/** "5 minutes", "1 minute", or seconds below a minute. Rounded down: better early than late. */
export function lifetime(ttlSeconds: number): string {
  if (ttlSeconds < 60) return ttlSeconds === 1 ? "1 second" : `${ttlSeconds} seconds`;
  const minutes = Math.floor(ttlSeconds / 60);
  return minutes === 1 ? "1 minute" : `${minutes} minutes`;
}

const ACTIONS: Record<OtpPurpose, string> = { REGISTER: "sign-up", LOGIN: "sign-in", CHANGE_IDENTIFIER: "confirmation", DELETE_ACCOUNT: "account deletion" };
const action = (purpose: OtpPurpose) => ACTIONS[purpose];

export function otpEmail(code: string, purpose: OtpPurpose, ttlSeconds: number): { subject: string; text: string } {
  return {
    // Not in the subject: subjects end up in more logs and previews than bodies.
    subject: `Your ${action(purpose)} code`,
    text: [
      `Your ${action(purpose)} code is ${code}.`,
      `It expires in ${lifetime(ttlSeconds)}.`,
      "",
      "If you did not ask for this code, you can ignore this message. Never share the code with anyone.",
    ].join("\n"),
  };
}

export function otpSms(code: string, purpose: OtpPurpose, ttlSeconds: number): string {
  return `${code} is your ${action(purpose)} code. It expires in ${lifetime(ttlSeconds)}. Do not share it.`;
}

// OTP test identifiers (OTP_TEST_IDENTIFIERS): accounts for app-store reviewers, demos and
// load tests that sign in with the fixed OTP_TEST_CODE and get nothing delivered.
// An entry is an exact e-mail address, or a phone prefix in E.164 form ("+1555", or a whole
// number) matching the start of the normalised number.
import { normalizeEmail, type Identifier } from "./identifiers.js";

export interface TestIdentifiers {
  /** Phone prefixes, for the normaliser (numbers in reserved ranges fail the numbering-plan check). */
  readonly phonePrefixes: readonly string[];
  matches(id: Identifier): boolean;
}

export function parseTestIdentifiers(entries: readonly string[]): TestIdentifiers {
  const emails = new Set<string>();
  const phonePrefixes: string[] = [];
  for (const entry of entries) {
    if (entry.includes("@")) emails.add(normalizeEmail(entry, { field: "OTP_TEST_IDENTIFIERS" }));
    else if (/^\+[1-9]\d{0,14}$/.test(entry)) phonePrefixes.push(entry);
    else throw new Error(`OTP_TEST_IDENTIFIERS: "${entry}" is neither an e-mail address nor a phone prefix like +1555`);
  }
  return {
    phonePrefixes,
    matches: (id) => (id.kind === "email" ? emails.has(id.value) : phonePrefixes.some((p) => id.value.startsWith(p))),
  };
}

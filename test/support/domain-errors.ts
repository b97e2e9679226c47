// Assertions on domain calls that must fail with a DomainError.
import { expect } from "chai";
import { DomainError, type ErrorKind } from "../../src/domain/errors.js";

/** The DomainError a call failed with (of `kind`, when given); throws when it succeeded. */
export async function rejection(call: Promise<unknown>, kind?: ErrorKind): Promise<DomainError> {
  try {
    await call;
  } catch (err) {
    expect(err).to.be.instanceOf(DomainError);
    if (kind) expect((err as DomainError).kind, (err as Error).message).to.equal(kind);
    return err as DomainError;
  }
  throw new Error(kind ? `expected ${kind}` : "expected the call to fail");
}

/** The fields named by a DomainError's violations. */
export const fieldsOf = (err: DomainError): string[] => (err.extra.violations ?? []).map((v) => v.field);

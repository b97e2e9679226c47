// ChangeIdentifier (DESIGN §10): a signed-in user replaces their e-mail address or phone number
// with one they proved (a CHANGE_IDENTIFIER verification token bound to them). The old
// identifier is told, so that a hijacked session cannot move an account silently; the audit
// row carries both values masked. Whether another account holds the new identifier is told
// only after the proof, as Register does. Every refusal leaves the token usable and changes
// nothing.
import { Op, UniqueConstraintError, type Sequelize } from "sequelize";
import { runTransaction, whereLower, writeAudit, type Models } from "../store/index.js";
import { audited } from "./audit.js";
import type { Caller, Principal } from "./caller.js";
import { alreadyExists, failedPrecondition, invalid, unauthenticated } from "./errors.js";
import { maskIdentifier, type Identifier, type IdentifierKind } from "./identifiers.js";
import type { OtpService } from "./otp.js";
import { recordUserChange } from "./outbox.js";
import { loadUsers, type UserView } from "./users.js";

export interface IdentifierChangeDeps {
  sequelize: Sequelize;
  models: Models;
  otp: OtpService;
}

export type ChangeIdentifier = (caller: Caller & { principal: Principal }, verificationToken: string) => Promise<UserView>;

const WORDS: Record<IdentifierKind, { field: "email" | "phone_number"; name: string }> = {
  email: { field: "email", name: "e-mail address" },
  phone: { field: "phone_number", name: "phone number" },
};

/** The notice sent to the identifier that was replaced. */
function noticeOf(kind: IdentifierKind, replacement: Identifier): { subject: string; text: string } {
  const { name } = WORDS[kind];
  return {
    subject: `Your ${name} was changed`,
    text: [
      `The ${name} of your account was changed to ${maskIdentifier(replacement)}; this one no longer signs in to it.`,
      "",
      "If you did not make this change, contact support at once: someone else may have access to your account.",
    ].join("\n"),
  };
}

export function createIdentifierChange({ sequelize, models, otp }: IdentifierChangeDeps): ChangeIdentifier {
  return async (caller, verificationToken) => {
    if (!verificationToken) throw invalid([{ field: "verification_token", description: "required" }]);
    const userId = caller.principal.subject;
    // Judged before anything changes and used up only on success (a refusal costs no new code).
    const proven = await otp.peekVerificationToken(verificationToken, "CHANGE_IDENTIFIER", userId);
    const { field } = WORDS[proven.kind];
    const replacement: Identifier = { kind: proven.kind, value: proven.identifier };

    let old: string | null = null;
    let view: UserView;
    try {
      view = await runTransaction(sequelize, caller.signal, async (t) => {
        const user = await models.User.findByPk(userId, { transaction: t, lock: t.LOCK.UPDATE });
        if (!user?.isActive) throw unauthenticated("Session has ended");
        old = proven.kind === "email" ? user.email : user.phoneNumber;
        if (old === proven.identifier) throw failedPrecondition(`This ${WORDS[proven.kind].name} is already the account's`);
        const taken = await models.User.findOne({
          where: { [Op.and]: [{ id: { [Op.ne]: userId } }, proven.kind === "email" ? whereLower("email", proven.identifier) : { phoneNumber: proven.identifier }] },
          transaction: t,
        });
        if (taken) throw alreadyExists(`An account with this ${WORDS[proven.kind].name} already exists`);
        await user.update(proven.kind === "email" ? { email: proven.identifier } : { phoneNumber: proven.identifier }, { transaction: t });
        await writeAudit(
          models,
          audited(caller, {
            userId,
            action: "identifier.changed",
            entityType: "user",
            entityId: userId,
            oldValues: { [field]: old === null ? null : maskIdentifier({ kind: proven.kind, value: old }) },
            newValues: { [field]: maskIdentifier(replacement) },
          }),
          t,
        );
        await recordUserChange(models, t, userId, "identifier.changed");
        // Used up inside the transaction: of two concurrent changes with one token, one commits.
        await otp.consumeVerificationToken(verificationToken, "CHANGE_IDENTIFIER", userId);
        return (await loadUsers(sequelize, [userId], t)).get(userId)!;
      });
    } catch (err) {
      // Lost a race with a Register or change that took the identifier meanwhile.
      if (err instanceof UniqueConstraintError) throw alreadyExists(`An account with this ${WORDS[proven.kind].name} already exists`);
      throw err;
    }
    const replaced = old as string | null;
    if (replaced !== null) await otp.notify({ kind: proven.kind, value: replaced }, noticeOf(proven.kind, replacement), caller.meta);
    return view;
  };
}

// Granting and revoking staff (users.is_staff, DESIGN §4: "Staff = users.is_staff"). Takes
// effect at once: the auth interceptor reads is_staff on every call. Audited, and sent to
// external services like any user change.
import type { Sequelize } from "sequelize";
import { whereLower, writeAudit, type Models } from "../store/index.js";
import { notFound } from "./errors.js";
import { normalizeIdentifier } from "./identifiers.js";
import { recordUserChange } from "./outbox.js";
import { loadUsers, type UserView } from "./users.js";

/** Finds the user by username, e-mail or phone number and sets is_staff; `actor` names who did it. */
export async function setStaff(sequelize: Sequelize, models: Models, who: string, staff: boolean, actor: string): Promise<UserView> {
  return sequelize.transaction(async (transaction) => {
    const where = who.includes("@") || who.startsWith("+") ? identifierWhere(who) : whereLower("username", who.trim());
    const user = await models.User.findOne({ where, transaction, lock: transaction.LOCK.UPDATE });
    if (!user) throw notFound(`No user "${who}"`);
    if (user.isStaff !== staff) {
      await user.update({ isStaff: staff }, { transaction });
      await writeAudit(
        models,
        { userId: user.id, actorId: actor, action: staff ? "user.staff_granted" : "user.staff_revoked", entityType: "user", entityId: user.id, oldValues: { is_staff: !staff }, newValues: { is_staff: staff } },
        transaction,
      );
      await recordUserChange(models, transaction, user.id, staff ? "user.staff_granted" : "user.staff_revoked");
    }
    // Read back in the transaction (the row is locked): the account as it now is, through the one UserView mapping.
    return (await loadUsers(sequelize, [user.id], transaction)).get(user.id)!;
  });
}

function identifierWhere(raw: string) {
  if (raw.includes("@")) return whereLower("email", normalizeIdentifier(raw).value);
  // A lookup, not a sign-up: numbers outside the plan (test ranges) are matched as written.
  try {
    return { phoneNumber: normalizeIdentifier(raw).value };
  } catch {
    return { phoneNumber: raw.replace(/[\s().-]/g, "") };
  }
}

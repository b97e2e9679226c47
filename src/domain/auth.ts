// The sign-up and sign-in flows (DESIGN §4): the OTP steps, Register and Login on a proven
// identifier, and the account's own view. Whether an account exists is told only to a
// caller who has proven they own the identifier (Login → not_found, Register → already_exists).
import { Op, UniqueConstraintError, type Sequelize } from "sequelize";
import type { Logger } from "../logger.js";
import { runTransaction, whereLower, writeAudit, type Models } from "../store/index.js";
import { audited } from "./audit.js";
import { createBatchLoader } from "./batch-loader.js";
import type { AccountDeletion } from "./account-deletion.js";
import type { Caller, Principal } from "./caller.js";
import { checkDeviceInfo, type DeviceInfoInput } from "./device-info.js";
import { alreadyExists, invalid, notFound, permissionDenied, unauthenticated, Violations } from "./errors.js";
import type { OtpService } from "./otp.js";
import { recordUserChange } from "./outbox.js";
import type { Sessions, TokenPair } from "./sessions.js";
import { createIdentifierLookup, loadUsers, USERNAME, type UserView } from "./users.js";

export interface RegisterInput {
  verificationToken: string;
  username: string;
  email: string;
  phoneNumber: string;
  fullName: string;
  device?: DeviceInfoInput;
}

export interface LoginInput {
  identifier: string;
  verificationToken: string;
  device?: DeviceInfoInput;
}

export interface SignedIn extends TokenPair {
  userId: string;
}

export interface LoggedIn extends SignedIn {
  /** This sign-in cancelled the account's pending deletion. */
  accountRestored: boolean;
}

export interface AuthDeps {
  sequelize: Sequelize;
  models: Models;
  otp: OtpService;
  sessions: Sessions;
  /** Login restores an account whose deletion is pending (DESIGN §10). */
  deletion: Pick<AccountDeletion, "restore">;
  logger: Logger;
}

export interface Auth {
  register(caller: Caller, input: RegisterInput): Promise<SignedIn>;
  login(caller: Caller, input: LoginInput): Promise<LoggedIn>;
  getMe(caller: Caller & { principal: Principal }): Promise<UserView>;
}

// Same rule as the profile's full_name: letters, spaces, apostrophes, hyphens, dots.
const FULL_NAME = /^[\p{L}\p{M}' .-]{2,100}$/u;

export function createAuth({ sequelize, models, otp, sessions, deletion }: AuthDeps): Auth {
  const requireToken = (token: string, v: Violations) => {
    if (!token) v.add("verification_token", "required");
  };
  // GetMe is the call internal backends make on every request they serve: concurrent calls
  // share one query (the ids come from verified tokens whose session was just checked).
  const userById = createBatchLoader((ids: string[]) => loadUsers(sequelize, ids));
  const accountOf = createIdentifierLookup(sequelize);

  return {
    async register(caller, input) {
      const v = new Violations();
      requireToken(input.verificationToken, v);
      const username = input.username.trim();
      if (!USERNAME.test(username)) v.add("username", "3–30 characters: letters, digits, '.' and '_'");
      let email: string | null = null;
      let phone: string | null = null;
      try {
        if (input.email.trim()) email = otp.normalize.email(input.email, "email");
      } catch {
        v.add("email", "not a valid e-mail address");
      }
      try {
        if (input.phoneNumber.trim()) phone = otp.normalize.phone(input.phoneNumber, "phone_number");
      } catch {
        v.add("phone_number", "not a valid phone number in international form (+…)");
      }
      if (!input.email.trim() && !input.phoneNumber.trim()) v.add("email", "email or phone_number is required");
      const fullName = input.fullName.trim();
      if (fullName && !FULL_NAME.test(fullName)) v.add("full_name", "2–100 characters: letters, spaces, ', - and .");
      const device = checkDeviceInfo(input.device, v);
      v.throwIfAny();

      // Check the token's binding before anything changes; it is used up only on success,
      // so a taken username costs the user no new code.
      const verified = await otp.peekVerificationToken(input.verificationToken, "REGISTER");
      if (verified.identifier !== (verified.kind === "email" ? email : phone)) {
        throw invalid([{ field: verified.kind === "email" ? "email" : "phone_number", description: "must be the identifier that was verified" }]);
      }

      try {
        return await runTransaction(sequelize, caller.signal, async (t) => {
          const taken = await models.User.findOne({
            where: { [Op.or]: [whereLower("username", username), ...(email ? [whereLower("email", email)] : []), ...(phone ? [{ phoneNumber: phone }] : [])] },
            transaction: t,
          });
          if (taken) throw takenError(taken, username, email);
          const now = new Date();
          const user = await models.User.create({ username, email, phoneNumber: phone, dateJoined: now, lastLogin: now }, { transaction: t });
          await models.UserProfile.create({ userId: user.id, fullName: fullName || null }, { transaction: t });
          await models.UserPoints.create({ userId: user.id }, { transaction: t });
          // Used up inside the transaction: of two concurrent Registers with one token, one commits.
          await otp.consumeVerificationToken(input.verificationToken, "REGISTER");
          const pair = await sessions.open(t, user, caller, device);
          await writeAudit(
            models,
            audited(caller, { userId: user.id, action: "user.registered", entityType: "user", entityId: user.id, sessionId: pair.sessionId, newValues: { username, email, phone_number: phone, full_name: fullName || null, verified: verified.kind } }),
            t,
          );
          await recordUserChange(models, t, user.id, "user.registered");
          return { userId: user.id, ...pair };
        });
      } catch (err) {
        // Lost a race with a concurrent Register of the same username/email/phone.
        if (err instanceof UniqueConstraintError) throw alreadyExists("An account with this username, email or phone number already exists");
        throw err;
      }
    },

    async login(caller, input) {
      const v = new Violations();
      requireToken(input.verificationToken, v);
      if (!input.identifier.trim()) v.add("identifier", "required");
      const device = checkDeviceInfo(input.device, v);
      v.throwIfAny();
      const id = otp.normalize.identifier(input.identifier);
      const verified = await otp.peekVerificationToken(input.verificationToken, "LOGIN");
      if (verified.identifier !== id.value) throw unauthenticated("invalid or expired verification token");

      const user = await accountOf(id);
      // Used up whatever follows (Redis is not part of the statement below anyway). Of two
      // concurrent Logins with one token, one gets past this.
      await otp.consumeVerificationToken(input.verificationToken, "LOGIN");
      // The caller proved they own the identifier: they may learn there is no (usable) account.
      if (!user) throw notFound("No account exists for this identifier");
      // An inactive account signs in only to cancel its pending deletion, within the grace period.
      const accountRestored = !user.isActive && (await deletion.restore(caller, user.id));
      if (!user.isActive && !accountRestored) throw permissionDenied("This account is deactivated");
      const pair = await sessions.signIn(user, caller, device, id.kind);
      // Deactivated (or deleted) since it was read above.
      if (!pair) throw permissionDenied("This account is deactivated");
      return { userId: user.id, ...pair, accountRestored };
    },

    async getMe(caller) {
      // The session check of this call read the account already; other callers load it.
      const user = caller.account?.id === caller.principal.subject ? caller.account : await userById(caller.principal.subject);
      if (!user?.isActive) throw unauthenticated("Session has ended");
      return user;
    },
  };
}

function takenError(taken: { username: string | null; email: string | null }, username: string, email: string | null) {
  if (taken.username?.toLowerCase() === username.toLowerCase()) return alreadyExists("This username is taken");
  if (email && taken.email?.toLowerCase() === email) return alreadyExists("An account with this email already exists");
  return alreadyExists("An account with this phone number already exists");
}

// UserAuthService: maps messages to the auth domain and back, nothing else.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  ChangeIdentifierResponseSchema,
  GetMeResponseSchema,
  ListSessionsResponseSchema,
  LoginResponseSchema,
  LogoutResponseSchema,
  OtpChannel,
  OtpPurpose,
  RefreshTokenResponseSchema,
  RegisterResponseSchema,
  RequestOtpResponseSchema,
  RevokeAllSessionsResponseSchema,
  RevokeSessionResponseSchema,
  SessionSchema,
  UserAuthService,
  type Session,
  VerifyOtpResponseSchema,
} from "../../gen/identity/v1/auth_pb.js";
import { DeviceInfoSchema, type DeviceInfo } from "../../gen/identity/v1/common_pb.js";
import type { Auth } from "../domain/auth.js";
import type { DeviceInfoInput } from "../domain/device-info.js";
import type { ChangeIdentifier } from "../domain/identifier-change.js";
import type { Caller } from "../domain/caller.js";
import type { OtpCaller, OtpChannel as DomainChannel, OtpPurpose as DomainPurpose, OtpService } from "../domain/otp.js";
import type { Sessions, SessionView } from "../domain/sessions.js";
import { authedCallerOf, callerOf } from "../server/calls/context.js";
import { deviceTypeFromProto, deviceTypeToProto, userMessage } from "./convert.js";

export interface AuthRpcDeps {
  auth: Auth;
  changeIdentifier: ChangeIdentifier;
  otp: OtpService;
  sessions: Sessions;
}

// An unspecified purpose maps to a value the domain rejects with a field violation.
const PURPOSES: Record<number, DomainPurpose> = {
  [OtpPurpose.REGISTER]: "REGISTER",
  [OtpPurpose.LOGIN]: "LOGIN",
  [OtpPurpose.CHANGE_IDENTIFIER]: "CHANGE_IDENTIFIER",
  [OtpPurpose.DELETE_ACCOUNT]: "DELETE_ACCOUNT",
};
const purposeOf = (p: OtpPurpose): DomainPurpose => PURPOSES[p] as DomainPurpose;
const channelOf = (c: OtpChannel): DomainChannel | undefined => ({ [OtpChannel.SMS]: "SMS", [OtpChannel.EMAIL]: "EMAIL" })[c as number] as DomainChannel | undefined;

/** The Session message of a session. */
export function sessionMessage(s: SessionView): Session {
  return create(SessionSchema, {
    sessionId: s.sessionId,
    current: s.current,
    ipAddress: s.ipAddress,
    userAgent: s.userAgent,
    device: create(DeviceInfoSchema, { ...s.device, deviceType: deviceTypeToProto(s.device.deviceType) }),
    createdAt: timestampFromDate(s.createdAt),
    lastUsedAt: timestampFromDate(s.lastUsedAt),
    expiresAt: timestampFromDate(s.expiresAt),
  });
}

/** The signed-in caller of an OPTIONAL_USER method (the interceptor put the account its session check read). */
function otpCallerOf(caller: Caller): OtpCaller | undefined {
  const { principal, account } = caller;
  if (principal?.kind !== "user" || account?.id !== principal.subject) return undefined;
  return { userId: account.id, email: account.email, phoneNumber: account.phoneNumber };
}

function deviceOf(d: DeviceInfo | undefined): DeviceInfoInput | undefined {
  if (!d) return undefined;
  return { deviceId: d.deviceId, deviceType: deviceTypeFromProto(d.deviceType), deviceName: d.deviceName, appVersion: d.appVersion, osVersion: d.osVersion };
}

export function createAuthServiceImpl({ auth, changeIdentifier, otp, sessions }: AuthRpcDeps): ServiceImpl<typeof UserAuthService> {
  return {
    async requestOtp(req, ctx) {
      const caller = callerOf(ctx);
      const r = await otp.request({ identifier: req.identifier, purpose: purposeOf(req.purpose), channel: channelOf(req.channel), meta: caller.meta, caller: otpCallerOf(caller) });
      return create(RequestOtpResponseSchema, { message: r.message, expiresIn: r.expiresIn, retryAfter: r.retryAfter });
    },
    async verifyOtp(req, ctx) {
      const caller = callerOf(ctx);
      const r = await otp.verify({ identifier: req.identifier, otp: req.otp, purpose: purposeOf(req.purpose), meta: caller.meta, caller: otpCallerOf(caller) });
      return create(VerifyOtpResponseSchema, { verificationToken: r.verificationToken, expiresIn: r.expiresIn });
    },
    async register(req, ctx) {
      const r = await auth.register(callerOf(ctx), {
        verificationToken: req.verificationToken,
        username: req.username,
        email: req.email,
        phoneNumber: req.phoneNumber,
        fullName: req.fullName,
        device: deviceOf(req.device),
      });
      return create(RegisterResponseSchema, r);
    },
    async login(req, ctx) {
      const r = await auth.login(callerOf(ctx), { identifier: req.identifier, verificationToken: req.verificationToken, device: deviceOf(req.device) });
      return create(LoginResponseSchema, r);
    },
    async refreshToken(req, ctx) {
      const r = await sessions.refresh(callerOf(ctx), req.refreshToken);
      return create(RefreshTokenResponseSchema, r);
    },
    async logout(req, ctx) {
      await sessions.logout(authedCallerOf(ctx), req.refreshToken);
      return create(LogoutResponseSchema, { message: "Logged out" });
    },
    async getMe(_req, ctx) {
      const u = await auth.getMe(authedCallerOf(ctx));
      return create(GetMeResponseSchema, { user: userMessage(u) });
    },
    async listSessions(_req, ctx) {
      const list = await sessions.list(authedCallerOf(ctx));
      return create(ListSessionsResponseSchema, {
        sessions: list.map(sessionMessage),
      });
    },
    async revokeSession(req, ctx) {
      await sessions.revoke(authedCallerOf(ctx), req.sessionId);
      return create(RevokeSessionResponseSchema);
    },
    async revokeAllSessions(req, ctx) {
      const revokedCount = await sessions.revokeAll(authedCallerOf(ctx), req.keepCurrent);
      return create(RevokeAllSessionsResponseSchema, { revokedCount });
    },
    async changeIdentifier(req, ctx) {
      const u = await changeIdentifier(authedCallerOf(ctx), req.verificationToken);
      return create(ChangeIdentifierResponseSchema, { user: userMessage(u) });
    },
  };
}

// AdminService: maps messages to the staff domain (admin-users.ts, admin-audit-logs.ts) and
// back, nothing else.
import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  AdminService,
  AuditLogSchema,
  GetUserResponseSchema,
  ListAuditLogsResponseSchema,
  ListUsersResponseSchema,
  RevokeUserSessionsResponseSchema,
  SetUserActiveResponseSchema,
  UserSummarySchema,
  UserWalletSchema,
} from "../../gen/identity/v1/admin_pb.js";
import { KycStatus } from "../../gen/identity/v1/kyc_pb.js";
import type { AuditLogBrowser } from "../domain/admin-audit-logs.js";
import type { AdminUsers } from "../domain/admin-users.js";
import type { KycStatusValue } from "../domain/kyc.js";
import { authedCallerOf } from "../server/calls/context.js";
import { auditEventFields } from "./account.js";
import { sessionMessage } from "./auth.js";
import { optionalTimestamp, userMessage } from "./convert.js";
import { deviceMessage } from "./device.js";
import { kycMessage, kycStatusToProto } from "./kyc.js";
import { profileMessage } from "./profile.js";

export interface AdminRpcDeps {
  users: AdminUsers;
  auditLogs: AuditLogBrowser;
}

const KYC_STATUS_FROM_PROTO: Partial<Record<KycStatus, KycStatusValue>> = {
  [KycStatus.NOT_SUBMITTED]: "NOT_SUBMITTED",
  [KycStatus.PENDING]: "PENDING",
  [KycStatus.APPROVED]: "APPROVED",
  [KycStatus.REJECTED]: "REJECTED",
};

/** A jsonb column as a google.protobuf.Struct field (protobuf-es holds those as JSON objects). */

export function createAdminServiceImpl({ users, auditLogs }: AdminRpcDeps): ServiceImpl<typeof AdminService> {
  return {
    async listUsers(req, ctx) {
      const page = await users.list(authedCallerOf(ctx), {
        query: req.query,
        isActive: req.isActive,
        // UNSPECIFIED means no filter; an unknown number is passed on for the domain to refuse.
        kycStatus: req.kycStatus === KycStatus.UNSPECIFIED ? undefined : (KYC_STATUS_FROM_PROTO[req.kycStatus] ?? (String(req.kycStatus) as KycStatusValue)),
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
      return create(ListUsersResponseSchema, {
        users: page.users.map((s) =>
          create(UserSummarySchema, { user: userMessage(s.user), kycStatus: kycStatusToProto(s.kycStatus), points: s.points, deletionScheduledFor: optionalTimestamp(s.deletionScheduledFor) }),
        ),
        nextPageToken: page.nextPageToken,
      });
    },
    async getUser(req, ctx) {
      const d = await users.get(authedCallerOf(ctx), req.userId);
      return create(GetUserResponseSchema, {
        user: userMessage(d.user),
        profile: profileMessage(d.profile),
        kyc: kycMessage(d.kyc),
        wallet: create(UserWalletSchema, { balance: d.wallet.balance, points: d.wallet.points, totalPoints: d.wallet.totalPoints, lastUpdated: optionalTimestamp(d.wallet.lastUpdated) }),
        devices: d.devices.map(deviceMessage),
        liveSessionCount: d.sessions.length,
        sessions: d.sessions.map(sessionMessage),
        deletionScheduledFor: optionalTimestamp(d.deletionScheduledFor),
        deactivatedAt: optionalTimestamp(d.deactivatedAt),
      });
    },
    async setUserActive(req, ctx) {
      const r = await users.setActive(authedCallerOf(ctx), { userId: req.userId, active: req.active, reason: req.reason });
      return create(SetUserActiveResponseSchema, { user: userMessage(r.user), revokedSessions: r.revokedSessions });
    },
    async revokeUserSessions(req, ctx) {
      const revokedCount = await users.revokeSessions(authedCallerOf(ctx), req.userId, req.reason);
      return create(RevokeUserSessionsResponseSchema, { revokedCount });
    },
    async listAuditLogs(req, ctx) {
      const page = await auditLogs.list(authedCallerOf(ctx), {
        userId: req.userId,
        action: req.action,
        entityType: req.entityType,
        since: req.since ? timestampDate(req.since) : undefined,
        until: req.until ? timestampDate(req.until) : undefined,
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
      return create(ListAuditLogsResponseSchema, {
        entries: page.entries.map((e) =>
          create(AuditLogSchema, { ...auditEventFields(e), userId: e.userId ?? "", actorId: e.actorId ?? "" }),
        ),
        nextPageToken: page.nextPageToken,
      });
    },
  };
}

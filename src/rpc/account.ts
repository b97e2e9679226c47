// AccountService: maps messages to the account-lifecycle domain (deletion, export, activity)
// and back, nothing else.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  AccountService,
  AuditEventSchema,
  DeleteAccountResponseSchema,
  ExportAccountDataResponseSchema,
  ExportedKycSchema,
  ExportedWalletSchema,
  ListMyActivityResponseSchema,
  type AuditEvent,
} from "../../gen/identity/v1/account_pb.js";
import type { AccountDeletion } from "../domain/account-deletion.js";
import type { ExportAccountData } from "../domain/account-export.js";
import type { AuditEventView, MyActivity } from "../domain/my-activity.js";
import { authedCallerOf } from "../server/calls/context.js";
import { sessionMessage } from "./auth.js";
import { jsonStruct, optionalTimestamp, userMessage } from "./convert.js";
import { deviceMessage } from "./device.js";
import { documentTypeToProto, kycStatusToProto } from "./kyc.js";
import { transactionMessage } from "./points.js";
import { profileMessage } from "./profile.js";

export interface AccountRpcDeps {
  deletion: AccountDeletion;
  exportData: ExportAccountData;
  activity: MyActivity;
}


/** The fields an audit row has in both AuditEvent and the staff's AuditLog (which adds user and actor). */
export function auditEventFields(e: AuditEventView) {
  return {
    id: e.id,
    action: e.action,
    entityType: e.entityType,
    entityId: e.entityId ?? "",
    oldValues: jsonStruct(e.oldValues),
    newValues: jsonStruct(e.newValues),
    ipAddress: e.ipAddress ?? "",
    userAgent: e.userAgent ?? "",
    sessionId: e.sessionId ?? "",
    createdAt: timestampFromDate(e.createdAt),
  };
}

function auditEventMessage(e: AuditEventView): AuditEvent {
  return create(AuditEventSchema, auditEventFields(e));
}

export function createAccountServiceImpl({ deletion, exportData, activity }: AccountRpcDeps): ServiceImpl<typeof AccountService> {
  return {
    async deleteAccount(req, ctx) {
      const r = await deletion.request(authedCallerOf(ctx), req.verificationToken);
      return create(DeleteAccountResponseSchema, { deletionScheduledFor: timestampFromDate(r.scheduledFor), erased: r.erased });
    },
    async exportAccountData(_req, ctx) {
      const x = await exportData(authedCallerOf(ctx));
      return create(ExportAccountDataResponseSchema, {
        user: userMessage(x.user),
        profile: profileMessage(x.profile),
        kyc: create(ExportedKycSchema, {
          status: kycStatusToProto(x.kyc.status),
          documentType: documentTypeToProto(x.kyc.documentType),
          documentNumberLast4: x.kyc.documentNumberLast4 ?? "",
          documentFrontUrl: x.kyc.documentFrontUrl ?? "",
          documentBackUrl: x.kyc.documentBackUrl ?? "",
          rejectionReason: x.kyc.rejectionReason ?? "",
          submittedAt: optionalTimestamp(x.kyc.submittedAt),
          verifiedAt: optionalTimestamp(x.kyc.verifiedAt),
          reviewedAt: optionalTimestamp(x.kyc.reviewedAt),
        }),
        devices: x.devices.map(deviceMessage),
        sessions: x.sessions.map(sessionMessage),
        wallet: create(ExportedWalletSchema, { balance: x.wallet.balance, points: x.wallet.points, totalPoints: x.wallet.totalPoints, lastUpdated: optionalTimestamp(x.wallet.lastUpdated) }),
        pointsTransactions: x.ledger.map(transactionMessage),
        auditEvents: x.auditEvents.map(auditEventMessage),
        exportedAt: timestampFromDate(x.exportedAt),
      });
    },
    async listMyActivity(req, ctx) {
      const page = await activity.list(authedCallerOf(ctx), { pageSize: req.pageSize, pageToken: req.pageToken });
      return create(ListMyActivityResponseSchema, { events: page.events.map(auditEventMessage), nextPageToken: page.nextPageToken });
    },
  };
}

// KycService: maps messages to the KYC domain and back, nothing else.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  DocumentType,
  GetKycStatusResponseSchema,
  KycDecision,
  KycSchema,
  KycService,
  KycStatus,
  ListKycSubmissionsResponseSchema,
  ReviewKycResponseSchema,
  SubmitKycResponseSchema,
  type Kyc,
} from "../../gen/identity/v1/kyc_pb.js";
import type { DocumentTypeValue, KycDecisionValue, KycDomain, KycRecord, KycStatusValue } from "../domain/kyc.js";
import { authedCallerOf } from "../server/calls/context.js";
import { optionalTimestamp } from "./convert.js";

export interface KycRpcDeps {
  kyc: KycDomain;
}

const KYC_STATUS_TO_PROTO: Record<KycStatusValue, KycStatus> = {
  NOT_SUBMITTED: KycStatus.NOT_SUBMITTED,
  PENDING: KycStatus.PENDING,
  APPROVED: KycStatus.APPROVED,
  REJECTED: KycStatus.REJECTED,
};

const DOCUMENT_TYPE_TO_PROTO: Record<DocumentTypeValue, DocumentType> = {
  PASSPORT: DocumentType.PASSPORT,
  NATIONAL_ID: DocumentType.NATIONAL_ID,
  DRIVING_LICENSE: DocumentType.DRIVING_LICENSE,
};

const DECISION_TO_PROTO: Record<KycDecisionValue, KycDecision> = {
  APPROVE: KycDecision.APPROVE,
  REJECT: KycDecision.REJECT,
};

/** The domain value of a proto enum number; undefined for _UNSPECIFIED and unknown numbers. */
function fromProto<V extends string, P extends number>(toProto: Record<V, P>, value: P): V | undefined {
  return (Object.keys(toProto) as V[]).find((key) => toProto[key] === value);
}

export function kycStatusToProto(status: KycStatusValue): KycStatus {
  return KYC_STATUS_TO_PROTO[status];
}

export function documentTypeToProto(type: DocumentTypeValue | null): DocumentType {
  return type ? DOCUMENT_TYPE_TO_PROTO[type] : DocumentType.UNSPECIFIED;
}

export function kycMessage(record: KycRecord): Kyc {
  return create(KycSchema, {
    userId: record.userId,
    status: kycStatusToProto(record.status),
    documentType: documentTypeToProto(record.documentType),
    documentNumberMasked: record.documentNumberMasked ?? "",
    documentFrontUrl: record.documentFrontUrl ?? "",
    documentBackUrl: record.documentBackUrl ?? "",
    rejectionReason: record.rejectionReason ?? "",
    submittedAt: optionalTimestamp(record.submittedAt),
    verifiedAt: optionalTimestamp(record.verifiedAt),
    reviewedBy: record.reviewedBy ?? "",
    documentNumber: record.documentNumber ?? "",
  });
}

export function createKycServiceImpl({ kyc }: KycRpcDeps): ServiceImpl<typeof KycService> {
  return {
    async submitKyc(req, ctx) {
      const record = await kyc.submit(authedCallerOf(ctx), {
        documentType: fromProto(DOCUMENT_TYPE_TO_PROTO, req.documentType),
        documentNumber: req.documentNumber,
        documentFrontUrl: req.documentFrontUrl,
        documentBackUrl: req.documentBackUrl,
      });
      return create(SubmitKycResponseSchema, { kyc: kycMessage(record) });
    },
    async getKycStatus(_req, ctx) {
      const view = await kyc.status(authedCallerOf(ctx));
      return create(GetKycStatusResponseSchema, {
        status: kycStatusToProto(view.status),
        rejectionReason: view.rejectionReason ?? "",
        verifiedAt: optionalTimestamp(view.verifiedAt),
        submittedAt: optionalTimestamp(view.submittedAt),
        documentType: documentTypeToProto(view.documentType),
      });
    },
    async listKycSubmissions(req, ctx) {
      const page = await kyc.list(authedCallerOf(ctx), {
        status: fromProto(KYC_STATUS_TO_PROTO, req.status),
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
      return create(ListKycSubmissionsResponseSchema, { submissions: page.submissions.map(kycMessage), nextPageToken: page.nextPageToken });
    },
    async reviewKyc(req, ctx) {
      const record = await kyc.review(authedCallerOf(ctx), {
        userId: req.userId,
        decision: fromProto(DECISION_TO_PROTO, req.decision),
        rejectionReason: req.rejectionReason,
      });
      return create(ReviewKycResponseSchema, { kyc: kycMessage(record) });
    },
  };
}

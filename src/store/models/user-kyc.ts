import { DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize } from "sequelize";

/** Values of user_kyc.status (a CHECK constraint holds the column to them). */
export const KYC_STATUSES = ["NOT_SUBMITTED", "PENDING", "APPROVED", "REJECTED"] as const;
export type KycStatusValue = (typeof KYC_STATUSES)[number];

/** Values of user_kyc.document_type. */
export const DOCUMENT_TYPES = ["PASSPORT", "NATIONAL_ID", "DRIVING_LICENSE"] as const;
export type DocumentTypeValue = (typeof DOCUMENT_TYPES)[number];

/**
 * A row of `user_kyc` (one per user). The database insists that a record past NOT_SUBMITTED
 * has document_type, document_number and submitted_at, and that a REJECTED one has a
 * rejection_reason.
 */
export class UserKyc extends Model<InferAttributes<UserKyc>, InferCreationAttributes<UserKyc>> {
  declare userId: string;
  declare status: CreationOptional<KycStatusValue>;
  declare documentType: CreationOptional<DocumentTypeValue | null>;
  /** Full number: for staff only; users see documentNumberLast4. */
  declare documentNumber: CreationOptional<string | null>;
  declare documentNumberLast4: CreationOptional<string | null>;
  declare documentFrontUrl: CreationOptional<string | null>;
  declare documentBackUrl: CreationOptional<string | null>;
  declare rejectionReason: CreationOptional<string | null>;
  declare submittedAt: CreationOptional<Date | null>;
  declare verifiedAt: CreationOptional<Date | null>;
  /** User id of the staff reviewer (no foreign key: it outlives the reviewer's account). */
  declare reviewedBy: CreationOptional<string | null>;
  declare reviewedAt: CreationOptional<Date | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export function defineUserKyc(sequelize: Sequelize): typeof UserKyc {
  class BoundUserKyc extends UserKyc {}
  BoundUserKyc.init(
    {
      userId: { type: DataTypes.UUID, primaryKey: true },
      status: { type: DataTypes.TEXT, allowNull: false, defaultValue: "NOT_SUBMITTED" },
      documentType: { type: DataTypes.TEXT },
      documentNumber: { type: DataTypes.TEXT },
      documentNumberLast4: { type: DataTypes.TEXT, field: "document_number_last4" },
      documentFrontUrl: { type: DataTypes.TEXT },
      documentBackUrl: { type: DataTypes.TEXT },
      rejectionReason: { type: DataTypes.TEXT },
      submittedAt: { type: DataTypes.DATE },
      verifiedAt: { type: DataTypes.DATE },
      reviewedBy: { type: DataTypes.UUID },
      reviewedAt: { type: DataTypes.DATE },
      createdAt: { type: DataTypes.DATE },
      updatedAt: { type: DataTypes.DATE },
    },
    { sequelize, modelName: "UserKyc", tableName: "user_kyc" },
  );
  return BoundUserKyc;
}

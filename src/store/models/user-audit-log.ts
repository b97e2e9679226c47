import { DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize } from "sequelize";

/** A row of `user_audit_logs`: append-only, written in the transaction of the change it records. */
export class UserAuditLog extends Model<InferAttributes<UserAuditLog>, InferCreationAttributes<UserAuditLog>> {
  /** bigserial, as a decimal string (pg returns int8 as text; it may outgrow 2^53). Unique by
   * itself (one sequence), though the table's primary key is (id, created_at): a partitioned
   * table's key must include its partition key (migration 0007). */
  declare id: CreationOptional<string>;
  /** No foreign key: null for identifiers with no account, kept after the user is deleted. */
  declare userId: string | null;
  declare actorId: CreationOptional<string | null>;
  declare action: string;
  declare entityType: string;
  declare entityId: CreationOptional<string | null>;
  declare oldValues: CreationOptional<Record<string, unknown> | null>;
  declare newValues: CreationOptional<Record<string, unknown> | null>;
  declare ipAddress: CreationOptional<string | null>;
  declare userAgent: CreationOptional<string | null>;
  declare sessionId: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
}

export function defineUserAuditLog(sequelize: Sequelize): typeof UserAuditLog {
  class BoundUserAuditLog extends UserAuditLog {}
  BoundUserAuditLog.init(
    {
      id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
      userId: { type: DataTypes.UUID },
      actorId: { type: DataTypes.TEXT },
      action: { type: DataTypes.TEXT, allowNull: false },
      entityType: { type: DataTypes.TEXT, allowNull: false },
      entityId: { type: DataTypes.TEXT },
      oldValues: { type: DataTypes.JSONB },
      newValues: { type: DataTypes.JSONB },
      ipAddress: { type: DataTypes.TEXT },
      userAgent: { type: DataTypes.TEXT },
      sessionId: { type: DataTypes.UUID },
      createdAt: { type: DataTypes.DATE },
    },
    { sequelize, modelName: "UserAuditLog", tableName: "user_audit_logs", updatedAt: false },
  );
  return BoundUserAuditLog;
}

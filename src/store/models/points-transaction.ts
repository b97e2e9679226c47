import { DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize } from "sequelize";

/**
 * A row of `points_transactions`, the append-only ledger. delta and balanceAfter are BIGINT
 * decimal strings (see UserPoints). idempotency_key is unique across all users.
 */
export class PointsTransaction extends Model<InferAttributes<PointsTransaction>, InferCreationAttributes<PointsTransaction>> {
  declare id: CreationOptional<string>;
  declare userId: string;
  /** Non-zero (CHECK). */
  declare delta: string;
  declare balanceAfter: string;
  declare reason: string;
  declare idempotencyKey: string;
  /** Hash of (user_id, delta, reason): tells a genuine retry from a reused key. */
  declare requestFingerprint: string;
  /** Staff user id or service name that made the adjustment. */
  declare actorId: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
}

export function definePointsTransaction(sequelize: Sequelize): typeof PointsTransaction {
  class BoundPointsTransaction extends PointsTransaction {}
  BoundPointsTransaction.init(
    {
      id: { type: DataTypes.UUID, primaryKey: true, defaultValue: DataTypes.UUIDV4 },
      userId: { type: DataTypes.UUID, allowNull: false },
      delta: { type: DataTypes.BIGINT, allowNull: false },
      balanceAfter: { type: DataTypes.BIGINT, allowNull: false },
      reason: { type: DataTypes.TEXT, allowNull: false },
      idempotencyKey: { type: DataTypes.TEXT, allowNull: false },
      requestFingerprint: { type: DataTypes.TEXT, allowNull: false },
      actorId: { type: DataTypes.TEXT },
      createdAt: { type: DataTypes.DATE },
    },
    { sequelize, modelName: "PointsTransaction", tableName: "points_transactions", updatedAt: false },
  );
  return BoundPointsTransaction;
}

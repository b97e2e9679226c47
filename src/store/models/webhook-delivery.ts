import { DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize } from "sequelize";

/** Values of webhook_deliveries.status: delivered rows are deleted, so only these two remain. */
export const WEBHOOK_DELIVERY_STATUSES = ["pending", "dead"] as const;
export type WebhookDeliveryStatus = (typeof WEBHOOK_DELIVERY_STATUSES)[number];

/**
 * A row of `webhook_deliveries`: the snapshot of one user still owed to one endpoint. At most
 * one pending row per (user_id, endpoint); change_seq counts the changes folded into it.
 */
export class WebhookDelivery extends Model<InferAttributes<WebhookDelivery>, InferCreationAttributes<WebhookDelivery>> {
  declare id: CreationOptional<string>;
  declare userId: string;
  declare endpoint: string;
  declare status: CreationOptional<WebhookDeliveryStatus>;
  declare reasons: CreationOptional<string[]>;
  declare changeSeq: CreationOptional<number>;
  /** Attempts made (each claim counts one, so a crash mid-request still counts). */
  declare attempts: CreationOptional<number>;
  declare nextAttemptAt: CreationOptional<Date>;
  /** Lease of the worker sending it; another worker may claim it after this time. */
  declare lockedUntil: CreationOptional<Date | null>;
  declare lastAttemptAt: CreationOptional<Date | null>;
  /** "HTTP 503", "timeout after 10000 ms", "ECONNREFUSED"… never a response body. */
  declare lastError: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export function defineWebhookDelivery(sequelize: Sequelize): typeof WebhookDelivery {
  class BoundWebhookDelivery extends WebhookDelivery {}
  BoundWebhookDelivery.init(
    {
      id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
      userId: { type: DataTypes.UUID, allowNull: false },
      endpoint: { type: DataTypes.TEXT, allowNull: false },
      status: { type: DataTypes.TEXT, allowNull: false, defaultValue: "pending" },
      reasons: { type: DataTypes.ARRAY(DataTypes.TEXT), allowNull: false, defaultValue: [] },
      changeSeq: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 1 },
      attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      nextAttemptAt: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
      lockedUntil: { type: DataTypes.DATE },
      lastAttemptAt: { type: DataTypes.DATE },
      lastError: { type: DataTypes.TEXT },
      createdAt: { type: DataTypes.DATE },
      updatedAt: { type: DataTypes.DATE },
    },
    { sequelize, modelName: "WebhookDelivery", tableName: "webhook_deliveries" },
  );
  return BoundWebhookDelivery;
}

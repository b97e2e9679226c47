import { DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize } from "sequelize";

/** Values of notification_log.channel; "sending" is a claimed reminder not yet confirmed by a provider. */
export const NOTIFICATION_CHANNELS = ["sending", "push", "email"] as const;
export type NotificationChannel = (typeof NOTIFICATION_CHANNELS)[number];

/** A row of `notification_log`: one reminder of one kind to one user. */
export class NotificationLog extends Model<InferAttributes<NotificationLog>, InferCreationAttributes<NotificationLog>> {
  declare id: CreationOptional<string>;
  declare userId: string;
  /** "profile_completion" or "kyc_verification". */
  declare kind: string;
  declare channel: NotificationChannel;
  declare sentAt: CreationOptional<Date>;
}

export function defineNotificationLog(sequelize: Sequelize): typeof NotificationLog {
  class BoundNotificationLog extends NotificationLog {}
  BoundNotificationLog.init(
    {
      id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
      userId: { type: DataTypes.UUID, allowNull: false },
      kind: { type: DataTypes.TEXT, allowNull: false },
      channel: { type: DataTypes.TEXT, allowNull: false },
      sentAt: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
    },
    { sequelize, modelName: "NotificationLog", tableName: "notification_log", timestamps: false },
  );
  return BoundNotificationLog;
}

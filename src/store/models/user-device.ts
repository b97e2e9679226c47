import { DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize } from "sequelize";

/** Values of user_devices.device_type and sessions.device_type (CHECK constraints). */
export const DEVICE_TYPES = ["ANDROID", "IOS", "WEB"] as const;
export type DeviceTypeValue = (typeof DEVICE_TYPES)[number];

/** A row of `user_devices`. Unique (user_id, device_id); fcm_token is indexed for the hand-over. */
export class UserDevice extends Model<InferAttributes<UserDevice>, InferCreationAttributes<UserDevice>> {
  declare id: CreationOptional<string>;
  declare userId: string;
  declare deviceId: string;
  declare fcmToken: CreationOptional<string | null>;
  declare deviceType: DeviceTypeValue;
  declare deviceName: CreationOptional<string | null>;
  declare appVersion: CreationOptional<string | null>;
  declare osVersion: CreationOptional<string | null>;
  declare isActive: CreationOptional<boolean>;
  declare lastUsed: CreationOptional<Date>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export function defineUserDevice(sequelize: Sequelize): typeof UserDevice {
  class BoundUserDevice extends UserDevice {}
  BoundUserDevice.init(
    {
      id: { type: DataTypes.UUID, primaryKey: true, defaultValue: DataTypes.UUIDV4 },
      userId: { type: DataTypes.UUID, allowNull: false },
      deviceId: { type: DataTypes.TEXT, allowNull: false },
      fcmToken: { type: DataTypes.TEXT },
      deviceType: { type: DataTypes.TEXT, allowNull: false },
      deviceName: { type: DataTypes.TEXT },
      appVersion: { type: DataTypes.TEXT },
      osVersion: { type: DataTypes.TEXT },
      isActive: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
      lastUsed: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
      createdAt: { type: DataTypes.DATE },
      updatedAt: { type: DataTypes.DATE },
    },
    { sequelize, modelName: "UserDevice", tableName: "user_devices" },
  );
  return BoundUserDevice;
}

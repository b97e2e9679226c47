import { DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize } from "sequelize";
import type { DeviceTypeValue } from "./user-device.js";

/** A row of `sessions`: one signed-in device of a user, bound to its current refresh token. */
export class Session extends Model<InferAttributes<Session>, InferCreationAttributes<Session>> {
  declare id: CreationOptional<string>;
  declare userId: string;
  /** Refresh tokens of every generation derive from it (domain/refresh-tokens.ts). */
  declare refreshSeed: string;
  declare rotatedAt: CreationOptional<Date | null>;
  declare refreshGeneration: CreationOptional<number>;
  declare deviceId: CreationOptional<string | null>;
  declare deviceType: CreationOptional<DeviceTypeValue | null>;
  declare deviceName: CreationOptional<string | null>;
  declare appVersion: CreationOptional<string | null>;
  declare osVersion: CreationOptional<string | null>;
  declare ipAddress: CreationOptional<string | null>;
  declare userAgent: CreationOptional<string | null>;
  declare createdAt: CreationOptional<Date>;
  declare lastUsedAt: CreationOptional<Date>;
  declare expiresAt: Date;
  declare revokedAt: CreationOptional<Date | null>;
  declare revokedReason: CreationOptional<string | null>;
}

export function defineSession(sequelize: Sequelize): typeof Session {
  class BoundSession extends Session {}
  BoundSession.init(
    {
      id: { type: DataTypes.UUID, primaryKey: true, defaultValue: DataTypes.UUIDV4 },
      userId: { type: DataTypes.UUID, allowNull: false },
      refreshSeed: { type: DataTypes.TEXT, allowNull: false },
      rotatedAt: { type: DataTypes.DATE },
      refreshGeneration: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      deviceId: { type: DataTypes.TEXT },
      deviceType: { type: DataTypes.TEXT },
      deviceName: { type: DataTypes.TEXT },
      appVersion: { type: DataTypes.TEXT },
      osVersion: { type: DataTypes.TEXT },
      ipAddress: { type: DataTypes.TEXT },
      userAgent: { type: DataTypes.TEXT },
      createdAt: { type: DataTypes.DATE },
      lastUsedAt: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
      expiresAt: { type: DataTypes.DATE, allowNull: false },
      revokedAt: { type: DataTypes.DATE },
      revokedReason: { type: DataTypes.TEXT },
    },
    // last_used_at is the session's activity clock; no generic updated_at.
    { sequelize, modelName: "Session", tableName: "sessions", updatedAt: false },
  );
  return BoundSession;
}

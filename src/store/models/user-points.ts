import { DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize } from "sequelize";

/**
 * A row of `user_points`, the wallet (its cash balance is computed from current_points).
 * BIGINT columns are decimal strings, exact beyond 2^53: do arithmetic with BigInt(value)
 * and write back String(result). current_points never goes below zero (CHECK).
 */
export class UserPoints extends Model<InferAttributes<UserPoints>, InferCreationAttributes<UserPoints>> {
  declare userId: string;
  declare currentPoints: CreationOptional<string>;
  /** Points ever earned. */
  declare totalPoints: CreationOptional<string>;
  declare totalSpent: CreationOptional<string>;
  declare lastUpdated: CreationOptional<Date>;
}

export function defineUserPoints(sequelize: Sequelize): typeof UserPoints {
  class BoundUserPoints extends UserPoints {}
  BoundUserPoints.init(
    {
      userId: { type: DataTypes.UUID, primaryKey: true },
      currentPoints: { type: DataTypes.BIGINT, allowNull: false, defaultValue: "0" },
      totalPoints: { type: DataTypes.BIGINT, allowNull: false, defaultValue: "0" },
      totalSpent: { type: DataTypes.BIGINT, allowNull: false, defaultValue: "0" },
      lastUpdated: { type: DataTypes.DATE },
    },
    { sequelize, modelName: "UserPoints", tableName: "user_points", createdAt: false, updatedAt: "lastUpdated" },
  );
  return BoundUserPoints;
}

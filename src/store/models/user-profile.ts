import { DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize } from "sequelize";

/** A row of `user_profiles` (one per user, created on demand). */
export class UserProfile extends Model<InferAttributes<UserProfile>, InferCreationAttributes<UserProfile>> {
  declare userId: string;
  declare fullName: CreationOptional<string | null>;
  /** Calendar date "YYYY-MM-DD" (DATEONLY: no time zone shifts). */
  declare dateOfBirth: CreationOptional<string | null>;
  declare address: CreationOptional<string | null>;
  declare avatarUrl: CreationOptional<string | null>;
  /** Derived by the domain from the other fields, never set by callers. */
  declare isProfileComplete: CreationOptional<boolean>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export function defineUserProfile(sequelize: Sequelize): typeof UserProfile {
  class BoundUserProfile extends UserProfile {}
  BoundUserProfile.init(
    {
      userId: { type: DataTypes.UUID, primaryKey: true },
      fullName: { type: DataTypes.TEXT },
      dateOfBirth: { type: DataTypes.DATEONLY },
      address: { type: DataTypes.TEXT },
      avatarUrl: { type: DataTypes.TEXT },
      isProfileComplete: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
      createdAt: { type: DataTypes.DATE },
      updatedAt: { type: DataTypes.DATE },
    },
    { sequelize, modelName: "UserProfile", tableName: "user_profiles" },
  );
  return BoundUserProfile;
}

import { col, DataTypes, fn, Model, where, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize, type WhereOptions } from "sequelize";

/** A row of `users`. Unique: lower(username), lower(email), phone_number. */
export class User extends Model<InferAttributes<User>, InferCreationAttributes<User>> {
  declare id: CreationOptional<string>;
  /** Null once the account is erased (erasedAt). */
  declare username: string | null;
  /** Stored lower-cased. */
  declare email: CreationOptional<string | null>;
  /** E.164. */
  declare phoneNumber: CreationOptional<string | null>;
  declare isActive: CreationOptional<boolean>;
  declare isStaff: CreationOptional<boolean>;
  /** The row's creation time (Sequelize's createdAt). */
  declare dateJoined: CreationOptional<Date>;
  declare lastLogin: CreationOptional<Date | null>;
  declare lastActivityAt: CreationOptional<Date | null>;
  declare deactivatedAt: CreationOptional<Date | null>;
  /** Set when the user asked for the account's deletion (DeleteAccount); cleared by a restore. */
  declare deletionRequestedAt: CreationOptional<Date | null>;
  /** When purge-deleted-accounts erases the account; cleared by a restore. */
  declare deletionScheduledFor: CreationOptional<Date | null>;
  /** When the person was erased (identifiers, profile, KYC, devices, sessions). */
  declare erasedAt: CreationOptional<Date | null>;
  declare updatedAt: CreationOptional<Date>;
}

/**
 * Case-insensitive match on username or email, written so that PostgreSQL uses the unique
 * lower() index (a plain `{ email }` condition cannot).
 */
export function whereLower(attribute: "username" | "email", value: string): WhereOptions<User> {
  return where(fn("lower", col(attribute)), value.toLowerCase());
}

export function defineUser(sequelize: Sequelize): typeof User {
  class BoundUser extends User {}
  BoundUser.init(
    {
      id: { type: DataTypes.UUID, primaryKey: true, defaultValue: DataTypes.UUIDV4 },
      username: { type: DataTypes.TEXT },
      email: { type: DataTypes.TEXT },
      phoneNumber: { type: DataTypes.TEXT },
      isActive: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
      isStaff: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
      dateJoined: { type: DataTypes.DATE },
      lastLogin: { type: DataTypes.DATE },
      lastActivityAt: { type: DataTypes.DATE },
      deactivatedAt: { type: DataTypes.DATE },
      deletionRequestedAt: { type: DataTypes.DATE },
      deletionScheduledFor: { type: DataTypes.DATE },
      erasedAt: { type: DataTypes.DATE },
      updatedAt: { type: DataTypes.DATE },
    },
    { sequelize, modelName: "User", tableName: "users", createdAt: "dateJoined" },
  );
  return BoundUser;
}

import { DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize } from "sequelize";

/**
 * A row of `outbox`: "this user changed", written in the transaction of the change
 * (src/domain/outbox.ts) and consumed by sync-user-data-with-external-services.
 */
export class OutboxEvent extends Model<InferAttributes<OutboxEvent>, InferCreationAttributes<OutboxEvent>> {
  /** bigserial, as a decimal string. */
  declare id: CreationOptional<string>;
  declare userId: string;
  /** What changed, e.g. "user.registered", "profile.updated" (sent to receivers as a hint). */
  declare reason: string;
  declare createdAt: CreationOptional<Date>;
}

export function defineOutboxEvent(sequelize: Sequelize): typeof OutboxEvent {
  class BoundOutboxEvent extends OutboxEvent {}
  BoundOutboxEvent.init(
    {
      id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
      userId: { type: DataTypes.UUID, allowNull: false },
      reason: { type: DataTypes.TEXT, allowNull: false },
      createdAt: { type: DataTypes.DATE },
    },
    { sequelize, modelName: "OutboxEvent", tableName: "outbox", updatedAt: false },
  );
  return BoundOutboxEvent;
}

import { DataTypes, Model, type CreationOptional, type InferAttributes, type InferCreationAttributes, type Sequelize } from "sequelize";

/** A row of `analytics_reports`: one user's usage in [periodStart, periodEnd). Unique per user and period. */
export class AnalyticsReport extends Model<InferAttributes<AnalyticsReport>, InferCreationAttributes<AnalyticsReport>> {
  declare id: CreationOptional<string>;
  declare userId: string;
  declare periodStart: Date;
  declare periodEnd: Date;
  /** See ReportStats in src/jobs/generate-user-analytics-report.ts. */
  declare stats: Record<string, unknown>;
  declare generatedAt: CreationOptional<Date>;
}

export function defineAnalyticsReport(sequelize: Sequelize): typeof AnalyticsReport {
  class BoundAnalyticsReport extends AnalyticsReport {}
  BoundAnalyticsReport.init(
    {
      id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
      userId: { type: DataTypes.UUID, allowNull: false },
      periodStart: { type: DataTypes.DATE, allowNull: false },
      periodEnd: { type: DataTypes.DATE, allowNull: false },
      stats: { type: DataTypes.JSONB, allowNull: false },
      generatedAt: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
    },
    { sequelize, modelName: "AnalyticsReport", tableName: "analytics_reports", timestamps: false },
  );
  return BoundAnalyticsReport;
}

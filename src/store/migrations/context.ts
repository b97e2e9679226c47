// What every migration receives, and the helper they share.
import type { Sequelize } from "sequelize";

export interface MigrationContext {
  sequelize: Sequelize;
}

/** Runs the statements in order in one transaction: a failing migration leaves nothing behind. */
export async function runStatements(sequelize: Sequelize, statements: readonly string[]): Promise<void> {
  await sequelize.transaction(async (transaction) => {
    for (const sql of statements) await sequelize.query(sql, { transaction });
  });
}

// PointsService: maps messages to the points domain and back, nothing else.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  AdjustPointsResponseSchema,
  GetWalletResponseSchema,
  ListPointsTransactionsResponseSchema,
  PointsService,
  PointsTransactionSchema,
  type PointsTransaction,
} from "../../gen/identity/v1/points_pb.js";
import type { LedgerEntry, PointsDomain } from "../domain/points.js";
import { authedCallerOf } from "../server/calls/context.js";
import { optionalTimestamp } from "./convert.js";

export interface PointsRpcDeps {
  points: PointsDomain;
}

export function transactionMessage(e: LedgerEntry): PointsTransaction {
  return create(PointsTransactionSchema, {
    id: e.id,
    userId: e.userId,
    delta: e.delta,
    balanceAfter: e.balanceAfter,
    reason: e.reason,
    createdAt: timestampFromDate(e.createdAt),
  });
}

export function createPointsServiceImpl({ points }: PointsRpcDeps): ServiceImpl<typeof PointsService> {
  return {
    async getWallet(_req, ctx) {
      const w = await points.getWallet(authedCallerOf(ctx));
      return create(GetWalletResponseSchema, { balance: w.balance, points: w.points, totalPoints: w.totalPoints, lastUpdated: optionalTimestamp(w.lastUpdated) });
    },
    async listPointsTransactions(req, ctx) {
      const page = await points.listTransactions(authedCallerOf(ctx), { pageSize: req.pageSize, pageToken: req.pageToken });
      return create(ListPointsTransactionsResponseSchema, { transactions: page.transactions.map(transactionMessage), nextPageToken: page.nextPageToken });
    },
    async adjustPoints(req, ctx) {
      const a = await points.adjust(authedCallerOf(ctx), { userId: req.userId, delta: req.delta, reason: req.reason, idempotencyKey: req.idempotencyKey });
      return create(AdjustPointsResponseSchema, { transaction: transactionMessage(a.transaction), balance: a.balance, points: a.points, totalPoints: a.totalPoints });
    },
  };
}

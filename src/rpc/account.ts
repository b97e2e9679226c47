// AccountService: maps messages to the account-lifecycle domain (deletion, export, activity)
// and back, nothing else.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { AccountService, DeleteAccountResponseSchema } from "../../gen/identity/v1/account_pb.js";
import type { AccountDeletion } from "../domain/account-deletion.js";
import { authedCallerOf } from "../server/context.js";

export interface AccountRpcDeps {
  deletion: AccountDeletion;
}

export function createAccountServiceImpl({ deletion }: AccountRpcDeps): Partial<ServiceImpl<typeof AccountService>> {
  return {
    async deleteAccount(req, ctx) {
      const r = await deletion.request(authedCallerOf(ctx), req.verificationToken);
      return create(DeleteAccountResponseSchema, { deletionScheduledFor: timestampFromDate(r.scheduledFor), erased: r.erased });
    },
  };
}

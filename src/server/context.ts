// Values the interceptors put in every call's context for handlers to read.
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { Caller, Principal, RequestMeta } from "../domain/caller.js";
import { unauthenticated } from "../domain/errors.js";
import type { UserView } from "../domain/users.js";

export const requestMetaKey = createContextKey<RequestMeta>({ ip: "", userAgent: "", requestId: "" }, { description: "request meta" });
export const principalKey = createContextKey<Principal | undefined>(undefined, { description: "authenticated principal" });
export const accountKey = createContextKey<UserView | undefined>(undefined, { description: "the signed-in user's account, as the session check read it" });

/** The caller of this call, as the domain sees it. */
export function callerOf(ctx: HandlerContext): Caller {
  return { principal: ctx.values.get(principalKey), account: ctx.values.get(accountKey), meta: ctx.values.get(requestMetaKey) };
}

/** The caller of a method whose policy requires a principal (the interceptor has checked it). */
export function authedCallerOf(ctx: HandlerContext): Caller & { principal: Principal } {
  const caller = callerOf(ctx);
  if (!caller.principal) throw unauthenticated();
  return caller as Caller & { principal: Principal };
}

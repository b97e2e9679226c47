// Values the interceptors put in every call's context for handlers to read.
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { Caller, Principal, RequestMeta } from "../domain/caller.js";
import { unauthenticated } from "../domain/errors.js";

export const requestMetaKey = createContextKey<RequestMeta>({ ip: "", userAgent: "", requestId: "" }, { description: "request meta" });
export const principalKey = createContextKey<Principal | undefined>(undefined, { description: "authenticated principal" });

/** The caller of this call, as the domain sees it. */
export function callerOf(ctx: HandlerContext): Caller {
  return { principal: ctx.values.get(principalKey), meta: ctx.values.get(requestMetaKey) };
}

/** The caller of a method whose policy requires a principal (the interceptor has checked it). */
export function authedCallerOf(ctx: HandlerContext): Caller & { principal: Principal } {
  const caller = callerOf(ctx);
  if (!caller.principal) throw unauthenticated();
  return caller as Caller & { principal: Principal };
}

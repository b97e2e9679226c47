// Values the interceptors put in every call's context for handlers to read.
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { Caller, Principal, RequestMeta } from "../../domain/caller.js";
import { unauthenticated } from "../../domain/errors.js";
import type { UserView } from "../../domain/users.js";

export const requestMetaKey = createContextKey<RequestMeta>({ ip: "", userAgent: "", requestId: "" }, { description: "request meta" });
export const principalKey = createContextKey<Principal | undefined>(undefined, { description: "authenticated principal" });
export const accountKey = createContextKey<UserView | undefined>(undefined, { description: "the signed-in user's account, as the session check read it" });

/**
 * The caller of a call. Its signal is the call's, read from the context only when the domain
 * asks (a prototype getter, no closure per call): the unary gRPC path makes a call's
 * AbortController on first read, and most calls never need one.
 */
class CallerOfCall implements Caller {
  readonly principal: Principal | undefined;
  readonly account: UserView | undefined;
  readonly meta: RequestMeta;

  constructor(private readonly ctx: HandlerContext) {
    this.principal = ctx.values.get(principalKey);
    this.account = ctx.values.get(accountKey);
    this.meta = ctx.values.get(requestMetaKey);
  }

  get signal(): AbortSignal {
    return this.ctx.signal;
  }
}

/** The caller of this call, as the domain sees it. */
export function callerOf(ctx: HandlerContext): Caller {
  return new CallerOfCall(ctx);
}

/** The caller of a method whose policy requires a principal (the interceptor has checked it). */
export function authedCallerOf(ctx: HandlerContext): Caller & { principal: Principal } {
  const caller = callerOf(ctx);
  if (!caller.principal) throw unauthenticated();
  return caller as Caller & { principal: Principal };
}

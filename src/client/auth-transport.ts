// The SDK's session handling, as a Transport that wraps the caller's transport: connect-es
// adds interceptors only when a transport is built, and the SDK receives one already built.
//
// - Calls of methods whose (identity.v1.auth) policy is not NONE carry
//   `authorization: Bearer <access token>` from the token store. A call whose caller set
//   `authorization` itself (a service token, say) is left exactly as it is.
// - Register, Login and RefreshToken responses replace the stored pair; Logout clears it.
// - A call refused with `unauthenticated` is renewed once: one shared refresh for all the
//   calls that fail together, then one retry with the rotated token. When the refresh
//   itself is refused the session is over: the store is cleared and onSessionEnded runs.
//   Nothing else is ever retried.
import { getOption, isMessage, type DescMethod, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { LoginResponseSchema, RefreshTokenResponseSchema, RegisterResponseSchema, UserAuthService } from "../../gen/identity/v1/auth_pb.js";
import { auth, AuthPolicy } from "../../gen/identity/v1/options_pb.js";
import type { TokenPair, TokenStore } from "./tokens.js";

export interface AuthOptions {
  tokens: TokenStore;
  /** Runs once when the server refuses to renew the session (it was revoked, expired or reused). */
  onSessionEnded?: () => void;
}

/** The pair a response hands out, for the methods that open or rotate a session. */
function issuedPair(message: Message): TokenPair | undefined {
  if (isMessage(message, RegisterResponseSchema) || isMessage(message, LoginResponseSchema) || isMessage(message, RefreshTokenResponseSchema)) {
    return { accessToken: message.accessToken, refreshToken: message.refreshToken };
  }
  return undefined;
}

function withBearer(header: HeadersInit | undefined, pair: TokenPair | undefined): Headers {
  const headers = new Headers(header);
  if (pair) headers.set("authorization", `Bearer ${pair.accessToken}`);
  return headers;
}

const logout: DescMethod = UserAuthService.method.logout;

// Every protected call waits for a refresh in flight, so a hung refresh must not hold them
// forever: past this, it fails (deadline_exceeded) and the session is kept for a later try.
const REFRESH_TIMEOUT_MS = 10_000;

const isUnauthenticated = (e: unknown): boolean => ConnectError.from(e).code === Code.Unauthenticated;

export function withAuth(inner: Transport, { tokens, onSessionEnded }: AuthOptions): Transport {
  // getOption decodes the method's options on each call: remember the answer per method.
  const protectedMethods = new WeakMap<DescMethod, boolean>();
  const needsToken = (method: DescMethod): boolean => {
    let needs = protectedMethods.get(method);
    if (needs === undefined) {
      needs = getOption(method, auth) !== AuthPolicy.NONE;
      protectedMethods.set(method, needs);
    }
    return needs;
  };

  let refreshing: Promise<TokenPair | undefined> | undefined;

  // The stored pair, after any refresh in flight settles: no call leaves with a token that
  // is already being replaced.
  async function current(): Promise<TokenPair | undefined> {
    await refreshing?.catch(() => undefined);
    return tokens.get();
  }

  // Single flight: every call refused while a refresh runs awaits that same refresh. Each
  // refresh rotates the refresh token, and presenting a rotated one after the server's grace
  // window revokes the whole session, so two refreshes must never race.
  function refresh(stale: TokenPair): Promise<TokenPair | undefined> {
    refreshing ??= runRefresh(stale).finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  }

  async function runRefresh(stale: TokenPair): Promise<TokenPair | undefined> {
    let fresh: TokenPair;
    try {
      const res = await inner.unary(UserAuthService.method.refreshToken, undefined, REFRESH_TIMEOUT_MS, undefined, { refreshToken: stale.refreshToken });
      fresh = { accessToken: res.message.accessToken, refreshToken: res.message.refreshToken };
    } catch (e) {
      // Anything but a refusal (network down, server unavailable) keeps the session for later.
      if (!isUnauthenticated(e)) throw e;
      if ((await tokens.get())?.refreshToken === stale.refreshToken) {
        await tokens.clear();
        onSessionEnded?.();
      }
      return undefined;
    }
    // A Login or Logout that completed meanwhile decided the session: keep its outcome.
    if ((await tokens.get())?.refreshToken !== stale.refreshToken) return tokens.get();
    await tokens.set(fresh);
    return fresh;
  }

  // The pair to retry with after `sent` was refused; undefined when there is none.
  async function renewed(sent: TokenPair | undefined): Promise<TokenPair | undefined> {
    const now = await current();
    if (!now) return undefined;
    // Another call's refresh already rotated the pair this call was sent with.
    if (now.accessToken !== sent?.accessToken) return now;
    return refresh(now);
  }

  return {
    async unary(method, signal, timeoutMs, header, input, contextValues) {
      if (!needsToken(method)) {
        const res = await inner.unary(method, signal, timeoutMs, header, input, contextValues);
        const pair = issuedPair(res.message);
        if (pair) await tokens.set(pair);
        return res;
      }
      if (new Headers(header).has("authorization")) return inner.unary(method, signal, timeoutMs, header, input, contextValues);

      const send = (pair: TokenPair | undefined) => inner.unary(method, signal, timeoutMs, withBearer(header, pair), input, contextValues);
      const isLogout = method === logout;
      try {
        const sent = await current();
        try {
          return await send(sent);
        } catch (e) {
          if (!isUnauthenticated(e)) throw e;
          const next = await renewed(sent);
          if (!next) throw e;
          // The server refuses unauthenticated calls before any handler runs (OPTIONAL_USER
          // methods: before the handler counts or changes anything), so sending the call
          // again cannot apply it twice, whatever the method does.
          return await send(next);
        }
      } finally {
        // The app asked to sign out: forget the tokens even when the server could not be told.
        if (isLogout) await tokens.clear();
      }
    },

    // No identity.v1 method streams today. A stream's input cannot be replayed, so a stream
    // gets the token but is never retried.
    async stream(method, signal, timeoutMs, header, input, contextValues) {
      const authorized = needsToken(method) && !new Headers(header).has("authorization");
      return inner.stream(method, signal, timeoutMs, authorized ? withBearer(header, await current()) : header, input, contextValues);
    },
  };
}

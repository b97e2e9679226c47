// Where the SDK keeps the session's tokens. Apps persist them by passing their own store
// (browser storage, the platform keychain…); the default lives in memory and dies with the
// process or tab.

/** The two tokens of a session, as Register, Login and RefreshToken return them. */
export interface TokenPair {
  accessToken: string;
  refreshToken: string;
}

/**
 * Storage of the current session's tokens. Methods may be synchronous or return promises
 * (async storage APIs); the SDK awaits them either way.
 */
export interface TokenStore {
  get(): TokenPair | undefined | Promise<TokenPair | undefined>;
  set(pair: TokenPair): void | Promise<void>;
  clear(): void | Promise<void>;
}

/** A store that keeps the pair in memory, optionally starting from a saved one. */
export function createMemoryTokenStore(initial?: TokenPair): TokenStore {
  let pair = initial;
  return {
    get: () => pair,
    set: (next) => {
      pair = next;
    },
    clear: () => {
      pair = undefined;
    },
  };
}

// Rate limits shared by every instance: the counters live in Redis and are changed by Lua
// scripts, so each check-and-count is one atomic step whatever the number of instances.
//
// Windows are fixed and start at the first hit of a key (INCR, then EXPIRE when the key
// is new). Simple and O(1) in memory; the price is that a caller can spend up to twice the
// limit across the boundary of two windows, which is acceptable for hourly abuse limits.
import type { RedisClient } from "../store/redis.js";
import { isIP } from "node:net";
import { defineScript } from "../store/redis.js";

/**
 * Lua: `window_incr(key, seconds)` counts a hit and returns the count and the seconds
 * left in the window. Other scripts that must count inside their own atomic step (the OTP
 * scripts) include this text, so there is one definition of a window.
 */
export const LUA_WINDOW_INCR = `
local function window_incr(key, seconds)
  local n = redis.call('INCR', key)
  local ttl = redis.call('TTL', key)
  -- ttl < 0 also repairs a counter that lost its expiry (it would otherwise block forever)
  if n == 1 or ttl < 0 then
    redis.call('EXPIRE', key, seconds)
    ttl = tonumber(seconds)
  end
  return n, ttl
end
`;

export interface LimitResult {
  allowed: boolean;
  /** Hits in the current window, this one included. */
  count: number;
  /** Seconds until the window ends (and the count starts again). */
  retryAfterSeconds: number;
}

export interface RateLimiter {
  /** Counts one hit on `key` and says whether it is within `limit` per `windowSeconds`. */
  hit(key: string, limit: number, windowSeconds: number): Promise<LimitResult>;
}

export function createRateLimiter(redis: RedisClient): RateLimiter {
  const incr = defineScript<[number, number]>(
    redis,
    "rateLimitHit",
    `${LUA_WINDOW_INCR}
local n, ttl = window_incr(KEYS[1], ARGV[1])
return {n, ttl}`,
    1,
  );
  return {
    async hit(key, limit, windowSeconds) {
      const [count, ttl] = await incr([key], [windowSeconds]);
      return { allowed: count <= limit, count, retryAfterSeconds: Math.max(1, ttl) };
    },
  };
}

/**
 * The bucket a client address is counted in: an IPv4 address as such, an IPv6 address by
 * its /64 (one subscriber usually holds a whole /64, so per-address counting would be
 * trivial to evade), an IPv4-mapped IPv6 address as its IPv4 address. Anything that is not
 * an address falls in one shared "unknown" bucket: the server always sets the peer address,
 * so this is a misconfiguration, and it should throttle rather than exempt.
 */
export function ipBucket(ip: string): string {
  const family = isIP(ip);
  if (family === 4) return ip;
  if (family !== 6) return "unknown";
  const h = ipv6Hextets(ip);
  if (h.slice(0, 5).every((x) => x === 0) && h[5] === 0xffff) {
    return [h[6]! >> 8, h[6]! & 0xff, h[7]! >> 8, h[7]! & 0xff].join(".");
  }
  return `${h.slice(0, 4).map((x) => x.toString(16)).join(":")}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address ("::" expanded, a dotted IPv4 tail converted). */
function ipv6Hextets(ip: string): number[] {
  let addr = ip.split("%")[0]!; // zone index ("fe80::1%eth0") is not part of the address
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(addr);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    addr = `${addr.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = addr.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const fill = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill("0");
  return [...left, ...fill, ...right].map((x) => parseInt(x, 16));
}

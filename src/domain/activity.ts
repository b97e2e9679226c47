// Last activity (users.last_activity_at), fed by every authenticated call.
//
// The auth path calls touch(userId) without awaiting it. Only the first touch of a user in
// a window (5 minutes) does anything: `SET activity:seen:{id} NX EX 300` succeeds once per
// window, and each instance remembers the users it touched for a window, so their further
// calls cost nothing (not even the SET; a user's activity may then be noted up to one
// window late). That touch adds the user to one Redis sorted set, scored with the time of the
// call; update-user-last-activity (every minute) drains the set in batches, one
// `UPDATE … FROM unnest(…)` per batch, with GREATEST() so a late batch never moves
// last_activity_at backwards.
//
// Why not one Agenda job per user and window: each would be a job row inserted, locked,
// run and updated in the job store (four writes and a poll per active user every five
// minutes) to write one timestamp. The sorted set costs two Redis commands per user and
// window, and one SQL statement per `batch` users.
import type { RedisClient } from "../store/redis.js";
import type { Logger } from "../logger.js";
import { defineScript } from "../store/redis.js";
import { ExpiringMap } from "./expiring-map.js";

/** Sorted set of users with unrecorded activity: member = user id, score = time in ms. */
export const ACTIVITY_QUEUE_KEY = "activity:pending";
export const ACTIVITY_WINDOW_SECONDS = 300;
/** Users remembered as touched, per instance; about 150 bytes each. */
const TOUCHED_USERS_KEPT = 50_000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface ActivityTracker {
  /**
   * Notes that the user was active now. Never rejects (a failure is logged at debug and
   * the activity is lost: the next window records it). Subjects that are not user ids
   * (service tokens) are ignored.
   */
  touch(userId: string): Promise<void>;
}

export function createActivityTracker({ redis, logger, windowSeconds = ACTIVITY_WINDOW_SECONDS }: { redis: RedisClient; logger: Logger; windowSeconds?: number }): ActivityTracker {
  const log = logger.child({ component: "activity" });
  const touched = new ExpiringMap<string, true>(TOUCHED_USERS_KEPT);
  return {
    async touch(userId) {
      if (!UUID.test(userId) || touched.get(userId)) return;
      touched.set(userId, true, Date.now() + windowSeconds * 1000);
      try {
        // Two commands, not one script: the per-user key and the shared set live in
        // different Redis Cluster slots. If the second fails, this window's activity is lost.
        if ((await redis.set(`activity:seen:{${userId}}`, "1", "EX", windowSeconds, "NX")) !== "OK") return;
        await redis.zadd(ACTIVITY_QUEUE_KEY, Date.now(), userId);
      } catch (err) {
        log.debug({ err }, "could not record activity");
      }
    },
  };
}

export interface ActivityEntry {
  userId: string;
  at: Date;
}

// Removes the members it is given only if their score has not changed since they were read:
// a newer touch that arrived meanwhile stays queued for the next batch.
const REMOVE_IF_UNCHANGED = `
local removed = 0
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed`;

export interface ActivityQueue {
  /** The oldest `count` entries, left in the queue. */
  peek(count: number): Promise<ActivityEntry[]>;
  /** Removes entries once recorded (those touched again since stay). */
  remove(entries: readonly ActivityEntry[]): Promise<void>;
}

/** The queue side, for update-user-last-activity. Entries leave it only after they are written (at least once). */
export function openActivityQueue(redis: RedisClient): ActivityQueue {
  const removeIfUnchanged = defineScript<number>(redis, "activityRemoveIfUnchanged", REMOVE_IF_UNCHANGED, 1);
  return {
    async peek(count) {
      const flat = await redis.zrange(ACTIVITY_QUEUE_KEY, "0", String(count - 1), "WITHSCORES");
      const entries: ActivityEntry[] = [];
      for (let i = 0; i < flat.length; i += 2) entries.push({ userId: flat[i]!, at: new Date(Number(flat[i + 1])) });
      return entries;
    },
    async remove(entries) {
      if (entries.length) await removeIfUnchanged([ACTIVITY_QUEUE_KEY], entries.flatMap((e) => [e.userId, e.at.getTime()]));
    },
  };
}

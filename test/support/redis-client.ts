// Checks on the service's own Redis client that hold in every deployment (standalone, Sentinel,
// Cluster): commands issued in one tick wait for one auto-pipelined write.
import type { RedisClient } from "../../src/store/redis.js";

/** How many of three GETs issued together were queued for an auto-pipeline (3 when it is on). */
export async function autoPipelined(client: RedisClient): Promise<number> {
  // One hash tag: in a cluster the three go to the same node.
  const replies = ["a", "b", "c"].map((k) => client.get(`probe:{pipelining}:${k}`));
  const queued = client.autoPipelineQueueSize;
  await Promise.all(replies);
  return queued;
}

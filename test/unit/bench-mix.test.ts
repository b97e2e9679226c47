// The soak's mix (bench/load/scenarios.ts, Scenario "mix"): its cycle of reads and writes, and
// refreshes in place of the cycle once a session's access token is ten minutes old.
import { expect } from "chai";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RpcClient } from "../../bench/load/rpc-client.js";
import { startScenario } from "../../bench/load/scenarios.js";

describe("bench soak mix", () => {
  let dir: string;
  const realNow = Date.now;
  before(async () => (dir = await mkdtemp(join(tmpdir(), "bench-mix-"))));
  after(async () => {
    Date.now = realNow;
    await rm(dir, { recursive: true, force: true });
  });

  it("runs five GetMe, two refreshes, two profile updates and a sign-in per ten; refreshes only once tokens are ten minutes old", async () => {
    const calls: string[] = [];
    const client = {
      send: async () => Buffer.alloc(0),
      unary: async (method: { name: string }) => {
        calls.push(method.name);
        return { accessToken: "access", refreshToken: "refresh", verificationToken: "verification", userId: "user" };
      },
      close: () => undefined,
    } as unknown as RpcClient;
    const sessionsFile = join(dir, "sessions.json");
    await writeFile(sessionsFile, JSON.stringify(Array.from({ length: 20 }, (_, i) => ({ userId: `u${i}`, accessToken: `a${i}`, refreshToken: `r${i}` }))));
    const mix = await startScenario({ kind: "mix", sessionsFile, users: { next: 1, population: 100 } }, client);
    const count = (names: string[]) => names.reduce<Record<string, number>>((c, n) => ({ ...c, [n]: (c[n] ?? 0) + 1 }), {});

    for (let i = 0; i < 10; i++) await mix.operation(0);
    expect(count(calls)).to.deep.equal({ GetMe: 5, RefreshToken: 2, UpdateProfile: 2, RequestOtp: 1, VerifyOtp: 1, Login: 1 });

    calls.length = 0;
    const later = realNow() + 11 * 60_000;
    Date.now = () => later;
    // Every session's token is now over ten minutes old: each is refreshed before the cycle resumes.
    for (let i = 0; i < 20; i++) await mix.operation(0);
    expect(count(calls)).to.deep.equal({ RefreshToken: 20 });
    calls.length = 0;
    for (let i = 0; i < 10; i++) await mix.operation(0);
    expect(calls).to.include("GetMe");
  });
});

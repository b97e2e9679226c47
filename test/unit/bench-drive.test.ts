// The bench's paced load (bench/load/drive.ts with a rate, as the soak runs it): never above
// the rate, and no burst to make up for a stall. Upper bounds only: a slow machine can only
// lower the counts.
import { expect } from "chai";
import { drive } from "../../bench/load/drive.js";

describe("bench drive() with a rate", function () {
  this.timeout(20_000);

  it("starts no more operations than the rate allows", async () => {
    const r = await drive(async () => undefined, { inFlight: 8, seconds: 1, rate: 100 });
    expect(r.ops).to.be.greaterThan(0).and.at.most(100);
  });

  it("drops the starts missed while the server stalled instead of bursting to catch up", async () => {
    const stallUntil = Date.now() + 1500;
    const r = await drive(async () => {
      const left = stallUntil - Date.now();
      if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
    }, { inFlight: 8, seconds: 3, rate: 100 });
    // Caught up, it would be ~300; without catching up, the 8 stalled ones, at most a second's
    // worth of late starts, and the 1.5 s after the stall at the rate.
    expect(r.ops).to.be.greaterThan(0).and.at.most(8 + 100 + 150 + 1);
  });
});

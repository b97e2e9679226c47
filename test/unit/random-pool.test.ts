// Pooled random bytes: the sizes asked for, never the same bytes twice, across refills of the pool.
import { expect } from "chai";
import { pooledRandomBytes } from "../../src/domain/random-pool.js";

describe("pooledRandomBytes", () => {
  it("hands out fresh bytes of the size asked for, across several refills of the pool", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const size = [12, 16, 32][i % 3]!;
      const bytes = pooledRandomBytes(size);
      expect(bytes.length).to.equal(size);
      seen.add(bytes.toString("hex"));
    }
    expect(seen.size).to.equal(2000);
  });

  it("gives each caller its own copy", () => {
    const a = pooledRandomBytes(32);
    const copy = Buffer.from(a);
    pooledRandomBytes(32);
    expect(a.equals(copy)).to.equal(true);
    a.fill(0);
    expect(pooledRandomBytes(32).equals(Buffer.alloc(32))).to.equal(false);
  });

  it("serves large requests straight from the CSPRNG", () => {
    expect(pooledRandomBytes(1024).length).to.equal(1024);
  });
});

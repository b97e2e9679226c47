// Exact cash values of points: scaled BigInt arithmetic, two places, half away from zero.
import { expect } from "chai";
import { cashValue, parseDecimal } from "../../src/domain/money.js";

describe("money", () => {
  describe("parseDecimal", () => {
    it("reads plain decimals exactly", () => {
      expect(parseDecimal("0.01")).to.deep.equal({ units: 1n, scale: 2 });
      expect(parseDecimal("0.015")).to.deep.equal({ units: 15n, scale: 3 });
      expect(parseDecimal("12")).to.deep.equal({ units: 12n, scale: 0 });
      expect(parseDecimal("-1.50")).to.deep.equal({ units: -150n, scale: 2 });
    });

    for (const bad of ["", ".5", "1.", "1e3", "0x10", " 1", "1,5", "--1", "NaN"]) {
      it(`refuses ${JSON.stringify(bad)}`, () => expect(() => parseDecimal(bad)).to.throw(RangeError));
    }
  });

  describe("cashValue", () => {
    const table: Array<[points: bigint, pointsValue: string, balance: string]> = [
      [0n, "0.01", "0.00"],
      [1n, "0.01", "0.01"],
      [99n, "0.01", "0.99"],
      [100n, "0.01", "1.00"],
      [123456n, "0.01", "1234.56"],
      // Beyond 2^53 (9007199254740992): a float would already be off.
      [9007199254740993n, "0.01", "90071992547409.93"],
      [2n ** 63n - 1n, "0.01", "92233720368547758.07"],
      [2n ** 63n - 1n, "1", "9223372036854775807.00"],
      [2n ** 63n - 1n, "0.015", "138350580552821637.11"], // …637.105 rounds up
      // Odd values: rounded half away from zero.
      [1n, "0.015", "0.02"], // 0.015
      [3n, "0.015", "0.05"], // 0.045
      [2n, "0.015", "0.03"], // 0.030
      [1n, "0.004", "0.00"],
      [1n, "0.005", "0.01"],
      [1n, "0.0049999", "0.00"],
      [7n, "0.333333", "2.33"], // 2.333331
      [3n, "0.335", "1.01"], // 1.005
      [5n, "2", "10.00"],
      [5n, "2.5", "12.50"],
      [10n, "0", "0.00"],
      [-1n, "0.015", "-0.02"],
      [-1n, "0.004", "0.00"], // no "-0.00"
      [-123n, "0.01", "-1.23"],
    ];
    for (const [points, value, balance] of table) {
      it(`${points} × ${value} = ${balance}`, () => expect(cashValue(points, parseDecimal(value))).to.equal(balance));
    }
  });
});

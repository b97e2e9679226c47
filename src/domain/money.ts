// Exact decimal arithmetic for the wallet's cash value (DESIGN §2): points × POINTS_VALUE on
// scaled BigInt integers, never floating point, so a balance is exact however large.
//
// Rounding: to two places, half away from zero (the "half-up" of cash displays: 0.005 →
// "0.01", and symmetrically for negatives). With the default POINTS_VALUE of 0.01, or any
// value of at most two places, every balance is exact and nothing is rounded.

/** Places of a cash amount. */
const CASH_PLACES = 2;

/** A decimal number: units × 10^-scale (e.g. 0.015 is { units: 15n, scale: 3 }). */
export interface Decimal {
  readonly units: bigint;
  readonly scale: number;
}

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;

/** Parses a plain decimal such as "0.01" or "-12.5" (no exponent, no grouping). */
export function parseDecimal(text: string): Decimal {
  const match = DECIMAL.exec(text);
  if (!match) throw new RangeError(`not a decimal number: "${text}"`);
  const [, sign, whole, fraction = ""] = match;
  const units = BigInt(`${whole}${fraction}`);
  return { units: sign ? -units : units, scale: fraction.length };
}

const abs = (n: bigint): bigint => (n < 0n ? -n : n);

/** `value` rounded half away from zero to `places` places, as text ("1234.50", "-0.01"). */
function toFixed({ units, scale }: Decimal, places: number): string {
  let scaled: bigint; // the result × 10^places
  if (scale <= places) {
    scaled = units * 10n ** BigInt(places - scale);
  } else {
    const divisor = 10n ** BigInt(scale - places);
    const magnitude = abs(units);
    const rounded = magnitude / divisor + (2n * (magnitude % divisor) >= divisor ? 1n : 0n);
    scaled = units < 0n ? -rounded : rounded;
  }
  const digits = abs(scaled).toString().padStart(places + 1, "0");
  const whole = digits.slice(0, digits.length - places);
  const fraction = places > 0 ? `.${digits.slice(digits.length - places)}` : "";
  return `${scaled < 0n ? "-" : ""}${whole}${fraction}`;
}

/** The cash value of `points` at `pointsValue` per point, with two places. */
export function cashValue(points: bigint, pointsValue: Decimal): string {
  return toFixed({ units: points * pointsValue.units, scale: pointsValue.scale }, CASH_PLACES);
}

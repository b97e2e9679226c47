// Copies the third-party .proto files the API imports or serves from npm packages into
// .proto-deps/ (ignored by git), so buf works offline with no BSR dependency.
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);
const root = join(dirname(new URL(import.meta.url).pathname), "..");
const out = join(root, ".proto-deps");
const pkgDir = (name) => dirname(require.resolve(`${name}/package.json`));

const files = [
  ["google-proto-files", "google/api/annotations.proto", "google/api/annotations.proto"],
  ["google-proto-files", "google/api/http.proto", "google/api/http.proto"],
  ["google-proto-files", "google/rpc/error_details.proto", "google/rpc/error_details.proto"],
  ["grpc-health-check", "proto/health/v1/health.proto", "grpc/health/v1/health.proto"],
  ["@grpc/reflection", "build/proto/grpc/reflection/v1/reflection.proto", "grpc/reflection/v1/reflection.proto"],
  ["@grpc/reflection", "build/proto/grpc/reflection/v1alpha/reflection.proto", "grpc/reflection/v1alpha/reflection.proto"],
];

rmSync(out, { recursive: true, force: true });
for (const [pkg, from, to] of files) {
  mkdirSync(dirname(join(out, to)), { recursive: true });
  cpSync(join(pkgDir(pkg), from), join(out, to));
}

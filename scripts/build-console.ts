// Builds the staff console (console/) into dist/console/: its TypeScript bundled by esbuild
// (the SDK, the gen/ stubs and @connectrpc/connect-web included: nothing is fetched at run
// time), and its HTML and CSS copied. `npm run build` runs it (so `npm start` does), and so
// do the console's browser tests. esbuild over Vite: one call, no config, already the engine
// under tsx, and the console needs no dev server or plugins.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const CONSOLE_OUT = path.join(ROOT, "dist", "console");

export async function buildConsole(): Promise<void> {
  await rm(CONSOLE_OUT, { recursive: true, force: true });
  await mkdir(CONSOLE_OUT, { recursive: true });
  await build({
    entryPoints: [path.join(ROOT, "console/src/main.ts")],
    outfile: path.join(CONSOLE_OUT, "app.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    legalComments: "none",
    logLevel: "warning",
  });
  for (const file of ["index.html", "console.css"]) await copyFile(path.join(ROOT, "console", file), path.join(CONSOLE_OUT, file));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildConsole();
}

// GET /console/: the staff console (DESIGN §10), served from its build (dist/console, made by
// `npm run build`). The files are read once when the server starts. Every answer carries a
// strict Content-Security-Policy (scripts, styles and API calls from this origin only, no
// inline code; document images from https URLs), X-Frame-Options DENY and Referrer-Policy
// no-referrer. The console holds no secret of its own: every staff check happens in the API.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { PlainRoute } from "../http/plain.js";

export const CONSOLE_PATH = "/console/";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

export const CONSOLE_SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "cross-origin-opener-policy": "same-origin",
  "cache-control": "no-cache",
};

/** The built files of `dir` by request path ("/console/" is index.html); empty when not built. */
function loadFiles(dir: string): Map<string, { body: Buffer; type: string }> {
  const files = new Map<string, { body: Buffer; type: string }>();
  if (!existsSync(dir)) return files;
  for (const name of readdirSync(dir)) {
    const type = TYPES[path.extname(name)];
    if (!type) continue;
    const file = { body: readFileSync(path.join(dir, name)), type };
    files.set(`${CONSOLE_PATH}${name}`, file);
    if (name === "index.html") files.set(CONSOLE_PATH, file);
  }
  return files;
}

export function consoleRoute(dir: string): PlainRoute {
  const files = loadFiles(dir);
  return (req, res, url) => {
    if (url.pathname !== "/console" && !url.pathname.startsWith(CONSOLE_PATH)) return false;
    const send = (status: number, body: Buffer | string, type: string, extra: Record<string, string> = {}) => {
      const payload = typeof body === "string" ? Buffer.from(body) : body;
      res.writeHead(status, { ...CONSOLE_SECURITY_HEADERS, ...extra, "content-type": type, "content-length": String(payload.length) });
      if (req.method === "HEAD") res.end();
      else res.end(payload);
    };
    if (req.method !== "GET" && req.method !== "HEAD") {
      send(405, "Method not allowed\n", "text/plain; charset=utf-8", { allow: "GET, HEAD" });
    } else if (url.pathname === "/console") {
      send(308, "", "text/plain; charset=utf-8", { location: CONSOLE_PATH });
    } else if (!files.size) {
      send(503, "The staff console is not built: run `npm run build`.\n", "text/plain; charset=utf-8");
    } else {
      const file = files.get(url.pathname);
      if (file) send(200, file.body, file.type);
      else send(404, "Not found\n", "text/plain; charset=utf-8");
    }
    return true;
  };
}

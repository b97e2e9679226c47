// The staff console (DESIGN §10): a hash router over four pages, shown only to a signed-in
// staff user. Everything goes through the generated Connect-Web client (api.ts).
import type { User } from "../../gen/identity/v1/common_pb.js";
import { client, onSessionEnded, SESSION_EXPIRED } from "./api.js";
import { replace } from "./dom.js";
import { auditPage } from "./pages/audit.js";
import { kycPage } from "./pages/kyc.js";
import { signInPage } from "./pages/signin.js";
import { userPage } from "./pages/user.js";
import { usersPage } from "./pages/users.js";
import { status } from "./ui.js";

const app = document.getElementById("app")!;
const nav = document.getElementById("nav")!;
const who = document.getElementById("who")!;
const signOut = document.getElementById("sign-out") as HTMLButtonElement;
let me: User | undefined;

function showSignedIn(signedIn: boolean): void {
  nav.hidden = who.hidden = signOut.hidden = !signedIn;
  replace(who, signedIn && me ? `Signed in as ${me.username}` : "");
}

function signIn(notice = ""): void {
  me = undefined;
  showSignedIn(false);
  document.title = "Sign in · Staff console";
  signInPage(app, (user) => {
    me = user;
    showSignedIn(true);
    if (!location.hash || location.hash === "#/") location.hash = "#/kyc";
    else void route();
  }, notice);
}

async function route(): Promise<void> {
  if (!me) return signIn();
  const [path = "", query = ""] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query);
  for (const link of nav.querySelectorAll("a")) {
    if (path.startsWith(link.getAttribute("href")!.slice(1))) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const user = /^\/users\/([0-9a-fA-F-]{36})$/.exec(path);
  if (user) {
    document.title = "User · Staff console";
    return userPage(app, user[1]!);
  }
  if (path === "/users") {
    document.title = "Users · Staff console";
    return usersPage(app, params.get("q") ?? "");
  }
  if (path === "/audit") {
    document.title = "Audit log · Staff console";
    return auditPage(app, params);
  }
  document.title = "KYC queue · Staff console";
  return kycPage(app);
}

onSessionEnded(() => signIn(SESSION_EXPIRED));
signOut.addEventListener("click", async () => {
  await client.auth.logout({}).catch(() => undefined);
  client.tokens.clear();
  status("Signed out.", "ok");
  signIn();
});
window.addEventListener("hashchange", () => void route());
signIn();

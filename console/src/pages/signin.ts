// Sign-in with a one-time code, as the apps do: RequestOtp (LOGIN) → VerifyOtp → Login, then
// GetMe. A signed-in account that is not staff is signed out again at once (Logout ends its
// session on the server and clears the SDK's memory) and told so plainly.
import type { User } from "../../../gen/identity/v1/common_pb.js";
import { OtpPurpose } from "../../../gen/identity/v1/auth_pb.js";
import { client, NOT_STAFF } from "../api.js";
import { field, h, replace } from "../dom.js";
import { alertBox, busy, status } from "../ui.js";

export function signInPage(root: HTMLElement, onSignedIn: (me: User) => void, notice = ""): void {
  const alert = alertBox();
  if (notice) alert.text(notice);
  const identifier = h("input", { name: "identifier", type: "text", autocomplete: "username", required: true, spellcheck: "false" });
  const code = h("input", { name: "code", type: "text", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxlength: "6", required: true });
  const codeForm = h("form", { class: "card", hidden: true, "aria-label": "Enter the code" }, field("One-time code", code, "The 6-digit code we just sent."), h("button", { type: "submit" }, "Sign in"));
  const askForm = h("form", { class: "card", "aria-label": "Ask for a code" }, field("E-mail or phone number", identifier), h("button", { type: "submit" }, "Send code"));

  askForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const ok = await busy(askForm.querySelector("button"), "Sending a code", alert, async () => {
      await client.auth.requestOtp({ identifier: identifier.value.trim(), purpose: OtpPurpose.LOGIN });
    });
    if (!ok) return;
    status(`A code was sent to ${identifier.value.trim()}.`, "ok");
    codeForm.hidden = false;
    identifier.readOnly = true;
    code.focus();
  });

  codeForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    let me: User | undefined;
    await busy(codeForm.querySelector("button"), "Signing in", alert, async () => {
      const id = identifier.value.trim();
      const { verificationToken } = await client.auth.verifyOtp({ identifier: id, otp: code.value.trim(), purpose: OtpPurpose.LOGIN });
      await client.auth.login({ identifier: id, verificationToken });
      me = (await client.auth.getMe({})).user;
    });
    if (!me) return;
    if (!me.isStaff) {
      // Not staff: end the session at once; no token stays in the page.
      await client.auth.logout({}).catch(() => undefined);
      client.tokens.clear();
      status("");
      alert.text(`${NOT_STAFF} (${me.username || me.email || me.phoneNumber} is not a staff account.)`);
      codeForm.hidden = true;
      identifier.readOnly = false;
      code.value = "";
      return;
    }
    status(`Signed in as ${me.username}.`, "ok");
    onSignedIn(me);
  });

  replace(root, h("section", { class: "signin", "aria-labelledby": "signin-title" }, h("h1", { id: "signin-title" }, "Staff sign-in"), h("p", {}, "Sign in with a one-time code sent to your e-mail or phone."), alert.el, askForm, codeForm));
  identifier.focus();
}

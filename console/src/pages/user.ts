// One user (GetUser): profile, KYC, wallet with a points adjustment (AdjustPoints; one
// idempotency key per operator action, kept for a retry of the same values), devices, live
// sessions with "revoke all" (RevokeUserSessions), the account's state with deactivate /
// reactivate and a reason (SetUserActive), and recent activity (ListAuditLogs by user).
import { DeviceType } from "../../../gen/identity/v1/common_pb.js";
import { DocumentType, KycStatus } from "../../../gen/identity/v1/kyc_pb.js";
import type { GetUserResponse } from "../../../gen/identity/v1/admin_pb.js";
import { actorLink, client, when, words } from "../api.js";
import { facts, field, h, replace, table } from "../dom.js";
import { alertBox, busy, status } from "../ui.js";

function section(id: string, title: string, ...children: Array<Node | null>): HTMLElement {
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

function walletSection(u: GetUserResponse, reload: (done: string) => Promise<void>): HTMLElement {
  const alert = alertBox();
  const amount = h("input", { name: "delta", type: "number", step: "1", required: true });
  const reason = h("input", { name: "reason", type: "text", maxlength: "255", required: true });
  // One key per operator action: a retry of the same values reuses it (the service answers
  // the first result), any edit starts a new action.
  let key = crypto.randomUUID();
  const form = h("form", { class: "inline" }, field("Points to add (negative to remove)", amount), field("Reason (shown to the user)", reason), h("button", { type: "submit" }, "Adjust points"));
  form.addEventListener("input", () => (key = crypto.randomUUID()));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const ok = await busy(form.querySelector("button"), "Adjusting points", alert, async () => {
      await client.points.adjustPoints({ userId: u.user!.id, delta: BigInt(amount.value || "0"), reason: reason.value.trim(), idempotencyKey: key });
    });
    if (ok) {
      key = crypto.randomUUID();
      await reload(`Adjusted the points by ${amount.value}.`);
    }
  });
  const w = u.wallet;
  return section("wallet-title", "Wallet", facts([["Balance", w?.balance ?? "0.00"], ["Points", w?.points ?? 0n], ["Points ever earned", w?.totalPoints ?? 0n], ["Last change", when(w?.lastUpdated)]]), alert.el, form);
}

function accountSection(u: GetUserResponse, reload: (done: string) => Promise<void>): HTMLElement {
  const alert = alertBox();
  const user = u.user!;
  const reason = h("input", { name: "reason", type: "text", maxlength: "500", required: !!user.isActive });
  const action = user.isActive ? "Deactivate account" : "Reactivate account";
  const form = h("form", { class: "inline" }, field(user.isActive ? "Reason for deactivation" : "Reason (optional)", reason), h("button", { type: "submit", class: user.isActive ? "danger" : "" }, action));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const ok = await busy(form.querySelector("button"), user.isActive ? "Deactivating" : "Reactivating", alert, async () => {
      await client.admin.setUserActive({ userId: user.id, active: !user.isActive, reason: reason.value.trim() });
    });
    if (ok) await reload(user.isActive ? "Account deactivated; its sessions have ended." : "Account reactivated.");
  });
  return section(
    "account-title",
    "Account",
    facts([
      ["State", user.isActive ? "Active" : "Inactive"],
      ["Deactivated", when(u.deactivatedAt)],
      ["Deletion scheduled for", when(u.deletionScheduledFor)],
      ["Staff", user.isStaff ? "Yes" : "No"],
    ]),
    alert.el,
    form,
  );
}

function sessionsSection(u: GetUserResponse, reload: (done: string) => Promise<void>): HTMLElement {
  const alert = alertBox();
  const revoke = h("button", { type: "button", class: "danger", disabled: u.liveSessionCount === 0 }, "Revoke all sessions");
  revoke.addEventListener("click", async () => {
    let revoked = 0;
    const ok = await busy(revoke, "Revoking sessions", alert, async () => {
      revoked = (await client.admin.revokeUserSessions({ userId: u.user!.id, reason: "revoked from the staff console" })).revokedCount;
    });
    if (ok) await reload(`Revoked ${revoked} session${revoked === 1 ? "" : "s"}.`);
  });
  return section(
    "sessions-title",
    `Sessions (${u.liveSessionCount} live)`,
    table(
      "Live sessions",
      ["Device", "IP address", "Started", "Last used"],
      u.sessions.map((s) => [s.device?.deviceName || (s.device?.deviceType ? words(DeviceType[s.device.deviceType], "") : "Unknown device"), s.ipAddress, when(s.createdAt), when(s.lastUsedAt)]),
      "no live session.",
    ),
    alert.el,
    h("p", {}, revoke),
  );
}

async function activitySection(userId: string): Promise<HTMLElement> {
  const page = await client.admin.listAuditLogs({ userId, pageSize: 15 });
  return section(
    "activity-title",
    "Recent activity",
    table("Latest audit rows", ["When", "Action", "By", "IP address"], page.entries.map((e) => [when(e.createdAt), e.action, !e.actorId || e.actorId === userId ? "the user" : actorLink(e.actorId), e.ipAddress])),
    h("p", {}, h("a", { href: `#/audit?user_id=${userId}` }, "All activity in the audit log")),
  );
}

export async function userPage(root: HTMLElement, userId: string): Promise<void> {
  const alert = alertBox();
  const body = h("div", { class: "user-grid" });
  const title = h("h1", { id: "user-title" }, "User");
  replace(root, h("section", { "aria-labelledby": "user-title" }, h("p", {}, h("a", { href: "#/users" }, "← Users")), title, alert.el, body));

  async function load(done?: string): Promise<void> {
    await busy(null, "Loading the user", alert, async () => {
      const [u, activity] = await Promise.all([client.admin.getUser({ userId }), activitySection(userId)]);
      const user = u.user!;
      replace(title, user.username || "(erased account)");
      const k = u.kyc;
      replace(
        body,
        section("profile-title", "Profile", facts([
          ["User id", user.id],
          ["E-mail", user.email],
          ["Phone", user.phoneNumber],
          ["Full name", u.profile?.fullName],
          ["Date of birth", u.profile?.dateOfBirth],
          ["Address", u.profile?.address],
          ["Joined", when(user.dateJoined)],
          ["Last sign-in", when(user.lastLogin)],
        ])),
        accountSection(u, load),
        section("kyc-title", "KYC", facts([
          ["Status", words(KycStatus[k?.status ?? 0], "")],
          ["Document", k?.documentType ? words(DocumentType[k.documentType], "") : "—"],
          ["Number", k?.documentNumber],
          ["Submitted", when(k?.submittedAt)],
          ["Verified", when(k?.verifiedAt)],
          ["Rejection reason", k?.rejectionReason],
        ])),
        walletSection(u, load),
        section("devices-title", "Devices", table("Active devices", ["Name", "Type", "App", "OS", "Last used"], u.devices.map((d) => [d.deviceName, words(DeviceType[d.deviceType], ""), d.appVersion, d.osVersion, when(d.lastUsed)]), "no active device.")),
        sessionsSection(u, load),
        activity,
      );
      status(done ?? `Showing ${user.username || user.id}.`, done ? "ok" : "info");
    });
  }
  await load();
}

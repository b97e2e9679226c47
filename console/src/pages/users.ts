// User search (ListUsers): a case-insensitive prefix of username, e-mail or phone number,
// filters for active state and KYC status, newest accounts first, "More" for the next page.
import { KycStatus } from "../../../gen/identity/v1/kyc_pb.js";
import type { UserSummary } from "../../../gen/identity/v1/admin_pb.js";
import { client, when, words } from "../api.js";
import { field, h, replace, select, table } from "../dom.js";
import { alertBox, busy, status } from "../ui.js";

function row(s: UserSummary) {
  const u = s.user!;
  return [
    h("a", { href: `#/users/${u.id}` }, u.username || "(erased)"),
    u.email,
    u.phoneNumber,
    u.isActive ? "Active" : "Inactive",
    words(KycStatus[s.kycStatus], ""),
    s.points,
    when(u.dateJoined),
  ];
}

export async function usersPage(root: HTMLElement, initialQuery = ""): Promise<void> {
  const alert = alertBox();
  const query = h("input", { name: "query", type: "search", value: initialQuery, spellcheck: "false", maxlength: "100" });
  const active = select("is_active", [["", "Any"], ["true", "Active"], ["false", "Inactive"]]);
  const kyc = select("kyc_status", [["", "Any"], [String(KycStatus.NOT_SUBMITTED), "Not submitted"], [String(KycStatus.PENDING), "Pending"], [String(KycStatus.APPROVED), "Approved"], [String(KycStatus.REJECTED), "Rejected"]]);
  const form = h("form", { class: "filters", role: "search", "aria-label": "Find users" },
    field("Username, e-mail or phone starts with", query), field("Account", active), field("KYC", kyc), h("button", { type: "submit" }, "Search"));
  const results = h("div", { class: "results" });
  const more = h("button", { type: "button", hidden: true }, "More");
  replace(root, h("section", { "aria-labelledby": "users-title" }, h("h1", { id: "users-title" }, "Users"), form, alert.el, results, more));

  let rows: unknown[][] = [];
  let token = "";
  async function load(next: boolean): Promise<void> {
    await busy(next ? more : form.querySelector("button"), "Searching", alert, async () => {
      const page = await client.admin.listUsers({
        query: query.value.trim(),
        isActive: active.value === "" ? undefined : active.value === "true",
        kycStatus: kyc.value ? Number(kyc.value) : KycStatus.UNSPECIFIED,
        pageSize: 25,
        pageToken: next ? token : "",
      });
      rows = next ? [...rows, ...page.users.map(row)] : page.users.map(row);
      token = page.nextPageToken;
      replace(results, table("Users found", ["Username", "E-mail", "Phone", "Account", "KYC", "Points", "Joined"], rows as never, "no user matches."));
      more.hidden = !token;
      status(`${rows.length} user${rows.length === 1 ? "" : "s"} shown.`);
    });
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    history.replaceState(null, "", `#/users?q=${encodeURIComponent(query.value.trim())}`);
    void load(false);
  });
  more.addEventListener("click", () => void load(true));
  query.focus();
  await load(false);
}

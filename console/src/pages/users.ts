// User search (ListUsers): a case-insensitive prefix of username, e-mail or phone number,
// filters for active state and KYC status, newest accounts first, "More" for the next page.
import { KycStatus } from "../../../gen/identity/v1/kyc_pb.js";
import type { UserSummary } from "../../../gen/identity/v1/admin_pb.js";
import { client, when, words } from "../api.js";
import { field, h, replace, select } from "../dom.js";
import { alertBox, pagedTable } from "../ui.js";

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
  const paged = pagedTable({
    alert,
    caption: "Users found",
    headers: ["Username", "E-mail", "Phone", "Account", "KYC", "Points", "Joined"],
    empty: "no user matches.",
    busyLabel: "Searching",
    noun: "user",
    firstPageButton: () => form.querySelector("button"),
    fetch: async (pageToken) => {
      const page = await client.admin.listUsers({
        query: query.value.trim(),
        isActive: active.value === "" ? undefined : active.value === "true",
        kycStatus: kyc.value ? Number(kyc.value) : KycStatus.UNSPECIFIED,
        pageSize: 25,
        pageToken,
      });
      return { items: page.users, nextPageToken: page.nextPageToken };
    },
    row,
  });
  replace(root, h("section", { "aria-labelledby": "users-title" }, h("h1", { id: "users-title" }, "Users"), form, alert.el, paged.results, paged.more));

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    history.replaceState(null, "", `#/users?q=${encodeURIComponent(query.value.trim())}`);
    void paged.load(false);
  });
  query.focus();
  await paged.load(false);
}

// The audit-log browser (ListAuditLogs): filters user id, action, entity type and a time
// range (the operator's local time), newest first, "More" for the next page.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { AuditLog } from "../../../gen/identity/v1/admin_pb.js";
import { actorLink, client, when } from "../api.js";
import { field, h, replace } from "../dom.js";
import { alertBox, pagedTable } from "../ui.js";

function values(v: AuditLog["newValues"]): string {
  return v && Object.keys(v).length ? JSON.stringify(v) : "";
}

function row(e: AuditLog) {
  return [
    when(e.createdAt),
    e.action,
    e.entityType,
    e.userId ? h("a", { href: `#/users/${e.userId}` }, e.userId.slice(0, 8) + "…") : "—",
    e.actorId ? actorLink(e.actorId) : "—",
    h("code", {}, values(e.newValues)),
    e.ipAddress,
  ];
}

export async function auditPage(root: HTMLElement, params: URLSearchParams): Promise<void> {
  const alert = alertBox();
  const input = (name: string, type = "text") => h("input", { name, type, value: params.get(name) ?? "", spellcheck: "false" });
  const userId = input("user_id");
  const action = input("action");
  const entityType = input("entity_type");
  const since = input("since", "datetime-local");
  const until = input("until", "datetime-local");
  const form = h("form", { class: "filters", "aria-label": "Filter the audit log" },
    field("User id", userId), field("Action", action, "e.g. user.login"), field("Entity type", entityType, "e.g. session"),
    field("From (local time)", since), field("Until (local time)", until), h("button", { type: "submit" }, "Filter"));
  const time = (el: HTMLInputElement) => (el.value ? timestampFromDate(new Date(el.value)) : undefined);
  const paged = pagedTable({
    alert,
    caption: "Audit rows, newest first",
    headers: ["When", "Action", "Entity", "User", "Actor", "New values", "IP address"],
    empty: "no row matches.",
    busyLabel: "Loading the audit log",
    noun: "row",
    firstPageButton: () => form.querySelector("button"),
    fetch: async (pageToken) => {
      const page = await client.admin.listAuditLogs({
        userId: userId.value.trim(),
        action: action.value.trim(),
        entityType: entityType.value.trim(),
        since: time(since),
        until: time(until),
        pageSize: 50,
        pageToken,
      });
      return { items: page.entries, nextPageToken: page.nextPageToken };
    },
    row,
  });
  replace(root, h("section", { "aria-labelledby": "audit-title" }, h("h1", { id: "audit-title" }, "Audit log"), form, alert.el, paged.results, paged.more));

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void paged.load(false);
  });
  await paged.load(false);
}

// The KYC queue: PENDING submissions, oldest first (ListKycSubmissions), each with its
// document images (a plain notice and the link when an image does not load), approve, or
// reject with a required reason (ReviewKyc). The queue is read again after every decision.
import { DocumentType, KycDecision, KycStatus, type Kyc } from "../../../gen/identity/v1/kyc_pb.js";
import { client, when, words } from "../api.js";
import { facts, field, h, replace } from "../dom.js";
import { alertBox, busy, status } from "../ui.js";

function documentImage(label: string, url: string): HTMLElement {
  if (!url) return h("figure", { class: "doc missing" }, h("figcaption", {}, label), h("p", {}, "No image submitted."));
  const figure = h("figure", { class: "doc" });
  const img = h("img", { src: url, alt: `${label} of the document`, loading: "lazy", referrerpolicy: "no-referrer" });
  img.addEventListener("error", () => {
    img.replaceWith(h("p", { class: "img-fallback", role: "note" }, "The image could not be loaded. ", h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, "Open the file")));
  });
  replace(figure, h("figcaption", {}, label), img);
  return figure;
}

function submission(s: Kyc, decided: (message: string) => Promise<void>): HTMLElement {
  const alert = alertBox();
  const reason = h("textarea", { name: "rejection_reason", rows: "2", maxlength: "500", required: true });
  const approve = h("button", { type: "button", class: "approve" }, "Approve");
  const rejectForm = h("form", { class: "reject" }, field("Reason for rejection", reason), h("button", { type: "submit", class: "danger" }, "Reject"));
  const titleId = `kyc-${s.userId}`;

  approve.addEventListener("click", async () => {
    const ok = await busy(approve, "Approving", alert, async () => {
      await client.kyc.reviewKyc({ userId: s.userId, decision: KycDecision.APPROVE });
    });
    if (ok) await decided(`Approved the KYC of user ${s.userId}.`);
  });
  rejectForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const ok = await busy(rejectForm.querySelector("button"), "Rejecting", alert, async () => {
      await client.kyc.reviewKyc({ userId: s.userId, decision: KycDecision.REJECT, rejectionReason: reason.value.trim() });
    });
    if (ok) await decided(`Rejected the KYC of user ${s.userId}.`);
  });

  return h(
    "article",
    { class: "card kyc", "aria-labelledby": titleId },
    h("h2", { id: titleId }, words(DocumentType[s.documentType], ""), " · ", h("a", { href: `#/users/${s.userId}` }, `user ${s.userId.slice(0, 8)}…`)),
    facts([
      ["User id", s.userId],
      ["Document number", s.documentNumber],
      ["Submitted", when(s.submittedAt)],
    ]),
    h("div", { class: "docs" }, documentImage("Front", s.documentFrontUrl), documentImage("Back", s.documentBackUrl)),
    alert.el,
    h("div", { class: "actions" }, h("p", { class: "approve-row" }, approve), rejectForm),
  );
}

export async function kycPage(root: HTMLElement): Promise<void> {
  const alert = alertBox();
  const list = h("div", { class: "queue" });
  const count = h("p", { class: "count" });
  replace(root, h("section", { "aria-labelledby": "kyc-title" }, h("h1", { id: "kyc-title" }, "KYC queue"), h("p", {}, "Pending submissions, oldest first."), count, alert.el, list));

  async function load(done?: string): Promise<void> {
    await busy(null, "Loading the queue", alert, async () => {
      const page = await client.kyc.listKycSubmissions({ status: KycStatus.PENDING, pageSize: 20 });
      replace(count, page.submissions.length ? `${page.submissions.length}${page.nextPageToken ? "+" : ""} pending` : "");
      replace(list, ...(page.submissions.length ? page.submissions.map((s) => submission(s, (m) => load(m))) : [h("p", { class: "empty" }, "No submissions are waiting for review.")]));
      status(done ?? "Queue loaded.", done ? "ok" : "info");
    });
  }
  await load();
}

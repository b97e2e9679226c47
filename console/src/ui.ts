// The page's shared furniture: the status line (loading, done), the error alert of the
// current view, busy buttons, and result tables fetched a page at a time.
import { h, replace, table, type Child } from "./dom.js";
import { describeError } from "./api.js";

const statusEl = () => document.getElementById("status")!;

/** Announces progress or success in the status line (a polite live region). */
export function status(text: string, kind: "info" | "ok" | "loading" = "info"): void {
  const el = statusEl();
  el.className = `status ${kind}`;
  el.textContent = text;
}

/** An alert box for errors, empty until show() is called. */
export function alertBox(): { el: HTMLElement; show(e: unknown): void; text(message: string): void; clear(): void } {
  const el = h("p", { class: "alert", role: "alert", hidden: true });
  return {
    el,
    show(e) {
      this.text(describeError(e));
    },
    text(message) {
      replace(el, message);
      el.hidden = false;
    },
    clear() {
      replace(el);
      el.hidden = true;
    },
  };
}

/** Runs `work` with the button disabled and a loading status; errors go to `alert`. */
export async function busy(button: HTMLButtonElement | null, label: string, alert: ReturnType<typeof alertBox>, work: () => Promise<void>): Promise<boolean> {
  alert.clear();
  if (button) button.disabled = true;
  status(`${label}…`, "loading");
  try {
    await work();
    return true;
  } catch (e) {
    status("");
    alert.show(e);
    return false;
  } finally {
    if (button) button.disabled = false;
  }
}

export interface PagedTableOptions<T> {
  alert: ReturnType<typeof alertBox>;
  caption: string;
  headers: string[];
  /** What the table says when the first page is empty. */
  empty: string;
  /** The loading status, e.g. "Searching". */
  busyLabel: string;
  /** What one row is, for the status line ("row": "12 rows shown."). */
  noun: string;
  /** The button that asked for the first page (disabled while it loads). */
  firstPageButton: () => HTMLButtonElement | null;
  /** One page of items from `pageToken` ("" for the first). */
  fetch: (pageToken: string) => Promise<{ items: T[]; nextPageToken: string }>;
  row: (item: T) => Child[];
}

/**
 * A results table fed a page at a time by the API's page tokens: `load(false)` shows the first
 * page, `load(true)` (the "More" button) appends the next; "More" shows while there is one.
 */
export function pagedTable<T>(o: PagedTableOptions<T>): { results: HTMLElement; more: HTMLButtonElement; load(next: boolean): Promise<void> } {
  const results = h("div", { class: "results" });
  const more = h("button", { type: "button", hidden: true }, "More");
  let rows: Child[][] = [];
  let token = "";
  async function load(next: boolean): Promise<void> {
    await busy(next ? more : o.firstPageButton(), o.busyLabel, o.alert, async () => {
      const page = await o.fetch(next ? token : "");
      const fresh = page.items.map(o.row);
      rows = next ? [...rows, ...fresh] : fresh;
      token = page.nextPageToken;
      replace(results, table(o.caption, o.headers, rows, o.empty));
      more.hidden = !token;
      status(`${rows.length} ${o.noun}${rows.length === 1 ? "" : "s"} shown.`);
    });
  }
  more.addEventListener("click", () => void load(true));
  return { results, more, load };
}

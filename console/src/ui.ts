// The page's shared furniture: the status line (loading, done), the error alert of the
// current view, and busy buttons.
import { h, replace } from "./dom.js";
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

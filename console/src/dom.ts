// A tiny DOM builder: elements from tag, attributes and children. Text always goes in as
// text nodes (never as HTML), so values from the API cannot inject markup.
export type Child = Node | string | number | bigint | null | undefined | false;
type Attr = string | boolean | undefined | ((event: Event) => void);

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, Attr> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : value);
  }
  append(el, ...children);
  return el;
}

export function append(el: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `el`. */
export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, ...children);
}

/** A definition list of label/value pairs. */
export function facts(pairs: Array<[string, Child]>): HTMLDListElement {
  const dl = h("dl", { class: "facts" });
  for (const [label, value] of pairs) append(dl, h("dt", {}, label), h("dd", {}, value === "" || value === null || value === undefined ? "—" : value));
  return dl;
}

/** A table with a caption, column headers and rows. */
export function table(caption: string, headers: string[], rows: Child[][], empty = "Nothing to show."): HTMLElement {
  if (!rows.length) return h("p", { class: "empty" }, `${caption}: ${empty}`);
  return h(
    "table",
    {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, ...headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, ...rows.map((cells) => h("tr", {}, ...cells.map((c) => h("td", {}, c))))),
  );
}

let fieldCounter = 0;
/** A labelled form control: the label's `for` names the control's id. */
export function field(label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  control.id ||= `f${++fieldCounter}`;
  const hintEl = hint ? h("small", { id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("p", { class: "field" }, h("label", { for: control.id }, label), control, hintEl);
}

/** A select of value/label options. */
export function select(name: string, options: Array<[string, string]>, value = ""): HTMLSelectElement {
  const el = h("select", { name });
  for (const [v, label] of options) append(el, h("option", { value: v, selected: v === value }, label));
  return el;
}

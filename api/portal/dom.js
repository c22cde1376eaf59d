// A few helpers to build the page from data without innerHTML: every text goes in as a text node.

/** An element: h("button", {class: "primary", onclick: f}, "Confirm"). Attributes named on* are listeners. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace what ``element`` holds with ``children``. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** A labelled input: the label names the input for screen readers and for the tests (getByLabel). */
export function field(label, attributes = {}, hint = null) {
  const id = attributes.id ?? `f-${Math.random().toString(36).slice(2, 10)}`;
  const control = attributes.options
    ? h("select", { ...withoutOptions(attributes), id }, attributes.options.map(([value, text]) => h("option", { value }, text)))
    : h("input", { type: "text", ...attributes, id });
  return h("div", { class: "field" },
    h("label", { for: id }, label),
    control,
    hint ? h("small", { class: "hint" }, hint) : null);
}

function withoutOptions(attributes) {
  const { options: _options, ...rest } = attributes;
  return rest;
}

/** The value of the control labelled by ``field``'s element. */
export function valueOf(form, name) {
  const control = form.querySelector(`[name="${name}"]`);
  return control ? control.value.trim() : "";
}

/** A table: columns are [heading, row => cell]. */
export function table(caption, columns, rows, empty) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("table", {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, columns.map(([heading]) => h("th", { scope: "col" }, heading)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(row)))))));
}

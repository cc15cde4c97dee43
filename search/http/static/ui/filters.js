// Search filters: the selects built from GET /facets, and the OpenAI-style filter object sent to /search.

import { $, h } from "./dom.js";

const SHOWN = 4; // attribute selects in view; the rest wait behind "More filters" so results stay near the top
const option = (value, label, selected) => h("option", { value, selected: value === selected }, label);

/** Fills the File type select and one select per attribute; hides what the facets cannot offer. */
export function renderFacetFilters(facets, state) {
  const types = (facets?.types || []).map((t) => t.value);
  if (state.type && !types.includes(state.type)) types.push(state.type); // a shared link's filter stays visible
  $("#search-type").replaceChildren(
    option("", "Any", state.type),
    ...types.map((t) => option(t, t, state.type)),
  );
  $("#type-field").hidden = types.length === 0;
  const attributes = facets?.attributes || [];
  const selects = attributes.map((a, n) => attributeSelect(a, state.attrs[a.key] ?? "", n));
  const rest = selects.slice(SHOWN);
  const more = rest.length
    ? h("details.more-filters", { open: attributes.slice(SHOWN).some((a) => state.attrs[a.key]) }, // a hidden one is set
        h("summary", {}, `More filters (${rest.length})`),
        h("div.more-filters-body", {}, ...rest))
    : null;
  const note = facets?.more_keys ? h("p.muted.small.filters-note", {}, "Some attributes are not listed.") : null;
  $("#attribute-filters").replaceChildren(...selects.slice(0, SHOWN), ...[more, note].filter(Boolean));
}

/** The n-th attribute's select; its id is by position ("a b" and "a_b" would share a cleaned-up name). */
function attributeSelect(attribute, selected, n) {
  const id = `attr-${n}`;
  const values = attribute.values.map((v) => String(v.value));
  if (selected && !values.includes(selected)) values.push(selected);
  const select = h(
    "select",
    { id, name: attribute.key },
    option("", "Any", selected),
    ...values.map((v) => option(v, v, selected)),
  );
  return h("span.field", {}, h("label", { for: id }, attribute.key), select);
}

/** The URL's string back to the attribute's JSON type (a number or boolean facet value compares as such). */
function typedValue(facets, key, text) {
  const attribute = (facets?.attributes || []).find((a) => a.key === key);
  const match = attribute?.values.find((v) => String(v.value) === text);
  return match ? match.value : text;
}

/** {"type": "and", "filters": [...]} for the state's type, path prefix and attributes; null when none. */
export function filtersFor(state, facets) {
  const parts = [];
  if (state.type) parts.push({ type: "eq", key: "type", value: state.type });
  if (state.path) parts.push({ type: "prefix", key: "path", value: state.path });
  for (const [key, text] of Object.entries(state.attrs)) {
    if (text !== "") parts.push({ type: "eq", key, value: typedValue(facets, key, text) });
  }
  if (parts.length === 0) return null;
  return parts.length === 1 ? parts[0] : { type: "and", filters: parts };
}

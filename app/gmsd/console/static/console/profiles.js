// The Profiles view: identify a customer by one of the identification keys (or open a profile by
// its id), see the profile with its core attributes and extension records, and jump to the
// timeline of their services in the Journeys view.

import { CS, attempt, call, el, segment, showStatus } from "./api.js";
import { showJourney } from "./journeys.js";

const $ = (id) => document.getElementById(id);
let keys = []; // the identification keys of the tenant the form names, as GET …/identification-keys lists them
let extensions = []; // the extension schemas of that tenant: every profile shown carries all of them
let loadedFor = null; // the tenant whose keys and extensions are loaded
let loads = 0; // loads started: only the answer of the latest one is shown

const tenant = () => $("profiles-tenant").value.trim();

/** Load the tenant's identification keys and extension schemas into the identify form. */
async function loadMetadata() {
  const wanted = tenant();
  const load = ++loads;
  const [listedKeys, listedExtensions] = await Promise.all([
    call("GET", `${CS}/metadata/identification-keys`, { tenant: wanted }),
    call("GET", `${CS}/metadata/profiles/extensions`, { tenant: wanted }),
  ]);
  if (load !== loads) return; // a later load (another tenant) answers for the form
  keys = listedKeys;
  extensions = listedExtensions;
  loadedFor = wanted;
  const select = $("identify-key");
  select.replaceChildren();
  for (const key of keys) {
    select.append(el("option", { value: key.name }, `${key.name} (${key.attributes.join(", ")})`));
  }
  $("identify-none").hidden = keys.length > 0;
  $("identify-submit").disabled = keys.length === 0;
  renderKeyFields();
}

/** One input per attribute of the chosen key, in the key's order (a left prefix is enough). */
function renderKeyFields() {
  const fields = $("identify-fields");
  const key = keys.find((candidate) => candidate.name === $("identify-key").value);
  // What was typed stays where the same attribute is asked again.
  const typed = new Map([...fields.querySelectorAll(".identify-value")].map((input) => [input.dataset.attribute, input.value]));
  fields.replaceChildren();
  if (!key) return;
  key.attributes.forEach((attribute, index) => {
    fields.append(el("label", { class: "field" }, attribute,
      el("input", { class: "identify-value", "data-attribute": attribute, autocomplete: "off", spellcheck: "false",
        required: index === 0, value: typed.get(attribute) ?? "" })));
  });
}

const extensionsParameter = () => extensions.map((schema) => schema.name).join(",");

async function identify(event) {
  event.preventDefault();
  if (loadedFor !== tenant()) await loadMetadata();
  const query = new URLSearchParams();
  for (const input of $("identify-fields").querySelectorAll(".identify-value")) {
    const value = input.value.trim();
    if (!value) break; // the key's left prefix the person filled in
    query.append(input.dataset.attribute, value);
  }
  query.append("id_key", $("identify-key").value);
  query.append("include_profile", "yes");
  if (extensions.length) query.append("extensions", extensionsParameter());
  const found = await call("GET", `${CS}/profiles?${query}`, { tenant: tenant() });
  render(found);
  showStatus(found.length === 1 ? "One customer matches." : `${found.length} customers match.`);
}

async function open(event) {
  event.preventDefault();
  if (loadedFor !== tenant()) await loadMetadata();
  const id = $("profile-id").value.trim();
  const query = extensions.length ? `?extensions=${encodeURIComponent(extensionsParameter())}` : "";
  render([await call("GET", `${CS}/profiles/${segment(id)}${query}`, { tenant: tenant() })]);
  showStatus(`Profile ${id}.`);
}

const text = (value) => (value !== null && typeof value === "object" ? JSON.stringify(value) : String(value));

/** A table of extension records: one column per attribute any record has, in first-seen order. */
function recordsTable(name, records) {
  const columns = [];
  for (const record of records) for (const column of Object.keys(record)) if (!columns.includes(column)) columns.push(column);
  return el("div", { class: "scroll" }, el("table", { class: "records", "data-extension": name },
    el("caption", {}, `${name} (${records.length} ${records.length === 1 ? "record" : "records"})`),
    el("thead", {}, el("tr", {}, columns.map((column) => el("th", { scope: "col" }, column)))),
    el("tbody", {}, records.map((record) => el("tr", {},
      columns.map((column) => el("td", { class: "value" }, column in record ? text(record[column]) : "")))))));
}

function profileCard(profile) {
  const extensionNames = new Set(extensions.map((schema) => schema.name));
  const core = el("dl", { class: "fields" });
  for (const [name, value] of Object.entries(profile)) {
    if (name === "customer_id" || extensionNames.has(name)) continue;
    // A multi-valued core attribute: the first value is the primary one.
    const shown = Array.isArray(value) ? value.map(text).join(", ") : text(value);
    core.append(el("dt", {}, name), el("dd", { class: "value" }, shown));
  }
  const records = [];
  for (const schema of extensions) {
    const value = profile[schema.name];
    if (value === undefined) continue;
    records.push(recordsTable(schema.name, Array.isArray(value) ? value : [value]));
  }
  const id = profile.customer_id;
  return el("article", { class: "profile", "data-customer-id": id },
    el("h3", {}, "Customer ", el("code", {}, id)),
    core.childElementCount ? core : el("p", { class: "muted" }, "No core attribute has a value."),
    records.length ? records : el("p", { class: "muted" }, "No extension record."),
    el("div", { class: "actions" },
      el("button", { type: "button", onclick: () => attempt(() => showJourney("customer", id, tenant())) },
        "Show their services' timeline")));
}

function render(profiles) {
  $("profiles").replaceChildren(...profiles.map(profileCard));
  $("profiles-empty").hidden = profiles.length > 0;
  $("profiles-empty").textContent = profiles.length ? "" : "No customer matches.";
}

/** Called when the view is shown: the keys of the tenant are loaded once, then on a tenant change. */
export function profilesShown() {
  if (loadedFor !== tenant()) attempt(loadMetadata);
}

/** Wire the view. */
export function setUpProfiles() {
  $("identify-key").addEventListener("change", renderKeyFields);
  $("profiles-tenant").addEventListener("change", () => {
    if (loadedFor !== tenant()) attempt(loadMetadata);
  });
  $("identify-form").addEventListener("submit", (event) => attempt(() => identify(event)));
  $("profile-form").addEventListener("submit", (event) => attempt(() => open(event)));
}

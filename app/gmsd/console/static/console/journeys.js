// The Journeys view: a customer's (or a contact key's) Context Services on a time axis — every
// service a bar, its states and tasks nested under it, active ones open-ended, colours by type —
// with the events and attached data of the one clicked, and start/end/transition buttons.

import { CS, attempt, call, el, segment, showStatus } from "./api.js";

const $ = (id) => document.getElementById(id);
const INCLUDE = "active_states=true&completed_states=true&active_tasks=true&completed_tasks=true";
const HUES = 10;
const KNOWN = {
  service: ["service_id", "service_type", "customer_id", "contact_key", "started", "completed", "est_duration",
    "duration", "disposition", "disposition_desc", "active_states", "completed_states", "active_tasks", "completed_tasks"],
  state: ["state_id", "state_type", "service_id", "previous_state_id", "started", "completed", "est_duration",
    "duration", "disposition", "disposition_desc", "active_tasks", "completed_tasks"],
  task: ["task_id", "task_type", "state_id", "service_id", "started", "completed", "est_duration", "duration",
    "disposition", "disposition_desc"],
};
let lookup = null; // {by, value, tenant}: what the timeline shows
let selected = null; // {kind, serviceId, id}: the item whose details are open

const hues = new Map(); // type -> colour class, in the order types first appear on the page

/** A colour class for a type: the same type keeps its colour, distinct types differ (up to HUES). */
function hue(type) {
  const text = String(type ?? "");
  if (!hues.has(text)) hues.set(text, `hue-${hues.size % HUES}`);
  return hues.get(text);
}

const typeOf = (kind, item) => item[`${kind}_type`] ?? "(no type)";
const idOf = (kind, item) => item[`${kind}_id`];
const startOf = (item) => Date.parse(item.started?.timestamp);
const endOf = (item) => (item.completed ? Date.parse(item.completed.timestamp) : null);

function servicesPath() {
  const base = lookup.by === "customer" ? `${CS}/customers/${segment(lookup.value)}/services`
    : `${CS}/services/anonymous/${segment(lookup.value)}`;
  return `${base}?${INCLUDE}`;
}

/** The rows of the timeline: each service, then its states with their tasks, then its other tasks. */
function rowsOf(services) {
  const rows = [];
  const ordered = [...services].sort((a, b) => startOf(a) - startOf(b));
  for (const service of ordered) {
    rows.push({ kind: "service", item: service, depth: 0, serviceId: service.service_id });
    const states = [...(service.active_states ?? []), ...(service.completed_states ?? [])].sort((a, b) => startOf(a) - startOf(b));
    const tasks = [...(service.active_tasks ?? []), ...(service.completed_tasks ?? [])].sort((a, b) => startOf(a) - startOf(b));
    const stateIds = new Set(states.map((state) => state.state_id));
    for (const state of states) {
      rows.push({ kind: "state", item: state, depth: 1, serviceId: service.service_id });
      for (const task of tasks.filter((t) => t.state_id === state.state_id)) {
        rows.push({ kind: "task", item: task, depth: 2, serviceId: service.service_id });
      }
    }
    for (const task of tasks.filter((t) => !stateIds.has(t.state_id))) {
      rows.push({ kind: "task", item: task, depth: 1, serviceId: service.service_id });
    }
  }
  return rows;
}

function timeLabel(millis, span = Infinity) {
  const options = { hour: "2-digit", minute: "2-digit", second: "2-digit" };
  if (span < 10000) options.fractionalSecondDigits = 1; // a short journey: its ticks must differ
  return new Date(millis).toLocaleTimeString([], options);
}

function render(services) {
  const now = Date.now();
  const rows = rowsOf(services);
  const list = $("timeline");
  const axis = $("axis");
  const legend = $("legend");
  list.replaceChildren();
  axis.replaceChildren();
  legend.replaceChildren();
  $("timeline-empty").hidden = rows.length > 0;
  $("timeline-empty").textContent = rows.length ? "" : "No service for this customer (in this tenant).";
  if (!rows.length) return;
  const starts = rows.map((row) => startOf(row.item)).filter(Number.isFinite);
  const ends = rows.map((row) => endOf(row.item) ?? now);
  let to = Math.max(...ends);
  // At least a few seconds shown: a journey that just began still reads as bars, not dots.
  let from = Math.min(...starts, to - 5000);
  const pad = (to - from) * 0.03;
  from -= pad;
  to += pad;
  const at = (millis) => ((millis - from) / (to - from)) * 100;
  for (let i = 0; i <= 4; i += 1) {
    const tick = el("span", { class: "tick" }, timeLabel(from + ((to - from) * i) / 4, to - from));
    tick.style.left = `${i * 25}%`;
    axis.append(tick);
  }
  const types = new Map();
  for (const row of rows) {
    const type = typeOf(row.kind, row.item);
    types.set(`${row.kind}:${type}`, { kind: row.kind, type });
    const start = startOf(row.item);
    const end = endOf(row.item);
    const active = end === null;
    const label = `${row.kind} ${type} #${idOf(row.kind, row.item)}`;
    const bar = el("button", {
      type: "button", class: `bar ${row.kind} ${hue(type)}${active ? " active" : ""}`,
      "aria-label": `${label}, ${active ? "active since" : "from"} ${timeLabel(start)}${active ? "" : ` to ${timeLabel(end)}`}`,
      "data-kind": row.kind, "data-id": idOf(row.kind, row.item),
      onclick: () => showDetails(row),
    }, el("span", { class: "bar-text" }, type));
    bar.style.left = `${at(start)}%`;
    bar.style.width = `${Math.max(at(end ?? now) - at(start), 0.8)}%`;
    const isSelected = selected && selected.kind === row.kind && selected.serviceId === row.serviceId
      && String(selected.id) === String(idOf(row.kind, row.item));
    if (isSelected) bar.classList.add("selected");
    list.append(el("li", { class: `row depth-${row.depth}` },
      el("span", { class: "row-label" }, el("span", { class: "kind" }, row.kind), ` ${type} `,
        el("span", { class: "muted" }, `#${idOf(row.kind, row.item)}${active ? " · active" : ""}`)),
      el("span", { class: "track" }, bar)));
    if (isSelected) fillDetails(row);
  }
  for (const { kind, type } of types.values()) {
    legend.append(el("li", {}, el("span", { class: `swatch ${kind} ${hue(type)}` }), `${kind}: ${type}`));
  }
}

async function refresh() {
  if (!lookup) return;
  render(await call("GET", servicesPath(), { tenant: lookup.tenant }));
}

function itemPath(row) {
  const service = `${CS}/services/${segment(row.serviceId)}`;
  return row.kind === "service" ? service : `${service}/${row.kind}s/${segment(String(idOf(row.kind, row.item)))}`;
}

function action(label, run, attributes = {}) {
  return el("button", { type: "button", ...attributes, onclick: () => attempt(async () => {
    await run();
    await refresh();
  }) }, label);
}

function typedAction(label, placeholder, run) {
  const input = el("input", { "aria-label": placeholder, placeholder, autocomplete: "off", required: true });
  const form = el("form", { class: "inline" }, input, el("button", { type: "submit" }, label));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    attempt(async () => {
      await run(input.value.trim());
      await refresh();
    });
  });
  return form;
}

function fillDetails(row) {
  const { kind, item } = row;
  const tenant = lookup.tenant;
  $("details").hidden = false;
  $("details-title").textContent = `${kind[0].toUpperCase()}${kind.slice(1)} ${typeOf(kind, item)} #${idOf(kind, item)}`;
  const fields = $("details-fields");
  fields.replaceChildren();
  for (const name of KNOWN[kind]) {
    const value = item[name];
    if (value === undefined || name === "started" || name === "completed" || Array.isArray(value)) continue;
    fields.append(el("dt", {}, name), el("dd", {}, typeof value === "object" ? JSON.stringify(value) : String(value)));
  }
  const events = {};
  if (item.started) events.started = item.started;
  if (item.completed) events.completed = item.completed;
  $("details-events").textContent = JSON.stringify(events, null, 2);
  const attached = Object.fromEntries(Object.entries(item).filter(([name]) => !KNOWN[kind].includes(name)));
  $("details-data").textContent = Object.keys(attached).length ? JSON.stringify(attached, null, 2) : "(none)";
  const actions = $("details-actions");
  actions.replaceChildren();
  if (item.completed) return;
  const path = itemPath(row);
  const service = `${CS}/services/${segment(row.serviceId)}`;
  if (kind === "service") {
    actions.append(
      typedAction("Start a state", "state type", (type) => call("POST", `${service}/states/start`, { json: { state_type: type }, tenant })),
      typedAction("Start a task", "task type", (type) => call("POST", `${service}/tasks/start`, { json: { task_type: type }, tenant })),
      action("End the service", () => call("POST", `${path}/end`, { json: {}, tenant }), { class: "danger" }),
    );
  } else if (kind === "state") {
    actions.append(
      typedAction("Transition to", "next state type", (type) => call("POST", `${service}/states/transition`,
        { json: { from: { state_id: item.state_id }, to: { state_type: type } }, tenant })),
      typedAction("Start a task here", "task type", (type) => call("POST", `${service}/tasks/start`,
        { json: { task_type: type, state_id: item.state_id }, tenant })),
      action("End the state", () => call("POST", `${path}/end`, { json: {}, tenant }), { class: "danger" }),
    );
  } else {
    actions.append(action("End the task", () => call("POST", `${path}/end`, { json: {}, tenant }), { class: "danger" }));
  }
}

function showDetails(row) {
  selected = { kind: row.kind, serviceId: row.serviceId, id: idOf(row.kind, row.item) };
  for (const bar of document.querySelectorAll("#timeline .bar.selected")) bar.classList.remove("selected");
  fillDetails(row);
  $("details-title").focus();
}

async function find(event) {
  event.preventDefault();
  lookup = { by: $("journey-by").value, value: $("journey-value").value.trim(), tenant: $("journey-tenant").value.trim() };
  selected = null;
  $("details").hidden = true;
  showStatus("");
  await refresh();
}

async function start(event) {
  event.preventDefault();
  const value = $("journey-value").value.trim();
  if (!value) {
    $("journey-value").focus();
    throw new Error("Enter the customer id or contact key first.");
  }
  lookup = { by: $("journey-by").value, value, tenant: $("journey-tenant").value.trim() };
  const owner = lookup.by === "customer" ? { customer_id: value } : { contact_key: value };
  const started = await call("POST", `${CS}/services/start`, { json: { service_type: $("start-type").value.trim(), ...owner }, tenant: lookup.tenant });
  const stateType = $("start-state").value.trim();
  if (stateType) {
    await call("POST", `${CS}/services/${segment(started.service_id)}/states/start`, { json: { state_type: stateType }, tenant: lookup.tenant });
  }
  showStatus(`Started service ${started.service_id}.`);
  await refresh();
}

/** Show the journey of a customer (`by` "customer") or contact key (`by` "contact") in this view. */
export async function showJourney(by, value, tenant) {
  $("journey-by").value = by;
  $("journey-value").value = value;
  $("journey-tenant").value = tenant;
  lookup = { by, value, tenant };
  selected = null;
  $("details").hidden = true;
  location.hash = "#journeys";
  showStatus("");
  await refresh();
}

/** Wire the view. */
export function setUpJourneys() {
  $("journey-form").addEventListener("submit", (event) => attempt(() => find(event)));
  $("start-form").addEventListener("submit", (event) => attempt(() => start(event)));
}

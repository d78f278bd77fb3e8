// The Services view: configured services, create one (text fields and files), and the storage
// of a service id (keys, files, download, delete, expiry and its countdown).

import { GMS, attempt, bytes, call, duration, el, segment, showStatus } from "./api.js";

const $ = (id) => document.getElementById(id);
let pendingFiles = []; // {file, key}: what the create form will upload
let countdownTimer = null;
let openedId = null;

/** Fill the configured services table and the create form's choice. */
async function loadConfigured() {
  const services = await call("GET", "/console/api/services");
  const body = $("configured").tBodies[0];
  const select = $("create-name");
  body.replaceChildren();
  select.replaceChildren();
  for (const service of services) {
    body.append(el("tr", {}, el("th", { scope: "row" }, service.name), el("td", {}, service.type),
      el("td", {}, duration(service.ttl * 1000))));
    select.append(el("option", { value: service.name }, service.name));
  }
  if (!services.length) body.append(el("tr", {}, el("td", { colspan: 3 }, "No service is configured.")));
}

function fieldRow(key = "", value = "") {
  const row = el("div", { class: "pair" });
  const remove = el("button", { type: "button", class: "small", "aria-label": "Remove this field", onclick: () => row.remove() }, "Remove");
  row.append(
    el("input", { class: "pair-key", "aria-label": "Field name", placeholder: "name", value: key, autocomplete: "off" }),
    el("input", { class: "pair-value", "aria-label": "Field value", placeholder: "value", value, autocomplete: "off" }),
    remove,
  );
  return row;
}

function renderFiles() {
  const list = $("file-list");
  list.replaceChildren();
  pendingFiles.forEach((entry, index) => {
    const key = el("input", { class: "pair-key", "aria-label": `Key for ${entry.file.name}`, value: entry.key, autocomplete: "off" });
    key.addEventListener("input", () => { entry.key = key.value; });
    list.append(el("div", { class: "pair" }, key,
      el("span", { class: "file-name" }, `${entry.file.name} (${bytes(entry.file.size)})`),
      el("button", { type: "button", class: "small", "aria-label": `Remove ${entry.file.name}`,
        onclick: () => { pendingFiles.splice(index, 1); renderFiles(); } }, "Remove")));
  });
}

function addFiles(files) {
  for (const file of files) pendingFiles.push({ file, key: file.name.replace(/\.[^.]*$/, "") || file.name });
  renderFiles();
}

async function create(event) {
  event.preventDefault();
  const name = $("create-name").value;
  const form = new FormData();
  for (const row of $("create-fields").querySelectorAll(".pair")) {
    const key = row.querySelector(".pair-key").value.trim();
    if (key) form.append(key, row.querySelector(".pair-value").value);
  }
  for (const { file, key } of pendingFiles) form.append(key.trim() || file.name, file, file.name);
  const created = await call("POST", `${GMS}/${segment(name)}`, { form });
  pendingFiles = [];
  renderFiles();
  $("create-fields").replaceChildren(fieldRow());
  $("create-files").value = "";
  $("service-id").value = created.id;
  showStatus(`Created ${name} service ${created.id}.`);
  await openStorage(created.id);
}

function downloadLink(id, key, filename) {
  return el("a", { class: "button small", href: `${GMS}/${segment(id)}/storage/binary/${segment(key)}`,
    download: filename || key, "aria-label": `Download ${key}` }, "Download");
}

function deleteButton(id, key) {
  return el("button", { type: "button", class: "small danger", "aria-label": `Delete ${key}`,
    onclick: () => attempt(async () => {
      await call("DELETE", `${GMS}/${segment(id)}/storage/${segment(key)}`);
      showStatus(`Deleted ${key}.`);
      await openStorage(id);
    }) }, "Delete");
}

function startCountdown(expiresIn) {
  clearInterval(countdownTimer);
  const output = $("countdown");
  if (expiresIn === null) {
    output.textContent = "never";
    return;
  }
  const deadline = Date.now() + expiresIn;
  const tick = () => {
    const left = deadline - Date.now();
    output.textContent = left > 0 ? duration(left) : "expired";
    output.classList.toggle("expired", left <= 0);
    if (left <= 0) clearInterval(countdownTimer);
  };
  tick();
  countdownTimer = setInterval(tick, 1000);
}

/** Show everything a service id's storage holds. */
async function openStorage(id) {
  const [strings, inventory] = await Promise.all([
    call("GET", `${GMS}/${segment(id)}/storage`),
    call("GET", `/console/api/services/${segment(id)}/storage`),
  ]);
  openedId = id;
  $("storage").hidden = false;
  $("storage-name").textContent = inventory.name;
  $("file-count").textContent = inventory.file_count > inventory.files.length
    ? `${inventory.files.length} of ${inventory.file_count} files listed` : "";
  startCountdown(inventory.expires_in);
  const rows = [];
  for (const [key, value] of Object.entries(strings)) {
    rows.push([key, el("tr", { "data-key": key }, el("th", { scope: "row" }, el("code", {}, key)),
      el("td", {}, el("span", { class: "value" }, value)),
      el("td", { class: "row-actions" }, downloadLink(id, key, `${key}.txt`), deleteButton(id, key)))]);
  }
  for (const file of inventory.files) {
    const about = [file.content_type, bytes(file.size), file.filename].filter(Boolean).join(" · ");
    rows.push([file.key, el("tr", { "data-key": file.key }, el("th", { scope: "row" }, el("code", {}, file.key)),
      el("td", {}, el("span", { class: "badge" }, "file"), " ", el("span", { class: "file-type" }, about)),
      el("td", { class: "row-actions" }, downloadLink(id, file.key, file.filename), deleteButton(id, file.key)))]);
  }
  rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const body = $("keys").tBodies[0];
  body.replaceChildren(...rows.map(([, row]) => row));
  if (!rows.length) body.append(el("tr", {}, el("td", { colspan: 3 }, "The storage is empty.")));
}

async function extend(event) {
  event.preventDefault();
  const ttl = Number($("extend-ttl").value);
  await call("PUT", `${GMS}/${segment(openedId)}`, { json: { ttl } });
  showStatus(`The service now expires in ${duration(ttl * 1000)}.`);
  await openStorage(openedId);
}

async function deleteAll() {
  await call("DELETE", `${GMS}/${segment(openedId)}/storage`);
  showStatus("Deleted every key.");
  await openStorage(openedId);
}

/** Wire the view; load what it shows. */
export function setUpServices() {
  $("create-fields").append(fieldRow());
  $("add-field").addEventListener("click", () => {
    const row = fieldRow();
    $("create-fields").append(row);
    row.querySelector("input").focus();
  });
  $("create-files").addEventListener("change", (event) => addFiles(event.target.files));
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    addFiles(event.dataTransfer.files);
  });
  $("create-form").addEventListener("submit", (event) => attempt(() => create(event)));
  $("open-form").addEventListener("submit", (event) => {
    event.preventDefault();
    attempt(async () => { await openStorage($("service-id").value.trim()); showStatus(""); });
  });
  $("extend-form").addEventListener("submit", (event) => attempt(() => extend(event)));
  $("delete-all").addEventListener("click", () => attempt(deleteAll));
  $("refresh-storage").addEventListener("click", () => attempt(() => openStorage(openedId)));
  return attempt(loadConfigured);
}

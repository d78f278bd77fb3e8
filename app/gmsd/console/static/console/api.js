// Calls to gmsd from the console, and the DOM helpers the views share.
// Same origin: the browser sends the Basic credentials it was given for the console.

export const GMS = "/genesys/1/service";
export const CS = "/genesys/1/cs";

/** An answer of gmsd that is not a success: `message` is the API's own. */
export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/** Call gmsd; resolve to the decoded body, or reject with an ApiError carrying the API's `message`. */
export async function call(method, path, { json, form, tenant } = {}) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  if (tenant) headers.ContactCenterId = tenant;
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(`gmsd cannot be reached (${error.message})`, 0);
  }
  const text = await response.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  if (!response.ok) {
    const message = body && typeof body === "object" && body.message ? body.message : `${response.status} ${response.statusText}`;
    throw new ApiError(message, response.status);
  }
  return body;
}

/** A path segment: every character that could change the path encoded, `.` and `..` too. */
export function segment(text) {
  const encoded = encodeURIComponent(text);
  return encoded === "." ? "%2E" : encoded === ".." ? "%2E%2E" : encoded;
}

/** An element with attributes (`on*` functions become listeners) and children (strings become text). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const errorBox = () => document.getElementById("error");
const statusLine = () => document.getElementById("status");

/** Show the API's message of a failure (and log nothing: the page is the report). */
export function showError(error) {
  const box = errorBox();
  box.textContent = error instanceof ApiError ? error.message : String(error && error.message ? error.message : error);
  box.hidden = false;
  statusLine().textContent = "";
}

/** Say what just succeeded, and clear an earlier error. */
export function showStatus(text) {
  errorBox().hidden = true;
  statusLine().textContent = text;
}

/** Run an action of the page: its failure is shown, never thrown into the console. */
export async function attempt(action) {
  try {
    return await action();
  } catch (error) {
    showError(error);
    return undefined;
  }
}

/** A size as people read it. */
export function bytes(size) {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB`;
  return `${(size / 1024 / 1024).toFixed(1)} MiB`;
}

/** Time left as people read it: `1 h 02 min`, `4 min 05 s`, `12 s`. */
export function duration(millis) {
  const total = Math.max(0, Math.floor(millis / 1000));
  const d = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const two = (n) => String(n).padStart(2, "0");
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${two(m)} min`;
  if (m) return `${m} min ${two(s)} s`;
  return `${s} s`;
}

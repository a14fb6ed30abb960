// Hub web SDK: renders a customer's action cards, performs their actions, reports analytics and
// keeps the stream live over a WebSocket (with polling while the socket is down).
//
//   import { createStream } from "https://hub.example.com/sdk/hub-sdk.js";
//   const stream = createStream({
//     baseUrl: "https://hub.example.com", env: "prod", container: "default",
//     getToken: async () => (await fetch("/my-backend/hub-token")).text(),
//     element: document.querySelector("#cards"), theme: "auto",
//     onEvent: (event) => console.log(event.type, event),
//   });
//
// No dependencies, no build step. Wire protocol: docs/sdk-js.md and the plugin's API docs.

export const SDK_VERSION = "1.0.0";

const DEFAULT_POLL_SECONDS = 15;
const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 30000;
const EVENTS_FLUSH_MS = 300;
const EVENTS_BATCH = 100;
// What onEvent hears after each successful action.
const ACTION_EVENTS = { submit: "card-submitted", dismiss: "card-dismissed", snooze: "card-snoozed" };

// Snooze choices offered when a snooze button names no duration of its own.
const SNOOZE_PRESETS = [
  { label: "1 hour", until: (now) => new Date(now.getTime() + 3600e3) },
  { label: "Tomorrow morning", until: (now) => atHour(addDays(now, 1), 9) },
  { label: "Next week", until: (now) => atHour(addDays(now, 7), 9) },
];

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

let uid = 0;
const nextId = (prefix) => `hub-${prefix}-${++uid}`;

function addDays(date, days) {
  const copy = new Date(date.getTime());
  copy.setDate(copy.getDate() + days);
  return copy;
}

function atHour(date, hour) {
  const copy = new Date(date.getTime());
  copy.setHours(hour, 0, 0, 0);
  return copy;
}

// Build an element: h("button", {type: "button", onclick: fn}, "Label"). Strings are text
// nodes, never HTML, so card content can never inject markup.
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// ISO 8601 durations as Hub writes them (PT15M, P1DT2H, P2W, PT0.5S) in milliseconds.
export function parseDuration(text) {
  const match = /^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i
    .exec(String(text || ""));
  if (!match) return null;
  const [w, d, hr, m, s] = match.slice(1).map((part) => Number(part || 0));
  return ((((w * 7 + d) * 24 + hr) * 60 + m) * 60 + s) * 1000;
}

function time(value) {
  const parsed = Date.parse(value || "");
  return Number.isNaN(parsed) ? 0 : parsed;
}

function timezone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

// ---------------------------------------------------------------------------------------------
// Styles: everything themable is a CSS custom property on .hub-stream
// ---------------------------------------------------------------------------------------------

const LIGHT = `--hub-bg: #f4f5f7; --hub-card-bg: #ffffff; --hub-fg: #1b1f24; --hub-muted: #57606a;
  --hub-border: #d0d7de; --hub-accent: #0b57d0; --hub-accent-fg: #ffffff; --hub-danger: #b3261e;
  --hub-focus: #0b57d0; --hub-input-bg: #ffffff;`;
const DARK = `--hub-bg: #0d1117; --hub-card-bg: #161b22; --hub-fg: #e6edf3; --hub-muted: #9da7b3;
  --hub-border: #30363d; --hub-accent: #7cacf8; --hub-accent-fg: #0d1117; --hub-danger: #ff8a80;
  --hub-focus: #7cacf8; --hub-input-bg: #0d1117;`;

const CSS = `
.hub-stream { ${LIGHT} --hub-radius: 12px; --hub-gap: 12px;
  --hub-font: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  font-family: var(--hub-font); color: var(--hub-fg); background: var(--hub-bg);
  padding: var(--hub-gap); border-radius: var(--hub-radius); color-scheme: light; }
.hub-stream[data-hub-theme="dark"] { ${DARK} color-scheme: dark; }
@media (prefers-color-scheme: dark) {
  .hub-stream[data-hub-theme="auto"] { ${DARK} color-scheme: dark; }
}
.hub-stream *, .hub-stream *::before, .hub-stream *::after { box-sizing: border-box; }
.hub-list { list-style: none; margin: 0; padding: 0; display: grid; gap: var(--hub-gap); }
.hub-card { background: var(--hub-card-bg); border: 1px solid var(--hub-border);
  border-radius: var(--hub-radius); padding: 16px; display: grid; gap: 10px; }
.hub-card:focus-visible, .hub-stream :focus-visible { outline: 3px solid var(--hub-focus);
  outline-offset: 2px; }
.hub-headline { font-size: 1.15rem; margin: 0; line-height: 1.3; }
.hub-text { margin: 0; line-height: 1.5; white-space: pre-line; }
.hub-image { max-width: 100%; height: auto; border-radius: calc(var(--hub-radius) - 4px); }
.hub-field { display: grid; gap: 4px; border: 0; margin: 0; padding: 0; min-width: 0; }
.hub-label, .hub-field legend { font-weight: 600; font-size: .95rem; padding: 0; }
.hub-required { color: var(--hub-danger); margin-inline-start: 2px; }
.hub-input { font: inherit; color: var(--hub-fg); background: var(--hub-input-bg);
  border: 1px solid var(--hub-border); border-radius: 8px; padding: 8px 10px; width: 100%; }
.hub-input[aria-invalid="true"] { border-color: var(--hub-danger); }
.hub-option { display: flex; gap: 8px; align-items: center; font-weight: normal; }
.hub-switch { appearance: none; width: 40px; height: 22px; border-radius: 11px; margin: 0;
  background: var(--hub-border); position: relative; cursor: pointer; flex: none; }
.hub-switch::after { content: ""; position: absolute; top: 3px; left: 3px; width: 16px;
  height: 16px; border-radius: 50%; background: var(--hub-card-bg); transition: left .15s; }
.hub-switch:checked { background: var(--hub-accent); }
.hub-switch:checked::after { left: 21px; }
.hub-error { color: var(--hub-danger); font-size: .85rem; margin: 0; }
.hub-error:empty { display: none; }
.hub-actions { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
.hub-button { font: inherit; border-radius: 8px; padding: 8px 14px; cursor: pointer;
  border: 1px solid var(--hub-border); background: transparent; color: var(--hub-fg);
  text-decoration: none; display: inline-block; }
.hub-button[data-action="submit"] { background: var(--hub-accent); color: var(--hub-accent-fg);
  border-color: var(--hub-accent); }
.hub-button[disabled] { opacity: .6; cursor: progress; }
.hub-snooze-menu { display: flex; flex-wrap: wrap; gap: 6px; }
.hub-snooze-menu[hidden], .hub-feedback[hidden] { display: none; }
textarea.hub-input { resize: vertical; }
.hub-vote { margin-inline-start: auto; display: flex; gap: 4px; }
.hub-vote .hub-button { padding: 4px 8px; }
.hub-empty { color: var(--hub-muted); margin: 0; text-align: center; padding: 8px; }
.hub-status { color: var(--hub-muted); font-size: .8rem; margin: 0; }
.hub-sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
`;

function injectStyles(doc) {
  if (doc.getElementById("hub-sdk-styles")) return;
  doc.head.append(h("style", { id: "hub-sdk-styles" }, CSS));
}

// ---------------------------------------------------------------------------------------------
// Inputs: one control per inputType, each with a label and an error slot
// ---------------------------------------------------------------------------------------------

// Returns {node, read(): value|null, check(): message|"" , showError(msg)}.
function renderInput(element) {
  const id = nextId(`in-${element.id}`);
  const errorId = `${id}-error`;
  const error = h("p", { className: "hub-error", id: errorId, "aria-live": "polite" });
  const rules = element.validation || {};
  const required = element.required === true;
  const marker = required ? h("span", { className: "hub-required", "aria-hidden": "true" }, "*") : null;
  const common = { id, name: element.id, className: "hub-input", required,
    "aria-describedby": errorId, "data-input-id": element.id };
  let control;
  let read;
  let node;

  if (element.inputType === "checkbox" || element.inputType === "toggle") {
    if (element.inputType === "checkbox") {
      const boxes = (element.options || []).map((option, index) => h("input", {
        type: "checkbox", id: `${id}-${index}`, name: element.id, value: option.value,
        "data-input-id": element.id,
      }));
      node = h("fieldset", { className: "hub-field", "aria-describedby": errorId,
        "aria-required": required ? "true" : null, "data-input-id": element.id },
      h("legend", {}, element.label, marker),
      ...boxes.map((box, index) => h("label", { className: "hub-option", for: box.id }, box,
        element.options[index].label ?? element.options[index].value)),
      error);
      control = boxes[0];
      read = () => boxes.filter((box) => box.checked).map((box) => box.value);
    } else {
      control = h("input", { ...common, type: "checkbox", role: "switch", className: "hub-switch",
        required: false });
      node = h("div", { className: "hub-field" },
        h("label", { className: "hub-option hub-label", for: id }, control, element.label, marker), error);
      read = () => control.checked;
    }
  } else {
    if (element.inputType === "dropdown") {
      control = h("select", common,
        h("option", { value: "" }, element.placeholder || "Choose…"),
        ...(element.options || []).map((option) => h("option", { value: option.value },
          option.label ?? option.value)));
      read = () => control.value || null;
    } else if (element.inputType === "number") {
      control = h("input", { ...common, type: "number", inputmode: rules.integer ? "numeric" : "decimal",
        min: rules.min, max: rules.max, step: rules.integer ? "1" : "any", placeholder: element.placeholder });
      read = () => (control.value === "" ? null : Number(control.value));
    } else if (element.inputType === "date") {
      control = h("input", { ...common, type: "date", min: rules.min, max: rules.max });
      read = () => control.value || null;
    } else {
      control = h("input", { ...common, type: "text", minlength: rules.minLength,
        maxlength: rules.maxLength, placeholder: element.placeholder });
      read = () => control.value || null;
    }
    node = h("div", { className: "hub-field" },
      h("label", { className: "hub-label", for: id }, element.label, marker), control, error);
  }

  const showError = (message) => {
    error.textContent = message || "";
    const targets = element.inputType === "checkbox" ? [node] : [control];
    for (const target of targets) target.setAttribute("aria-invalid", message ? "true" : "false");
  };

  // The same rules as the server (hub/core/cards.py), so most mistakes are caught before sending.
  const check = () => {
    const value = read();
    const missing = value === null || value === "" || (Array.isArray(value) && value.length === 0);
    if (missing) return required ? "This field is required." : "";
    if (element.inputType === "text") {
      if (rules.minLength != null && value.length < rules.minLength) return `Enter at least ${rules.minLength} characters.`;
      if (rules.maxLength != null && value.length > rules.maxLength) return `Enter at most ${rules.maxLength} characters.`;
      if (rules.pattern) {
        try {
          if (!new RegExp(`^(?:${rules.pattern})$`).test(value)) return "This value does not have the expected format.";
        } catch {
          // A pattern JavaScript cannot compile is left to the server to check.
        }
      }
    }
    if (element.inputType === "number") {
      if (!Number.isFinite(value)) return "Enter a number.";
      if (rules.integer && !Number.isInteger(value)) return "Enter a whole number.";
      if (rules.min != null && value < rules.min) return `Enter ${rules.min} or more.`;
      if (rules.max != null && value > rules.max) return `Enter ${rules.max} or less.`;
    }
    if (element.inputType === "date") {
      if (rules.min && value < rules.min) return `Pick ${rules.min} or later.`;
      if (rules.max && value > rules.max) return `Pick ${rules.max} or earlier.`;
    }
    return "";
  };

  return { id: element.id, node, control, read, check, showError };
}

// ---------------------------------------------------------------------------------------------
// The stream
// ---------------------------------------------------------------------------------------------

class Stream {
  constructor(options) {
    if (!options || !options.element) throw new TypeError("createStream: `element` is required");
    if (!options.env) throw new TypeError("createStream: `env` is required");
    if (!options.token && typeof options.getToken !== "function") {
      throw new TypeError("createStream: give `token` or an async `getToken`");
    }
    this.options = options;
    this.baseUrl = String(options.baseUrl || window.location.origin).replace(/\/+$/, "");
    this.env = options.env;
    this.container = options.container || "default";
    this.element = options.element;
    this.token = options.token || null;
    this.cards = new Map(); // cardInstanceId -> card, only visible cards of this container
    this.nodes = new Map(); // cardInstanceId -> {card, article, inputs}
    this.version = null; // the feed's ETag
    this.pollSeconds = DEFAULT_POLL_SECONDS;
    this.lastEventId = null;
    this.socket = null;
    this.socketOpen = false;
    this.backoff = BACKOFF_START_MS;
    this.timers = new Set();
    this.pollTimer = null;
    this.frameBuffers = new Set(); // one per feed request in flight: the frames seen meanwhile
    this.queue = []; // analytics events waiting to be sent
    this.flushTimer = null;
    this.viewId = 0;
    this.displayed = new Set(); // cards reported as displayed in the current view
    this.destroyed = false;
    this.renderShell();
    this.setTheme(options.theme || "auto");
    this.observer = typeof IntersectionObserver === "function"
      ? new IntersectionObserver((entries) => this.onIntersect(entries), { threshold: 0.5 })
      : null;
    this.onVisibility = () => this.visibilityChanged();
    this.onPageHide = () => this.flush(true);
    document.addEventListener("visibilitychange", this.onVisibility);
    window.addEventListener("pagehide", this.onPageHide);
    this.ready = this.start();
  }

  // --- public API -----------------------------------------------------------------------------

  /** Refetch the feed now. */
  refresh() {
    return this.fetchFeed(true);
  }

  /** The visible cards, in display order. */
  list() {
    return this.sortedCards();
  }

  setTheme(theme) {
    this.root.setAttribute("data-hub-theme", ["light", "dark"].includes(theme) ? theme : "auto");
  }

  /** Stop everything: socket, timers, listeners; the rendered markup is removed. */
  destroy() {
    this.destroyed = true;
    this.flush(true);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    clearTimeout(this.pollTimer);
    if (this.socket) this.socket.close(1000, "destroyed");
    if (this.observer) this.observer.disconnect();
    document.removeEventListener("visibilitychange", this.onVisibility);
    window.removeEventListener("pagehide", this.onPageHide);
    this.root.remove();
  }

  // --- start-up ---------------------------------------------------------------------------------

  async start() {
    try {
      if (!this.token) await this.refreshToken();
    } catch (error) {
      this.emit("error", { detail: `could not get a token: ${error.message || error}` });
      return;
    }
    this.track("sdk-initialized", {});
    this.startView();
    this.connect();
    // The socket's hello frame triggers the first feed fetch; fetch now too so cards show even
    // when the socket is slow or blocked (frames received meanwhile are reconciled).
    await this.fetchFeed(false);
  }

  renderShell() {
    injectStyles(document);
    const labelId = nextId("title");
    this.live = h("div", { className: "hub-sr-only", "aria-live": "polite", role: "status" });
    this.listNode = h("div", { className: "hub-list", role: "feed", "aria-busy": "true",
      "aria-labelledby": labelId, tabindex: "-1" });
    this.empty = h("p", { className: "hub-empty" }, "You're all caught up.");
    this.status = h("p", { className: "hub-status", "data-hub-connection": "connecting" });
    this.root = h("section", { className: "hub-stream", "data-hub-container": this.container },
      h("h2", { className: "hub-sr-only", id: labelId }, this.options.title || "Your cards"),
      this.live, this.listNode, this.empty, this.status);
    this.element.append(this.root);
  }

  // --- auth and HTTP --------------------------------------------------------------------------

  async refreshToken() {
    if (typeof this.options.getToken !== "function") throw new Error("the token was refused");
    const token = await this.options.getToken();
    if (!token) throw new Error("getToken returned no token");
    this.token = String(token);
  }

  async api(method, path, body, extraHeaders = {}, retried = false) {
    const headers = { Authorization: `Bearer ${this.token}`, ...extraHeaders };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(`${this.baseUrl}/v1/${encodeURIComponent(this.env)}/sdk${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      keepalive: method === "POST" && path === "/events",
    });
    if (response.status === 401 && !retried && typeof this.options.getToken === "function") {
      await this.refreshToken();
      return this.api(method, path, body, extraHeaders, true);
    }
    return response;
  }

  // --- the feed -------------------------------------------------------------------------------

  async fetchFeed(force) {
    if (this.destroyed) return;
    const frames = [];
    this.frameBuffers.add(frames);
    try {
      const headers = this.version && !force ? { "If-None-Match": `"${this.version}"` } : {};
      const response = await this.api("GET", `/streams/${encodeURIComponent(this.container)}/cards`,
        undefined, headers);
      if (response.status === 304) return;
      if (!response.ok) {
        this.emit("error", { status: response.status, detail: await problemDetail(response) });
        return;
      }
      const feed = await response.json();
      this.version = feed.version ?? (response.headers.get("ETag") || "").replace(/"/g, "");
      this.pollSeconds = Number(feed.pollSeconds) > 0 ? Number(feed.pollSeconds) : DEFAULT_POLL_SECONDS;
      this.applyFeed(feed.cards || [], frames);
    } catch (error) {
      this.emit("error", { detail: `feed request failed: ${error.message || error}` });
    } finally {
      this.frameBuffers.delete(frames);
      this.listNode.setAttribute("aria-busy", "false");
      this.schedulePoll();
    }
  }

  // The feed is the truth as of when it was computed; frames that arrived while it was in flight
  // may be newer, so each is re-applied unless the feed already holds a newer copy of its card.
  applyFeed(cards, frames) {
    const next = new Map();
    for (const card of cards) {
      if (this.isVisibleHere(card)) next.set(card.cardInstanceId, card);
    }
    for (const frame of frames) {
      const known = next.get(frame.cardInstanceId);
      if (known && time(known.updatedAt) > time(frame.card && frame.card.updatedAt)) continue;
      if (frame.change === "removed" || !this.isVisibleHere(frame.card)) next.delete(frame.cardInstanceId);
      else next.set(frame.cardInstanceId, frame.card);
    }
    for (const id of [...this.cards.keys()]) {
      if (!next.has(id)) this.removeCard(id);
    }
    for (const card of next.values()) this.upsertCard(card);
    this.renderOrder();
  }

  isVisibleHere(card) {
    return Boolean(card) && card.status === "active"
      && (card.targetStreamIds || ["default"]).includes(this.container)
      && (!card.targetPlatforms || card.targetPlatforms.includes("web"));
  }

  schedulePoll() {
    clearTimeout(this.pollTimer);
    if (this.destroyed || this.socketOpen) return;
    this.pollTimer = setTimeout(() => this.fetchFeed(false), this.pollSeconds * 1000);
  }

  // --- the socket ------------------------------------------------------------------------------

  connect() {
    if (this.destroyed || typeof WebSocket !== "function") return;
    const url = new URL(`${this.baseUrl}/v1/${encodeURIComponent(this.env)}/sdk/socket`);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("token", this.token);
    if (this.lastEventId !== null) url.searchParams.set("lastEventId", String(this.lastEventId));
    let socket;
    try {
      socket = new WebSocket(url.toString());
    } catch {
      this.reconnectLater();
      return;
    }
    this.socket = socket;
    this.setConnection("connecting");
    socket.addEventListener("message", (message) => this.onFrame(socket, message));
    socket.addEventListener("close", (event) => this.onClose(socket, event));
  }

  onFrame(socket, message) {
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch {
      return;
    }
    this.armWatchdog(socket);
    switch (frame.type) {
      case "hello": {
        const resumed = this.lastEventId !== null;
        if (!resumed) this.lastEventId = Number(frame.lastEventId) || 0;
        this.socketOpen = true;
        this.backoff = BACKOFF_START_MS;
        this.heartbeatMs = (Number(frame.heartbeatSeconds) || 25) * 1000;
        this.armWatchdog(socket);
        clearTimeout(this.pollTimer);
        this.setConnection("live");
        // A first connection fetches the feed as of hello; a resumed one gets the missed frames.
        if (!resumed) this.fetchFeed(false);
        break;
      }
      case "card":
        this.onCardFrame(frame);
        break;
      case "resync":
        this.lastEventId = Number(frame.lastEventId) || 0;
        this.fetchFeed(true);
        break;
      case "ping":
        socket.send(JSON.stringify({ type: "pong" }));
        break;
      case "error":
        this.socketError = frame;
        this.emit("error", { status: frame.status, detail: frame.detail, source: "socket" });
        break;
      default:
        break;
    }
  }

  onCardFrame(frame) {
    const eventId = Number(frame.eventId);
    if (this.lastEventId !== null && eventId <= this.lastEventId) return; // already applied
    this.lastEventId = eventId;
    for (const buffer of this.frameBuffers) buffer.push(frame);
    const id = frame.cardInstanceId;
    if (frame.change === "removed" || !this.isVisibleHere(frame.card)) {
      if (this.cards.has(id)) this.removeCard(id);
    } else {
      this.upsertCard(frame.card);
    }
    this.renderOrder();
  }

  async onClose(socket, event) {
    if (socket !== this.socket) return;
    clearTimeout(this.watchdog);
    this.socket = null;
    this.socketOpen = false;
    if (this.destroyed) return;
    this.setConnection("offline");
    this.schedulePoll(); // poll the feed until the socket is back
    const unauthorized = event.code === 4401 || (this.socketError && this.socketError.status === 401);
    this.socketError = null;
    if (unauthorized) {
      try {
        await this.refreshToken();
      } catch {
        this.emit("error", { status: 401, detail: "the token was refused and cannot be refreshed" });
        return;
      }
    }
    this.reconnectLater();
  }

  reconnectLater() {
    const delay = this.backoff * (0.75 + Math.random() * 0.5);
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.connect();
    }, delay);
    this.timers.add(timer);
  }

  // No frame (not even a ping) for two heartbeats: the connection is dead without a close.
  armWatchdog(socket) {
    clearTimeout(this.watchdog);
    if (!this.heartbeatMs) return;
    this.watchdog = setTimeout(() => socket.close(4000, "heartbeat missed"), this.heartbeatMs * 2 + 5000);
  }

  setConnection(state) {
    this.status.setAttribute("data-hub-connection", state);
    this.status.textContent = state === "offline" ? "Offline: updates may be delayed." : "";
    this.emit("connection", { state });
  }

  // --- rendering ------------------------------------------------------------------------------

  sortedCards() {
    return [...this.cards.values()].sort((a, b) => (b.priority || 0) - (a.priority || 0)
      || time(b.publishedAt) - time(a.publishedAt));
  }

  upsertCard(card) {
    const id = card.cardInstanceId;
    const existing = this.nodes.get(id);
    if (existing && existing.card.updatedAt === card.updatedAt
        && JSON.stringify(existing.card.content) === JSON.stringify(card.content)) {
      this.cards.set(id, card);
      existing.card = card;
      return;
    }
    const isNew = !existing;
    const entry = this.renderCard(card);
    if (existing) {
      // Keep what the customer already typed when the same inputs are still there.
      for (const input of entry.inputs) {
        const old = existing.inputs.find((item) => item.id === input.id);
        if (old) copyValue(old, input);
      }
      if (this.observer) this.observer.unobserve(existing.article);
      existing.article.replaceWith(entry.article);
    }
    this.cards.set(id, card);
    this.nodes.set(id, entry);
    if (this.observer) this.observer.observe(entry.article);
    if (isNew) {
      this.live.textContent = `New card: ${cardTitle(card)}`;
      this.emit("card-added", { card });
    } else {
      this.emit("card-updated", { card });
    }
  }

  removeCard(id) {
    const entry = this.nodes.get(id);
    this.cards.delete(id);
    this.nodes.delete(id);
    if (!entry) return;
    if (this.observer) this.observer.unobserve(entry.article);
    const hadFocus = entry.article.contains(document.activeElement);
    entry.article.remove();
    if (hadFocus) this.listNode.focus();
    this.emit("card-removed", { cardInstanceId: id, card: entry.card });
  }

  // Put the articles in display order without re-creating them (focus and typing survive).
  renderOrder() {
    const cards = this.sortedCards();
    cards.forEach((card, index) => {
      const article = this.nodes.get(card.cardInstanceId).article;
      article.setAttribute("aria-posinset", String(index + 1));
      article.setAttribute("aria-setsize", String(cards.length));
      if (this.listNode.children[index] !== article) this.listNode.insertBefore(article, this.listNode.children[index] || null);
    });
    this.empty.hidden = cards.length > 0;
    if (!this.observer && document.visibilityState !== "hidden") {
      for (const card of cards) this.cardDisplayed(card);
    }
  }

  renderCard(card) {
    const id = card.cardInstanceId;
    const content = card.content || {};
    const elements = content.elements || [];
    const headlineId = nextId("card");
    const article = h("article", { className: "hub-card", tabindex: "-1", "aria-labelledby": headlineId,
      "data-card-id": id, "data-template-id": card.templateId || content.templateId });
    const form = h("form", { className: "hub-form", noValidate: true, "aria-labelledby": headlineId });
    form.noValidate = true;
    const formError = h("p", { className: "hub-error", role: "alert" });
    const inputs = [];
    const buttons = [];
    let titled = false;
    const actions = h("div", { className: "hub-actions" });
    const body = h("div", { className: "hub-body", style: "display: grid; gap: 10px" });

    for (const element of elements) {
      if (element.type === "headline") {
        body.append(h("h3", { className: "hub-headline", id: titled ? null : headlineId }, element.text));
        titled = true;
      } else if (element.type === "text") {
        body.append(h("p", { className: "hub-text" }, element.text));
      } else if (element.type === "image") {
        body.append(h("img", { className: "hub-image", src: element.url, alt: element.alt || "", loading: "lazy" }));
      } else if (element.type === "input") {
        const input = renderInput(element);
        inputs.push(input);
        body.append(input.node);
      } else if (element.type === "button") {
        const button = this.renderButton(card, element, { inputs, formError, buttons, actions });
        buttons.push(button);
        actions.append(button);
      }
    }
    if (!titled) {
      // Every card needs an accessible name: fall back to the template's name.
      article.prepend(h("h3", { className: "hub-sr-only", id: headlineId }, cardTitle(card)));
    }
    const feedback = this.renderFeedback(card);
    actions.append(this.renderVotes(card, feedback));
    form.append(body, formError, actions, feedback);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit(card, inputs, formError, buttons);
    });
    article.append(form);
    return { card, article, inputs };
  }

  renderButton(card, element, { inputs, formError, buttons, actions }) {
    const label = element.label || element.action;
    if (element.action === "link") {
      return h("a", { className: "hub-button", "data-action": "link", href: element.url, target: "_blank",
        rel: "noopener noreferrer", onclick: () => this.track("user-redirected", { url: element.url }, card) },
      label);
    }
    const button = h("button", { className: "hub-button", type: element.action === "submit" ? "submit" : "button",
      "data-action": element.action }, label);
    if (element.action === "dismiss") {
      button.addEventListener("click", () => this.act(card, "dismiss", {}, formError, buttons));
    } else if (element.action === "snooze") {
      const duration = parseDuration(element.snoozeFor);
      if (duration) {
        button.addEventListener("click", () => this.snooze(card, new Date(Date.now() + duration), formError, buttons));
      } else {
        const menu = this.renderSnoozeMenu(card, button, formError, buttons);
        button.setAttribute("aria-expanded", "false");
        button.setAttribute("aria-controls", menu.id);
        button.addEventListener("click", () => this.toggleSnoozeMenu(card, button, menu));
        queueMicrotask(() => actions.after(menu));
      }
    } else if (element.action === "custom") {
      button.addEventListener("click", () => {
        const values = {};
        for (const input of inputs) values[input.id] = input.read();
        this.emit("custom-action", { card, value: element.value ?? null, values });
      });
    }
    return button;
  }

  renderSnoozeMenu(card, button, formError, buttons) {
    const menu = h("div", { className: "hub-snooze-menu", id: nextId("snooze"), role: "group",
      "aria-label": "Snooze until", hidden: true });
    for (const preset of SNOOZE_PRESETS) {
      menu.append(h("button", { type: "button", className: "hub-button", "data-snooze": preset.label,
        onclick: () => this.snooze(card, preset.until(new Date()), formError, buttons) }, preset.label));
    }
    menu.append(h("button", { type: "button", className: "hub-button", onclick: () => {
      this.toggleSnoozeMenu(card, button, menu);
      this.track("snooze-options-canceled", {}, card);
    } }, "Cancel"));
    menu.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        this.toggleSnoozeMenu(card, button, menu);
        button.focus();
      }
    });
    return menu;
  }

  toggleSnoozeMenu(card, button, menu) {
    const open = menu.hidden;
    menu.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) {
      this.track("snooze-options-displayed", {}, card);
      menu.querySelector("button").focus();
    }
  }

  // Thumbs up votes at once; thumbs down first asks (optionally) what was wrong.
  renderVotes(card, feedback) {
    return h("div", { className: "hub-vote", role: "group", "aria-label": "Was this useful?" },
      h("button", { type: "button", className: "hub-button", "data-vote": "up", "aria-label": "Useful",
        onclick: () => this.vote(card, "up") }, "\u{1F44D}"),
      h("button", { type: "button", className: "hub-button", "data-vote": "down", "aria-label": "Not useful",
        "aria-expanded": "false", "aria-controls": feedback.id,
        onclick: (event) => this.toggleFeedback(event.currentTarget, feedback) }, "\u{1F44E}"));
  }

  renderFeedback(card) {
    const id = nextId("feedback");
    const text = h("textarea", { className: "hub-input", id: `${id}-text`, rows: "2", maxlength: "2000" });
    const panel = h("div", { className: "hub-field hub-feedback", id, role: "group",
      "aria-label": "Feedback", hidden: true },
    h("label", { className: "hub-label", for: text.id }, "What was wrong? (optional)"), text,
    h("div", { className: "hub-actions" },
      h("button", { type: "button", className: "hub-button", onclick: async () => {
        await this.vote(card, "down", text.value.trim() || undefined);
        this.closeFeedback(panel);
      } }, "Send feedback"),
      h("button", { type: "button", className: "hub-button", onclick: () => this.closeFeedback(panel) },
        "Cancel")));
    panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.closeFeedback(panel);
    });
    return panel;
  }

  toggleFeedback(button, panel) {
    const open = panel.hidden;
    panel.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) panel.querySelector("textarea").focus();
  }

  closeFeedback(panel) {
    panel.hidden = true;
    const button = panel.closest("form").querySelector('[data-vote="down"]');
    if (button) {
      button.setAttribute("aria-expanded", "false");
      button.focus();
    }
  }

  // --- actions --------------------------------------------------------------------------------

  async submit(card, inputs, formError, buttons) {
    const values = {};
    let firstBad = null;
    for (const input of inputs) {
      const message = input.check();
      input.showError(message);
      if (message && !firstBad) firstBad = input;
      const value = input.read();
      if (value !== null && !(Array.isArray(value) && value.length === 0)) values[input.id] = value;
    }
    if (firstBad) {
      formError.textContent = "Please fix the highlighted fields.";
      firstBad.control.focus();
      return;
    }
    await this.act(card, "submit", { values }, formError, buttons, inputs);
  }

  snooze(card, until, formError, buttons) {
    return this.act(card, "snooze", { until: until.toISOString().replace(/\.\d{3}Z$/, "Z") }, formError, buttons);
  }

  async vote(card, direction, message) {
    const response = await this.api("POST", `/cards/${encodeURIComponent(card.cardInstanceId)}/vote`,
      message ? { direction, message } : { direction });
    if (response.ok) {
      const entry = this.nodes.get(card.cardInstanceId);
      if (entry) {
        for (const button of entry.article.querySelectorAll("[data-vote]")) {
          button.setAttribute("aria-pressed", String(button.dataset.vote === direction));
        }
      }
      this.emit("card-voted", { card, direction });
    } else {
      this.emit("error", { status: response.status, detail: await problemDetail(response) });
    }
  }

  async act(card, action, body, formError, buttons, inputs = []) {
    for (const button of buttons) button.disabled = true;
    formError.textContent = "";
    try {
      const response = await this.api("POST", `/cards/${encodeURIComponent(card.cardInstanceId)}/${action}`, body);
      if (response.ok) {
        const result = await response.json();
        this.emit(ACTION_EVENTS[action], { card: result.card || card, ...body });
        const updated = result.card;
        if (!updated || !this.isVisibleHere(updated)) {
          this.live.textContent = action === "submit" ? "Sent." : `Card ${action}ed.`;
          this.removeCard(card.cardInstanceId);
        } else {
          this.upsertCard(updated);
        }
        this.renderOrder();
        return;
      }
      const problem = await response.json().catch(() => ({}));
      if (response.status === 404 || response.status === 409) {
        // Gone or closed elsewhere (another device): take it out of this stream.
        this.removeCard(card.cardInstanceId);
        this.renderOrder();
      } else {
        for (const error of problem.errors || []) {
          const input = inputs.find((item) => error.field === `values.${item.id}` || error.field === `body.values.${item.id}`);
          if (input) input.showError(error.reason || error.message || problem.detail);
        }
        formError.textContent = problem.detail || "Something went wrong. Please try again.";
      }
      this.emit("error", { status: response.status, detail: problem.detail, action });
    } catch (error) {
      formError.textContent = "Could not reach the server. Please try again.";
      this.emit("error", { detail: String(error.message || error), action });
    } finally {
      for (const button of buttons) button.disabled = false;
    }
  }

  // --- analytics ------------------------------------------------------------------------------

  // A view starts when the stream is shown (created, or the page becomes visible again); each
  // card is reported displayed at most once per view.
  startView() {
    this.viewId += 1;
    this.displayed = new Set();
    this.track("stream-displayed", {});
    for (const entry of this.nodes.values()) {
      if (this.observer) {
        this.observer.unobserve(entry.article);
        this.observer.observe(entry.article);
      }
    }
    if (!this.observer) this.renderOrder();
  }

  visibilityChanged() {
    if (document.visibilityState === "visible") this.startView();
    else this.flush(true);
  }

  onIntersect(entries) {
    if (document.visibilityState === "hidden") return;
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      const card = this.cards.get(entry.target.getAttribute("data-card-id"));
      if (card) this.cardDisplayed(card);
    }
  }

  cardDisplayed(card) {
    if (this.displayed.has(card.cardInstanceId)) return;
    this.displayed.add(card.cardInstanceId);
    this.track("card-displayed", {}, card);
  }

  track(name, properties, card) {
    const cards = this.sortedCards();
    const streamContext = { displayMode: "stream", streamId: this.container,
      streamLengthVisible: cards.length };
    const event = {
      analyticsEvent: name,
      timestamp: new Date().toISOString(),
      properties,
      sdkContext: { platform: "Web", sdkVersion: SDK_VERSION, sdkTimezone: timezone(),
        containerId: this.container },
      streamContext,
      eventContext: { userLocalTimestamp: localTimestamp() },
    };
    if (card) {
      streamContext.cardPositionInStream = cards.findIndex((c) => c.cardInstanceId === card.cardInstanceId) + 1;
      event.cardContext = { cardInstanceId: card.cardInstanceId };
    }
    this.queue.push(event);
    this.emit("analytics", { event });
    if (!this.flushTimer) this.flushTimer = setTimeout(() => this.flush(false), EVENTS_FLUSH_MS);
  }

  async flush(leaving) {
    clearTimeout(this.flushTimer);
    this.flushTimer = null;
    while (this.queue.length && this.token) {
      const events = this.queue.splice(0, EVENTS_BATCH);
      try {
        const response = await this.api("POST", "/events", { events });
        if (!response.ok) this.emit("error", { status: response.status, detail: await problemDetail(response) });
      } catch (error) {
        if (!leaving) this.queue.unshift(...events); // offline: try again with the next event
        return;
      }
    }
  }

  emit(type, detail) {
    const event = { type, ...detail };
    if (typeof this.options.onEvent === "function") {
      try {
        this.options.onEvent(event);
      } catch (error) {
        console.error("hub-sdk: onEvent threw", error); // eslint-disable-line no-console
      }
    }
  }
}

function copyValue(from, to) {
  if (from.node.tagName === "FIELDSET") {
    const checked = new Set(from.read());
    for (const box of to.node.querySelectorAll("input[type=checkbox]")) box.checked = checked.has(box.value);
  } else if (from.control.type === "checkbox") {
    to.control.checked = from.control.checked;
  } else {
    to.control.value = from.control.value;
  }
}

function cardTitle(card) {
  const headline = ((card.content || {}).elements || []).find((element) => element.type === "headline");
  return headline ? headline.text : card.templateName || (card.content || {}).name || "Card";
}

function localTimestamp() {
  const now = new Date();
  const offset = -now.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, "0");
  const local = new Date(now.getTime() + offset * 60000).toISOString().slice(0, 19);
  return `${local}${sign}${pad(offset / 60)}:${pad(offset % 60)}`;
}

async function problemDetail(response) {
  try {
    const problem = await response.json();
    return problem.detail || response.statusText;
  } catch {
    return response.statusText;
  }
}

/**
 * Render the signed-in customer's cards into `element` and keep them live.
 *
 * Options: baseUrl (default: this page's origin), env (required), container ("default"),
 * token or getToken (async; called again when the token is refused), element (required),
 * theme ("light" | "dark" | "auto"), title (the stream's accessible name), onEvent(event).
 * Returns the stream: refresh(), list(), setTheme(theme), destroy(), ready (a promise).
 */
export function createStream(options) {
  return new Stream(options);
}

// A stream that only shows cards: no token, no network, no analytics; its buttons do nothing.
// Staff tools (the Workbench's card preview, the Customer Center) use it to show a card exactly
// as the customer's app renders it.
class Preview extends Stream {
  constructor(options) {
    // Stream's constructor starts the network side; a preview sets up only what rendering uses.
    const self = Object.create(Preview.prototype);
    self.options = { title: "Card preview", ...options };
    self.container = options.container || "default";
    self.element = options.element;
    self.cards = new Map();
    self.nodes = new Map();
    self.observer = null;
    self.displayed = new Set();
    self.timers = new Set();
    self.destroyed = false;
    self.renderShell();
    self.setTheme(options.theme || "auto");
    self.status.remove();
    self.listNode.setAttribute("aria-busy", "false");
    return self;
  }

  show(cards) {
    for (const id of [...this.cards.keys()]) this.removeCard(id);
    for (const card of cards) this.upsertCard(card);
    this.renderOrder();
  }

  track() {}
  cardDisplayed() {}
  act() { return Promise.resolve(); }
  submit() { return Promise.resolve(); }
  destroy() { this.root.remove(); }
}

/**
 * Render `cards` (feed-shaped: cardInstanceId, priority, content.elements, ...) into `element`
 * exactly as a stream would, read-only. Options: element (required), theme, title, container.
 * Returns the preview: show(cards) to render others, setTheme(theme), destroy().
 */
export function renderPreview(options, cards = []) {
  if (!options || !options.element) throw new TypeError("renderPreview: `element` is required");
  const preview = new Preview(options);
  preview.show(cards);
  return preview;
}

// The operator console: the live feed, the refunds, the review and approval queues, one
// refund's history and the operator actions, all through refunds.v1 (see api.ts).
//
// State is a few maps updated by API answers and feed events; the tables are drawn again
// from them at most once per animation frame, so a burst of events costs one redraw.

import { api, describe, hasKey, setKey, storedKey } from "./api";
import { Feed, type FeedState } from "./feed";
import { byId, h } from "./dom";
import * as fmt from "./format";
import { type Refund, type RefundEvent, RefundStatus } from "./gen/refunds/v1/refund_pb";
import { renderDetail } from "./detail";

/** The most feed events kept on screen. */
const EVENTS_SHOWN = 500;
/** The most refunds a queue loads (a queue longer than this is an incident of its own). */
const QUEUE_PAGES = 4;

const QUEUES = {
  review: RefundStatus.REQUIRES_REVIEW,
  approval: RefundStatus.REQUIRES_APPROVAL,
} as const;
type QueueName = keyof typeof QUEUES;

interface State {
  refunds: Map<string, Refund>;
  listToken: string;
  queues: Record<QueueName, Map<string, Refund>>;
  events: RefundEvent[];
  selected: string | undefined;
  /** Bumped on every restart, so answers to an earlier key's calls are dropped. */
  generation: number;
}

const state: State = {
  refunds: new Map(),
  listToken: "",
  queues: { review: new Map(), approval: new Map() },
  events: [],
  selected: undefined,
  generation: 0,
};

let feed: Feed | undefined;
let frame = 0;

function redraw(): void {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    drawRefunds();
    drawEvents();
    drawQueue("review");
    drawQueue("approval");
  });
}

export function showError(text: string): void {
  const box = byId("error");
  box.replaceChildren(
    h("span", { class: "error-text" }, text),
    h("button", { type: "button", class: "link", id: "error-close" }, "dismiss"),
  );
  box.hidden = false;
  byId("error-close").addEventListener("click", () => (box.hidden = true));
}

function statusBadge(s: RefundStatus): HTMLElement {
  return h("span", { class: `badge ${fmt.statusClass(s)}` }, fmt.status(s));
}

function refundRow(r: Refund): HTMLTableRowElement {
  const row = h(
    "tr",
    { "data-refund-id": r.id, "data-status": RefundStatus[r.status] ?? "" },
    h("td", { class: "time" }, fmt.time(r.updateTime)),
    h("td", { class: "id", title: r.id }, fmt.shortId(r.id)),
    h("td", {}, r.provider),
    h("td", { class: "id", title: r.payment?.paymentId ?? "" }, fmt.shortId(r.payment?.paymentId ?? "")),
    h("td", { class: "num" }, fmt.money(r.amount)),
    h("td", {}, statusBadge(r.status)),
    h("td", { class: "muted" }, r.providerStatus),
  );
  if (r.id === state.selected) row.classList.add("selected");
  return row;
}

function byNewest(a: Refund, b: Refund): number {
  const at = a.createTime ? a.createTime.seconds * 1_000_000_000n + BigInt(a.createTime.nanos) : 0n;
  const bt = b.createTime ? b.createTime.seconds * 1_000_000_000n + BigInt(b.createTime.nanos) : 0n;
  return at === bt ? b.id.localeCompare(a.id) : bt > at ? 1 : -1;
}

function drawRefunds(): void {
  const rows = [...state.refunds.values()].sort(byNewest).map(refundRow);
  byId("refunds").querySelector("tbody")!.replaceChildren(...rows);
  byId("count-refunds").textContent = String(state.refunds.size);
  byId<HTMLButtonElement>("more").hidden = state.listToken === "";
}

function drawQueue(name: QueueName): void {
  const queue = state.queues[name];
  const rows = [...queue.values()].sort(byNewest).map(refundRow);
  const body = byId(name).querySelector("tbody")!;
  body.replaceChildren(...rows);
  if (rows.length === 0) {
    body.append(h("tr", { class: "empty" }, h("td", { colspan: "7" }, "Nothing waiting.")));
  }
  const badge = byId(`count-${name}`);
  badge.textContent = String(queue.size);
  badge.classList.toggle("attention", queue.size > 0);
}

function drawEvents(): void {
  const rows = state.events.map((e) => {
    const r = e.refund;
    const row = h(
      "tr",
      { "data-sequence": e.sequence.toString(), "data-refund-id": r?.id ?? "" },
      h("td", { class: "num muted" }, e.sequence.toString()),
      h("td", { class: "time", title: `${fmt.time(e.eventTime)} UTC` }, fmt.clock(e.eventTime)),
      h("td", { class: "id", title: r?.id ?? "" }, fmt.shortId(r?.id ?? "")),
      h("td", {}, r?.provider ?? ""),
      h("td", { class: "num" }, fmt.money(r?.amount)),
      h(
        "td",
        { class: "change" },
        e.previousStatus === RefundStatus.UNSPECIFIED ? "" : statusBadge(e.previousStatus),
        e.previousStatus === RefundStatus.UNSPECIFIED ? "" : " → ",
        r ? statusBadge(r.status) : "",
      ),
      h("td", { class: "actor" }, e.actor),
      h("td", { class: "note", title: e.note }, e.note),
    );
    if (r?.id === state.selected) row.classList.add("selected");
    return row;
  });
  const body = byId("events").querySelector("tbody")!;
  body.replaceChildren(...rows);
  if (rows.length === 0) {
    body.append(h("tr", { class: "empty" }, h("td", { colspan: "8" }, "No changes yet; new ones appear here as they happen.")));
  }
}

/** Records what the gateway says a refund now is, wherever the console shows it. */
export function remember(r: Refund): void {
  state.refunds.set(r.id, r);
  for (const name of Object.keys(QUEUES) as QueueName[]) {
    if (r.status === QUEUES[name]) state.queues[name].set(r.id, r);
    else state.queues[name].delete(r.id);
  }
  redraw();
}

function onEvent(e: RefundEvent): void {
  state.events.unshift(e);
  if (state.events.length > EVENTS_SHOWN) state.events.length = EVENTS_SHOWN;
  if (e.refund) {
    remember(e.refund);
    if (e.refund.id === state.selected) void select(e.refund.id, e.refund);
  }
  const conn = byId("conn");
  conn.dataset["sequence"] = e.sequence.toString();
  if (conn.dataset["state"] === "live") conn.textContent = `live · #${e.sequence}`;
  redraw();
}

function onFeedState(s: FeedState, detail: string): void {
  const conn = byId("conn");
  conn.dataset["state"] = s;
  const words: Record<FeedState, string> = {
    connecting: "connecting…",
    live: "live",
    reconnecting: "reconnecting…",
    stopped: "feed stopped",
  };
  const seq = feed?.sequence;
  conn.textContent = words[s] + (s === "live" && seq !== undefined && seq > 0n ? ` · #${seq}` : "");
  conn.title = detail;
  if (s === "stopped" || (s === "reconnecting" && detail)) {
    if (s === "stopped") showError(`Live feed: ${detail}`);
  }
}

async function loadRefunds(more: boolean): Promise<void> {
  const generation = state.generation;
  try {
    const page = await api.listRefunds({ pageSize: 100, pageToken: more ? state.listToken : "" });
    if (generation !== state.generation) return;
    for (const r of page.refunds) if (!state.refunds.has(r.id)) state.refunds.set(r.id, r);
    state.listToken = page.nextPageToken;
    redraw();
  } catch (err) {
    if (generation === state.generation) showError(`Refunds: ${describe(err)}`);
  }
}

async function loadQueue(name: QueueName): Promise<void> {
  const generation = state.generation;
  try {
    let token = "";
    for (let page = 0; page < QUEUE_PAGES; page++) {
      const answer = await api.listRefunds({ status: QUEUES[name], pageSize: 500, pageToken: token });
      if (generation !== state.generation) return;
      for (const r of answer.refunds) state.queues[name].set(r.id, r);
      token = answer.nextPageToken;
      if (token === "") break;
    }
    redraw();
  } catch (err) {
    if (generation === state.generation) showError(`${name === "review" ? "Review" : "Approval"} queue: ${describe(err)}`);
  }
}

async function select(id: string, known?: Refund): Promise<void> {
  state.selected = id;
  redraw();
  await renderDetail(byId("detail"), id, known, remember, () => state.selected === id);
}

/** Starts over (a new key): drops everything shown, loads the lists, opens the feed. */
function restart(): void {
  feed?.stop();
  state.generation++;
  state.refunds.clear();
  state.listToken = "";
  state.queues.review.clear();
  state.queues.approval.clear();
  state.events = [];
  state.selected = undefined;
  byId("error").hidden = true;
  byId("detail").replaceChildren(h("p", { class: "hint" }, "Select a refund to see its history and the actions it allows."));
  byId("whoami").textContent = hasKey() ? "with your key" : "without a key (open mode)";
  redraw();
  void loadRefunds(false);
  void loadQueue("review");
  void loadQueue("approval");
  feed = new Feed({ event: onEvent, state: onFeedState });
  feed.start();
}

function showTab(name: string): void {
  for (const button of document.querySelectorAll<HTMLButtonElement>("nav.tabs button")) {
    const active = button.dataset["tab"] === name;
    button.classList.toggle("active", active);
    button.setAttribute("aria-selected", String(active));
    byId(`tab-${button.dataset["tab"]}`).hidden = !active;
  }
}

function init(): void {
  const keyInput = byId<HTMLInputElement>("key");
  const rememberBox = byId<HTMLInputElement>("remember");
  const kept = storedKey();
  if (kept) {
    keyInput.value = kept;
    rememberBox.checked = true;
  }
  setKey(keyInput.value, rememberBox.checked);

  byId("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    setKey(keyInput.value, rememberBox.checked);
    restart();
  });
  byId("forget").addEventListener("click", () => {
    keyInput.value = "";
    rememberBox.checked = false;
    setKey("", false);
    restart();
  });
  for (const button of document.querySelectorAll<HTMLButtonElement>("nav.tabs button")) {
    button.addEventListener("click", () => showTab(button.dataset["tab"] ?? "events"));
  }
  byId("more").addEventListener("click", () => void loadRefunds(true));
  // One listener for every table: a click on a refund's row opens it.
  byId("lists").addEventListener("click", (ev) => {
    const row = (ev.target as HTMLElement).closest<HTMLTableRowElement>("tr[data-refund-id]");
    const id = row?.dataset["refundId"];
    if (id) void select(id, state.refunds.get(id));
  });
  showTab("events");
  restart();
}

init();

// One refund: what the gateway holds, the operator actions its status allows, and its whole
// history (ListRefundEvents, oldest first, with who made each change and why).
//
// Drawn again whenever the feed brings a change of this refund; the action forms are kept as
// they are while the status stays the same, so a note being typed is not lost.

import { api, describe } from "./api";
import { byId, h } from "./dom";
import * as fmt from "./format";
import { type Refund, type RefundEvent, RefundStatus } from "./gen/refunds/v1/refund_pb";

/** Pages of history read at most (1000 events each). */
const HISTORY_PAGES = 10;

type Remember = (r: Refund) => void;
type Current = () => boolean;

let drawing = 0;

export async function renderDetail(
  root: HTMLElement,
  id: string,
  known: Refund | undefined,
  remember: Remember,
  current: Current,
): Promise<void> {
  const mine = ++drawing;
  const latest = () => mine === drawing && current();
  if (root.dataset["refundId"] !== id) {
    root.replaceChildren(
      h("h2", {}, "Refund ", h("code", { id: "detail-id" }, id)),
      h("div", { id: "detail-summary" }),
      h("div", { id: "detail-actions" }),
      h("div", { id: "action-result", role: "status" }),
      h("h3", {}, "History"),
      h("div", { id: "history-box" }, h("p", { class: "hint" }, "Loading…")),
    );
    root.dataset["refundId"] = id;
    delete root.dataset["status"];
  }
  let refund = known;
  if (!refund) {
    try {
      refund = (await api.getRefund({ id })).refund;
    } catch (err) {
      if (latest()) result(`Could not read the refund: ${describe(err)}`, "error");
      return;
    }
    if (!refund || !latest()) return;
    remember(refund);
  }
  drawSummary(refund);
  const status = RefundStatus[refund.status] ?? "UNSPECIFIED";
  if (root.dataset["status"] !== status) {
    drawActions(refund, remember, current);
    root.dataset["status"] = status;
  }
  await drawHistory(id, latest);
}

function field(label: string, ...value: (Node | string)[]): Node[] {
  return [h("dt", {}, label), h("dd", {}, ...value)];
}

function drawSummary(r: Refund): void {
  const items: Node[] = [
    ...field("Status", h("span", { class: `badge ${fmt.statusClass(r.status)}` }, fmt.status(r.status))),
    ...field("Amount", fmt.money(r.amount)),
    ...field("Provider", r.provider),
    ...field("Payment", r.payment?.paymentId ?? ""),
    ...field("Request id", r.requestId),
    ...field("Provider refund", r.providerRefundId || "—"),
    ...field("Provider status", r.providerStatus || "—"),
    ...field("Created", fmt.time(r.createTime), " UTC"),
    ...field("Updated", fmt.time(r.updateTime), " UTC"),
  ];
  if (r.description) items.push(...field("Description", r.description));
  if (r.failure && (r.failure.code || r.failure.message)) {
    const f = r.failure;
    const provider = f.providerCode || f.providerMessage ? ` (provider: ${[f.providerCode, f.providerMessage].filter(Boolean).join(" ")})` : "";
    items.push(...field("Failure", h("span", { class: "failure" }, `${f.code}: ${f.message}${provider}`)));
  }
  const meta = Object.entries(r.metadata);
  if (meta.length) items.push(...field("Metadata", meta.map(([k, v]) => `${k}=${v}`).join(", ")));
  byId("detail-summary").replaceChildren(h("dl", { class: "fields" }, ...items));
}

function result(text: string, kind: "busy" | "ok" | "error"): void {
  const box = byId("action-result");
  box.textContent = text;
  box.className = `result ${kind}-text`;
  box.dataset["outcome"] = kind;
}

/** Runs one action: the buttons wait, the answer is shown, the refund drawn again. */
async function act(
  form: HTMLFormElement,
  what: string,
  call: () => Promise<Refund | undefined>,
  remember: Remember,
  current: Current,
): Promise<void> {
  const buttons = [...byId("detail-actions").querySelectorAll("button")];
  buttons.forEach((b) => (b.disabled = true));
  result(`${what}…`, "busy");
  try {
    const refund = await call();
    if (!refund) return;
    remember(refund);
    if (!current()) return;
    result(`${what}: the refund is now ${fmt.status(refund.status)}.`, "ok");
    form.reset();
    await renderDetail(byId("detail"), refund.id, refund, remember, current);
  } catch (err) {
    if (current()) result(`${what} refused: ${describe(err)}`, "error");
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

function input(id: string, placeholder: string, required = false): HTMLInputElement {
  const el = h("input", { id, type: "text", placeholder, maxlength: "1000", autocomplete: "off" });
  el.required = required;
  return el;
}

function drawActions(r: Refund, remember: Remember, current: Current): void {
  const id = r.id;
  const forms: HTMLElement[] = [];

  const sync = h("form", { id: "sync-form", class: "action" },
    h("button", { type: "submit", id: "sync-btn" }, "Sync with provider"),
    h("span", { class: "hint" }, "asks the provider now and records what it says"));
  sync.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void act(sync, "Sync", async () => (await api.syncRefund({ id })).refund, remember, current);
  });
  forms.push(sync);

  if (r.status === RefundStatus.REQUIRES_REVIEW) {
    const outcome = h("select", { id: "resolve-status" },
      h("option", { value: String(RefundStatus.SUCCEEDED) }, "succeeded (the provider paid it)"),
      h("option", { value: String(RefundStatus.FAILED) }, "failed (the provider did not pay it)"),
      h("option", { value: String(RefundStatus.CANCELED) }, "canceled"));
    const note = input("resolve-note", "what you checked at the provider (required)", true);
    const providerId = input("resolve-provider-id", "provider refund id (optional)");
    const form = h("form", { id: "resolve-form", class: "action" },
      h("strong", {}, "Resolve"), outcome, note, providerId,
      h("button", { type: "submit", id: "resolve-btn" }, "Resolve"));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const found = providerId.value.trim();
      void act(form, "Resolve", async () => (await api.resolveRefund({
        id,
        status: Number(outcome.value) as RefundStatus,
        note: note.value.trim(),
        providerRefundId: found === "" ? undefined : found,
      })).refund, remember, current);
    });
    forms.push(form);
  }

  if (r.status === RefundStatus.REQUIRES_APPROVAL) {
    const approveNote = input("approve-note", "why it may go (optional)");
    const approve = h("form", { id: "approve-form", class: "action" },
      h("strong", {}, "Approve"), approveNote,
      h("button", { type: "submit", id: "approve-btn", class: "primary" }, "Approve and send to the provider"));
    approve.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void act(approve, "Approve", async () => (await api.approveRefund({ id, note: approveNote.value.trim() })).refund, remember, current);
    });
    const cancelNote = input("cancel-note", "why it is withdrawn (optional)");
    const cancel = h("form", { id: "cancel-form", class: "action" },
      h("strong", {}, "Cancel"), cancelNote,
      h("button", { type: "submit", id: "cancel-btn", class: "danger" }, "Cancel, never send"));
    cancel.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void act(cancel, "Cancel", async () => (await api.cancelRefund({ id, note: cancelNote.value.trim() })).refund, remember, current);
    });
    forms.push(approve, cancel);
  }

  byId("detail-actions").replaceChildren(...forms);
}

async function drawHistory(id: string, latest: () => boolean): Promise<void> {
  const events: RefundEvent[] = [];
  try {
    let token = "";
    for (let page = 0; page < HISTORY_PAGES; page++) {
      const answer = await api.listRefundEvents({ id, pageSize: 1000, pageToken: token });
      events.push(...answer.events);
      token = answer.nextPageToken;
      if (token === "") break;
    }
  } catch (err) {
    if (latest()) {
      byId("history-box").replaceChildren(h("p", { class: "error-text" }, `History unavailable: ${describe(err)}`));
    }
    return;
  }
  if (!latest()) return;
  // One entry per change, oldest first: when and what on the first line, who and why on
  // the second (a table would not fit the panel's width).
  const entries = events.map((e) =>
    h("li", { "data-sequence": e.sequence.toString() },
      h("div", { class: "line" },
        h("span", { class: "num muted" }, `#${e.sequence}`),
        h("span", { class: "time" }, `${fmt.time(e.eventTime)} UTC`),
        h("span", { class: "change" },
          e.previousStatus === RefundStatus.UNSPECIFIED ? "" : h("span", { class: `badge ${fmt.statusClass(e.previousStatus)}` }, fmt.status(e.previousStatus)),
          e.previousStatus === RefundStatus.UNSPECIFIED ? "" : " → ",
          e.refund ? h("span", { class: `badge ${fmt.statusClass(e.refund.status)}` }, fmt.status(e.refund.status)) : "")),
      h("div", { class: "line" },
        h("span", { class: "actor" }, e.actor),
        h("span", { class: "note" }, e.note))));
  byId("history-box").replaceChildren(h("ol", { id: "history" }, ...entries));
}

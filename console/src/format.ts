// How values read on screen: amounts in the currency's own units, times in UTC, statuses
// and actors as short words.

import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import type { Money } from "./gen/refunds/v1/money_pb";
import { RefundStatus } from "./gen/refunds/v1/refund_pb";

const digitsCache = new Map<string, number>();

/** The currency's decimal places (MXN 2, CLP 0), from the browser's ISO 4217 data. */
function digits(currency: string): number {
  let d = digitsCache.get(currency);
  if (d === undefined) {
    try {
      d = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions()
        .maximumFractionDigits ?? 2;
    } catch {
      d = 2;
    }
    digitsCache.set(currency, d);
  }
  return d;
}

/** `123456n MXN` -> `1,234.56 MXN`; exact (bigint arithmetic, no floating point). */
export function money(m: Money | undefined): string {
  if (!m) return "";
  const d = digits(m.currencyCode);
  const negative = m.minorUnits < 0n;
  const abs = (negative ? -m.minorUnits : m.minorUnits).toString().padStart(d + 1, "0");
  const whole = abs.slice(0, abs.length - d).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const frac = d > 0 ? "." + abs.slice(abs.length - d) : "";
  return `${negative ? "-" : ""}${whole}${frac} ${m.currencyCode}`;
}

/** `2026-12-05 18:23:25` (UTC). */
export function time(ts: Timestamp | undefined): string {
  if (!ts) return "";
  return timestampDate(ts).toISOString().replace("T", " ").slice(0, 19);
}

/** `18:23:25` (UTC): the time of day, for the live feed (the full time is in the title). */
export function clock(ts: Timestamp | undefined): string {
  return time(ts).slice(11);
}

/** `REQUIRES_REVIEW` -> `requires review`. */
export function status(s: RefundStatus): string {
  const name = RefundStatus[s] ?? "UNSPECIFIED";
  return name.toLowerCase().replace(/_/g, " ");
}

/** The CSS class of a status badge. */
export function statusClass(s: RefundStatus): string {
  return "status-" + (RefundStatus[s] ?? "UNSPECIFIED").toLowerCase().replace(/_/g, "-");
}

/**
 * A long id, shortened for a table cell: its prefix (`rf_`) and its last 10 characters. Gateway
 * ids start with their creation time, so the end is what tells refunds apart; the whole id
 * is in the cell's title and in the refund's panel.
 */
export function shortId(id: string): string {
  if (id.length <= 16) return id;
  const prefix = /^[a-z]+_/.exec(id)?.[0] ?? "";
  return `${prefix}…${id.slice(-10)}`;
}

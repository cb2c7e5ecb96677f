// The live feed: WatchRefunds, resumed after every break from the last sequence seen, so the
// console misses no change and shows none twice.
//
// Where it starts: a console opened on a busy gateway should show recent changes at once,
// without replaying the whole history. The first call asks to resume after the largest
// sequence there can be; the gateway refuses with OUT_OF_RANGE and names its newest stored
// sequence (ErrorInfo metadata `head_sequence`), and the feed starts REPLAY sequences before
// it. From then on the cursor is the last sequence seen: a reconnect resumes right after it,
// and an event at or below it (never sent by the gateway, but cheap to guard) is dropped.

import { Code } from "@connectrpc/connect";
import { api, describe, problem } from "./api";
import type { RefundEvent } from "./gen/refunds/v1/refund_pb";

/** The largest uint64: above any sequence a gateway has stored. */
const BEYOND_ANY = 18446744073709551615n;
/** How many of the newest store-wide sequences the feed replays when the console opens. */
export const REPLAY = 200n;
const FIRST_RETRY_MS = 500;
const LAST_RETRY_MS = 15_000;

export type FeedState = "connecting" | "live" | "reconnecting" | "stopped";

export interface FeedHandlers {
  event(event: RefundEvent): void;
  state(state: FeedState, detail: string): void;
}

export class Feed {
  private cursor: bigint | undefined;
  private readonly abort = new AbortController();

  constructor(private readonly on: FeedHandlers) {}

  start(): void {
    void this.run();
  }

  stop(): void {
    this.abort.abort();
  }

  /** The last sequence seen (or, before the first event, where the replay starts). */
  get sequence(): bigint | undefined {
    return this.cursor;
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    let retry = FIRST_RETRY_MS;
    while (!signal.aborted) {
      try {
        this.on.state("connecting", this.cursor === undefined ? "" : `resuming after ${this.cursor}`);
        if (this.cursor === undefined) {
          this.cursor = await startingPoint(signal);
        }
        const stream = api.watchRefunds(
          { afterSequence: this.cursor },
          { signal, onHeader: () => this.on.state("live", "") },
        );
        for await (const message of stream) {
          const event = message.event;
          if (!event || event.sequence <= this.cursor) continue;
          this.cursor = event.sequence;
          retry = FIRST_RETRY_MS;
          this.on.event(event);
        }
        // The gateway ended the stream (it is shutting down): resume at once.
        this.on.state("reconnecting", "the gateway closed the feed");
        await sleep(FIRST_RETRY_MS, signal);
      } catch (err) {
        if (signal.aborted) return;
        const p = problem(err);
        if (p.connectCode === Code.Unauthenticated || p.connectCode === Code.PermissionDenied) {
          this.on.state("stopped", describe(err));
          return;
        }
        if (p.connectCode === Code.OutOfRange && p.reason === "SEQUENCE_OUT_OF_RANGE") {
          // The store behind the gateway is not the one the cursor came from: start over.
          this.cursor = undefined;
        }
        this.on.state("reconnecting", `${describe(err)}; retrying in ${Math.round(retry / 1000)} s`);
        await sleep(retry, signal);
        retry = Math.min(retry * 2, LAST_RETRY_MS);
      }
    }
  }
}

/** REPLAY sequences before the gateway's newest stored one (see the top of this file). */
async function startingPoint(signal: AbortSignal): Promise<bigint> {
  try {
    for await (const _ of api.watchRefunds({ afterSequence: BEYOND_ANY }, { signal })) {
      break;
    }
  } catch (err) {
    const p = problem(err);
    const head = p.metadata["head_sequence"];
    if (p.connectCode === Code.OutOfRange && head !== undefined && /^\d+$/.test(head)) {
      const newest = BigInt(head);
      return newest > REPLAY ? newest - REPLAY : 0n;
    }
    throw err;
  }
  throw new Error("the gateway did not say where its feed stands");
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

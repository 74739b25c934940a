// One status vocabulary for every LLaVA node, so a user reads them the same way:
// loading (yellow ring) · ready (provider) (green dot) · working / generating x tok/s (blue dot) · error (red ring),
// followed by "queued n" while messages wait and "n dropped" once the admission queue has dropped any.
import type { Node, NodeStatus } from 'node-red';

/** Node-RED shows about 20 characters under a node before it gets cramped; longer detail goes to the log. */
const MAX_TEXT = 32;
/** Token-rate updates go to every open editor; a few per second is enough to read. */
const RATE_INTERVAL_MS = 250;

export class StatusReporter {
  private waiting = 0;
  private dropped = 0;
  private last: NodeStatus = {};
  private lastRateAt = 0;

  constructor(private readonly node: Pick<Node, 'status'>) {}

  loading(what = 'model'): void {
    this.show({ fill: 'yellow', shape: 'ring', text: `loading ${what}` });
  }

  /** A Hub model being downloaded (llava-model with an org/name id). */
  downloading(percent: number): void {
    this.show({ fill: 'yellow', shape: 'ring', text: `downloading ${percent} %` });
  }

  ready(provider?: string): void {
    this.show({ fill: 'green', shape: 'dot', text: provider ? `ready (${provider})` : 'ready' });
  }

  /** What a message's handling came to when it is not "ready (provider)", e.g. "passed on (remote engine)". */
  done(text: string): void {
    this.show({ fill: 'green', shape: 'ring', text });
  }

  /** A short verb for the running step: "encoding", "projecting", "prefill". */
  working(what: string): void {
    this.show({ fill: 'blue', shape: 'dot', text: what });
  }

  /** Throttled: call it per token. */
  generating(tokensPerSecond: number): void {
    const now = Date.now();
    if (now - this.lastRateAt < RATE_INTERVAL_MS) return;
    this.lastRateAt = now;
    const rate = Number.isFinite(tokensPerSecond) ? tokensPerSecond.toFixed(1) : '…';
    this.show({ fill: 'blue', shape: 'dot', text: `generating ${rate} tok/s` });
  }

  error(err: unknown): void {
    this.show({ fill: 'red', shape: 'ring', text: errorMessage(err) });
  }

  /** Follow the admission queue: "queued n" and the total "n dropped" stay visible after the main text. */
  setQueue(state: { waiting: number; dropped: number }): void {
    if (state.waiting === this.waiting && state.dropped === this.dropped) return;
    this.waiting = state.waiting;
    this.dropped = state.dropped;
    this.show(this.last.text === undefined ? { fill: 'grey', shape: 'ring', text: '' } : this.last);
  }

  clear(): void {
    this.last = {};
    this.waiting = 0;
    this.node.status(this.dropped ? this.decorate({ fill: 'grey', shape: 'ring', text: '' }) : {});
  }

  private show(status: NodeStatus): void {
    this.last = status;
    this.node.status(this.decorate(status));
  }

  private decorate(status: NodeStatus): NodeStatus {
    let text = status.text ?? '';
    if (text.length > MAX_TEXT) text = `${text.slice(0, MAX_TEXT - 1)}…`;
    const suffix = [this.waiting ? `queued ${this.waiting}` : '', this.dropped ? `${this.dropped} dropped` : ''].filter(Boolean).join(' · ');
    if (suffix) text = text ? `${text} · ${suffix}` : suffix;
    return { ...status, text };
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err));
}

// The one way a LLaVA node handles messages: admit (queue policy), run guarded (every error → done(err), never an
// unhandled rejection — Node-RED exits the process on one), report drops, and on close abort running work and
// release references inside Node-RED's 15 s close timeout.
import type { Node, NodeMessage, NodeMessageInFlow } from 'node-red';
import { AdmissionQueue, DropReason, MAX_WAIT_MS, QUEUE_POLICIES, QueueOptions, QueuePolicy, QueueState } from './queue';
import { StatusReporter, errorMessage } from './status';

export type Send = (msg: NodeMessage | Array<NodeMessage | NodeMessage[] | null>) => void;
export type Done = (err?: Error) => void;

/**
 * status: counted in the node status only; output: sent on output `output` (0-based) of `outputs`, carrying
 * msg.llava.dropped; error: done(err), so a Catch node receives it.
 */
export type DropReport = { mode: 'status' } | { mode: 'output'; output: number; outputs: number } | { mode: 'error' };

export interface InputOptions {
  /** Handle one admitted message. Throwing or rejecting ends it with done(err). Honour `signal` (node closing). */
  process(msg: NodeMessageInFlow, send: Send, signal: AbortSignal): Promise<void> | void;
  status?: StatusReporter;
  /** Without a queue every message runs at once (still aborted on close). */
  queue?: QueueOptions;
  dropped?: DropReport;
  /**
   * Free what a message that goes no further holds (it was dropped, or it failed, so nothing downstream will): an
   * unattended flow would otherwise leak one runtime tensor per lost frame. Errors here are logged, not thrown.
   */
  release?(msg: NodeMessageInFlow): Promise<void>;
  /** Release references on close, after running work settled or the grace time ran out. */
  onClose?(removed: boolean): Promise<void> | void;
  /** How long close waits for aborted work (default 10 s, inside Node-RED's 15 s). */
  closeGraceMs?: number;
}

interface Delivery {
  msg: NodeMessageInFlow;
  send: Send;
  done: Done;
}

export const DEFAULT_CLOSE_GRACE_MS = 10_000;

/** Make any thrown value an Error with a useful message. */
export function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(errorMessage(err));
}

/** Run `work` and end the message with done() or done(err), whatever it throws (synchronously or not). */
export async function runGuarded(work: () => Promise<void> | void, done: Done): Promise<Error | undefined> {
  let failure: Error | undefined;
  try {
    await work();
  } catch (err) {
    failure = toError(err);
  }
  try {
    done(failure);
  } catch {
    // done() itself failing must not escape as an unhandled rejection either.
  }
  return failure;
}

/** Attach the input and close handlers. Returns the queue (its `state` is useful in tests and status). */
export function handleInput(node: Node, options: InputOptions): AdmissionQueue<Delivery> {
  const status = options.status;
  // Without a queue: unlimited concurrency, so nothing ever waits or is dropped (except on close).
  const queueOptions: QueueOptions = options.queue ?? { policy: 'fifo', maxQueued: 0, concurrency: Infinity };
  const queue = new AdmissionQueue<Delivery>(queueOptions, {
    run: async ({ msg, send, done }, signal) => {
      const failure = await runGuarded(() => options.process(msg, send, signal), done);
      if (failure) release(node, options, msg);
      if (failure && !signal.aborted) status?.error(failure);
    },
    dropped: (delivery, reason) => reportDrop(node, options, delivery, reason),
    changed: (state: QueueState) => status?.setQueue(state),
  });

  node.on('input', (msg: NodeMessageInFlow, send: Send, done: Done) => {
    let maxWaitMs: number | undefined;
    try {
      maxWaitMs = messageWaitLimit(msg) ?? queueOptions.maxWaitMs;
    } catch (err) {
      const failure = toError(err);
      release(node, options, msg);
      status?.error(failure);
      done(failure);
      return;
    }
    queue.push({ msg, send, done }, topicKey(msg), maxWaitMs);
  });

  node.on('close', (removed: boolean, done: () => void) => {
    void (async () => {
      try {
        const settled = await queue.close(options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS);
        if (!settled) node.warn('running work did not stop within the close grace time; releasing anyway');
        await options.onClose?.(removed);
      } catch (err) {
        node.error(`close failed: ${errorMessage(err)}`);
      } finally {
        status?.clear();
        done();
      }
    })();
  });
  return queue;
}

function release(node: Node, options: InputOptions, msg: NodeMessageInFlow): void {
  if (!options.release) return;
  const warn = (err: unknown) => node.warn(`could not free what a lost message holds: ${errorMessage(err)}`);
  try {
    // Started now, before the message travels on (a dropped one may go to an output).
    options.release(msg).catch(warn);
  } catch (err) {
    warn(err);
  }
}

/** A waiting limit in seconds (an editor field or msg.llava.maxWait) → milliseconds; `where` names it in the error. */
function waitLimitMs(seconds: unknown, where: string): number {
  const ms = Number(seconds) * 1000;
  if ((typeof seconds !== 'number' && typeof seconds !== 'string') || !(ms > 0 && ms <= MAX_WAIT_MS)) {
    throw new Error(`${where} must be a number of seconds > 0 (at most ${Math.floor(MAX_WAIT_MS / 1000)}), got ${JSON.stringify(seconds)}`);
  }
  return ms;
}

/** msg.llava.maxWait: this message's waiting limit, replacing the node's. */
function messageWaitLimit(msg: NodeMessage): number | undefined {
  const given = (msg as { llava?: { maxWait?: unknown } }).llava?.maxWait;
  if (given === undefined || given === null) return undefined;
  if (typeof given !== 'number') throw new Error(`msg.llava.maxWait must be a number of seconds, got ${typeof given}`);
  return waitLimitMs(given, 'msg.llava.maxWait');
}

/** The latest-wins key: msg.topic as text ("" when absent, so untopiced messages share one slot). */
export function topicKey(msg: NodeMessage): string {
  return msg.topic === undefined || msg.topic === null ? '' : String(msg.topic);
}

function reportDrop(node: Node, options: InputOptions, { msg, send, done }: Delivery, reason: DropReason): void {
  release(node, options, msg);
  const report = options.dropped ?? { mode: 'status' };
  const note = `message dropped (${reason})${msg.topic !== undefined ? ` for topic ${String(msg.topic)}` : ''}`;
  try {
    const llava = (msg as { llava?: unknown }).llava;
    (msg as { llava?: unknown }).llava = {
      ...(llava && typeof llava === 'object' ? llava : {}),
      dropped: { reason, at: new Date().toISOString() },
    };
    if (report.mode === 'output') {
      const out = new Array<NodeMessage | null>(report.outputs).fill(null);
      out[report.output] = msg;
      send(out);
      done();
    } else if (report.mode === 'error') {
      done(new Error(note));
    } else {
      node.debug(note);
      done();
    }
  } catch (err) {
    node.error(`reporting a dropped message failed: ${errorMessage(err)}`);
  }
}

/** The editor fields of a node with a queue (llava-generate: queuePolicy, queueLength, maxWait, dropped). */
export interface AdmissionConfig {
  queuePolicy?: unknown;
  queueLength?: unknown;
  /** Seconds a message may wait; empty = no limit. */
  maxWait?: unknown;
  dropped?: unknown;
}

/**
 * handleInput's queue and drop options from the editor fields. `outputs` is the node's output count with the
 * dropped-message output last (llava-generate: 3 when "send to a third output" is chosen).
 */
export function admissionFromConfig(config: AdmissionConfig, outputs: number): { queue: QueueOptions; dropped: DropReport } {
  const policy = config.queuePolicy ?? 'latest';
  if (!QUEUE_POLICIES.includes(policy as QueuePolicy)) {
    throw new Error(`queue policy must be one of ${QUEUE_POLICIES.join(', ')}, got ${JSON.stringify(policy)}`);
  }
  const maxQueued = config.queueLength === undefined || config.queueLength === '' ? 1 : Number(config.queueLength);
  if (!Number.isInteger(maxQueued) || maxQueued < 0) {
    throw new Error(`queue length must be a whole number ≥ 0, got ${JSON.stringify(config.queueLength)}`);
  }
  const queue: QueueOptions = { policy: policy as QueuePolicy, maxQueued };
  if (config.maxWait !== undefined && config.maxWait !== '') queue.maxWaitMs = waitLimitMs(config.maxWait, 'the waiting limit');
  switch (config.dropped ?? 'status') {
    case 'status':
      return { queue, dropped: { mode: 'status' } };
    case 'error':
      return { queue, dropped: { mode: 'error' } };
    case 'output':
      return { queue, dropped: { mode: 'output', output: outputs - 1, outputs } };
    default:
      throw new Error(`dropped must be status, output or error, got ${JSON.stringify(config.dropped)}`);
  }
}

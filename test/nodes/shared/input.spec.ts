// The shared input wrapper inside the real Node-RED runtime (node-red-node-test-helper): errors of every kind reach
// Catch nodes through done(err), drops are reported, close aborts running work and releases references.
import * as assert from 'assert';
import type { Node, NodeAPI, NodeMessage } from 'node-red';
import { handleInput, DropReport } from '../../../nodes/shared/input';
import { QueueOptions } from '../../../nodes/shared/queue';
import { StatusReporter } from '../../../nodes/shared/status';
import { coreNode, helper } from '../../support/node-red';

/** What the probe node saw, shared with the test. */
const seen = { aborted: [] as string[], closed: [] as boolean[] };

/** A test node built only from the shared helpers; msg.mode says how its work behaves. */
function probeNode(RED: NodeAPI) {
  RED.nodes.registerType('shared-probe', function (this: Node, config: any) {
    RED.nodes.createNode(this, config);
    const status = new StatusReporter(this);
    handleInput(this, {
      status,
      queue: config.queue as QueueOptions | undefined,
      dropped: config.dropped as DropReport | undefined,
      process: async (msg, send, signal) => {
        const m = msg as NodeMessage & { mode?: string };
        switch (m.mode) {
          case 'throw-sync':
            throw new Error('sync failure');
          case 'reject':
            await new Promise((r) => setTimeout(r, 5));
            throw new Error('async failure');
          case 'reject-string':
            return Promise.reject('plain string failure');
          case 'hold':
            await new Promise<void>((resolve) => {
              signal.addEventListener('abort', () => {
                seen.aborted.push(String(m.payload));
                resolve();
              });
              holding.set(String(m.payload), resolve);
            });
            if (signal.aborted) return;
            send(msg);
            return;
          default:
            send(msg);
        }
      },
      onClose: (removed) => {
        seen.closed.push(removed);
      },
    });
  });
}
const holding = new Map<string, () => void>();

const catchNode = coreNode('common/25-catch.js');
const completeNode = coreNode('common/24-complete.js');
const statusNode = coreNode('common/25-status.js');

function flow(probe: object) {
  return [
    { id: 'f1', type: 'tab' },
    { id: 'p', z: 'f1', type: 'shared-probe', ...probe, wires: [['out'], ['drop']] },
    { id: 'c', z: 'f1', type: 'catch', scope: ['p'], wires: [['caught']] },
    { id: 'k', z: 'f1', type: 'complete', scope: ['p'], wires: [['completed']] },
    { id: 's', z: 'f1', type: 'status', scope: ['p'], wires: [['statuses']] },
    { id: 'out', z: 'f1', type: 'helper' },
    { id: 'drop', z: 'f1', type: 'helper' },
    { id: 'caught', z: 'f1', type: 'helper' },
    { id: 'completed', z: 'f1', type: 'helper' },
    { id: 'statuses', z: 'f1', type: 'helper' },
  ];
}

function collect(id: string): NodeMessage[] {
  const got: NodeMessage[] = [];
  helper.getNode(id).on('input', (msg: NodeMessage) => got.push(msg));
  return got;
}

async function until(cond: () => boolean, what: string, ms = 3000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('nodes/shared handleInput in Node-RED', function () {
  let unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  beforeEach(function () {
    unhandled = [];
    seen.aborted = [];
    seen.closed = [];
    holding.clear();
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(async function () {
    process.off('unhandledRejection', onUnhandled);
    await helper.unload();
  });

  it('ends every failure with done(err): sync throw, rejection and a non-Error rejection all reach Catch', async () => {
    await helper.load([probeNode, catchNode, completeNode, statusNode], flow({}));
    const caught = collect('caught');
    const p = helper.getNode('p');
    p.receive({ mode: 'throw-sync' });
    p.receive({ mode: 'reject' });
    p.receive({ mode: 'reject-string' });
    await until(() => caught.length === 3, 'three caught errors');
    // Node-RED puts err.toString() in msg.error.message
    const messages = caught.map((m: any) => m.error.message).sort();
    assert.deepStrictEqual(messages, ['Error: async failure', 'Error: plain string failure', 'Error: sync failure']);
    assert.deepStrictEqual(unhandled, []);
  });

  it('calls done() on success: the message goes out and Complete fires', async () => {
    await helper.load([probeNode, catchNode, completeNode, statusNode], flow({}));
    const out = collect('out');
    const completed = collect('completed');
    helper.getNode('p').receive({ payload: 'hi' });
    await until(() => out.length === 1 && completed.length === 1, 'output and complete');
    assert.strictEqual(out[0].payload, 'hi');
  });

  it('sends dropped messages to the dropped output with msg.llava.dropped, and counts them in the status', async () => {
    await helper.load(
      [probeNode, catchNode, completeNode, statusNode],
      flow({ queue: { policy: 'fifo', maxQueued: 1 }, dropped: { mode: 'output', output: 1, outputs: 2 } }),
    );
    const out = collect('out');
    const drop = collect('drop');
    const statuses = collect('statuses');
    const p = helper.getNode('p');
    for (const payload of ['a', 'b', 'c']) p.receive({ mode: 'hold', payload, llava: { keep: 1 } });
    await until(() => drop.length === 1 && holding.has('a'), 'one drop');
    assert.strictEqual(drop[0].payload, 'c');
    assert.deepStrictEqual((drop[0] as any).llava.keep, 1);
    assert.strictEqual((drop[0] as any).llava.dropped.reason, 'full');
    await until(() => statuses.some((s: any) => /queued 1 · 1 dropped/.test(s.status.text)), 'status suffix');
    holding.get('a')!();
    await until(() => holding.has('b'), 'b to start');
    holding.get('b')!();
    await until(() => out.length === 2, 'two outputs');
    assert.deepStrictEqual(
      out.map((m) => m.payload),
      ['a', 'b'],
    );
  });

  it('reports drops as errors to Catch in error mode, per topic with latest-wins', async () => {
    await helper.load([probeNode, catchNode, completeNode, statusNode], flow({ queue: { policy: 'latest', maxQueued: 4 }, dropped: { mode: 'error' } }));
    const caught = collect('caught');
    const p = helper.getNode('p');
    p.receive({ mode: 'hold', payload: 'cam1-a', topic: 'cam1' });
    p.receive({ mode: 'hold', payload: 'cam1-b', topic: 'cam1' });
    p.receive({ mode: 'hold', payload: 'cam2-a', topic: 'cam2' });
    p.receive({ mode: 'hold', payload: 'cam1-c', topic: 'cam1' });
    await until(() => caught.length === 1, 'a caught drop');
    assert.strictEqual(caught[0].payload, 'cam1-b');
    assert.match((caught[0] as any).error.message, /dropped \(superseded\) for topic cam1/);
  });

  it('waiting limit: messages that wait too long reach Catch as timeout drops; msg.llava.maxWait replaces the limit; a bad one is an error', async () => {
    await helper.load(
      [probeNode, catchNode, completeNode, statusNode],
      flow({ queue: { policy: 'fifo', maxQueued: 10, maxWaitMs: 30 }, dropped: { mode: 'error' } }),
    );
    const caught = collect('caught');
    const out = collect('out');
    const p = helper.getNode('p');
    p.receive({ mode: 'hold', payload: 'running' });
    p.receive({ mode: 'hold', payload: 'late', topic: 'cam1' });
    p.receive({ mode: 'hold', payload: 'patient', llava: { maxWait: 60 } });
    p.receive({ mode: 'hold', payload: 'typo', llava: { maxWait: '5' } });
    p.receive({ mode: 'hold', payload: 'zero', llava: { maxWait: 0 } });
    await until(() => caught.length === 3, 'two bad limits and a timeout');
    const reported = Object.fromEntries(caught.map((m: any) => [m.payload, m.error.message]));
    assert.match(reported.late, /^Error: message dropped \(timeout\) for topic cam1$/);
    assert.strictEqual((caught.find((m) => m.payload === 'late') as any).llava.dropped.reason, 'timeout');
    assert.match(reported.typo, /msg\.llava\.maxWait must be a number of seconds, got string/);
    assert.match(reported.zero, /msg\.llava\.maxWait must be a number of seconds > 0/);
    holding.get('running')!();
    await until(() => holding.has('patient'), 'the patient message to run');
    holding.get('patient')!();
    await until(() => out.length === 2, 'two answers');
    assert.deepStrictEqual(
      out.map((m) => m.payload),
      ['running', 'patient'],
    );
  });

  it('on close aborts running work, drops waiting messages as closed and runs onClose', async () => {
    await helper.load(
      [probeNode, catchNode, completeNode, statusNode],
      flow({ queue: { policy: 'fifo', maxQueued: 2 }, dropped: { mode: 'output', output: 1, outputs: 2 } }),
    );
    const drop = collect('drop');
    const p = helper.getNode('p');
    p.receive({ mode: 'hold', payload: 'running' });
    p.receive({ mode: 'hold', payload: 'waiting' });
    await until(() => holding.has('running'), 'first job');
    const t0 = Date.now();
    await helper.getNode('p').close(true);
    assert.ok(Date.now() - t0 < 2000, 'close finished promptly');
    assert.deepStrictEqual(seen.aborted, ['running']);
    assert.deepStrictEqual(seen.closed, [true]);
    await until(() => drop.length === 1, 'the waiting message on the dropped output');
    assert.deepStrictEqual(
      drop.map((m: any) => [m.payload, m.llava.dropped.reason]),
      [['waiting', 'closed']],
    );
    assert.deepStrictEqual(unhandled, []);
  });
});

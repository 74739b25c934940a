import * as assert from 'assert';
import { AdmissionQueue, DropReason, QueueOptions } from '../../../nodes/shared/queue';

interface Item {
  id: string;
  topic: string;
}

/** A queue whose jobs finish only when the test releases them, recording what ran and what was dropped. */
function harness(options: QueueOptions) {
  const ran: string[] = [];
  const dropped: [string, DropReason][] = [];
  const release = new Map<string, () => void>();
  const aborted: string[] = [];
  const queue = new AdmissionQueue<Item>(options, {
    run: (item, signal) =>
      new Promise<void>((resolve) => {
        ran.push(item.id);
        release.set(item.id, resolve);
        signal.addEventListener('abort', () => {
          aborted.push(item.id);
          resolve();
        });
      }),
    dropped: (item, reason) => dropped.push([item.id, reason]),
  });
  const push = (id: string, topic = '') => queue.push({ id, topic }, topic);
  const finish = async (id: string) => {
    const r = release.get(id);
    assert.ok(r, `${id} is not running`);
    r();
    // let the queue's promise chain start the next job
    for (let i = 0; i < 5; i++) await Promise.resolve();
    await new Promise((r) => setImmediate(r));
  };
  return { queue, ran, dropped, aborted, push, finish };
}

describe('nodes/shared AdmissionQueue', () => {
  it('latest: keeps only the newest waiting message per topic and runs topics in arrival order', async () => {
    const h = harness({ policy: 'latest', maxQueued: 4 });
    h.push('a1', 'camA'); // runs
    h.push('a2', 'camA');
    h.push('b1', 'camB');
    h.push('a3', 'camA'); // replaces a2
    assert.deepStrictEqual(h.dropped, [['a2', 'superseded']]);
    assert.deepStrictEqual(h.queue.state, { waiting: 2, running: 1, dropped: 1 });
    await h.finish('a1');
    await h.finish('b1');
    await h.finish('a3');
    assert.deepStrictEqual(h.ran, ['a1', 'b1', 'a3']);
    assert.deepStrictEqual(h.queue.state, { waiting: 0, running: 0, dropped: 1 });
  });

  it('latest: beyond maxQueued topics the oldest waiting one is dropped as full', async () => {
    const h = harness({ policy: 'latest', maxQueued: 2 });
    h.push('x', 't0');
    h.push('a', 't1');
    h.push('b', 't2');
    h.push('c', 't3');
    assert.deepStrictEqual(h.dropped, [['a', 'full']]);
    await h.finish('x');
    await h.finish('b');
    assert.deepStrictEqual(h.ran, ['x', 'b', 'c']);
  });

  it('fifo: queues up to N in order and drops what arrives at a full queue', async () => {
    const h = harness({ policy: 'fifo', maxQueued: 2 });
    for (const id of ['1', '2', '3', '4', '5']) h.push(id, 'same');
    assert.deepStrictEqual(h.dropped, [
      ['4', 'full'],
      ['5', 'full'],
    ]);
    await h.finish('1');
    await h.finish('2');
    h.push('6');
    await h.finish('3');
    await h.finish('6');
    assert.deepStrictEqual(h.ran, ['1', '2', '3', '6']);
  });

  it('drop-new: drops everything that arrives while busy, then accepts again', async () => {
    const h = harness({ policy: 'drop-new', maxQueued: 5 });
    h.push('1');
    h.push('2');
    h.push('3', 'other');
    assert.deepStrictEqual(h.dropped, [
      ['2', 'busy'],
      ['3', 'busy'],
    ]);
    await h.finish('1');
    h.push('4');
    assert.deepStrictEqual(h.ran, ['1', '4']);
  });

  it('runs up to `concurrency` jobs at once', () => {
    const h = harness({ policy: 'fifo', maxQueued: 1, concurrency: 2 });
    h.push('1');
    h.push('2');
    h.push('3');
    h.push('4');
    assert.deepStrictEqual(h.ran, ['1', '2']);
    assert.deepStrictEqual(h.dropped, [['4', 'full']]);
  });

  it('close: aborts running jobs, drops waiting and later messages as closed, accounts for every message', async () => {
    const h = harness({ policy: 'fifo', maxQueued: 3 });
    for (const id of ['1', '2', '3', '4', '5']) h.push(id);
    const settled = await h.queue.close(1000);
    h.push('6');
    assert.strictEqual(settled, true);
    assert.deepStrictEqual(h.aborted, ['1']);
    const accounted = [...h.ran, ...h.dropped.map(([id]) => id)].sort();
    assert.deepStrictEqual(accounted, ['1', '2', '3', '4', '5', '6']);
    assert.deepStrictEqual(
      h.dropped.map(([, r]) => r),
      ['full', 'closed', 'closed', 'closed', 'closed'],
    );
  });

  it('close: gives up after the grace time when a job ignores its abort signal', async () => {
    const queue = new AdmissionQueue<number>(
      { policy: 'fifo', maxQueued: 0 },
      { run: () => new Promise<void>((r) => setTimeout(r, 2000).unref()), dropped: () => undefined },
    );
    queue.push(1);
    const t0 = Date.now();
    assert.strictEqual(await queue.close(100), false);
    assert.ok(Date.now() - t0 < 1000);
  });

  it('a job that throws still frees its slot', async () => {
    const ran: number[] = [];
    const queue = new AdmissionQueue<number>(
      { policy: 'fifo', maxQueued: 5 },
      {
        run: async (n) => {
          ran.push(n);
          throw new Error('boom');
        },
        dropped: () => undefined,
      },
    );
    queue.push(1);
    queue.push(2);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepStrictEqual(ran, [1, 2]);
    assert.strictEqual(queue.state.running, 0);
  });

  it('waiting limit: a message that waits longer is dropped as timeout; one that starts in time is not; push may set its own', async () => {
    const h = harness({ policy: 'fifo', maxQueued: 10, maxWaitMs: 40 });
    h.push('run'); // runs at once: no limit applies
    h.push('late1');
    h.push('late2');
    h.queue.push({ id: 'patient', topic: '' }, '', 60_000);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepStrictEqual(h.dropped, [
      ['late1', 'timeout'],
      ['late2', 'timeout'],
    ]);
    assert.deepStrictEqual(h.queue.state, { waiting: 1, running: 1, dropped: 2 });
    // Started before its limit: its timer is gone with it.
    h.queue.push({ id: 'quick', topic: '' }, '', 300);
    await h.finish('run');
    await h.finish('patient');
    assert.deepStrictEqual(h.ran, ['run', 'patient', 'quick']);
    await new Promise((r) => setTimeout(r, 400));
    await h.finish('quick');
    assert.deepStrictEqual(h.dropped.length, 2, 'every message ran or was dropped once');
    // latest wins: an entry superseded or dropped as full takes its timer with it (no second report).
    for (const topics of [
      ['cam', 'cam', 'cam'],
      ['cam1', 'cam2', 'cam3'],
    ]) {
      const l = harness({ policy: 'latest', maxQueued: 1, maxWaitMs: 30 });
      ['x', 'y', 'z'].forEach((id, i) => l.push(id, topics[i]));
      await new Promise((r) => setTimeout(r, 80));
      assert.deepStrictEqual(l.dropped, [
        ['y', topics[1] === 'cam' ? 'superseded' : 'full'],
        ['z', 'timeout'],
      ]);
    }
  });

  it('waiting limit: a message whose limit passed is dropped when its turn comes, even before its timer ran', async () => {
    const h = harness({ policy: 'fifo', maxQueued: 10 });
    h.push('first');
    h.queue.push({ id: 'late', topic: '' }, '', 1);
    h.queue.push({ id: 'patient', topic: '' }, '', 60_000);
    // The first job ends after the limit passed but before the event loop reached the timers (a busy main thread).
    const until = performance.now() + 5;
    while (performance.now() < until);
    await h.finish('first');
    assert.deepStrictEqual(h.dropped, [['late', 'timeout']]);
    assert.deepStrictEqual(h.ran, ['first', 'patient']);
    await h.finish('patient');
    await new Promise((r) => setTimeout(r, 10));
    assert.strictEqual(h.dropped.length, 1, 'the dropped message is reported once (its timer went with it)');
  });

  it('rejects bad options with a clear message', () => {
    const cb = { run: async () => undefined, dropped: () => undefined };
    assert.throws(() => new AdmissionQueue({ policy: 'newest' as never, maxQueued: 1 }, cb), /queue policy must be one of/);
    assert.throws(() => new AdmissionQueue({ policy: 'fifo', maxQueued: -1 }, cb), /queue length/);
    assert.throws(() => new AdmissionQueue({ policy: 'fifo', maxQueued: 1, concurrency: 0 }, cb), /concurrency/);
    for (const maxWaitMs of [0, -5, NaN, 2 ** 31]) {
      assert.throws(
        () => new AdmissionQueue({ policy: 'fifo', maxQueued: 1, maxWaitMs }, cb),
        /the waiting limit must be more than 0 and at most 2147483647 ms/,
      );
    }
  });
});

// The inference queue: one job at a time, first in first out, except that jobs sharing a batch key run together
// (generations that batch their decode steps in the worker) when they reach the head of the queue.
import { strict as assert } from 'assert';
import { Scheduler } from '../../lib/runtime/scheduler';

/** A job that records its start and finishes when released. */
function gate(log: string[], label: string) {
  let release!: () => void;
  const done = new Promise<void>((r) => (release = r));
  return {
    release,
    job: (batchKey?: string) => ({
      label,
      batchKey,
      run: async () => {
        log.push(`start ${label}`);
        await done;
        log.push(`end ${label}`);
      },
    }),
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('runtime/scheduler', () => {
  it('runs jobs with the same batch key together, others alone, in queue order', async () => {
    const log: string[] = [];
    const s = new Scheduler(() => {});
    const [a, b, vision, c, d] = ['a', 'b', 'vision', 'c', 'd'].map((l) => gate(log, l));
    const all = [s.submit(a.job('gen')), s.submit(b.job('gen')), s.submit(vision.job()), s.submit(c.job('gen')), s.submit(d.job('other'))];
    await tick();
    assert.deepEqual(log, ['start a', 'start b'], 'a and b share a key: both run');
    assert.equal(s.depth, 3);
    a.release();
    await tick();
    assert.deepEqual(log.slice(2), ['end a'], 'the unkeyed job waits for b; c waits behind it (first in, first out)');
    b.release();
    await tick();
    assert.deepEqual(log.slice(3), ['end b', 'start vision']);
    vision.release();
    await tick();
    assert.deepEqual(log.slice(5), ['end vision', 'start c'], 'a different key does not join');
    c.release();
    d.release();
    await Promise.all(all);
    assert.deepEqual(log.slice(7), ['end c', 'start d', 'end d']);
  });
});

// Issue #5 for the stages before llm generate: clip encode and project admit messages through the same bounded
// queue (latest wins per topic, queue up to N, drop new), in a real Node-RED against a tiny model. A burst faster
// than the vision encoder no longer piles up jobs in the runtime, every message ends as an output or a reported
// drop, and a message dropped at project frees the image features it carried.
import { strict as assert } from 'assert';
import * as path from 'path';
import sharp from 'sharp';
import { getRuntime } from '../../lib/runtime';
import type { RuntimeStats } from '../../lib/runtime/types';
import { helper, repoRoot, useNodeRedHelper } from '../support/node-red';
import { tinyModel } from '../support/tiny-model';

const llavaNodes = ['llava-model', 'llava-image-load', 'llava-clip-encode', 'llava-project'].map((t) =>
  require(path.join(repoRoot, 'dist', 'nodes', `${t}.js`)),
);

type Msg = Record<string, any>;

const BURST = 24;

/** On a tab, Node-RED takes nodes without x/y for config nodes. */
const onTab = (n: Msg): Msg => ({ z: 'tab', x: 100, y: 100, ...n });

function flow(modelDir: string, nodes: Msg[]): any[] {
  return [
    { id: 'tab', type: 'tab' },
    { id: 'model', type: 'llava-model', modelDir, provider: 'cpu', threads: 1, variant: 'fp32', preset: 'auto', imageRoots: '' },
    ...nodes.map(onTab),
  ];
}

/** Messages arriving at a helper node, in order. */
function collect(id: string): Msg[] {
  const seen: Msg[] = [];
  helper.getNode(id).on('input', (m: Msg) => seen.push(m));
  return seen;
}

async function until(what: string, ready: () => boolean, timeoutMs = 60_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !ready(); await new Promise((r) => setTimeout(r, 10))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
  }
}

/** The highest runtime queue seen while `work` runs and until `settled` holds. */
async function runtimeQueuePeak(work: () => void, settled: () => boolean): Promise<number> {
  let peak = 0;
  const stop = getRuntime().onStats((s: RuntimeStats) => (peak = Math.max(peak, s.queued)));
  try {
    work();
    await until('the burst to settle', settled);
  } finally {
    stop();
  }
  return peak;
}

/** Texts the node has shown in its status (the test helper wraps node methods in sinon spies). */
function statusTexts(id: string): string[] {
  const node = helper.getNode(id) as unknown as { status: { args: Array<[{ text?: string }]> } };
  return node.status.args.map((a) => a[0].text ?? '');
}

describe('LLaVA stage nodes: bounded admission queue (clip encode, project)', function () {
  useNodeRedHelper();
  const tiny = () => tinyModel({ layout: 'split', decoder: 'portable' });
  let pixels: Msg;

  before(async () => {
    // Preprocessed pixels as image load makes them, sent straight to clip encode so the burst is a burst.
    const image = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 20, g: 140, b: 200 } } })
      .jpeg()
      .toBuffer();
    await helper.load(
      llavaNodes,
      flow(tiny().dir, [
        { id: 'load', type: 'llava-image-load', model: 'model', wires: [['loaded']] },
        { id: 'loaded', type: 'helper' },
      ]),
    );
    const loaded = collect('loaded');
    helper.getNode('load').receive({ payload: image });
    await until('image load', () => loaded.length === 1);
    pixels = loaded[0].llava.pixels;
    await helper.unload();
  });

  /** A clip encode node with the given queue fields, its outputs to helpers `out` and `dropped`; model loaded. */
  async function loadEncode(queue: Msg): Promise<{ outs: Msg[]; drops: Msg[] }> {
    const outputs = queue.dropped === 'output' ? 2 : 1;
    await helper.load(
      llavaNodes,
      flow(tiny().dir, [
        { id: 'encode', type: 'llava-clip-encode', model: 'model', ...queue, outputs, wires: outputs === 2 ? [['out'], ['dropped']] : [['out']] },
        { id: 'out', type: 'helper' },
        { id: 'dropped', type: 'helper' },
      ]),
    );
    const outs = collect('out');
    const drops = collect('dropped');
    // Warm up: the model loaded and one image encoded, so the burst meets a running node.
    helper.getNode('encode').receive({ topic: 'warmup', llava: { pixels } });
    await until('the warm-up frame', () => outs.length === 1);
    outs.length = 0;
    return { outs, drops };
  }

  const burst = (id: string, count: number, msg: (n: number) => Msg) => () => {
    for (let n = 0; n < count; n++) helper.getNode(id).receive(msg(n));
  };

  it('latest wins per topic: a burst keeps the runtime queue bounded; each frame is encoded or reported superseded', async () => {
    const { outs, drops } = await loadEncode({ queuePolicy: 'latest', queueLength: 1, dropped: 'output' });
    const peak = await runtimeQueuePeak(
      burst('encode', BURST, (n) => ({ topic: 'camera/door', n, llava: { pixels } })),
      () => outs.length + drops.length === BURST,
    );
    // One job runs at a time per node: without the queue all 24 frames would wait inside the runtime.
    assert.ok(peak <= 1, `runtime queue peaked at ${peak}`);
    const ends = [...outs, ...drops].map((m) => m.n).sort((a, b) => a - b);
    assert.deepEqual(
      ends,
      Array.from({ length: BURST }, (_, n) => n),
      'every frame ends exactly once',
    );
    assert.ok(drops.length >= BURST - 3, `${drops.length} of ${BURST} superseded`);
    for (const d of drops) {
      assert.equal(d.llava.dropped.reason, 'superseded');
      assert.ok(!Number.isNaN(Date.parse(d.llava.dropped.at)), 'dropped.at is a time');
      assert.equal(d.llava.imageFeatures, undefined, 'a dropped frame was never encoded');
    }
    assert.equal(outs.at(-1)!.n, BURST - 1, 'the newest frame is the one encoded last');
    for (const o of outs) assert.equal(typeof o.llava.imageFeatures.handle.handle, 'string');
    await getRuntime().free(outs.map((o) => o.llava.imageFeatures.handle));
  });

  it('latest wins keeps one slot per topic: two cameras each get their newest frame encoded', async () => {
    const { outs, drops } = await loadEncode({ queuePolicy: 'latest', queueLength: 2, dropped: 'output' });
    const peak = await runtimeQueuePeak(
      burst('encode', BURST, (n) => ({ topic: `camera/${n % 2 ? 'yard' : 'door'}`, n, llava: { pixels } })),
      () => outs.length + drops.length === BURST,
    );
    assert.ok(peak <= 1, `runtime queue peaked at ${peak}`);
    assert.ok(outs.length <= 5, `${outs.length} of ${BURST} encoded: one slot per camera, the rest superseded`);
    const encoded = new Set(outs.map((m) => m.n));
    assert.ok(encoded.has(BURST - 1) && encoded.has(BURST - 2), `newest frame of each camera encoded: ${[...encoded]}`);
    assert.ok(drops.every((d) => d.llava.dropped.reason === 'superseded'));
    await getRuntime().free(outs.map((o) => o.llava.imageFeatures.handle));
  });

  it('queue in order with 3 waiting: at most 3 wait, the rest are reported full, in arrival order', async () => {
    const { outs, drops } = await loadEncode({ queuePolicy: 'fifo', queueLength: 3, dropped: 'output' });
    await runtimeQueuePeak(
      burst('encode', BURST, (n) => ({ topic: 'camera/door', n, llava: { pixels } })),
      () => outs.length + drops.length === BURST,
    );
    const waiting = statusTexts('encode').map((t) => Number(/queued (\d+)/.exec(t)?.[1] ?? 0));
    assert.equal(Math.max(...waiting), 3, `queued counts shown: ${[...new Set(waiting)]}`);
    assert.ok(drops.every((d) => d.llava.dropped.reason === 'full'));
    assert.ok(outs.length >= 4 && drops.length > 0, `${outs.length} encoded, ${drops.length} dropped`);
    assert.deepEqual(
      outs.map((m) => m.n),
      [...outs.map((m) => m.n)].sort((a, b) => a - b),
      'encoded in arrival order',
    );
    assert.deepEqual(
      [...outs, ...drops].map((m) => m.n).sort((a, b) => a - b),
      Array.from({ length: BURST }, (_, n) => n),
    );
    await getRuntime().free(outs.map((o) => o.llava.imageFeatures.handle));
  });

  it('without queue fields (a flow saved before stages had a queue): in order, 10 waiting, drops counted in the status', async () => {
    const { outs } = await loadEncode({});
    await runtimeQueuePeak(
      burst('encode', BURST, (n) => ({ n, llava: { pixels } })),
      () => outs.length === 11,
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(outs.length, 11, 'one running and 10 waiting were encoded');
    assert.deepEqual(
      outs.map((m) => m.n),
      Array.from({ length: 11 }, (_, n) => n),
    );
    assert.match(statusTexts('encode').at(-1)!, new RegExp(`· ${BURST - 11} dropped$`));
    await getRuntime().free(outs.map((o) => o.llava.imageFeatures.handle));
  });

  it('project: a dropped message frees the image features it carried (runtime handles back to the baseline)', async () => {
    await helper.load(
      llavaNodes,
      flow(tiny().dir, [
        { id: 'encode', type: 'llava-clip-encode', model: 'model', queuePolicy: 'fifo', queueLength: BURST, dropped: 'status', wires: [['encoded']] },
        { id: 'encoded', type: 'helper' },
        {
          id: 'project',
          type: 'llava-project',
          model: 'model',
          queuePolicy: 'drop-new',
          queueLength: 0,
          dropped: 'output',
          outputs: 2,
          wires: [['out'], ['dropped']],
        },
        { id: 'out', type: 'helper' },
        { id: 'dropped', type: 'helper' },
      ]),
    );
    const encoded = collect('encoded');
    const outs = collect('out');
    const drops = collect('dropped');
    const runtime = getRuntime();
    // The model loads before the baseline, so only the features made here count.
    helper.getNode('encode').receive({ llava: { pixels } });
    await until('the warm-up features', () => encoded.length === 1);
    await runtime.free(encoded.pop()!.llava.imageFeatures.handle);
    const baseline = runtime.stats().handles;

    burst('encode', 8, (n) => ({ topic: 'camera/door', n, llava: { pixels } }))();
    await until('8 feature handles', () => encoded.length === 8);
    assert.equal(runtime.stats().handles, baseline + 8);
    for (const m of encoded) helper.getNode('project').receive(m);
    await until('project to settle', () => outs.length + drops.length === 8);
    assert.ok(drops.length > 0, 'drop-new dropped messages that came while projecting');
    for (const d of drops) assert.equal(d.llava.dropped.reason, 'busy');
    // What remains: the embeddings of the projected messages (llm generate would free them).
    await until('dropped features freed', () => runtime.stats().handles === baseline + outs.length, 5_000);
    await runtime.free(outs.map((o) => o.llava.imageEmbeds.handle));
    assert.equal(runtime.stats().handles, baseline);
  });
});

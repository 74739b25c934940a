// Every flow node is declared through one kit: the same admission queue (image load has one too), the same policy
// for a bad configuration (each message fails with the reason, the status says it), and a message that goes no
// further frees the image it holds. In a real Node-RED against a tiny model.
import { strict as assert } from 'assert';
import * as path from 'path';
import type { NodeStatus } from 'node-red';
import sharp from 'sharp';
import { getRuntime } from '../../lib/runtime';
import { coreNode, helper, repoRoot, useNodeRedHelper } from '../support/node-red';
import { tinyModel } from '../support/tiny-model';

type Msg = Record<string, any>;

const llavaNodes = ['llava-model', 'llava-image-load', 'llava-clip-encode', 'llava-project', 'llava-prompt-template', 'llava-generate'].map((t) =>
  require(path.join(repoRoot, 'dist', 'nodes', `${t}.js`)),
);
const catchNode = coreNode('common/25-catch.js');

const onTab = (n: Msg): Msg => ({ z: 'tab', x: 100, y: 100, ...n });

function flow(modelDir: string, nodes: Msg[]): any[] {
  return [
    { id: 'tab', type: 'tab' },
    { id: 'model', type: 'llava-model', modelDir, provider: 'cpu', threads: 1, variant: 'fp32', preset: 'auto', imageRoots: '' },
    ...[{ id: 'catch', type: 'catch', scope: null, uncaught: false, wires: [['caught']] }, { id: 'caught', type: 'helper' }, ...nodes].map(onTab),
  ];
}

function collect(id: string): Msg[] {
  const seen: Msg[] = [];
  helper.getNode(id).on('input', (m: Msg) => seen.push(m));
  return seen;
}

async function until(what: string, ready: () => boolean, timeoutMs = 30_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !ready(); await new Promise((r) => setTimeout(r, 10))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
  }
}

function lastStatus(id: string): NodeStatus | undefined {
  const spy = helper.getNode(id).status as unknown as { args: Array<[NodeStatus]> };
  return spy.args.at(-1)?.[0];
}

describe('LLaVA nodes: one kit (queue, configuration errors, freeing)', function () {
  useNodeRedHelper();
  const tiny = () => tinyModel({ layout: 'split', decoder: 'portable' });
  let image: Buffer;
  before(async () => {
    image = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 20, g: 140, b: 200 } } })
      .jpeg()
      .toBuffer();
  });

  it('image load admits through a queue: latest wins per topic, every frame decoded or reported superseded', async () => {
    await helper.load(
      [...llavaNodes, catchNode],
      flow(tiny().dir, [
        {
          id: 'load',
          type: 'llava-image-load',
          model: 'model',
          queuePolicy: 'latest',
          queueLength: 1,
          dropped: 'output',
          outputs: 2,
          wires: [['out'], ['dropped']],
        },
        { id: 'out', type: 'helper' },
        { id: 'dropped', type: 'helper' },
      ]),
    );
    const outs = collect('out');
    const drops = collect('dropped');
    helper.getNode('load').receive({ payload: image, n: -1 });
    await until('the model and a first image', () => outs.length === 1);
    outs.length = 0;
    for (let n = 0; n < 12; n++) helper.getNode('load').receive({ payload: image, topic: 'cam', n });
    await until('the burst', () => outs.length + drops.length === 12);
    assert.deepEqual(
      [...outs, ...drops].map((m) => m.n).sort((a, b) => a - b),
      Array.from({ length: 12 }, (_, n) => n),
    );
    assert.ok(drops.length >= 9, `${drops.length} of 12 superseded: one decodes, one waits`);
    for (const d of drops) assert.equal(d.llava.dropped.reason, 'superseded');
    assert.equal(outs.at(-1)!.n, 11, 'the newest frame is decoded last');
    for (const o of outs) assert.ok(Buffer.isBuffer(o.llava.pixels.data));
    assert.equal(lastStatus('load')?.text, `ready (cpu) · ${drops.length} dropped`);
  });

  it('image load without queue fields (flows saved before it had a queue): one at a time, in order, nothing lost to a burst', async () => {
    await helper.load(
      [...llavaNodes, catchNode],
      flow(tiny().dir, [
        { id: 'load', type: 'llava-image-load', model: 'model', wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]),
    );
    const outs = collect('out');
    const statuses = () => (helper.getNode('load').status as unknown as { args: Array<[NodeStatus]> }).args.map((a) => a[0].text ?? '');
    for (let n = 0; n < 30; n++) helper.getNode('load').receive({ payload: image, n });
    await until('30 images', () => outs.length === 30);
    assert.deepEqual(
      outs.map((m) => m.n),
      Array.from({ length: 30 }, (_, n) => n),
    );
    assert.ok(
      statuses().some((t) => /queued \d+/.test(t)),
      'messages waited in the queue',
    );
    assert.ok(!statuses().some((t) => /dropped/.test(t)));
  });

  const badConfigs: Array<[string, Msg, RegExp]> = [
    ['llava-image-load', { queuePolicy: 'newest' }, /queue policy must be one of latest, fifo, drop-new, got "newest"/],
    ['llava-clip-encode', { dropped: 'log' }, /dropped must be status, output or error, got "log"/],
    ['llava-project', { queueLength: 'many' }, /queue length must be a whole number ≥ 0/],
    ['llava-prompt-template', { preset: 'no-such-template' }, /unknown template "no-such-template"/],
    ['llava-generate', { maxNewTokens: '0' }, /editor field maxNewTokens must be an integer >= 1, got 0/],
  ];
  for (const [type, config, reason] of badConfigs) {
    it(`${type}: a bad configuration fails each message with its reason and shows it in the status`, async () => {
      await helper.load(
        [...llavaNodes, catchNode],
        flow(tiny().dir, [
          { id: 'node', type, model: 'model', ...config, wires: [['out']] },
          { id: 'out', type: 'helper' },
        ]),
      );
      const caught = collect('caught');
      const outs = collect('out');
      for (let n = 0; n < 3; n++) helper.getNode('node').receive({ payload: image, n });
      await until('three errors', () => caught.length === 3);
      for (const c of caught) assert.match(c.error.message, reason);
      assert.deepEqual(
        caught.map((c) => c.n),
        [0, 1, 2],
      );
      assert.equal(outs.length, 0);
      // Still red once the model has loaded: its "ready" must not hide the configuration error.
      await (helper.getNode('model') as unknown as { model(): Promise<unknown> }).model();
      assert.equal(lastStatus('node')?.fill, 'red');
      assert.match(String(lastStatus('node')?.text), /^(queue|dropped|unknown|editor)/);
    });
  }

  it('a message that fails at llm generate frees the image embeddings it carried, through the model', async () => {
    await helper.load(
      [...llavaNodes, catchNode],
      flow(tiny().dir, [
        { id: 'load', type: 'llava-image-load', model: 'model', wires: [['encode']] },
        { id: 'encode', type: 'llava-clip-encode', model: 'model', wires: [['project']] },
        { id: 'project', type: 'llava-project', model: 'model', wires: [['embedded', 'generate']] },
        { id: 'embedded', type: 'helper' },
        { id: 'generate', type: 'llava-generate', model: 'model', wires: [['out'], []] },
        { id: 'out', type: 'helper' },
      ]),
    );
    await (helper.getNode('model') as unknown as { model(): Promise<unknown> }).model();
    const runtime = getRuntime();
    const baseline = runtime.stats().handles;
    const caught = collect('caught');
    const embedded = collect('embedded');
    helper.getNode('load').receive({ payload: image, llava: { options: { bogus: true } } });
    await until('the caught error', () => caught.length === 1);
    assert.match(caught[0].error.message, /msg\.llava\.options\.bogus is not a generation option/);
    assert.equal(typeof embedded[0].llava.imageEmbeds.handle.handle, 'string', 'the message carried embeddings');
    await until('the embeddings freed', () => runtime.stats().handles === baseline, 5_000);
  });
});

// Issue #7, models: broken model folders fail at load with a message saying what is wrong (the config node logs
// it, every dependent node shows it, every message ends in that error at a Catch node, the CLI prints one line);
// two flows loading one model share one load; a provider that is unavailable falls back visibly.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { NodeStatus } from 'node-red';
import { openModelFolder } from '../../lib/model/folder';
import { getRuntime } from '../../lib/runtime';
import { helper, useNodeRedHelper } from '../support/node-red';
import { tinyModel } from '../support/tiny-model';
import { catchTab, frame, handlesSettle, inBatches, Ledger, llavaNodes, modelConfig, modelSettled, Msg, onTab, pipeline, runCli, stderrLines } from './support';

interface BrokenFolder {
  name: string;
  /** Makes the broken folder from a copy of a good one. */
  spoil(dir: string): void;
  expect: RegExp;
}

const editConfig = (dir: string, edit: (c: Msg) => void) => {
  const file = path.join(dir, 'config.json');
  const config = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(config);
  fs.writeFileSync(file, JSON.stringify(config));
};

const BROKEN: BrokenFolder[] = [
  { name: 'missing folder', spoil: (d) => fs.rmSync(d, { recursive: true }), expect: /model folder not found: / },
  { name: 'missing file', spoil: (d) => fs.rmSync(path.join(d, 'onnx', 'embed_tokens.onnx')), expect: /model folder is missing onnx\/embed_tokens\.onnx/ },
  {
    name: 'corrupt .onnx',
    spoil: (d) => fs.writeFileSync(path.join(d, 'onnx', 'decoder_model_merged.onnx'), Buffer.from('this is not a protobuf'.repeat(50))),
    expect: /decoder_model_merged\.onnx failed:.*Protobuf parsing failed/,
  },
  {
    name: 'truncated .onnx',
    spoil: (d) => {
      const f = path.join(d, 'onnx', 'vision_encoder.onnx');
      fs.writeFileSync(f, fs.readFileSync(f).subarray(0, 3000));
    },
    expect: /vision_encoder\.onnx failed:/,
  },
  {
    name: 'config hidden size disagrees with the graphs',
    spoil: (d) => editConfig(d, (c) => (c.text_config.hidden_size = 128)),
    expect: /config\.json text_config\.hidden_size is 128 but the multi_modal_projector graph's image_embeds has 64 there/,
  },
  {
    name: 'config layer count disagrees with the graphs',
    spoil: (d) => editConfig(d, (c) => (c.text_config.num_hidden_layers = 3)),
    expect: /config\.json says 3 decoder layers but the decoder graph has 2/,
  },
  {
    name: 'config vision size disagrees with the graphs',
    spoil: (d) => editConfig(d, (c) => (c.vision_config.image_size = 64)),
    expect: /vision_config\.image_size is 64 but the vision encoder graph's pixel_values has 32 there/,
  },
  {
    name: 'unknown layout',
    spoil: (d) => {
      fs.rmSync(path.join(d, 'onnx'), { recursive: true });
      fs.mkdirSync(path.join(d, 'onnx'));
      fs.writeFileSync(path.join(d, 'onnx', 'model.onnx'), 'x');
    },
    expect: /model folder is missing onnx\/vision_encoder\.onnx \(onnx\/ holds model\.onnx; a LLaVA model folder has vision_encoder/,
  },
  { name: 'no onnx folder', spoil: (d) => fs.rmSync(path.join(d, 'onnx'), { recursive: true }), expect: /model folder has no onnx\/ subfolder/ },
  { name: 'config.json not JSON', spoil: (d) => fs.writeFileSync(path.join(d, 'config.json'), '{"text_config": '), expect: /config\.json is not valid JSON/ },
  {
    name: 'not a LLaVA config',
    spoil: (d) => fs.writeFileSync(path.join(d, 'config.json'), '{"model_type":"bert"}'),
    expect: /config\.json is not a supported LLaVA config: model_type is "bert"; supported: llava, llava_onevision, llava_qwen2/,
  },
];

/** The last status a node showed (the test helper spies on Node.prototype.status). */
function lastStatus(id: string): NodeStatus | undefined {
  const spy = helper.getNode(id).status as unknown as { getCalls(): Array<{ thisValue: { id: string }; args: [NodeStatus] }> };
  return spy
    .getCalls()
    .filter((c) => c.thisValue.id === id)
    .at(-1)?.args[0];
}

/** What nodes logged at `level` (the test helper spies on the log). */
function logged(level: 'ERROR' | 'WARN'): Array<{ id: string; msg: string }> {
  const spy = helper.log() as unknown as { args: Array<[{ level: number; id: string; msg: unknown }]> } & Record<string, number>;
  return spy.args
    .map((a) => a[0])
    .filter((e) => e.level === spy[level])
    .map((e) => ({ id: e.id, msg: String(e.msg) }));
}

describe('reliability: models', function () {
  useNodeRedHelper();
  const tiny = () => tinyModel({ layout: 'split', decoder: 'portable' });
  let root: string;
  const folders = new Map<string, string>();
  let image: Buffer;

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-rel-models-'));
    BROKEN.forEach((b, i) => {
      const dir = path.join(root, `broken${i}`);
      fs.cpSync(tiny().dir, dir, { recursive: true });
      b.spoil(dir);
      folders.set(b.name, dir);
    });
    image = await frame(7);
  });
  after(async () => {
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('node level: a broken folder fails at load, shows on every dependent node, and fails each message', async () => {
    const flow: Msg[] = [...catchTab()];
    BROKEN.forEach((b, i) => {
      flow.push(modelConfig(`m${i}`, folders.get(b.name)!));
      flow.push(onTab({ id: `load${i}`, type: 'llava-image-load', model: `m${i}`, wires: [[]] }));
      flow.push(onTab({ id: `gen${i}`, type: 'llava-generate', model: `m${i}`, wires: [[], []] }));
    });
    await helper.load(llavaNodes, flow as any);
    const ledger = new Ledger({ errors: ['caught'] });
    for (let i = 0; i < BROKEN.length; i++) await modelSettled(`m${i}`);
    const errors = logged('ERROR');
    BROKEN.forEach((b, i) => {
      // At load, before any message: the config node logs why, its nodes show it in red.
      const state = (helper.getNode(`m${i}`) as unknown as { modelState: { state: string; error?: Error } }).modelState;
      assert.equal(state.state, 'error', b.name);
      assert.match(state.error!.message, b.expect, b.name);
      assert.ok(
        errors.some((e) => e.id === `m${i}` && /^cannot load LLaVA model: /.test(e.msg) && b.expect.test(e.msg)),
        `${b.name}: logged`,
      );
      for (const id of [`load${i}`, `gen${i}`]) {
        const status = lastStatus(id);
        assert.equal(status?.fill, 'red', `${b.name}: ${id} shows the failure`);
        // The status text is the message, cut short with "…" to fit under the node.
        assert.ok(state.error!.message.startsWith(String(status?.text).replace(/…$/, '')), `${b.name}: ${id} says ${status?.text}`);
      }
      helper.getNode(`load${i}`).receive({ tag: `${b.name} image`, payload: image });
      helper.getNode(`gen${i}`).receive({ tag: `${b.name} text`, llava: { prompt: 'USER: hi ASSISTANT:' } });
    });
    const tags = BROKEN.flatMap((b) => [`${b.name} image`, `${b.name} text`]);
    await ledger.settle(tags);
    for (const tag of tags) {
      const b = BROKEN.find((x) => tag.startsWith(x.name))!;
      assert.match(ledger.only(tag).msg.error.message, b.expect, tag);
    }
  });

  it('CLI: each broken folder gives one line and exit 1, quickly; a good folder works afterwards', async () => {
    const file = path.join(root, 'frame.jpg');
    fs.writeFileSync(file, image);
    const cli = (model: string) => runCli(['generate', '--model', model, '--image', file, '--provider', 'cpu', '--max-new-tokens', '2']);
    const runs = await inBatches(BROKEN, 4, (b) => cli(folders.get(b.name)!));
    BROKEN.forEach((b, i) => {
      const run = runs[i];
      assert.equal(run.code, 1, `${b.name}: ${run.stderr}`);
      const lines = stderrLines(run);
      assert.equal(lines.length, 1, `${b.name}: one line, got:\n${run.stderr}`);
      assert.match(lines[0], /^llava: /);
      assert.match(lines[0], b.expect, b.name);
      assert.ok(run.cpuMs === null || run.cpuMs < 20_000, `${b.name} took ${run.cpuMs} ms of CPU (${run.ms} ms)`);
    });
    const good = await cli(tiny().dir);
    assert.equal(good.code, 0, good.stderr);
    assert.ok(good.stdout.trim().length > 0);
  });

  it('a weight variant the folder lacks is an error naming the ones it has, not a silent fp32 run', () => {
    const fp32Only = tinyModel({ layout: 'split', decoder: 'portable' });
    assert.throws(() => openModelFolder(fp32Only.dir, 'q4'), /model folder has no q4 decoder_model_merged .*available: fp32/);
    const q4Only = tinyModel({ decoder: 'optimized', quantize: 'int4' });
    assert.throws(() => openModelFolder(q4Only.dir, 'fp32'), /model folder has no fp32 decoder_model_merged .*available: q4/);
    // The small graphs exist only in fp32 and are shared by every variant.
    assert.match(openModelFolder(q4Only.dir, 'q4').files.vision, /vision_encoder\.onnx$/);
  });

  it('two flows loading the same model at once share one load and both caption', async () => {
    await getRuntime().dispose(); // a fresh runtime: no sessions cached by earlier specs
    const dir = tinyModel({ layout: 'split', decoder: 'portable', seed: 11 }).dir;
    await helper.load(llavaNodes, [
      ...catchTab(),
      { id: 'tab2', type: 'tab' },
      modelConfig('ma', dir),
      modelConfig('mb', dir),
      ...pipeline('a', 'ma'),
      ...pipeline('b', 'mb', { tab: 'tab2' }),
    ] as any);
    const ledger = new Ledger({ outputs: ['aout', 'bout'], errors: ['caught'] });
    const baseline = getRuntime().stats().handles;
    // Messages arrive while both config nodes are still loading.
    for (let i = 0; i < 3; i++) {
      helper.getNode('aload').receive({ tag: `a${i}`, payload: image, question: 'what?' });
      helper.getNode('bload').receive({ tag: `b${i}`, payload: await frame(i), question: 'what?' });
    }
    await ledger.settle(['a0', 'a1', 'a2', 'b0', 'b1', 'b2']);
    for (const tag of ['a0', 'a1', 'a2', 'b0', 'b1', 'b2']) {
      const { kind, msg } = ledger.only(tag);
      assert.equal(kind, 'output', `${tag}: ${JSON.stringify(msg.error)}`);
    }
    assert.equal(getRuntime().stats().sessions, 4, 'vision, projector, embed and decoder loaded once for both');
    const [a, b] = await Promise.all(
      ['ma', 'mb'].map((id) => (helper.getNode(id) as unknown as { model(): Promise<{ provider: string; folder: { files: object } }> }).model()),
    );
    assert.notEqual(a, b);
    assert.deepEqual(a.folder.files, b.folder.files);
    assert.equal(await handlesSettle(baseline), baseline);
  });

  it('an unavailable provider falls back to cpu: "ready (cpu)" on the nodes and one warning naming why', async function () {
    await helper.load(llavaNodes, [...catchTab(), modelConfig('model', tiny().dir, { provider: 'auto' }), ...pipeline('a', 'model')] as any);
    await modelSettled('model');
    const state = (helper.getNode('model') as unknown as { modelState: { state: string; provider: string; fallbackReasons: string[] } }).modelState;
    assert.equal(state.state, 'ready');
    if (state.fallbackReasons.length === 0) this.skip(); // a machine where CUDA or WebGPU works: nothing falls back
    assert.equal(state.provider, 'cpu');
    for (const id of ['aload', 'aencode', 'agenerate']) assert.equal(lastStatus(id)?.text, 'ready (cpu)', id);
    const warnings = logged('WARN').filter((w) => w.id === 'model');
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(warnings[0].msg, /^running on cpu: cuda: /);
    const ledger = new Ledger({ outputs: ['aout'], errors: ['caught'] });
    helper.getNode('aload').receive({ tag: 'after fallback', payload: image, question: 'what?' });
    await ledger.settle(['after fallback']);
    assert.equal(ledger.only('after fallback').kind, 'output');
    assert.equal(ledger.only('after fallback').msg.llava.generation.provider, 'cpu');
    assert.equal(logged('WARN').filter((w) => w.id === 'model').length, 1, 'warned once, not per message');
  });
});

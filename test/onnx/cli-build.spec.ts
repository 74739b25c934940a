import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { architecture } from '../../lib/onnx/architectures';
import { openModelFolder } from '../../lib/model/folder';
import { llamaTinyTokenizer, writeTinyTokenizer } from '../../lib/model/tiny-tokenizer';
import { randomWeights } from '../../lib/onnx/random-weights';
import { openMmpretrainCheckpoint } from '../../lib/onnx/checkpoint/mmpretrain';
import { clipVision, llavaLanguage } from '../support/checkpoint-writers/mmpretrain-tiny';
import { writeSafetensors } from '../support/checkpoint-writers/safetensors';
import { torchSave } from '../support/checkpoint-writers/torch-save';
import { emptyRefCache, maxAbsDiff, referenceDecoder, referenceEmbed, referenceProjector, referenceVision } from '../support/reference';
import { wave } from './support';

const CLI = path.join(__dirname, '..', '..', 'lib', 'cli.js');

function llava(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('llava build (CLI)', () => {
  let root: string;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-cli-'));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('--tiny --layout split --decoder portable writes a folder the loader reads', () => {
    const out = path.join(root, 'tiny-split');
    const r = llava('build', '--tiny', '--out', out, '--layout', 'split', '--decoder', 'portable', '--seed', '3');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /split, portable decoder, fp32/);
    const folder = openModelFolder(out);
    assert.equal(folder.layout, 'split');
    const meta = folder.config['node-red-contrib-llava'] as Record<string, unknown>;
    assert.equal(meta.source, 'preset tiny, random seed 3');
    assert.equal(fs.readFileSync(folder.files.decoder).includes('GroupQueryAttention'), false);
  });

  /** A Hugging Face LLaVA checkpoint folder (llava-hf names, safetensors) with seeded random tiny weights. */
  function hfCheckpoint(name: string) {
    const c = architecture('tiny').config;
    const weights = randomWeights(c, 9);
    const hf = path.join(root, name);
    fs.mkdirSync(hf);
    fs.writeFileSync(path.join(hf, 'config.json'), JSON.stringify(c));
    writeSafetensors(
      path.join(hf, 'model.safetensors'),
      weights.names().map((n) => {
        const w = weights.get(n)!;
        return { name: n, shape: w.shape, dtype: 'float32' as const, data: w.read() };
      }),
    );
    writeTinyTokenizer(hf, llamaTinyTokenizer());
    return { c, weights, hf };
  }

  it('--quantize-vision int8 quantizes the vision tower only; --accuracy-level needs a quantized graph', () => {
    const out = path.join(root, 'tiny-qv');
    const r = llava('build', '--tiny', '--out', out, '--quantize-vision', 'int8');
    assert.equal(r.status, 0, r.stderr);
    const folder = openModelFolder(out);
    assert.ok(fs.readFileSync(folder.files.vision).includes('MatMulNBits'));
    assert.ok(!fs.readFileSync(folder.files.decoder).includes('MatMulNBits'));
    assert.equal((folder.config['node-red-contrib-llava'] as Record<string, unknown>).quantize_vision, 'int8');
    const refused = llava('build', '--tiny', '--out', path.join(root, 'tiny-al'), '--accuracy-level', '0');
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /--accuracy-level applies to --quantize or --quantize-vision builds only/);
    assert.match(
      llava('build', '--tiny', '--out', path.join(root, 'tiny-q3'), '--quantize-vision', 'int3').stderr,
      /--quantize-vision must be one of int4, int8/,
    );
  });

  it('--from: decoder logits of the converted safetensors checkpoint equal the reference on the same weights', async () => {
    const { c, weights, hf } = hfCheckpoint('hf-fp32');
    const out = path.join(root, 'from-hf-fp32');
    const r = llava('build', '--from', hf, '--out', out, '--decoder', 'portable');
    assert.equal(r.status, 0, r.stderr);
    const folder = openModelFolder(out);
    const ids = [1, 40, 41, 42, 43];
    const embeds = referenceEmbed(weights, c, ids);
    const ref = referenceDecoder(weights, c, { embeds, attentionMask: ids.map(() => 1), positionIds: ids.map((_, i) => i), past: emptyRefCache(c, 1) });
    const t = c.text_config;
    const kv = [1, t.num_key_value_heads, 0, t.hidden_size / t.num_attention_heads];
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: new ort.Tensor('float32', Float32Array.from(embeds.data), embeds.dims),
      attention_mask: new ort.Tensor('int64', BigInt64Array.from(ids.map(() => 1n)), [1, ids.length]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map((_, i) => BigInt(i))), [1, ids.length]),
    };
    for (let l = 0; l < t.num_hidden_layers; l++) {
      for (const k of ['key', 'value']) feeds[`past_key_values.${l}.${k}`] = new ort.Tensor('float32', new Float32Array(0), kv);
    }
    const s = await ort.InferenceSession.create(folder.files.decoder);
    const { logits } = await s.run(feeds);
    // `llava build` writes last-position logits by default: the reference's last row.
    const vocab = t.vocab_size;
    assert.deepEqual(logits.dims, [1, 1, vocab]);
    assert.ok(maxAbsDiff(logits.data as Float32Array, ref.logits.data.subarray((ids.length - 1) * vocab)) < 1e-4);
  });

  it('--from converts a Hugging Face checkpoint (safetensors + tokenizer) with int8 decoder weights', async () => {
    const { c, weights, hf } = hfCheckpoint('hf');
    const out = path.join(root, 'from-hf');
    const r = llava('build', '--from', hf, '--out', out, '--quantize', 'int8', '--accuracy-level', '0', '--block-size', '64', '--lm-head', 'fp32');
    assert.equal(r.status, 0, r.stderr);
    const folder = openModelFolder(out, 'int8');
    assert.ok(folder.files.decoder.endsWith('decoder_model_merged_int8.onnx'));
    const meta = folder.config['node-red-contrib-llava'] as Record<string, unknown>;
    assert.deepEqual([meta.quantize, meta.accuracy_level, meta.block_size, meta.lm_head, meta.variant], ['int8', 0, 64, 'fp32', 'int8']);
    assert.equal(fs.readFileSync(path.join(out, 'tokenizer.json'), 'utf8'), fs.readFileSync(path.join(hf, 'tokenizer.json'), 'utf8'));
    const pixels = wave(3 * 32 * 32, 2);
    const s = await ort.InferenceSession.create(folder.files.vision);
    const { image_features } = await s.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, 32, 32]) });
    const ref = referenceProjector(weights, c, referenceVision(weights, c, pixels, 1));
    assert.ok(maxAbsDiff(image_features.data as Float32Array, ref.data) < 1e-4);
  });

  it('--from-mmpretrain converts an mmpretrain v1.5 checkpoint pair (feature layer −1, image token −200)', async () => {
    const dir = path.join(root, 'mmpre');
    fs.mkdirSync(dir);
    const tok = llamaTinyTokenizer();
    writeTinyTokenizer(path.join(dir, 'tokenizer'), tok);
    torchSave(path.join(dir, 'clip.pth'), clipVision('backbone.', 336));
    torchSave(path.join(dir, 'llava.pth'), llavaLanguage(tok.vocabSize, 2));
    const out = path.join(root, 'from-mmpre');
    const r = llava(
      'build',
      '--from-mmpretrain',
      path.join(dir, 'llava.pth'),
      '--vision',
      path.join(dir, 'clip.pth'),
      '--preset',
      'llava-7b-v1.5_caption',
      '--tokenizer',
      path.join(dir, 'tokenizer'),
      '--vision-heads',
      '2',
      '--text-heads',
      '3',
      '--out',
      out,
    );
    assert.equal(r.status, 0, r.stderr);
    const folder = openModelFolder(out);
    assert.equal(folder.layout, 'split');
    assert.equal(folder.config.vision_feature_layer, -1);
    assert.equal(folder.config.image_token_index, -200);
    assert.equal((folder.config['node-red-contrib-llava'] as Record<string, unknown>).preset, 'llava-7b-v1.5_caption');
    const { config, weights } = openMmpretrainCheckpoint({
      llava: path.join(dir, 'llava.pth'),
      vision: path.join(dir, 'clip.pth'),
      preset: 'v1.5',
      visionHeads: 2,
      textHeads: 3,
    });
    const pixels = wave(3 * 336 * 336, 1);
    const s = await ort.InferenceSession.create(folder.files.vision);
    const { image_features } = await s.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, 336, 336]) });
    assert.deepEqual(image_features.dims, [1, 576, 16]);
    const ref = referenceVision(weights, config, pixels, 1);
    assert.ok(maxAbsDiff(image_features.data as Float32Array, ref.data) < 1e-4);
  });

  it('errors are one line on stderr with a non-zero exit; --verbose adds the stack', () => {
    const missing = llava('build', '--tiny');
    assert.equal(missing.status, 2);
    assert.equal(missing.stderr, 'llava: --out DIR is required\n');
    const bad = llava('build', '--tiny', '--out', path.join(root, 'x'), '--layout', 'zigzag');
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr, 'llava: --layout must be one of transformers-js, split, got "zigzag"\n');
    const noCkpt = llava('build', '--from', path.join(root, 'nope'), '--out', path.join(root, 'y'));
    assert.equal(noCkpt.status, 1);
    assert.equal(noCkpt.stderr.trim().split('\n').length, 1);
    assert.match(noCkpt.stderr, /^llava: .*nope is not a Hugging Face model folder/);
    const verbose = llava('build', '--from', path.join(root, 'nope'), '--out', path.join(root, 'y'), '--verbose');
    assert.match(verbose.stderr, /\n\s+at /);
    const unknown = llava('frobnicate');
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /^llava: unknown command "frobnicate"; commands: .*build/);
    assert.equal(fs.existsSync(path.join(root, 'x')), false);
  });

  it('--help prints the options', () => {
    const r = llava('build', '--help');
    assert.equal(r.status, 0);
    assert.match(r.stdout, /--quantize Q\s+int4 \| int8/);
  });
});

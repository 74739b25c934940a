import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import type { LlavaConfig } from '../../lib/model/config';
import { openHfCheckpoint } from '../../lib/onnx/checkpoint/hf';
import { LLAVA_SOURCES, writeLlavaSource } from '../support/checkpoint-writers/llava-sources';
import { maxAbsDiff, referenceProjector, referenceVision, RefTensor } from '../support/reference';
import { referenceGreedy } from '../support/reference-pipeline';
import { runDecoder, wave } from './support';

const CLI = path.join(__dirname, '..', '..', 'lib', 'cli.js');
const NEW_TOKENS = 6;

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** Greedy ids from a built folder's three graphs: text ids with the image's rows spliced in at `imageAt`. */
async function onnxGreedy(dir: string, c: LlavaConfig, ids: number[], imageAt: number, imageRows: Float32Array, steps: number): Promise<number[]> {
  const H = c.text_config.hidden_size;
  const embed = await ort.InferenceSession.create(path.join(dir, 'onnx', 'embed_tokens.onnx'));
  const decoder = await ort.InferenceSession.create(path.join(dir, 'onnx', 'decoder_model_merged.onnx'));
  const embedIds = async (x: number[]) =>
    (await embed.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(x.map(BigInt)), [1, x.length]) })).inputs_embeds.data as Float32Array;
  const text = await embedIds(ids);
  const seq = Float64Array.from([...text.subarray(0, imageAt * H), ...imageRows, ...text.subarray((imageAt + 1) * H)]);
  let length = seq.length / H;
  let step = await runDecoder(decoder, c, { data: seq, dims: [1, length, H] }, Array(length).fill(1), [...Array(length).keys()]);
  const out: number[] = [];
  for (;;) {
    const vocab = c.text_config.vocab_size;
    const next = argmax(step.logits.subarray(step.logits.length - vocab));
    out.push(next);
    if (out.length === steps) break;
    step = await runDecoder(
      decoder,
      c,
      { data: Float64Array.from(await embedIds([next])), dims: [1, 1, H] },
      Array(length + 1).fill(1),
      [length],
      step.present,
    );
    length++;
  }
  await Promise.all([embed.release(), decoder.release()]);
  return out;
}

describe('llava build --from: the public LLaVA-family checkpoint layouts', () => {
  let root: string;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-sources-'));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  for (const make of LLAVA_SOURCES) {
    const src = make();
    it(`${src.name}: the converted folder generates the float64 reference's greedy ids`, async () => {
      const dir = path.join(root, src.name.replace(/\W+/g, '-'));
      const weights = writeLlavaSource(dir, src);
      const out = `${dir}-onnx`;
      const r = spawnSync(process.execPath, [CLI, 'build', '--from', dir, '--out', out], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);

      const c = src.expected;
      const written: LlavaConfig = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
      assert.equal(written.vision_config.model_type, c.vision_config.model_type);
      assert.equal(written.text_config.model_type, c.text_config.model_type);
      assert.deepEqual([written.vision_feature_layer, written.vision_feature_select_strategy], [c.vision_feature_layer, c.vision_feature_select_strategy]);
      assert.equal(written.image_token_index, c.image_token_index);

      const S = c.vision_config.image_size;
      const pixels = wave(3 * S * S, 0.7).map((v) => v * 2);
      const vision = await ort.InferenceSession.create(path.join(out, 'onnx', 'vision_encoder.onnx'));
      const features = (await vision.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, S, S]) })).image_features;
      await vision.release();
      const refImage: RefTensor = referenceProjector(weights, c, referenceVision(weights, c, pixels, 1));
      assert.deepEqual(features.dims, refImage.dims);
      assert.equal(written.image_seq_length, refImage.dims[1]);
      assert.ok(maxAbsDiff(features.data as Float32Array, refImage.data) < 1e-4);

      const prompt = [5, 6, 7, -1, 8, 9, 10];
      const imageAt = prompt.indexOf(-1);
      const tokens = refImage.dims[1];
      const expanded = [...prompt.slice(0, imageAt), ...Array(tokens).fill(0), ...prompt.slice(imageAt + 1)];
      const imagePositions = Array.from({ length: tokens }, (_, i) => imageAt + i);
      const expected = referenceGreedy({ config: c, weights }, expanded, imagePositions, refImage, NEW_TOKENS);
      const got = await onnxGreedy(
        out,
        written,
        prompt.map((id) => Math.max(id, 0)),
        imageAt,
        features.data as Float32Array,
        NEW_TOKENS,
      );
      assert.deepEqual(got, expected);
    });
  }

  it('refuses an unsupported text model, tower or model_type with one line naming it, and writes nothing', () => {
    const cases: Array<[string, (c: Record<string, unknown>) => Record<string, unknown>, RegExp]> = [
      [
        'text',
        (c) => ({ ...c, text_config: { ...(c.text_config as object), model_type: 'gemma' } }),
        /text_config\.model_type "gemma" is not supported \(supported: llama, mistral, qwen2\)/,
      ],
      [
        'tower',
        (c) => ({ ...c, vision_config: { ...(c.vision_config as object), model_type: 'dinov2' } }),
        /vision_config\.model_type "dinov2" is not supported \(supported: clip_vision_model, siglip_vision_model\)/,
      ],
      ['type', (c) => ({ ...c, model_type: 'llava_next', architectures: ['LlavaNextForConditionalGeneration'] }), /model_type is "llava_next" \(LLaVA-NeXT/],
      ['onevision', (c) => ({ ...c, model_type: 'llava_onevision' }), /model_type "llava_onevision" cannot be built yet/],
    ];
    const src = LLAVA_SOURCES[1]();
    for (const [label, edit, message] of cases) {
      const dir = path.join(root, `refused-${label}`);
      writeLlavaSource(dir, src);
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(edit(src.config)));
      const out = path.join(root, `refused-${label}-onnx`);
      const r = spawnSync(process.execPath, [CLI, 'build', '--from', dir, '--out', out], { encoding: 'utf8' });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(fs.existsSync(out), false, `${label}: ${out} was created`);
    }
  });

  it("nanoLLaVA without an <image> token in its tokenizer gets the LLaVA codebase's image index −200", () => {
    const src = LLAVA_SOURCES[4]();
    const dir = path.join(root, 'nano-no-image-token');
    writeLlavaSource(dir, src);
    assert.equal(openHfCheckpoint(dir).config.image_token_index, src.tokenizer.imageTokenId);
    fs.rmSync(path.join(dir, 'tokenizer.json'));
    assert.equal(openHfCheckpoint(dir).config.image_token_index, -200);
  });
});

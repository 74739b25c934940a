// The 'transformers-js' layout is loadable by transformers.js itself (a devDependency): its LLaVA model and
// processor run our folder, and its greedy tokens equal those of the float64 reference pipeline.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AutoProcessor, env, LlavaForConditionalGeneration, RawImage, Tensor } from '@huggingface/transformers';
import { architecture } from '../../lib/onnx/architectures';
import { randomWeights } from '../../lib/onnx/random-weights';
import { writeModelFolder } from '../../lib/onnx/write-model';
import { referenceDecoder, referenceEmbed, referenceProjector, referenceVision } from '../support/reference';

describe('transformers-js layout in transformers.js', () => {
  let root: string;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-tjs-'));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it("generates the reference pipeline's greedy tokens", async () => {
    const c = architecture('tiny').config;
    const weights = randomWeights(c, 8);
    writeModelFolder({ outDir: path.join(root, 'tiny'), config: c, weights, tokenizer: { kind: 'tiny-llama' } });
    env.allowRemoteModels = false;
    env.localModelPath = root;
    const model = await LlavaForConditionalGeneration.from_pretrained('tiny', { device: 'cpu', local_files_only: true });
    const processor = await AutoProcessor.from_pretrained('tiny', { local_files_only: true });
    const pixels = new Uint8ClampedArray(32 * 32 * 3).map((_, i) => (i * 37) % 256);
    const inputs = await processor(new RawImage(pixels, 32, 32, 3), 'USER: <image>\nWhat is shown? ASSISTANT:');
    const ids = Array.from(inputs.input_ids.data as BigInt64Array, Number);
    assert.equal(ids.filter((id) => id === c.image_token_index).length, 16);
    const out = (await model.generate({ ...inputs, max_new_tokens: 4, do_sample: false })) as Tensor;
    const generated = Array.from(out.data as BigInt64Array, Number).slice(ids.length);
    assert.ok(generated.length > 0);

    // Reference: image rows spliced at the image tokens, then greedy over the full sequence each step.
    const image = referenceProjector(weights, c, referenceVision(weights, c, inputs.pixel_values.data as Float32Array, 1));
    const H = c.text_config.hidden_size;
    const V = c.text_config.vocab_size;
    const sequence = [...ids];
    const expected: number[] = [];
    for (let step = 0; step < generated.length; step++) {
      const embeds = referenceEmbed(weights, c, sequence);
      let row = 0;
      sequence.forEach((id, i) => {
        if (id === c.image_token_index) embeds.data.set(image.data.subarray(row * H, ++row * H), i * H);
      });
      const n = sequence.length;
      const { logits } = referenceDecoder(weights, c, { embeds, attentionMask: Array(n).fill(1), positionIds: [...Array(n).keys()] });
      const last = Array.from(logits.data.subarray((n - 1) * V));
      const sorted = [...last].sort((a, b) => b - a);
      assert.ok(sorted[0] - sorted[1] > 1e-3, 'greedy choice is not a near tie');
      const next = last.indexOf(sorted[0]);
      expected.push(next);
      if (next === c.text_config.eos_token_id) break;
      sequence.push(next);
    }
    assert.deepEqual(generated, expected);
  });
});

// Decoders built with logits 'last' compute the lm_head for the last position only (a prefill skips it for the
// rest of the prompt): the graph's logits are that row of the full graph's, and the pipeline's greedy ids still
// equal the float64 reference, for both decoder variants and in a beam search (several sequences per step).
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { architecture } from '../../lib/onnx/architectures';
import type { DecoderVariant } from '../../lib/onnx/decoder';
import { randomWeights } from '../../lib/onnx/random-weights';
import { writeModelFolder } from '../../lib/onnx/write-model';
import { LlavaModel } from '../../lib/pipeline/llava-model';
import { getRuntime } from '../../lib/runtime';
import { runDecoder, wave } from '../onnx/support';
import { referenceGreedy, referenceImageEmbeds, referencePixels } from '../support/reference-pipeline';
import type { TinyModel } from '../support/tiny-model';

const QUESTION = 'What is in the picture?';

describe("decoder with logits 'last'", () => {
  let root: string;
  let image: Buffer;
  const arch = architecture('tiny');
  const weights = randomWeights(arch.config, 11);
  const build = (name: string, decoder: DecoderVariant, logits: 'all' | 'last'): TinyModel => {
    const dir = path.join(root, name);
    writeModelFolder({ outDir: dir, config: arch.config, weights, tokenizer: { kind: 'tiny-llama' }, decoder, logits });
    return { dir, config: arch.config, weights, variant: 'fp32' };
  };

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-last-logits-'));
    const pixels = Buffer.from(Array.from({ length: 40 * 36 * 3 }, (_, i) => (i * 29) & 255));
    image = await sharp(pixels, { raw: { width: 40, height: 36, channels: 3 } })
      .png()
      .toBuffer();
  });
  after(async () => {
    await getRuntime().dispose();
    fs.rmSync(root, { recursive: true, force: true });
  });

  for (const decoder of ['portable', 'optimized'] as DecoderVariant[]) {
    it(`${decoder}: logits are the last row of the full graph's, in prefill and in a step`, async () => {
      const full = await ort.InferenceSession.create(path.join(build(`${decoder}-all`, decoder, 'all').dir, 'onnx', 'decoder_model_merged.onnx'));
      const last = await ort.InferenceSession.create(path.join(build(`${decoder}-last`, decoder, 'last').dir, 'onnx', 'decoder_model_merged.onnx'));
      const c = arch.config;
      const H = c.text_config.hidden_size;
      const V = c.text_config.vocab_size;
      const S = 5;
      const embeds = { data: Float64Array.from(wave(S * H, 0.2)), dims: [1, S, H] };
      const a = await runDecoder(full, c, embeds, Array(S).fill(1), [...Array(S).keys()]);
      const b = await runDecoder(last, c, embeds, Array(S).fill(1), [...Array(S).keys()]);
      assert.deepEqual([...b.dims], [1, 1, V]);
      const diff = (x: Float32Array, y: Float32Array) => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
      assert.ok(diff(b.logits, a.logits.subarray((S - 1) * V)) < 1e-5);
      const next = { data: Float64Array.from(wave(H, 1.1)), dims: [1, 1, H] };
      const a2 = await runDecoder(full, c, next, Array(S + 1).fill(1), [S], a.present);
      const b2 = await runDecoder(last, c, next, Array(S + 1).fill(1), [S], b.present);
      assert.ok(diff(b2.logits, a2.logits) < 1e-5);
      await Promise.all([full.release(), last.release()]);
    });

    it(`${decoder}: the pipeline's greedy ids equal the float64 reference; beam search equals the full graph's`, async () => {
      const tiny = build(`${decoder}-pipeline`, decoder, 'last');
      const model = await LlavaModel.load(tiny.dir);
      const baseline = await LlavaModel.load(build(`${decoder}-pipeline-all`, decoder, 'all').dir);
      try {
        const result = await model.describe({ image, question: QUESTION, options: { maxNewTokens: 6, ignoreEos: true } });
        const embeds = referenceImageEmbeds(tiny, await referencePixels(image, model.preset.preprocess));
        const encoded = model.tokenizer.encodePrompt(model.prompt({ question: QUESTION }), {
          imageTokenCount: embeds.dims[1],
          style: model.preset.tokenization,
        });
        assert.deepEqual(result.tokenIds, referenceGreedy(tiny, encoded.ids, encoded.imagePositions, embeds, 6));
        const beams = { maxNewTokens: 5, ignoreEos: true, numBeams: 3 };
        const [x, y] = await Promise.all([model, baseline].map((m) => m.describe({ image, question: QUESTION, options: beams })));
        assert.equal(x.tokenIds.length, 5);
        assert.deepEqual(x.tokenIds, y.tokenIds);
      } finally {
        model.close();
        baseline.close();
      }
    });
  }
});

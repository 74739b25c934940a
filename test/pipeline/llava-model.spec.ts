// The whole pipeline on tiny built models, in both layouts and both decoder variants, against an independent
// float64 reference (PIL-equivalent preprocessing → vision → projector → merge → greedy decoding).
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { getRuntime } from '../../lib/runtime';
import { LlavaModel } from '../../lib/pipeline/llava-model';
import { PROGRESS_INTERVAL_MS, STREAM_INTERVAL_MS } from '../../lib/pipeline/worker-tasks';
import { referenceGreedy, referenceImageEmbeds, referencePixels } from '../support/reference-pipeline';
import { tinyModel, TinyModel, TinyModelOptions } from '../support/tiny-model';

async function testImage(): Promise<Buffer> {
  const w = 48;
  const h = 40;
  const data = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      data[i] = (x * 5) & 255;
      data[i + 1] = (y * 7) & 255;
      data[i + 2] = ((x + y) * 3) & 255;
    }
  }
  return sharp(data, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();
}

/** What the reference generates for the same request the model gets. */
async function expectedIds(tiny: TinyModel, model: LlavaModel, image: Buffer, question: string, maxNewTokens: number): Promise<number[]> {
  const embeds = referenceImageEmbeds(tiny, await referencePixels(image, model.preset.preprocess));
  const encoded = model.tokenizer.encodePrompt(model.prompt({ question }), {
    imageTokenCount: embeds.dims[1],
    style: model.preset.tokenization,
  });
  return referenceGreedy(tiny, encoded.ids, encoded.imagePositions, embeds, maxNewTokens);
}

describe('LlavaModel on tiny built models', function () {
  let image: Buffer;
  before(async () => {
    image = await testImage();
  });
  after(() => getRuntime().dispose());

  const variants: TinyModelOptions[] = [
    { layout: 'transformers-js', decoder: 'portable' },
    { layout: 'transformers-js', decoder: 'optimized' },
    { layout: 'split', decoder: 'portable' },
    { layout: 'split', decoder: 'optimized' },
  ];
  for (const variant of variants) {
    it(`greedy ids equal the float64 reference (${variant.layout}, ${variant.decoder} decoder)`, async () => {
      const tiny = tinyModel(variant);
      const model = await LlavaModel.load(tiny.dir);
      try {
        const deltas: string[] = [];
        const result = await model.describe({
          image,
          question: 'What is in the picture?',
          options: { maxNewTokens: 6, ignoreEos: true },
          onText: (d) => deltas.push(d),
        });
        assert.deepEqual(result.tokenIds, await expectedIds(tiny, model, image, 'What is in the picture?', 6));
        assert.equal(result.imageTokenCount, tiny.config.image_seq_length);
        assert.equal(deltas.join(''), result.text);
        assert.equal(result.provider, 'cpu');
        assert.equal(result.finishReason, 'length');
        assert.ok(result.timings.vision_ms > 0 && result.timings.prefill_ms > 0);
      } finally {
        model.close();
      }
    });
  }

  it("follows the folder's preprocessor_config.json unless the preset fixes the preprocessing", async () => {
    const tiny = tinyModel({ layout: 'split', decoder: 'portable' });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-processor-'));
    try {
      fs.cpSync(tiny.dir, dir, { recursive: true });
      const siglip = {
        image_processor_type: 'SiglipImageProcessor',
        size: { height: 32, width: 32 },
        resample: 2,
        image_mean: [0.5, 0.5, 0.5],
        image_std: [0.5, 0.5, 0.5],
      };
      fs.writeFileSync(path.join(dir, 'preprocessor_config.json'), JSON.stringify(siglip));
      const model = await LlavaModel.load(dir);
      try {
        assert.deepEqual(model.preset.preprocess, { mode: 'squash', size: 32, resample: 'bilinear', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
        const result = await model.describe({ image, question: 'What is in the picture?', options: { maxNewTokens: 4, ignoreEos: true } });
        assert.deepEqual(result.tokenIds, await expectedIds({ ...tiny, dir }, model, image, 'What is in the picture?', 4));
      } finally {
        model.close();
      }
      const mm = await LlavaModel.load(dir, { preset: 'llava-7b-v1.5_vqa' });
      try {
        assert.deepEqual([mm.preset.preprocess.mode, mm.preset.preprocess.mean], ['squash', [0.48145466, 0.4578275, 0.40821073]]);
      } finally {
        mm.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('follows an mmpretrain preset: squash, last vision layer, chunk-wise prompt without BOS', async () => {
    const tiny = tinyModel({ layout: 'split', decoder: 'portable', overrides: { visionFeatureLayer: -1 } });
    const model = await LlavaModel.load(tiny.dir, { preset: 'llava-7b-v1.5_vqa' });
    try {
      assert.equal(model.preset.preprocess.mode, 'squash');
      const result = await model.describe({ image, question: 'Is it red?', options: { maxNewTokens: 5, ignoreEos: true } });
      assert.deepEqual(result.tokenIds, await expectedIds(tiny, model, image, 'Is it red?', 5));
      const encoded = model.tokenizer.encodePrompt(model.prompt({ question: 'Is it red?' }), { imageTokenCount: 16, style: 'mmpretrain' });
      assert.notEqual(encoded.ids[0], model.tokenizer.bosTokenId, 'mmpretrain prompts have no BOS');
    } finally {
      model.close();
    }
  });

  it('reuses the KV cache of the prompt before the image, with output identical to no reuse', async () => {
    // Its own weights: the prefix cache belongs to the decoder session, which other tests' models share.
    const tiny = tinyModel({ layout: 'split', decoder: 'portable', seed: 99 });
    const plain = await LlavaModel.load(tiny.dir, { prefixReuse: false });
    const reusing = await LlavaModel.load(tiny.dir, { prefixReuse: true });
    try {
      const request = { image, question: 'Describe it.', options: { maxNewTokens: 5, ignoreEos: true } };
      const first = await reusing.describe(request);
      const second = await reusing.describe(request);
      const baseline = await plain.describe(request);
      assert.equal(first.prefixReusedTokens, 0);
      assert.ok(second.prefixReusedTokens > 0, 'the second request reuses the prefix');
      assert.deepEqual(second.tokenIds, baseline.tokenIds);
      assert.deepEqual(first.tokenIds, baseline.tokenIds);
    } finally {
      plain.close();
      reusing.close();
    }
  });

  it('warms its sessions once at load with a caption of a blank frame; output still equals the reference', async () => {
    // Its own weights, so its sessions are new to this worker.
    const tiny = tinyModel({ layout: 'split', decoder: 'optimized', seed: 41 });
    const model = await LlavaModel.load(tiny.dir);
    const sharing = await LlavaModel.load(tiny.dir);
    const cold = await LlavaModel.load(tiny.dir, { warmup: false });
    try {
      assert.equal(model.warmup?.ran, true);
      const caption = model.tokenizer.encodePrompt(model.prompt({}), { imageTokenCount: tiny.config.image_seq_length!, style: model.preset.tokenization });
      assert.equal(model.warmup?.prefillTokens, caption.ids.length, 'a caption prompt with its image rows');
      assert.ok(model.warmup.ms > 0);
      assert.equal(sharing.warmup?.ran, false, 'a second load shares the warmed sessions');
      assert.equal(cold.warmup, null);
      const result = await model.describe({ image, question: 'What is in the picture?', options: { maxNewTokens: 6, ignoreEos: true } });
      assert.deepEqual(result.tokenIds, await expectedIds(tiny, model, image, 'What is in the picture?', 6));
    } finally {
      model.close();
      sharing.close();
      cold.close();
    }
  });

  it('opens the weight variant a folder was built with when none is named', async () => {
    const tiny = tinyModel({ decoder: 'optimized', quantize: 'int4' });
    const model = await LlavaModel.load(tiny.dir);
    try {
      assert.equal(model.folder.variant, 'q4');
      assert.match(model.folder.files.decoder, /decoder_model_merged_q4\.onnx$/);
      const result = await model.describe({ image, question: 'Hi', options: { maxNewTokens: 3, ignoreEos: true } });
      assert.equal(result.tokenIds.length, 3);
    } finally {
      model.close();
    }
  });

  it('samples reproducibly under a seed', async () => {
    const model = await LlavaModel.load(tinyModel({ decoder: 'portable' }).dir);
    try {
      const run = (seed: number) =>
        model.describe({ image, question: 'Go.', options: { maxNewTokens: 8, ignoreEos: true, doSample: true, temperature: 1, seed } });
      const [a, b, c] = [await run(11), await run(11), await run(12)];
      assert.deepEqual(a.tokenIds, b.tokenIds);
      assert.notDeepEqual(a.tokenIds, c.tokenIds);
    } finally {
      model.close();
    }
  });

  it('sends the main thread messages by time, not per token: a delta per 25 ms, progress per 250 ms', async () => {
    const model = await LlavaModel.load(tinyModel({ layout: 'split' }).dir);
    try {
      let deltas = 0;
      let progress = 0;
      const features = await model.project(await model.encodeImage(await model.preprocess(image)));
      const started = performance.now();
      const result = await model.generate({
        prompt: model.prompt({ question: 'Go.' }),
        image: features,
        options: { maxNewTokens: 100, ignoreEos: true },
        onText: () => deltas++,
        onProgress: () => progress++,
      });
      const ms = performance.now() - started;
      assert.equal(result.tokenIds.length, 100);
      // Each kind of message: one when due at most every interval, and a last one at the end. On this model a
      // token takes about a millisecond, so a message per token would be far over these bounds.
      assert.ok(deltas <= 2 + ms / STREAM_INTERVAL_MS, `${deltas} text messages in ${ms.toFixed(0)} ms`);
      assert.ok(progress <= 1 + ms / PROGRESS_INTERVAL_MS, `${progress} progress messages in ${ms.toFixed(0)} ms`);
      assert.ok(deltas >= 1);
    } finally {
      model.close();
    }
  });

  it('frees image features when generation ends, also when it fails', async () => {
    const model = await LlavaModel.load(tinyModel({ layout: 'split' }).dir);
    const runtime = getRuntime();
    try {
      const before = runtime.stats().handles;
      await model.describe({ image, question: 'Hi', options: { maxNewTokens: 2 } });
      assert.equal(runtime.stats().handles, before);
      const features = await model.project(await model.encodeImage(await model.preprocess(image)));
      await assert.rejects(
        model.generate({ prompt: model.prompt({ question: 'x'.repeat(3000) }), image: features }),
        /prompt needs \d+ positions .* but the model has only 512/,
      );
      assert.equal(runtime.stats().handles, before);
    } finally {
      model.close();
    }
  });
});

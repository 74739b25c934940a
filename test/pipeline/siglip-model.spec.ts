// A built SigLIP + Qwen2 folder (the llava-interleave shape) through the whole pipeline: the folder's
// SiglipImageProcessor squash with mean/std 0.5, 16 patch tokens from a 30 px image (floored to 4×4 patches of 7),
// no CLS, the last layer's features, against the float64 reference.
import { strict as assert } from 'assert';
import sharp from 'sharp';
import { LlavaModel } from '../../lib/pipeline/llava-model';
import { getRuntime } from '../../lib/runtime';
import { referenceGreedy, referenceImageEmbeds, referencePixels } from '../support/reference-pipeline';
import { tinyModel } from '../support/tiny-model';

describe('LlavaModel on a tiny SigLIP (llava-interleave shaped) folder', () => {
  after(() => getRuntime().dispose());

  it("preprocesses as the folder says and generates the float64 reference's greedy ids", async () => {
    const tiny = tinyModel({ arch: 'tiny-siglip' });
    const model = await LlavaModel.load(tiny.dir);
    try {
      assert.deepEqual(model.preset.preprocess, { ...model.preset.preprocess, mode: 'squash', size: 30, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
      const image = await sharp({ create: { width: 45, height: 37, channels: 3, background: { r: 200, g: 90, b: 30 } } })
        .composite([{ input: { create: { width: 20, height: 12, channels: 3, background: { r: 10, g: 160, b: 240 } } }, left: 5, top: 9 }])
        .png()
        .toBuffer();
      const question = 'What is in the picture?';
      const result = await model.describe({ image, question, options: { maxNewTokens: 6, ignoreEos: true } });
      assert.equal(result.imageTokenCount, 16);
      const embeds = referenceImageEmbeds(tiny, await referencePixels(image, model.preset.preprocess));
      const encoded = model.tokenizer.encodePrompt(model.prompt({ question }), { imageTokenCount: 16, style: model.preset.tokenization });
      assert.deepEqual(result.tokenIds, referenceGreedy(tiny, encoded.ids, encoded.imagePositions, embeds, 6));
    } finally {
      model.close();
    }
  });
});

// preprocessor_config.json decides the preprocessing: the public repos' files give the geometry, filter and
// statistics their processors use.
import { strict as assert } from 'assert';
import { preprocessFromConfig } from '../../lib/pipeline/image-preprocess-config';
import { LLAVA_15_7B, LLAVA_INTERLEAVE_QWEN_05B, LLAVA_ONEVISION_QWEN2_05B, NANOLLAVA, TINY_RANDOM_LLAVA } from '../support/public-configs';

const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];

describe("the folder's image processor (preprocessor_config.json)", () => {
  it('CLIPImageProcessor (llava-hf, tiny-random): shortest edge, centre crop, bicubic, CLIP statistics', () => {
    assert.deepEqual(preprocessFromConfig(LLAVA_15_7B.preprocessor, 336), {
      mode: 'crop',
      size: 336,
      shortestEdge: 336,
      resample: 'bicubic',
      mean: CLIP_MEAN,
      std: [0.26862954, 0.26130258, 0.27577711],
    });
    assert.equal(preprocessFromConfig(TINY_RANDOM_LLAVA.preprocessor, 30).size, 30);
    // A shortest edge larger than the crop (CLIP at 224: 256 then crop 224).
    const o = preprocessFromConfig({ image_processor_type: 'CLIPImageProcessor', size: { shortest_edge: 256 }, crop_size: 224, resample: 2 }, 224);
    assert.deepEqual([o.mode, o.size, o.shortestEdge, o.resample], ['crop', 224, 256, 'bilinear']);
  });

  it('SigLIP and OneVision: a squash to height×width with mean = std = 0.5; LlavaImageProcessor do_pad pads to a square', () => {
    for (const p of [LLAVA_INTERLEAVE_QWEN_05B.preprocessor, LLAVA_ONEVISION_QWEN2_05B.preprocessor, NANOLLAVA.preprocessor]) {
      assert.deepEqual(preprocessFromConfig(p, 384), { mode: 'squash', size: 384, resample: 'bicubic', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    }
    assert.equal(
      preprocessFromConfig({ image_processor_type: 'LlavaImageProcessor', do_pad: true, size: { shortest_edge: 336 }, crop_size: 336 }, 336).mode,
      'pad',
    );
    // Class defaults when the file leaves fields out: SigLIP's 0.5 statistics, CLIP's geometry with no file at all.
    assert.deepEqual(preprocessFromConfig({ image_processor_type: 'SiglipImageProcessorFast' }, 224).mean, [0.5, 0.5, 0.5]);
    assert.deepEqual([preprocessFromConfig({}, 32).mode, preprocessFromConfig({}, 32).mean], ['crop', CLIP_MEAN]);
    const raw = preprocessFromConfig({ ...LLAVA_15_7B.preprocessor, do_rescale: false, do_normalize: false }, 336);
    assert.deepEqual([raw.rescale, raw.mean, raw.std], [1, [0, 0, 0], [1, 1, 1]]);
  });

  it('refuses what it cannot reproduce, saying what it found', () => {
    assert.throws(
      () => preprocessFromConfig({ image_processor_type: 'LlavaNextImageProcessor' }, 336),
      /LlavaNextImageProcessor is not supported \(LLaVA-NeXT anyres/,
    );
    assert.throws(
      () => preprocessFromConfig({ image_processor_type: 'BlipImageProcessor' }, 336),
      /BlipImageProcessor is not supported \(supported: CLIPImageProcessor, LlavaImageProcessor, SiglipImageProcessor/,
    );
    assert.throws(() => preprocessFromConfig({ ...LLAVA_15_7B.preprocessor, resample: 1 }, 336), /resample 1 is not supported \(2 bilinear, 3 bicubic\)/);
    assert.throws(() => preprocessFromConfig({ image_processor_type: 'SiglipImageProcessor', size: { height: 384, width: 512 } }, 384), /384×512: only square/);
    assert.throws(() => preprocessFromConfig(LLAVA_INTERLEAVE_QWEN_05B.preprocessor, 336), /makes 384×384 pixels but vision_config\.image_size is 336/);
    assert.throws(() => preprocessFromConfig({ size: { shortest_edge: 336 }, do_center_crop: false }, 336), /without a centre crop/);
  });
});

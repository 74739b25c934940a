// Our preprocessing against what the Python LLaVA pipelines compute with PIL (test/support/pil-resize.ts).

import { strict as assert } from 'assert';
import { preprocessImage, padColour } from '../../lib/pipeline/image-preprocess';
import { resizeBicubicWindow } from '../../lib/pipeline/image-resample';
import type { ResizeMode } from '../../lib/pipeline/types';
import { cropRaw, expandToSquare, pilReference, pilResizeBicubic, type RawImage } from '../support/pil-resize';
import { CLIP_MEAN, clipOptions, decodeRaw, denormalise, encodeJpeg, encodePng, meanAbsDiff, testCard } from './synthetic';

const MODES: ResizeMode[] = ['crop', 'pad', 'squash'];
const SIZE = 336;
// Budget from the brief: mean absolute difference in 0–255 units.
const MAX_MAD = 0.5;

async function madAgainstPil(bytes: Buffer, mode: ResizeMode): Promise<number> {
  const ours = await preprocessImage(bytes, clipOptions(mode, SIZE));
  const reference = pilReference(await decodeRaw(bytes), mode, SIZE, padColour(CLIP_MEAN));
  return meanAbsDiff(denormalise(ours.pixels, SIZE), reference.data);
}

describe('image preprocessing fidelity vs PIL bicubic', function () {
  const cases: { name: string; width: number; height: number }[] = [
    { name: 'landscape 1920×1080', width: 1920, height: 1080 },
    { name: 'portrait 600×900', width: 600, height: 900 },
  ];
  for (const { name, width, height } of cases) {
    for (const format of ['png', 'jpeg q90'] as const) {
      it(`${name} ${format}: every mode within ${MAX_MAD} MAD of PIL`, async function () {
        const card = testCard(width, height);
        const bytes = format === 'png' ? await encodePng(card) : await encodeJpeg(card, 90);
        for (const mode of MODES) {
          const mad = await madAgainstPil(bytes, mode);
          assert.ok(mad <= MAX_MAD, `${mode}: MAD ${mad.toFixed(3)} > ${MAX_MAD}`);
        }
      });
    }
  }

  it('resizeBicubicWindow equals the PIL reference byte for byte (down, up, mixed, odd sizes, windows)', function () {
    const image = testCard(97, 61, 3);
    const shapes: [number, number][] = [[31, 17], [97, 61], [200, 45], [13, 140], [1, 1], [96, 60]];
    for (const [w, h] of shapes) {
      const reference = pilResizeBicubic(image, w, h);
      assert.deepEqual(resizeBicubicWindow(image, w, h, { left: 0, top: 0, width: w, height: h }), reference.data, `${w}×${h}`);
      const left = Math.floor(w / 3);
      const top = Math.floor(h / 4);
      const window = { left, top, width: w - left, height: h - top };
      assert.deepEqual(
        resizeBicubicWindow(image, w, h, window),
        cropRaw(reference, left, top, window.width, window.height).data,
        `${w}×${h} window at ${left},${top}`,
      );
    }
  });

  it('resizeBicubicWindow with padding equals resizing the expand2square canvas (wide and tall)', function () {
    const fill = [122, 116, 104];
    for (const image of [testCard(90, 31, 5), testCard(23, 70, 6)]) {
      const side = Math.max(image.width, image.height);
      const padding = { side, left: (side - image.width) >> 1, top: (side - image.height) >> 1, fill };
      const reference = pilResizeBicubic(expandToSquare(image, fill), 40, 40);
      const window = { left: 0, top: 0, width: 40, height: 40 };
      assert.deepEqual(resizeBicubicWindow(image, 40, 40, window, padding), reference.data, `${image.width}×${image.height}`);
    }
  });

  it('resizeBicubicWindow refuses a window outside the resized image', function () {
    const image: RawImage = testCard(8, 8);
    assert.throws(() => resizeBicubicWindow(image, 4, 4, { left: 2, top: 0, width: 3, height: 4 }), /outside the 4×4/);
  });
});

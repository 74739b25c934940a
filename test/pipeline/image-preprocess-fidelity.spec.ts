// Our preprocessing against what the Python LLaVA pipelines compute with PIL: real Pillow's pixels
// (test/fixtures/pil-resize.json, made by scripts/fixtures/pil-resize.py) for the resampler itself, and the
// TypeScript reference test/support/pil-resize.ts, held to those same pixels, for whole images and pipelines.

import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { preprocessImage, padColour } from '../../lib/pipeline/image-preprocess';
import { resizeWindow } from '../../lib/pipeline/image-resample';
import type { PreprocessOptions, Resample, ResizeMode } from '../../lib/pipeline/types';
import { referencePixels } from '../support/reference-pipeline';
import { cropRaw, expandToSquare, pilReference, pilResize, type RawImage } from '../support/pil-resize';
import { CLIP_MEAN, clipOptions, decodeRaw, denormalise, encodeJpeg, encodePng, meanAbsDiff, testCard } from '../support/synthetic-images';

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

  // resampler libvips trades exactness for speed: the difference it is documented at, with room for libvips versions.
  const LIBVIPS_MAX_MAD = 2.5;
  it(`resampler libvips: every mode within ${LIBVIPS_MAX_MAD} MAD of the PIL-exact path, same source size`, async function () {
    for (const [width, height] of [
      [1920, 1080],
      [600, 900],
    ]) {
      const bytes = await encodeJpeg(testCard(width, height), 90);
      for (const mode of MODES) {
        const exact = await preprocessImage(bytes, clipOptions(mode, SIZE));
        const fast = await preprocessImage(bytes, clipOptions(mode, SIZE, { resampler: 'libvips' }));
        const mad = meanAbsDiff(denormalise(fast.pixels, SIZE), denormalise(exact.pixels, SIZE));
        assert.ok(mad > 0 && mad <= LIBVIPS_MAX_MAD, `${width}×${height} ${mode}: MAD ${mad.toFixed(3)}`);
        assert.deepEqual([fast.sourceWidth, fast.sourceHeight], [width, height]);
      }
    }
    await assert.rejects(
      preprocessImage(await encodePng(testCard(8, 8)), clipOptions('crop', 4, { resampler: 'vips' as 'pil' })),
      /resampler must be pil or libvips/,
    );
  });

  it('resizeWindow and the TypeScript reference equal real Pillow byte for byte (bicubic and bilinear; down, up, windows)', function () {
    const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'pil-resize.json'), 'utf8'));
    const rgb = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64'));
    const image: RawImage = { data: rgb(fixture.input.rgb), width: fixture.input.width, height: fixture.input.height, channels: 3 };
    assert.ok(fixture.cases.length >= 12 && image.data.length === image.width * image.height * 3);
    for (const c of fixture.cases as { filter: Resample; width: number; height: number; rgb: string }[]) {
      const pillow = rgb(c.rgb);
      const what = `${c.filter} ${image.width}×${image.height} → ${c.width}×${c.height}`;
      assert.deepEqual(resizeWindow(image, c.width, c.height, { left: 0, top: 0, width: c.width, height: c.height }, undefined, c.filter), pillow, what);
      assert.deepEqual(pilResize(image, c.width, c.height, c.filter).data, pillow, `test reference, ${what}`);
      const window = { left: c.width >> 1, top: c.height >> 2, width: c.width - (c.width >> 1), height: c.height - (c.height >> 2) };
      const expected = cropRaw({ data: pillow, width: c.width, height: c.height, channels: 3 }, window.left, window.top, window.width, window.height);
      assert.deepEqual(resizeWindow(image, c.width, c.height, window, undefined, c.filter), expected.data, `${what}, window`);
    }
  });

  it('resizeWindow equals the PIL reference byte for byte (down, up, mixed, odd sizes, windows)', function () {
    const image = testCard(97, 61, 3);
    const shapes: [number, number][] = [
      [31, 17],
      [97, 61],
      [200, 45],
      [13, 140],
      [1, 1],
      [96, 60],
    ];
    for (const [w, h] of shapes) {
      const reference = pilResize(image, w, h);
      assert.deepEqual(resizeWindow(image, w, h, { left: 0, top: 0, width: w, height: h }), reference.data, `${w}×${h}`);
      const left = Math.floor(w / 3);
      const top = Math.floor(h / 4);
      const window = { left, top, width: w - left, height: h - top };
      assert.deepEqual(
        resizeWindow(image, w, h, window),
        cropRaw(reference, left, top, window.width, window.height).data,
        `${w}×${h} window at ${left},${top}`,
      );
    }
  });

  it('resizeWindow bilinear equals PIL BILINEAR byte for byte (down, up, windows)', function () {
    const image = testCard(97, 61, 4);
    for (const [w, h] of [
      [31, 17],
      [200, 45],
      [13, 140],
      [96, 60],
    ] as [number, number][]) {
      const reference = pilResize(image, w, h, 'bilinear');
      assert.deepEqual(resizeWindow(image, w, h, { left: 0, top: 0, width: w, height: h }, undefined, 'bilinear'), reference.data, `${w}×${h}`);
      const window = { left: Math.floor(w / 3), top: Math.floor(h / 4), width: w - Math.floor(w / 3), height: h - Math.floor(h / 4) };
      assert.deepEqual(resizeWindow(image, w, h, window, undefined, 'bilinear'), cropRaw(reference, window.left, window.top, window.width, window.height).data);
    }
  });

  it('preprocessImage equals the PIL pipeline exactly for shortest edge ≠ crop, bilinear, rescale and pad', async function () {
    const card = testCard(90, 61, 7);
    const bytes = await encodePng(card);
    const cases: PreprocessOptions[] = [
      { mode: 'crop', size: 32, shortestEdge: 40, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
      { mode: 'crop', size: 32, shortestEdge: 37, resample: 'bilinear', mean: [...CLIP_MEAN], std: [0.2, 0.3, 0.4] },
      { mode: 'squash', size: 30, resample: 'bilinear', rescale: 1, mean: [0, 0, 0], std: [1, 1, 1] },
      { mode: 'pad', size: 24, shortestEdge: 28, mean: [...CLIP_MEAN], std: [0.2, 0.3, 0.4] },
    ];
    for (const o of cases) {
      const ours = await preprocessImage(bytes, o);
      const reference = await referencePixels(bytes, o);
      const worst = ours.pixels.reduce((m, v, i) => Math.max(m, Math.abs(v - reference[i])), 0);
      assert.ok(worst < 1e-5, `${JSON.stringify(o)}: differs by ${worst}`);
      if (o.rescale === 1)
        assert.ok(
          ours.pixels.some((v) => v > 1),
          'without rescaling the values stay on 0–255',
        );
    }
  });

  it('resizeWindow with padding equals resizing the expand2square canvas (wide and tall)', function () {
    const fill = [122, 116, 104];
    for (const image of [testCard(90, 31, 5), testCard(23, 70, 6)]) {
      const side = Math.max(image.width, image.height);
      const padding = { side, left: (side - image.width) >> 1, top: (side - image.height) >> 1, fill };
      const reference = pilResize(expandToSquare(image, fill), 40, 40);
      const window = { left: 0, top: 0, width: 40, height: 40 };
      assert.deepEqual(resizeWindow(image, 40, 40, window, padding), reference.data, `${image.width}×${image.height}`);
    }
  });

  it('resizeWindow refuses a window outside the resized image', function () {
    const image: RawImage = testCard(8, 8);
    assert.throws(() => resizeWindow(image, 4, 4, { left: 2, top: 0, width: 3, height: 4 }), /outside the 4×4/);
  });
});

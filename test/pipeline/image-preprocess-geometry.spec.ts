// Where crop, pad and squash put the image, and the normalisation of the output tensor.

import { strict as assert } from 'assert';
import { planResize } from '../../lib/pipeline/image-geometry';
import { padColour, preprocessImage } from '../../lib/pipeline/image-preprocess';
import { CLIP_MEAN, CLIP_STD, clipOptions, colourAt, denormalise, encodePng, paintedImage } from '../support/synthetic-images';

const GREY = [128, 128, 128];
const RED = [230, 20, 20];
const BLUE = [20, 20, 230];

/** Centroid (x, y) of output pixels that are clearly red. */
function redCentroid(hwc: Float64Array, size: number): [number, number] {
  let sx = 0,
    sy = 0,
    n = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const [r, g, b] = colourAt(hwc, size, x, y);
      if (r > 180 && g < 70 && b < 70) {
        sx += x;
        sy += y;
        n++;
      }
    }
  }
  assert.ok(n > 0, 'no red pixels in the output');
  return [sx / n, sy / n];
}

function countBlue(hwc: Float64Array, size: number): number {
  let n = 0;
  for (let i = 0; i < size * size; i++) if (hwc[i * 3 + 2] > 180 && hwc[i * 3] < 70) n++;
  return n;
}

describe('image preprocessing geometry', function () {
  // 400×200 grey frame; a 40×40 red square at (220,60) and a blue bar at the far left (x 0–39).
  const frame = paintedImage(400, 200, GREY, [
    { left: 220, top: 60, width: 40, height: 40, colour: RED },
    { left: 0, top: 0, width: 40, height: 200, colour: BLUE },
  ]);
  const SIZE = 100;
  let png: Buffer;
  before(async function () {
    png = await encodePng(frame);
  });

  it('squash scales each axis on its own: 400×200 → 100×100 moves the square centre (240,80) to (60,40)', async function () {
    const out = await preprocessImage(png, clipOptions('squash', SIZE));
    const [cx, cy] = redCentroid(denormalise(out.pixels, SIZE), SIZE);
    assert.ok(Math.abs(cx - 59.5) <= 1 && Math.abs(cy - 39.5) <= 1, `centroid ${cx},${cy}`);
    assert.ok(countBlue(denormalise(out.pixels, SIZE), SIZE) > 0, 'squash keeps the whole width');
  });

  it('crop resizes the short side to size and keeps the centre: the left bar is cut off', async function () {
    const out = await preprocessImage(png, clipOptions('crop', SIZE));
    const hwc = denormalise(out.pixels, SIZE);
    // resize to 200×100, crop left = 50: square centre (240,80)/2 - (50,0) = (70,40)
    const [cx, cy] = redCentroid(hwc, SIZE);
    assert.ok(Math.abs(cx - 69.5) <= 1 && Math.abs(cy - 39.5) <= 1, `centroid ${cx},${cy}`);
    assert.equal(countBlue(hwc, SIZE), 0);
  });

  it('pad centres the image on a mean-colour square, then resizes', async function () {
    const out = await preprocessImage(png, clipOptions('pad', SIZE));
    const hwc = denormalise(out.pixels, SIZE);
    // canvas 400×400 with the frame at top 100: square centre (240,180)/4 = (60,45)
    const [cx, cy] = redCentroid(hwc, SIZE);
    assert.ok(Math.abs(cx - 59.5) <= 1 && Math.abs(cy - 44.5) <= 1, `centroid ${cx},${cy}`);
    const fill = padColour(CLIP_MEAN);
    assert.deepEqual(fill, [122, 116, 104]);
    for (const [x, y] of [
      [50, 2],
      [50, 97],
      [0, 0],
      [99, 99],
    ]) {
      colourAt(hwc, SIZE, x, y).forEach((v, c) => assert.ok(Math.abs(v - fill[c]) < 1e-3, `(${x},${y}) ${v}`));
    }
    assert.ok(countBlue(hwc, SIZE) > 0, 'pad keeps the whole width');
  });

  it('planResize follows the Python integer arithmetic', function () {
    assert.deepEqual(planResize('crop', 1920, 1080, 336), {
      padSide: 0,
      padLeft: 0,
      padTop: 0,
      resizeWidth: 597,
      resizeHeight: 336,
      cropLeft: 130,
      cropTop: 0,
    });
    assert.deepEqual(planResize('crop', 481, 999, 336), {
      padSide: 0,
      padLeft: 0,
      padTop: 0,
      resizeWidth: 336,
      resizeHeight: 697,
      cropLeft: 0,
      cropTop: 180,
    });
    assert.deepEqual(planResize('pad', 301, 200, 336), {
      padSide: 301,
      padLeft: 0,
      padTop: 50,
      resizeWidth: 336,
      resizeHeight: 336,
      cropLeft: 0,
      cropTop: 0,
    });
    assert.deepEqual(planResize('pad', 200, 301, 336), {
      padSide: 301,
      padLeft: 50,
      padTop: 0,
      resizeWidth: 336,
      resizeHeight: 336,
      cropLeft: 0,
      cropTop: 0,
    });
    assert.deepEqual(planResize('squash', 7, 3000, 224), {
      padSide: 0,
      padLeft: 0,
      padTop: 0,
      resizeWidth: 224,
      resizeHeight: 224,
      cropLeft: 0,
      cropTop: 0,
    });
    assert.throws(() => planResize('stretch' as never, 10, 10, 10), /unknown resize mode "stretch"/);
  });
});

describe('image preprocessing output tensor', function () {
  it('is 3×size×size channel-major with (x/255 − mean)/std per channel', async function () {
    const colour = [10, 128, 250];
    const png = await encodePng(paintedImage(64, 48, colour, []));
    const size = 32;
    const out = await preprocessImage(png, clipOptions('crop', size));
    assert.equal(out.pixels.length, 3 * size * size);
    assert.equal(out.size, size);
    assert.equal(out.sourceWidth, 64);
    assert.equal(out.sourceHeight, 48);
    assert.ok(out.ms >= 0);
    for (let c = 0; c < 3; c++) {
      const expected = (colour[c] / 255 - CLIP_MEAN[c]) / CLIP_STD[c];
      const plane = out.pixels.subarray(c * size * size, (c + 1) * size * size);
      for (const v of plane) assert.ok(Math.abs(v - expected) < 1e-6, `channel ${c}: ${v} vs ${expected}`);
    }
  });

  it('uses the mean and std it is given', async function () {
    const png = await encodePng(paintedImage(8, 8, [255, 0, 51], []));
    const out = await preprocessImage(png, { mode: 'squash', size: 4, mean: [0.5, 0, 0.2], std: [0.5, 1, 0.1] });
    assert.ok(Math.abs(out.pixels[0] - 1) < 1e-6);
    assert.ok(Math.abs(out.pixels[16] - 0) < 1e-6);
    assert.ok(Math.abs(out.pixels[32] - 0) < 1e-6);
  });

  it('rejects bad options with a clear message', async function () {
    const png = await encodePng(paintedImage(4, 4, GREY, []));
    await assert.rejects(preprocessImage(png, clipOptions('crop', 0)), /size must be an integer/);
    await assert.rejects(preprocessImage(png, clipOptions('crop', 12.5)), /size must be an integer/);
    await assert.rejects(preprocessImage(png, { ...clipOptions('crop', 8), std: [1, 0, 1] }), /std must not contain 0/);
    await assert.rejects(preprocessImage(png, { ...clipOptions('crop', 8), mean: [1, 2] as never }), /mean must be three/);
    await assert.rejects(preprocessImage(png, clipOptions('zoom' as never, 8)), /unknown resize mode "zoom"/);
    await assert.rejects(preprocessImage(png, clipOptions('crop', 8, { maxInputPixels: -1 })), /maxInputPixels must be/);
  });
});

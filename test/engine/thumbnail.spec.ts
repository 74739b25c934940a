// The editor preview's thumbnail: what the model got (preprocessed pixels, or a remote engine's JPEG) as a JPEG
// whose longest side is at most 160 px, in the colours the pixels stand for.
import { strict as assert } from 'assert';
import sharp from 'sharp';
import { preprocessImage } from '../../lib/pipeline/image-preprocess';
import { encodeForRemote } from '../../lib/engine/image-value';
import { loadedPixels } from '../../lib/pipeline/image-values';
import { THUMBNAIL_MAX_SIDE, thumbnailOf } from '../../lib/engine/thumbnail';
import { clipOptions, encodePng, paintedImage } from '../support/synthetic-images';

const RED = [220, 30, 30];
const BLUE = [30, 30, 220];

async function rgbAt(jpeg: Buffer, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  const i = (y * info.width + x) * info.channels;
  return [data[i], data[i + 1], data[i + 2]];
}

function near(actual: number[], expected: readonly number[], tolerance: number, where: string): void {
  actual.forEach((v, c) => assert.ok(Math.abs(v - expected[c]) <= tolerance, `${where}: ${actual} vs ${expected}`));
}

describe('editor preview thumbnail', function () {
  // 400×200: left half red, right half blue.
  const picture = paintedImage(400, 200, BLUE, [{ left: 0, top: 0, width: 200, height: 200, colour: RED }]);

  it('pixels → a JPEG of the preprocessed square, longest side 160, colours undone from the normalisation', async function () {
    const options = clipOptions('squash', 336);
    const pixels = loadedPixels(await preprocessImage(await encodePng(picture), options), 'squash');
    const thumb = await thumbnailOf(pixels, options);
    assert.ok(thumb);
    const meta = await sharp(thumb.jpeg).metadata();
    assert.strictEqual(meta.format, 'jpeg');
    // Squashed to a square: the thumbnail is square too (the model's view, not the 2:1 input).
    assert.deepStrictEqual([meta.width, meta.height, thumb.width, thumb.height], [THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE, 160, 160]);
    near(await rgbAt(thumb.jpeg, 40, 80), RED, 12, 'left quarter');
    near(await rgbAt(thumb.jpeg, 120, 80), BLUE, 12, 'right quarter');
  });

  it('crop mode shows only the centre the model saw; a small model input is never enlarged', async function () {
    const options = clipOptions('crop', 64);
    const pixels = loadedPixels(await preprocessImage(await encodePng(picture), options), 'crop');
    const thumb = await thumbnailOf(pixels, options);
    assert.ok(thumb);
    assert.deepStrictEqual([thumb.width, thumb.height], [64, 64]);
    // The centre crop of a half red, half blue picture: red left, blue right, nothing of the outer quarters.
    near(await rgbAt(thumb.jpeg, 8, 32), RED, 12, 'left edge');
    near(await rgbAt(thumb.jpeg, 56, 32), BLUE, 12, 'right edge');
  });

  it('an encoded image (remote engine) → scaled to fit 160 px, aspect kept', async function () {
    const encoded = (await encodeForRemote(await encodePng(picture))).value;
    const thumb = await thumbnailOf(encoded, undefined);
    assert.ok(thumb);
    const meta = await sharp(thumb.jpeg).metadata();
    assert.deepStrictEqual([meta.format, meta.width, meta.height], ['jpeg', 160, 80]);
  });

  it('nothing to show for a features handle, or pixels without their normalisation', async function () {
    const options = clipOptions('squash', 32);
    const pixels = loadedPixels(await preprocessImage(await encodePng(picture), options), 'squash');
    assert.strictEqual(await thumbnailOf(pixels, undefined), null);
    assert.strictEqual(await thumbnailOf({ handle: { id: 'x' }, projected: true }, options), null);
    assert.strictEqual(await thumbnailOf(undefined, options), null);
  });
});

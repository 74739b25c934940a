// Decoding: formats, EXIF orientation, colour models, alpha, tiny and huge images, and inputs that are not images.

import { strict as assert } from 'assert';
import sharp from 'sharp';
import { preprocessImage } from '../../lib/pipeline/image-preprocess';
import type { Resampler } from '../../lib/pipeline/types';
import { clipOptions, colourAt, denormalise, encodePng, meanAbsDiff, paintedImage, pngClaiming, testCard, toSharp } from '../support/synthetic-images';

const RED = [220, 30, 30];
const BLUE = [30, 30, 220];

async function outputColours(bytes: Buffer, mode: 'crop' | 'pad' | 'squash', size: number, resampler: Resampler = 'pil'): Promise<Float64Array> {
  return denormalise((await preprocessImage(bytes, clipOptions(mode, size, { resampler }))).pixels, size);
}

function assertColour(actual: number[], expected: readonly number[], tolerance: number, where: string): void {
  actual.forEach((v, c) => assert.ok(Math.abs(v - expected[c]) <= tolerance, `${where}: ${actual} vs ${expected}`));
}

describe('image decoding', function () {
  it('decodes WebP, GIF, TIFF and AVIF to the same picture as PNG', async function () {
    const image = paintedImage(
      64,
      48,
      [240, 240, 240],
      [
        { left: 0, top: 0, width: 32, height: 48, colour: RED },
        { left: 40, top: 10, width: 16, height: 16, colour: BLUE },
      ],
    );
    const fromPng = await outputColours(await encodePng(image), 'squash', 32);
    const encoders: [string, () => Promise<Buffer>, number][] = [
      ['webp lossless', () => toSharp(image).webp({ lossless: true }).toBuffer(), 0.01],
      ['gif', () => toSharp(image).gif().toBuffer(), 1],
      ['tiff lzw', () => toSharp(image).tiff({ compression: 'lzw' }).toBuffer(), 0.01],
      ['avif', () => toSharp(image).avif({ quality: 90 }).toBuffer(), 6],
    ];
    for (const [name, encode, tolerance] of encoders) {
      const mad = meanAbsDiff(await outputColours(await encode(), 'squash', 32), fromPng);
      assert.ok(mad <= tolerance, `${name}: MAD ${mad} vs PNG`);
    }
  });

  it('applies EXIF orientation 6 (rotate 90° clockwise): the stored left half ends up on top', async function () {
    // stored 60×40: left half red, right half blue
    const stored = paintedImage(60, 40, BLUE, [{ left: 0, top: 0, width: 30, height: 40, colour: RED }]);
    const jpeg = await toSharp(stored).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    assert.equal((await sharp(jpeg).metadata()).orientation, 6);
    for (const resampler of ['pil', 'libvips'] as const) {
      const out = await preprocessImage(jpeg, clipOptions('squash', 20, { resampler }));
      assert.equal(out.sourceWidth, 40);
      assert.equal(out.sourceHeight, 60);
      const hwc = denormalise(out.pixels, 20);
      assertColour(colourAt(hwc, 20, 10, 3), RED, 12, `${resampler} top`);
      assertColour(colourAt(hwc, 20, 10, 16), BLUE, 12, `${resampler} bottom`);
    }
  });

  it('uses only the first frame of an animated GIF', async function () {
    const frames = paintedImage(16, 32, RED, [{ left: 0, top: 16, width: 16, height: 16, colour: BLUE }]);
    const gif = await sharp(frames.data, { raw: { width: 16, height: 32, channels: 3, pageHeight: 16 } })
      .gif()
      .toBuffer();
    assert.equal((await sharp(gif).metadata()).pages, 2);
    const out = await preprocessImage(gif, clipOptions('crop', 8));
    assert.equal(out.sourceHeight, 16);
    const hwc = denormalise(out.pixels, 8);
    for (let i = 0; i < 64; i++) assertColour([hwc[i * 3], hwc[i * 3 + 1], hwc[i * 3 + 2]], RED, 10, `pixel ${i}`);
  });

  it('converts a CMYK JPEG to RGB', async function () {
    const cmyk = await toSharp(paintedImage(32, 32, RED, []))
      .toColourspace('cmyk')
      .jpeg({ quality: 95 })
      .toBuffer();
    assert.equal((await sharp(cmyk).metadata()).space, 'cmyk');
    const [r, g, b] = colourAt(await outputColours(cmyk, 'crop', 8), 8, 4, 4);
    assert.ok(r > 170 && g < 90 && b < 90, `CMYK red came out as ${r},${g},${b}`);
  });

  it('reduces a 16-bit PNG to 8 bits per channel', async function () {
    const png16 = await toSharp(paintedImage(16, 16, [200, 100, 50], []))
      .toColourspace('rgb16')
      .png()
      .toBuffer();
    assert.equal((await sharp(png16).metadata()).depth, 'ushort');
    assertColour(colourAt(await outputColours(png16, 'squash', 4), 4, 1, 1), [200, 100, 50], 1, '16-bit');
  });

  it('expands greyscale to three equal channels', async function () {
    const grey = await toSharp(paintedImage(16, 16, [90, 90, 90], []))
      .toColourspace('b-w')
      .png()
      .toBuffer();
    assert.equal((await sharp(grey).metadata()).channels, 1);
    assertColour(colourAt(await outputColours(grey, 'squash', 4), 4, 2, 2), [90, 90, 90], 0.5, 'grey');
  });

  it("drops alpha like PIL's convert('RGB'): transparent pixels keep their stored colour", async function () {
    const rgba = paintedImage(24, 24, [200, 50, 50, 0], [{ left: 0, top: 0, width: 24, height: 12, colour: [40, 160, 40, 128] }]);
    const png = await encodePng(rgba);
    assert.equal((await sharp(png).metadata()).hasAlpha, true);
    const hwc = await outputColours(png, 'squash', 12);
    assertColour(colourAt(hwc, 12, 6, 1), [40, 160, 40], 0.5, 'half-transparent');
    assertColour(colourAt(hwc, 12, 6, 10), [200, 50, 50], 0.5, 'fully transparent');
  });

  it('accepts a 1×1 image in every mode', async function () {
    const png = await encodePng(paintedImage(1, 1, [10, 20, 30], []));
    for (const mode of ['crop', 'pad', 'squash'] as const) {
      for (const resampler of ['pil', 'libvips'] as const) {
        const hwc = await outputColours(png, mode, 14, resampler);
        for (let i = 0; i < 14 * 14; i++) assertColour([hwc[i * 3], hwc[i * 3 + 1], hwc[i * 3 + 2]], [10, 20, 30], 0.5, `${mode} ${resampler}`);
      }
    }
  });

  it('accepts a Uint8Array view into a larger buffer', async function () {
    const png = await encodePng(testCard(40, 30));
    const padded = new Uint8Array(png.length + 20);
    padded.set(png, 10);
    const view = padded.subarray(10, 10 + png.length);
    const a = await preprocessImage(view, clipOptions('crop', 16));
    const b = await preprocessImage(png, clipOptions('crop', 16));
    assert.deepEqual(a.pixels, b.pixels);
  });
});

describe('image decoding guards', function () {
  it('refuses a header claiming 100000×100000 before decoding, naming the size and the cap', async function () {
    const started = Date.now();
    await assert.rejects(
      preprocessImage(pngClaiming(100000, 100000), clipOptions('crop', 336)),
      (err: Error) => /100000×100000/.test(err.message) && /maxInputPixels cap of 100000000/.test(err.message),
    );
    assert.ok(Date.now() - started < 5000);
  });

  it('refuses a real image over a lowered cap, and accepts it when the cap allows', async function () {
    const png = await encodePng(paintedImage(300, 200, [1, 2, 3], []));
    await assert.rejects(
      preprocessImage(png, clipOptions('squash', 8, { maxInputPixels: 50_000 })),
      /image is 300×200 \(0\.1 MP\), above the maxInputPixels cap of 50000/,
    );
    const out = await preprocessImage(png, clipOptions('squash', 8, { maxInputPixels: 60_000 }));
    assert.equal(out.sourceWidth, 300);
  });

  it('refuses to pad a thin image to a square larger than the cap', async function () {
    const png = await encodePng(paintedImage(1000, 10, [1, 2, 3], []));
    await assert.rejects(preprocessImage(png, clipOptions('pad', 8, { maxInputPixels: 100_000 })), /1000×1000 square/);
  });

  it('rejects empty, truncated, random and text inputs as not decodable images', async function () {
    const jpeg = await toSharp(testCard(64, 64)).jpeg().toBuffer();
    const random = Buffer.alloc(4096);
    for (let i = 0; i < random.length; i++) random[i] = (i * 7919 + 13) % 251;
    const inputs: [string, Buffer][] = [
      ['empty', Buffer.alloc(0)],
      ['truncated JPEG', jpeg.subarray(0, jpeg.length >> 1)],
      ['JPEG header only', jpeg.subarray(0, 200)],
      ['random bytes', random],
      ['plain text', Buffer.from('hello, this is not an image\n')],
    ];
    for (const [name, bytes] of inputs) {
      await assert.rejects(preprocessImage(bytes, clipOptions('crop', 8)), /^Error: not a decodable image: /, name);
    }
  });
});

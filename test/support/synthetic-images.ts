// Test images made at test time, and helpers to read preprocessing output back as 0–255 pixels.

import sharp, { type Sharp } from 'sharp';
import { crc32, deflateSync } from 'zlib';
import type { PreprocessOptions } from '../../lib/pipeline/types';
import type { RawImage } from './pil-resize';

export const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

export function clipOptions(mode: PreprocessOptions['mode'], size: number, extra: Partial<PreprocessOptions> = {}): PreprocessOptions {
  return { mode, size, mean: CLIP_MEAN, std: CLIP_STD, ...extra };
}

/** A deterministic pseudo-random byte stream (LCG), so failures reproduce. */
function randomBytes(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state >>> 24;
  };
}

/**
 * A test card with one kind of content per quadrant: a colour gradient (top left), sinusoids (top right),
 * a 1-pixel checkerboard (bottom left) and uniform noise (bottom right).
 */
export function testCard(width: number, height: number, seed = 7): RawImage {
  const data = new Uint8Array(width * height * 3);
  const next = randomBytes(seed);
  const midX = width >> 1;
  const midY = height >> 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      let rgb: [number, number, number];
      if (y < midY && x < midX) rgb = [(x * 255) / midX, (y * 255) / midY, ((x + y) * 127) / (midX + midY)];
      else if (y < midY) rgb = [128 + 120 * Math.sin(x / 3), 128 + 120 * Math.sin(y / 5), 128 + 120 * Math.sin((x + y) / 11)];
      else if (x < midX) rgb = (x + y) & 1 ? [250, 250, 250] : [5, 5, 5];
      else rgb = [next(), next(), next()];
      data[i] = rgb[0];
      data[i + 1] = rgb[1];
      data[i + 2] = rgb[2];
    }
  }
  return { data, width, height, channels: 3 };
}

/** A width×height image of one colour with axis-aligned coloured rectangles painted on it. */
export function paintedImage(
  width: number,
  height: number,
  background: readonly number[],
  rects: { left: number; top: number; width: number; height: number; colour: readonly number[] }[],
): RawImage {
  const channels = background.length;
  const data = new Uint8Array(width * height * channels);
  for (let p = 0; p < width * height; p++) data.set(background, p * channels);
  for (const r of rects) {
    for (let y = r.top; y < r.top + r.height; y++) {
      for (let x = r.left; x < r.left + r.width; x++) data.set(r.colour, (y * width + x) * channels);
    }
  }
  return { data, width, height, channels };
}

export function toSharp(image: RawImage): Sharp {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: image.channels as 3 | 4 } });
}

export function encodePng(image: RawImage): Promise<Buffer> {
  return toSharp(image).png({ compressionLevel: 1 }).toBuffer();
}

export function encodeJpeg(image: RawImage, quality = 90): Promise<Buffer> {
  return toSharp(image).jpeg({ quality }).toBuffer();
}

/** Decodes the way preprocessing does (sRGB, no alpha), for the PIL reference. */
export async function decodeRaw(bytes: Buffer): Promise<RawImage> {
  const { data, info } = await sharp(bytes).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** CHW normalised floats back to HWC 0–255 floats (not rounded). */
export function denormalise(pixels: Float32Array, size: number): Float64Array {
  const plane = size * size;
  const out = new Float64Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) out[i * 3 + c] = (pixels[c * plane + i] * CLIP_STD[c] + CLIP_MEAN[c]) * 255;
  }
  return out;
}

export function meanAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

/** The 0–255 colour at (x, y) of denormalised output. */
export function colourAt(hwc: Float64Array, size: number, x: number, y: number): number[] {
  const i = (y * size + x) * 3;
  return [hwc[i], hwc[i + 1], hwc[i + 2]];
}

function pngChunk(type: string, data: Buffer): Buffer {
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write(type, 4, 'latin1');
  data.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  return chunk;
}

/** A decompression bomb in miniature: a tiny PNG whose header claims width×height, with far too little pixel data. */
export function pngClaiming(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, deflate, no filter, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc(16))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

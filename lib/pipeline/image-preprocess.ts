// Encoded image bytes → the vision tower's input: 3×size×size float32, channel-major, (x/255 − mean)/std.
//
// sharp (libvips) decodes; colour handling follows PIL's convert('RGB') as used by every Python LLaVA pipeline:
// CMYK, greyscale and 16-bit images become 8-bit sRGB, and an alpha channel is dropped (not composited), so
// transparent pixels keep the colour they store. Unlike the Python pipelines, EXIF orientation is applied, so a
// rotated camera frame is seen upright. Only the first frame of an animation or first page of a multi-page
// file is used. Resizing is PIL-exact bicubic or bilinear (image-resample.ts), or, with resampler libvips, sharp's
// own in the decoding pipeline (faster, not exact).

import sharp, { type OutputInfo, type Sharp } from 'sharp';
import { performance } from 'perf_hooks';
import { planResize, type ResizePlan } from './image-geometry';
import { resizeWindow, type Padding, type RgbImage, type Window } from './image-resample';
import type { PreprocessOptions, PreprocessedImage, Resample } from './types';

export const DEFAULT_MAX_INPUT_PIXELS = 100_000_000;

function megapixels(pixels: number): string {
  return `${(pixels / 1e6).toFixed(1)} MP`;
}

function checkOptions(options: PreprocessOptions): number {
  const { size, mean, std } = options;
  for (const [name, value] of [
    ['size', size],
    ['shortestEdge', options.shortestEdge ?? size],
  ] as const) {
    if (!Number.isInteger(value) || value < 1 || value > 8192) {
      throw new Error(`preprocess ${name} must be an integer from 1 to 8192, got ${value}`);
    }
  }
  if ((options.shortestEdge ?? size) < size) throw new Error(`preprocess shortestEdge ${options.shortestEdge} is smaller than the ${size} crop`);
  const rescale = options.rescale ?? 1 / 255;
  if (!(Number.isFinite(rescale) && rescale > 0)) throw new Error(`preprocess rescale must be a positive number, got ${rescale}`);
  for (const [name, values] of [
    ['mean', mean],
    ['std', std],
  ] as const) {
    if (!Array.isArray(values) || values.length !== 3 || !values.every(Number.isFinite)) {
      throw new Error(`preprocess ${name} must be three finite numbers (R, G, B), got ${JSON.stringify(values)}`);
    }
  }
  if (std.some((s) => s === 0)) throw new Error(`preprocess std must not contain 0, got ${JSON.stringify(std)}`);
  if (options.resampler !== undefined && options.resampler !== 'pil' && options.resampler !== 'libvips') {
    throw new Error(`preprocess resampler must be pil or libvips, got ${JSON.stringify(options.resampler)}`);
  }
  const cap = options.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS;
  if (!(cap > 0)) throw new Error(`maxInputPixels must be a positive number, got ${cap}`);
  return cap;
}

/** libvips reports a broken file as one line per decoder complaint, often repeated: keep each once, on one line. */
function undecodable(err: unknown): Error {
  const lines = (err instanceof Error ? err.message : String(err))
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return new Error(`not a decodable image: ${[...new Set(lines)].join('; ')}`);
}

interface Size {
  width: number;
  height: number;
}

/** Refuses images above the pixel cap from the header alone, before any pixel is decoded; the size once EXIF-oriented. */
async function checkPixelCap(bytes: Buffer, cap: number): Promise<Size> {
  let width: number;
  let height: number;
  let oriented: Size;
  try {
    ({ width, height, autoOrient: oriented } = await sharp(bytes, { limitInputPixels: false }).metadata());
  } catch (err) {
    throw undecodable(err);
  }
  if (!(width > 0 && height > 0)) throw new Error('not a decodable image: no dimensions in its header');
  // For animations sharp reports the first frame's height, the only frame decoded.
  if (width * height > cap) {
    throw new Error(
      `image is ${width}×${height} (${megapixels(width * height)}), above the maxInputPixels cap of ` +
        `${cap} (${megapixels(cap)}); raise maxInputPixels to accept it`,
    );
  }
  return oriented;
}

/** The decoding pipeline: 8-bit sRGB, EXIF-oriented, alpha dropped. */
function decoder(bytes: Buffer, cap: number): Sharp {
  return sharp(bytes, { limitInputPixels: cap, autoOrient: true, sequentialRead: true }).removeAlpha().toColourspace('srgb');
}

/** Runs a pipeline to raw RGB bytes; a failure is the image's. */
async function rawRgb(pipeline: Sharp): Promise<RgbImage> {
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    decoded = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw undecodable(err);
  }
  const { data, info } = decoded;
  if (info.channels !== 3) throw new Error(`not a decodable image: decoded to ${info.channels} channels, not RGB`);
  return { data, width: info.width, height: info.height };
}

/** Refuses empty input and images over the cap; the bytes as a Buffer and their oriented size. */
async function checked(bytes: Uint8Array, cap: number): Promise<{ input: Buffer; size: Size }> {
  const input = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (input.length === 0) throw new Error('not a decodable image: the input is empty (0 bytes)');
  return { input, size: await checkPixelCap(input, cap) };
}

async function decodeChecked(bytes: Uint8Array, cap: number): Promise<RgbImage> {
  return rawRgb(decoder((await checked(bytes, cap)).input, cap));
}

/**
 * Fails as preprocessImage would on an input that is not an image or is over the pixel cap, without needing the
 * model's geometry: the CLI checks its image before spending time (and ORT's provider probing) on a model load.
 */
export async function assertDecodable(bytes: Uint8Array, maxInputPixels = DEFAULT_MAX_INPUT_PIXELS): Promise<void> {
  await decodeChecked(bytes, maxInputPixels);
}

/** LLaVA's pad colour: tuple(int(x*255) for x in image_mean). */
export function padColour(mean: readonly number[]): number[] {
  return mean.map((m) => Math.min(255, Math.max(0, Math.trunc(m * 255))));
}

/** expand2square's canvas for `plan`, refused when that square would be larger than the pixel cap. */
function squarePadding(image: Size, plan: ResizePlan, mean: readonly number[], cap: number): Padding | undefined {
  const side = plan.padSide;
  if (side === 0 || (side === image.width && side === image.height)) return undefined;
  if (side * side > cap) {
    throw new Error(
      `padding a ${image.width}×${image.height} image to a ${side}×${side} square exceeds the maxInputPixels cap ` +
        `of ${cap} (${megapixels(cap)}); use mode crop or squash, or raise maxInputPixels`,
    );
  }
  return { side, left: plan.padLeft, top: plan.padTop, fill: padColour(mean) };
}

/** HWC uint8 → CHW float32 (x·rescale − mean)/std, via a per-channel lookup table in one pass. */
function normalise(rgb: Uint8Array, size: number, options: PreprocessOptions): Float32Array {
  const { mean, std } = options;
  const table = new Float32Array(3 * 256);
  const scaled = (v: number) => (options.rescale === undefined ? v / 255 : v * options.rescale);
  for (let c = 0; c < 3; c++) for (let v = 0; v < 256; v++) table[c * 256 + v] = (scaled(v) - mean[c]) / std[c];
  const plane = size * size;
  const out = new Float32Array(3 * plane);
  for (let i = 0, j = 0; i < plane; i++, j += 3) {
    out[i] = table[rgb[j]];
    out[plane + i] = table[256 + rgb[j + 1]];
    out[2 * plane + i] = table[512 + rgb[j + 2]];
  }
  return out;
}

interface Resized {
  rgb: Uint8Array;
  source: Size;
}

/** Where the source lands in the size×size output. */
function layout(source: Size, options: PreprocessOptions): { plan: ResizePlan; window: Window } {
  const { size } = options;
  const plan = planResize(options.mode, source.width, source.height, size, options.shortestEdge);
  return { plan, window: { left: plan.cropLeft, top: plan.cropTop, width: size, height: size } };
}

/** PIL-exact: decode, then resample in JS. */
async function resizePil(input: Buffer, cap: number, options: PreprocessOptions): Promise<Resized> {
  const decoded = await rawRgb(decoder(input, cap));
  const { plan, window } = layout(decoded, options);
  const padding = squarePadding(decoded, plan, options.mean, cap);
  return { rgb: resizeWindow(decoded, plan.resizeWidth, plan.resizeHeight, window, padding, options.resample), source: decoded };
}

const SHARP_KERNEL: Record<Resample, 'cubic' | 'linear'> = { bicubic: 'cubic', bilinear: 'linear' };

/** libvips: decode (shrinking a JPEG on load), resize and crop in one native pipeline; pad mode pastes first. */
async function resizeLibvips(input: Buffer, source: Size, cap: number, options: PreprocessOptions): Promise<Resized> {
  const { plan, window } = layout(source, options);
  let pipeline = decoder(input, cap);
  const padding = squarePadding(source, plan, options.mean, cap);
  if (padding) {
    // In one pipeline sharp would resize before extending: paste on the square first.
    const { side, left, top, fill } = padding;
    const background = { r: fill[0], g: fill[1], b: fill[2] };
    const square = await rawRgb(pipeline.extend({ left, top, right: side - source.width - left, bottom: side - source.height - top, background }));
    pipeline = sharp(square.data, { raw: { width: side, height: side, channels: 3 } });
  }
  const kernel = SHARP_KERNEL[options.resample ?? 'bicubic'];
  const resized = pipeline.resize(plan.resizeWidth, plan.resizeHeight, { fit: 'fill', kernel });
  return { rgb: (await rawRgb(resized.extract(window))).data, source };
}

/**
 * Decodes an encoded image (JPEG, PNG, WebP, GIF, TIFF, AVIF) and turns it into the normalised CHW tensor for
 * options.mode: crop (llava-hf CLIPImageProcessor), pad (LLaVA-1.5 expand2square) or squash (mmpretrain).
 * sourceWidth/sourceHeight are the decoded size after EXIF orientation.
 */
export async function preprocessImage(bytes: Uint8Array, options: PreprocessOptions): Promise<PreprocessedImage> {
  const started = performance.now();
  const cap = checkOptions(options);
  const { input, size } = await checked(bytes, cap);
  const { rgb, source } = options.resampler === 'libvips' ? await resizeLibvips(input, size, cap, options) : await resizePil(input, cap, options);
  return {
    pixels: normalise(rgb, options.size, options),
    size: options.size,
    sourceWidth: source.width,
    sourceHeight: source.height,
    ms: performance.now() - started,
  };
}

// Resizing that reproduces Pillow's Image.resize(..., BICUBIC or BILINEAR) on 8-bit RGB bit for bit.
//
// Why not sharp's resize: libvips box-shrinks by an integer factor before its cubic pass whenever the scale
// factor is 4 or more (e.g. 1920 → 336), which drifts from PIL by 1–2 grey levels on detailed images. The
// LLaVA checkpoints were trained on PIL output, so we resample the way PIL does: separable (horizontal pass,
// then vertical), Keys cubic a = -0.5 (support 2) or the triangle (support 1) widened by the downscale factor, weights normalised per output sample
// and held as 22-bit fixed point, each pass rounded and clipped to uint8.
// Only the requested output window is computed, so a centre crop costs no more than its own pixels.

export interface RgbImage {
  /** Interleaved RGB, row-major, 3 bytes per pixel. */
  data: Uint8Array;
  width: number;
  height: number;
}

export interface Window {
  left: number;
  top: number;
  width: number;
  height: number;
}

const FRACTION_BITS = 22;
const UNIT = 1 << FRACTION_BITS;
const HALF = 1 << (FRACTION_BITS - 1);

import type { Resample } from './types';

interface Filter {
  support: number;
  kernel(distance: number): number;
}

/** Pillow's bicubic_filter (Keys, a = -0.5) and bilinear_filter (triangle). */
const FILTERS: Record<Resample, Filter> = {
  bicubic: {
    support: 2,
    kernel(distance) {
      const t = Math.abs(distance);
      if (t < 1) return (1.5 * t - 2.5) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * -0.5;
      return 0;
    },
  },
  bilinear: {
    support: 1,
    kernel(distance) {
      const t = Math.abs(distance);
      return t < 1 ? 1 - t : 0;
    },
  },
};

interface Taps {
  start: Int32Array;
  count: Int32Array;
  weights: Int32Array;
  /** weight slots per output sample */
  stride: number;
}

/** Fixed-point filter taps for outputs [from, from+n) of an inSize → outSize resize along one axis. */
function axisTaps(inSize: number, outSize: number, from: number, n: number, filter: Filter): Taps {
  const scale = inSize / outSize;
  const widen = Math.max(1, scale);
  const inverseWiden = 1 / widen;
  const support = filter.support * widen;
  const stride = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(n);
  const count = new Int32Array(n);
  const weights = new Int32Array(n * stride);
  const real = new Float64Array(stride);
  for (let k = 0; k < n; k++) {
    const centre = (from + k + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(centre - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(centre + support + 0.5));
    let total = 0;
    for (let i = lo; i < hi; i++) {
      real[i - lo] = filter.kernel((i - centre + 0.5) * inverseWiden);
      total += real[i - lo];
    }
    for (let i = 0; i < hi - lo; i++) {
      const w = (total !== 0 ? real[i] / total : real[i]) * UNIT;
      weights[k * stride + i] = Math.trunc(w < 0 ? w - 0.5 : w + 0.5);
    }
    start[k] = lo;
    count[k] = hi - lo;
  }
  return { start, count, weights, stride };
}

function toByte(accumulator: number): number {
  const v = accumulator >> FRACTION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

// Sums stay below 2^31 (255 × a weight sum of at most ~1.3 × 2^22), so the int32 arithmetic is exact.

/** Horizontal taps applied to one source row (3 bytes per pixel from `offset`), written at out[outOffset]. */
function resampleRow(row: Uint8Array, offset: number, taps: Taps, out: Uint8Array, outOffset: number): void {
  const { start, count, weights, stride } = taps;
  let o = outOffset;
  for (let x = 0; x < start.length; x++) {
    let r = HALF,
      g = HALF,
      b = HALF;
    const w0 = x * stride;
    const n = count[x];
    for (let i = 0, p = offset + start[x] * 3; i < n; i++, p += 3) {
      const w = weights[w0 + i];
      r = (r + Math.imul(row[p], w)) | 0;
      g = (g + Math.imul(row[p + 1], w)) | 0;
      b = (b + Math.imul(row[p + 2], w)) | 0;
    }
    out[o++] = toByte(r);
    out[o++] = toByte(g);
    out[o++] = toByte(b);
  }
}

/**
 * The image as the resampler sees it: optionally pasted at (left, top) on a side×side square of `fill`
 * (LLaVA's expand2square) without building that square: rows that are all fill are resampled once.
 */
export interface Padding {
  side: number;
  left: number;
  top: number;
  fill: readonly number[];
}

/** Horizontal pass over source rows [rowFrom, rowFrom+rows). */
function horizontalPass(image: RgbImage, padding: Padding | undefined, taps: Taps, rowFrom: number, rows: number): Uint8Array {
  const outRowBytes = taps.start.length * 3;
  const out = new Uint8Array(rows * outRowBytes);
  const imageRowBytes = image.width * 3;
  if (!padding) {
    for (let y = 0; y < rows; y++) resampleRow(image.data, (rowFrom + y) * imageRowBytes, taps, out, y * outRowBytes);
    return out;
  }
  const padded = new Uint8Array(padding.side * 3);
  for (let x = 0; x < padding.side; x++) padded.set(padding.fill, x * 3);
  let fillRow: Uint8Array | undefined;
  for (let y = 0; y < rows; y++) {
    const imageY = rowFrom + y - padding.top;
    if (imageY < 0 || imageY >= image.height) {
      if (!fillRow) {
        fillRow = new Uint8Array(outRowBytes);
        resampleRow(padded, 0, taps, fillRow, 0);
      }
      out.set(fillRow, y * outRowBytes);
    } else {
      padded.set(image.data.subarray(imageY * imageRowBytes, (imageY + 1) * imageRowBytes), padding.left * 3);
      resampleRow(padded, 0, taps, out, y * outRowBytes);
    }
  }
  return out;
}

/** Vertical pass, one output row at a time; `rowFrom` is the source row that row 0 of `band` holds. */
function verticalPass(band: Uint8Array, width: number, taps: Taps, rowFrom: number): Uint8Array {
  const { start, count, weights, stride } = taps;
  const rowBytes = width * 3;
  const out = new Uint8Array(start.length * rowBytes);
  const acc = new Int32Array(rowBytes);
  for (let y = 0; y < start.length; y++) {
    acc.fill(HALF);
    const n = count[y];
    const w0 = y * stride;
    let i = 0;
    // Two source rows per sweep of the accumulator: half its loads and stores.
    for (; i + 1 < n; i += 2) {
      const wa = weights[w0 + i];
      const wb = weights[w0 + i + 1];
      const a = (start[y] - rowFrom + i) * rowBytes;
      const b = a + rowBytes;
      for (let x = 0; x < rowBytes; x++) acc[x] = (acc[x] + Math.imul(band[a + x], wa) + Math.imul(band[b + x], wb)) | 0;
    }
    if (i < n) {
      const w = weights[w0 + i];
      const row = (start[y] - rowFrom + i) * rowBytes;
      for (let x = 0; x < rowBytes; x++) acc[x] = (acc[x] + Math.imul(band[row + x], w)) | 0;
    }
    for (let x = 0, o = y * rowBytes; x < rowBytes; x++) out[o + x] = toByte(acc[x]);
  }
  return out;
}

/**
 * PIL-exact resize of `image` (or of it padded to a square, see Padding) to resizeWidth×resizeHeight, returning
 * only `window` of the result (interleaved RGB, window.width × window.height).
 */
export function resizeWindow(
  image: RgbImage,
  resizeWidth: number,
  resizeHeight: number,
  window: Window,
  padding?: Padding,
  resample: Resample = 'bicubic',
): Uint8Array {
  const filter = FILTERS[resample];
  if (!filter) throw new Error(`unknown resample filter "${String(resample)}": expected bicubic or bilinear`);
  const { left, top, width, height } = window;
  if (left < 0 || top < 0 || left + width > resizeWidth || top + height > resizeHeight || width < 1 || height < 1) {
    throw new Error(`window ${width}×${height}+${left}+${top} is outside the ${resizeWidth}×${resizeHeight} resize`);
  }
  if (padding && (padding.left + image.width > padding.side || padding.top + image.height > padding.side)) {
    throw new Error(`a ${image.width}×${image.height} image does not fit at ${padding.left},${padding.top} on a ${padding.side} square`);
  }
  const sourceWidth = padding ? padding.side : image.width;
  const sourceHeight = padding ? padding.side : image.height;
  const vertical = axisTaps(sourceHeight, resizeHeight, top, height, filter);
  const rowFrom = vertical.start[0];
  const rowTo = vertical.start[height - 1] + vertical.count[height - 1];
  const horizontal = axisTaps(sourceWidth, resizeWidth, left, width, filter);
  const band = horizontalPass(image, padding, horizontal, rowFrom, rowTo - rowFrom);
  return verticalPass(band, width, vertical, rowFrom);
}

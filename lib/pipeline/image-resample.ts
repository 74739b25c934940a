// Bicubic resize that reproduces Pillow's Image.resize(..., BICUBIC) on 8-bit RGB bit for bit.
//
// Why not sharp's resize: libvips box-shrinks by an integer factor before its cubic pass whenever the scale
// factor is 4 or more (e.g. 1920 → 336), which drifts from PIL by 1–2 grey levels on detailed images. The
// LLaVA checkpoints were trained on PIL output, so we resample the way PIL does: separable (horizontal pass,
// then vertical), Keys cubic a = -0.5 widened by the downscale factor, weights normalised per output sample
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

function keysCubic(distance: number): number {
  const t = Math.abs(distance);
  if (t < 1) return (1.5 * t - 2.5) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * -0.5;
  return 0;
}

interface Taps {
  start: Int32Array;
  count: Int32Array;
  weights: Int32Array;
  /** weight slots per output sample */
  stride: number;
}

/** Fixed-point filter taps for outputs [from, from+n) of an inSize → outSize resize along one axis. */
function axisTaps(inSize: number, outSize: number, from: number, n: number): Taps {
  const scale = inSize / outSize;
  const widen = Math.max(1, scale);
  const inverseWiden = 1 / widen;
  const support = 2 * widen;
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
      real[i - lo] = keysCubic((i - centre + 0.5) * inverseWiden);
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

/** Horizontal pass over rows [rowFrom, rowFrom+rows) into a window.width-wide RGB buffer. */
function horizontalPass(image: RgbImage, taps: Taps, outWidth: number, rowFrom: number, rows: number): Uint8Array {
  const { data, width } = image;
  const { start, count, weights, stride } = taps;
  const out = new Uint8Array(rows * outWidth * 3);
  let o = 0;
  for (let y = 0; y < rows; y++) {
    const row = (rowFrom + y) * width * 3;
    for (let x = 0; x < outWidth; x++) {
      let r = HALF, g = HALF, b = HALF;
      const w0 = x * stride;
      for (let i = 0, p = row + start[x] * 3; i < count[x]; i++, p += 3) {
        const w = weights[w0 + i];
        r = (r + Math.imul(data[p], w)) | 0;
        g = (g + Math.imul(data[p + 1], w)) | 0;
        b = (b + Math.imul(data[p + 2], w)) | 0;
      }
      out[o++] = toByte(r);
      out[o++] = toByte(g);
      out[o++] = toByte(b);
    }
  }
  return out;
}

/** Vertical pass; `rowFrom` is the source row that row 0 of `band` holds. */
function verticalPass(band: Uint8Array, width: number, taps: Taps, outHeight: number, rowFrom: number): Uint8Array {
  const { start, count, weights, stride } = taps;
  const rowBytes = width * 3;
  const out = new Uint8Array(outHeight * rowBytes);
  let o = 0;
  for (let y = 0; y < outHeight; y++) {
    const w0 = y * stride;
    const top = (start[y] - rowFrom) * rowBytes;
    for (let x = 0; x < rowBytes; x++) {
      let acc = HALF;
      for (let i = 0, p = top + x; i < count[y]; i++, p += rowBytes) acc = (acc + Math.imul(band[p], weights[w0 + i])) | 0;
      out[o++] = toByte(acc);
    }
  }
  return out;
}

/**
 * PIL-exact bicubic resize of `image` to resizeWidth×resizeHeight, returning only `window` of the result
 * (interleaved RGB, window.width × window.height).
 */
export function resizeBicubicWindow(image: RgbImage, resizeWidth: number, resizeHeight: number, window: Window): Uint8Array {
  const { left, top, width, height } = window;
  if (left < 0 || top < 0 || left + width > resizeWidth || top + height > resizeHeight || width < 1 || height < 1) {
    throw new Error(`window ${width}×${height}+${left}+${top} is outside the ${resizeWidth}×${resizeHeight} resize`);
  }
  const vertical = axisTaps(image.height, resizeHeight, top, height);
  const rowFrom = vertical.start[0];
  const rowTo = vertical.start[height - 1] + vertical.count[height - 1];
  const horizontal = axisTaps(image.width, resizeWidth, left, width);
  const band = horizontalPass(image, horizontal, width, rowFrom, rowTo - rowFrom);
  return verticalPass(band, width, vertical, height, rowFrom);
}

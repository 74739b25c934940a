// Pillow's BICUBIC/BILINEAR resize for 8-bit images (Image.resize) written plainly over whole images, plus the
// three LLaVA preprocessing geometries built on it, so tests can compare our pipeline with what PIL would produce
// on images of any size without Python. It follows the same algorithm as lib/pipeline/image-resample.ts, so it
// is not an independent check by itself: test/pipeline/image-preprocess-fidelity.spec holds both to real Pillow's pixels
// (test/fixtures/pil-resize.json, made by scripts/fixtures/pil-resize.py).
//
// Pillow's algorithm (libImaging/Resample.c), as reimplemented here:
// - separable: a horizontal pass, then a vertical pass, each rounded and clipped to uint8;
// - Keys cubic kernel with a = -0.5 and support 2, widened by the scale factor when downscaling;
// - each output sample's weights are normalised to sum 1, then turned into fixed-point integers with
//   22 fractional bits (rounded away from zero); the accumulator starts at one half for rounding.

const FRACTION_BITS = 22;
const ONE = 2 ** FRACTION_BITS;

/** Keys cubic convolution kernel, a = -0.5 (Catmull-Rom). */
function bicubic(x: number): number {
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

/** Pillow's bilinear_filter: the triangle, support 1. */
function bilinear(x: number): number {
  const t = Math.abs(x);
  return t < 1 ? 1 - t : 0;
}

export type PilFilter = 'bicubic' | 'bilinear';
const PIL_FILTERS = { bicubic: { kernel: bicubic, support: 2 }, bilinear: { kernel: bilinear, support: 1 } };

interface AxisWeights {
  /** first input index used by each output sample */
  first: Int32Array;
  /** how many input samples each output sample uses */
  count: Int32Array;
  /** fixed-point weights, `stride` slots per output sample */
  weights: Int32Array;
  stride: number;
}

function axisWeights(inSize: number, outSize: number, filter: PilFilter): AxisWeights {
  const { kernel, support: unitSupport } = PIL_FILTERS[filter];
  const scale = inSize / outSize;
  const filterScale = Math.max(1, scale);
  const support = unitSupport * filterScale;
  const stride = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * stride);
  const real = new Float64Array(stride);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5));
    let sum = 0;
    for (let i = 0; i < hi - lo; i++) {
      real[i] = kernel((i + lo - center + 0.5) * (1 / filterScale));
      sum += real[i];
    }
    for (let i = 0; i < hi - lo; i++) {
      const w = sum !== 0 ? real[i] / sum : real[i];
      weights[o * stride + i] = w < 0 ? Math.trunc(w * ONE - 0.5) : Math.trunc(w * ONE + 0.5);
    }
    first[o] = lo;
    count[o] = hi - lo;
  }
  return { first, count, weights, stride };
}

function toUint8(accumulator: number): number {
  const v = Math.floor(accumulator / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** One resampling pass along x (horizontal) or y (vertical) of an interleaved HWC uint8 image. */
function resamplePass(src: Uint8Array, width: number, height: number, channels: number, outSize: number, horizontal: boolean, filter: PilFilter): Uint8Array {
  const inSize = horizontal ? width : height;
  const { first, count, weights, stride } = axisWeights(inSize, outSize, filter);
  const outW = horizontal ? outSize : width;
  const outH = horizontal ? height : outSize;
  const out = new Uint8Array(outW * outH * channels);
  // step between neighbouring samples along the resampled axis, in array elements
  const step = horizontal ? channels : width * channels;
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const o = horizontal ? x : y;
      const base = horizontal ? (y * width + first[o]) * channels : (first[o] * width + x) * channels;
      for (let c = 0; c < channels; c++) {
        let acc = ONE / 2;
        for (let i = 0; i < count[o]; i++) acc += src[base + i * step + c] * weights[o * stride + i];
        out[(y * outW + x) * channels + c] = toUint8(acc);
      }
    }
  }
  return out;
}

export interface RawImage {
  /** interleaved HWC uint8 */
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

/** What PIL's `image.resize((outWidth, outHeight), Image.BICUBIC or BILINEAR)` returns for an 8-bit image. */
export function pilResize(image: RawImage, outWidth: number, outHeight: number, filter: PilFilter = 'bicubic'): RawImage {
  let { data, width, height } = image;
  const { channels } = image;
  if (outWidth !== width) {
    data = resamplePass(data, width, height, channels, outWidth, true, filter);
    width = outWidth;
  }
  if (outHeight !== height) {
    data = resamplePass(data, width, height, channels, outHeight, false, filter);
    height = outHeight;
  }
  return { data: data === image.data ? data.slice() : data, width, height, channels };
}

/** Crops a `width`×`height` window at (left, top). */
export function cropRaw(image: RawImage, left: number, top: number, width: number, height: number): RawImage {
  const c = image.channels;
  const out = new Uint8Array(width * height * c);
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * image.width + left) * c;
    out.set(image.data.subarray(from, from + width * c), y * width * c);
  }
  return { data: out, width, height, channels: c };
}

/** LLaVA's expand2square: paste centred on a max(w,h) square filled with `fill`. */
export function expandToSquare(image: RawImage, fill: readonly number[]): RawImage {
  const side = Math.max(image.width, image.height);
  const c = image.channels;
  const out = new Uint8Array(side * side * c);
  for (let i = 0; i < side * side; i++) for (let k = 0; k < c; k++) out[i * c + k] = fill[k];
  const left = Math.floor((side - image.width) / 2);
  const top = Math.floor((side - image.height) / 2);
  for (let y = 0; y < image.height; y++) {
    const row = image.data.subarray(y * image.width * c, (y + 1) * image.width * c);
    out.set(row, ((top + y) * side + left) * c);
  }
  return { data: out, width: side, height: side, channels: c };
}

/** HF CLIPImageProcessor: shortest edge → edge (long = int(edge*long/short)), then centre crop size×size. */
function pilClipResizeAndCrop(image: RawImage, size: number, edge: number, filter: PilFilter): RawImage {
  const { width: w, height: h } = image;
  const [outW, outH] = w <= h ? [edge, Math.floor((edge * h) / w)] : [Math.floor((edge * w) / h), edge];
  const resized = pilResize(image, outW, outH, filter);
  return cropRaw(resized, Math.floor((outW - size) / 2), Math.floor((outH - size) / 2), size, size);
}

/** The PIL pipeline each ResizeMode stands for, on already-decoded RGB pixels. */
export function pilReference(
  image: RawImage,
  mode: 'crop' | 'pad' | 'squash',
  size: number,
  fill: readonly number[],
  { shortestEdge = size, filter = 'bicubic' }: { shortestEdge?: number; filter?: PilFilter } = {},
): RawImage {
  if (mode === 'squash') return pilResize(image, size, size, filter);
  if (mode === 'crop') return pilClipResizeAndCrop(image, size, shortestEdge, filter);
  return pilClipResizeAndCrop(expandToSquare(image, fill), size, shortestEdge, filter);
}

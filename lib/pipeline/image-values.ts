// The values that carry an image from one stage to the next when a flow runs the stages one by one (image load →
// clip encode → project → generate). Pixels travel as bytes (Node-RED clones a Buffer by reference in O(1), a
// Float32Array element by element); image features stay in the inference worker and only their handle travels.
// The model side makes these values and frees what they hold: whoever carries them treats them as opaque.
import { isTensorHandle, TensorHandle } from '../runtime/tensor';
import { ImageFeatures, LlavaModel } from './llava-model';
import type { PreprocessedImage, PreprocessOptions } from './types';

export interface PixelsValue {
  /** float32 little-endian, [1, 3, size, size], normalised. */
  data: Buffer;
  dims: [number, number, number, number];
  type: 'float32';
  mode: string;
  sourceWidth: number;
  sourceHeight: number;
}

export interface FeaturesValue {
  handle: TensorHandle;
  projected: boolean;
}

/** A stage's result: the value to carry on, and how long the step took. */
export interface StageResult<V> {
  value: V;
  ms: number;
}

/** Decode and preprocess image bytes into the pixels value clip encode takes. */
export async function loadImage(model: LlavaModel, bytes: Uint8Array, options: Partial<PreprocessOptions> = {}): Promise<StageResult<PixelsValue>> {
  const image = await model.preprocess(bytes, options);
  return { value: loadedPixels(image, options.mode ?? model.preset.preprocess.mode), ms: image.ms };
}

/** A preprocessed image (resized with `mode`) as the pixels value a message carries. */
export function loadedPixels(image: PreprocessedImage, mode: string): PixelsValue {
  const { pixels, size } = image;
  return {
    data: Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength),
    dims: [1, 3, size, size],
    type: 'float32',
    mode,
    sourceWidth: image.sourceWidth,
    sourceHeight: image.sourceHeight,
  };
}

/** Run the vision encoder on a pixels value (`what` names where it came from, for the error when it is not one). */
export async function encodeImage(model: LlavaModel, pixels: unknown, what: string, signal?: AbortSignal): Promise<StageResult<FeaturesValue>> {
  const features = await model.encodeImage(pixelsFrom(pixels, what), signal);
  return { value: featuresValue(features), ms: features.ms };
}

/** Project a features value into the LLM's space; the input's handle is consumed. */
export async function projectImage(model: LlavaModel, features: unknown, what: string, signal?: AbortSignal): Promise<StageResult<FeaturesValue>> {
  const embeds = await model.project(imageFeaturesOf(features, what), signal);
  return { value: featuresValue(embeds), ms: embeds.ms };
}

/** The image features a features value refers to, for generate. */
export function imageFeaturesOf(value: unknown, what: string): ImageFeatures {
  if (!isFeaturesValue(value)) throw new Error(`${what} is not image features (expected the output of a clip encode or project node)`);
  return { handle: value.handle, projected: value.projected, ms: 0 };
}

/**
 * Frees the image features held by any features value among `values` (other values are ignored), through the model
 * that made them. For values that will go no further: a dropped or failed message.
 */
export function releaseImageValues(values: readonly unknown[]): Promise<void> {
  return LlavaModel.releaseHandles(values.filter(isFeaturesValue).map((v) => v.handle));
}

export function isPixelsValue(value: unknown): value is PixelsValue {
  const v = value as Partial<PixelsValue> | null;
  return !!v && typeof v === 'object' && Buffer.isBuffer(v.data) && v.type === 'float32' && Array.isArray(v.dims);
}

/** A private copy of the pixels (the runtime transfers what it is given, and a Buffer on a message may be shared). */
function pixelsFrom(value: unknown, what: string): Float32Array {
  if (!isPixelsValue(value)) throw new Error(`${what} is not preprocessed pixels (expected the output of an image load node)`);
  const v = value;
  const expected = v.dims.reduce((a, b) => a * b, 1) * 4;
  if (v.data.length !== expected) throw new Error(`${what} holds ${v.data.length} bytes; dims [${v.dims.join(', ')}] need ${expected}`);
  const copy = new Float32Array(expected / 4);
  new Uint8Array(copy.buffer).set(v.data);
  return copy;
}

function isFeaturesValue(value: unknown): value is FeaturesValue {
  const v = value as Partial<FeaturesValue> | null;
  return !!v && typeof v === 'object' && isTensorHandle(v.handle) && typeof v.projected === 'boolean';
}

function featuresValue(f: ImageFeatures): FeaturesValue {
  return { handle: f.handle, projected: f.projected };
}

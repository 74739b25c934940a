// The small values LLaVA stages put on msg. Pixels travel as a Buffer (Node-RED clones a Buffer by reference in
// O(1), a Float32Array element by element); image features stay in the runtime and only their handle travels.
import type { TensorHandle } from '../../lib/runtime/tensor';
import { isTensorHandle } from '../../lib/runtime/tensor';
import type { ImageFeatures } from '../../lib/pipeline/llava-model';

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

export function pixelsValue(pixels: Float32Array, size: number, mode: string, sourceWidth: number, sourceHeight: number): PixelsValue {
  return {
    data: Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength),
    dims: [1, 3, size, size],
    type: 'float32',
    mode,
    sourceWidth,
    sourceHeight,
  };
}

/** A private copy of the pixels (the runtime transfers what it is given, and a Buffer on msg may be shared). */
export function pixelsFrom(value: unknown, what: string): Float32Array {
  const v = value as Partial<PixelsValue> | null;
  if (!v || !Buffer.isBuffer(v.data) || v.type !== 'float32' || !Array.isArray(v.dims)) {
    throw new Error(`${what} is not preprocessed pixels (expected the output of an image load node)`);
  }
  const expected = v.dims.reduce((a, b) => a * b, 1) * 4;
  if (v.data.length !== expected) throw new Error(`${what} holds ${v.data.length} bytes; dims [${v.dims.join(', ')}] need ${expected}`);
  const copy = new Float32Array(expected / 4);
  new Uint8Array(copy.buffer).set(v.data);
  return copy;
}

export function featuresFrom(value: unknown, what: string): ImageFeatures {
  const v = value as Partial<FeaturesValue> | null;
  if (!v || !isTensorHandle(v.handle) || typeof v.projected !== 'boolean') {
    throw new Error(`${what} is not image features (expected the output of a clip encode or project node)`);
  }
  return { handle: v.handle, projected: v.projected, ms: 0 };
}

/** The image-feature handles a message carries under msg.llava (imageFeatures, imageEmbeds or any other key). */
export function featureHandlesOn(msg: object): TensorHandle[] {
  const llava = (msg as { llava?: unknown }).llava;
  if (!llava || typeof llava !== 'object') return [];
  return Object.values(llava)
    .map((v) => (v && typeof v === 'object' ? (v as Partial<FeaturesValue>).handle : undefined))
    .filter(isTensorHandle);
}

export function featuresValue(f: ImageFeatures): FeaturesValue {
  return { handle: f.handle, projected: f.projected };
}

export type StageTiming = 'preprocess_ms' | 'vision_ms' | 'projector_ms';

/** Each stage notes its time on msg.llava.timings; llm generate reports them with its own. */
export function recordTiming(msg: object, stage: StageTiming, ms: number): void {
  const m = msg as { llava?: { timings?: Record<string, number> } };
  m.llava ??= {};
  m.llava.timings = { ...m.llava.timings, [stage]: ms };
}

export function stageTimings(msg: object): Partial<Record<StageTiming, number>> {
  const t = (msg as { llava?: { timings?: Record<string, unknown> } }).llava?.timings ?? {};
  const out: Partial<Record<StageTiming, number>> = {};
  for (const k of ['preprocess_ms', 'vision_ms', 'projector_ms'] as const) if (typeof t[k] === 'number') out[k] = t[k] as number;
  return out;
}

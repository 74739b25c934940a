// The pipeline's public shapes, shared by the CLI, the nodes and the worker tasks.

/** crop: HF CLIPImageProcessor; pad: original LLaVA-1.5 expand2square then crop; squash: mmpretrain resize to size×size. */
export type ResizeMode = 'crop' | 'pad' | 'squash';

/** PIL's resampling filters the image processors use (resample 3 and 2). */
export type Resample = 'bicubic' | 'bilinear';
/** pil: Pillow-exact resampling (the default); libvips: sharp decodes, shrinks on load and resizes natively. */
export type Resampler = 'pil' | 'libvips';

export interface PreprocessOptions {
  mode: ResizeMode;
  /** The square the vision tower takes (the crop size in crop and pad modes). */
  size: number;
  /** crop and pad: the shortest edge is resized to this before the centre size×size crop (default: size). */
  shortestEdge?: number;
  /** Default bicubic. */
  resample?: Resample;
  /**
   * Default pil: bit for bit what Pillow makes, which the checkpoints were trained on. libvips: decode, JPEG
   * shrink-on-load and resize in one native pipeline, about 3× faster on a 1080p frame, at a mean difference of
   * 1–2 levels in 255 from pil (up to ~30 on fine texture).
   */
  resampler?: Resampler;
  /** The factor 8-bit values are multiplied by before mean/std (default 1/255; 1 for a processor that does not rescale). */
  rescale?: number;
  mean: [number, number, number];
  std: [number, number, number];
  /** Decompression-bomb guard (sharp limitInputPixels). */
  maxInputPixels?: number;
}

export interface PreprocessedImage {
  /** 3×size×size, channel-major, normalised. */
  pixels: Float32Array;
  size: number;
  sourceWidth: number;
  sourceHeight: number;
  ms: number;
}

export interface GenerationOptions {
  maxNewTokens: number;
  minNewTokens?: number;
  ignoreEos?: boolean;
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  seed?: number;
  repetitionPenalty?: number;
  numBeams?: number;
  lengthPenalty?: number;
  stopStrings?: string[];
  /**
   * Time limit in seconds, counted from the start of the generation task (prefill and decoding): once it is
   * reached, generation stops before the next decoder step with finishReason 'time', keeping the text so far.
   */
  maxTime?: number;
  eosTokenIds?: number[];
  /** Constrain the answer to JSON: any object ({type: 'json'}) or a value matching a JSON schema. Absent: text. */
  format?: JsonFormat;
}

/** A JSON answer format (the supported schema subset is in generation/json-schema.ts and the README). */
export type JsonFormat = { type: 'json' } | { type: 'json_schema'; schema: unknown };

/** time: the maxTime limit was reached (the text so far is kept). */
export type FinishReason = 'eos' | 'length' | 'stop' | 'aborted' | 'time';

/**
 * Milliseconds per stage (and the decode rate). One style across the package's results: the library's and the
 * nodes' fields are camelCase, and the keys of a `timings` object are snake_case with their unit (…_ms, …_per_s),
 * as msg.llava.generation.timings, msg.llava.timings and the example flows have always had them. JSON for other
 * programs (`llava generate --json`, the OpenAI-compatible server) is snake_case throughout, timings included.
 */
export interface Timings {
  preprocess_ms: number;
  vision_ms: number;
  projector_ms: number;
  prefill_ms: number;
  first_token_ms: number;
  decode_ms: number;
  decode_tokens_per_s: number;
  /** With a JSON format: mean time per token spent computing and applying the token mask. */
  json_mask_ms_per_token?: number;
  /** Continuous batching, only when this generation shared its steps: the most generations one step served, itself included. */
  decode_batch?: number;
}

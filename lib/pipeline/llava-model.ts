// A loaded LLaVA model on the shared runtime: the stages the nodes wrap one by one (preprocess, encode the
// image, project, generate) and `describe()`, which runs them all. Heavy work happens in the inference worker;
// between stages image features stay there behind handles.
import { RECORD_KEY } from '../model/config';
import { checkNumberOption, GENERATION_OPTION_SPECS } from './generation/option-spec';
import { openModelFolder, ModelFolder } from '../model/folder';
import { getPreset, mergePreset, PresetOverrides, ResolvedPreset } from './presets';
import { preprocessFromConfig } from './image-preprocess-config';
import { getRuntime } from '../runtime';
import type { TensorHandle } from '../runtime/tensor';
import type { ProviderFailure, ProviderPreference, Runtime, SessionLease } from '../runtime/types';
import sharp from 'sharp';
import { preprocessImage } from './image-preprocess';
import { buildPrompt, PromptInput } from './prompt';
import type { PromptSegment } from './templates';
import type { KvMode } from './decoder';
import { assertFitsContext, PromptTokenizer } from './tokens';
import type { FinishReason, GenerationOptions, PreprocessedImage, PreprocessOptions, Timings } from './types';
import { GENERATE_TASK, GenerateEvent, GeneratePayload, GenerateTaskResult, WARMED_TASK, WarmedPayload } from './worker-tasks';
import { compileJsonFormat, parseJsonAnswer } from './generation/json-schema';
import { checkGraphsAgainstConfig, kvShape, visionInputs, visionOutput } from './graph-check';
import type { TensorValue } from '../runtime/tensor';
import { floatArrayToHalf } from '../util/float16';

export interface LoadOptions {
  providers?: ProviderPreference;
  threads?: number;
  /** onnxruntime session config entries for every graph (e.g. thread spinning), over the runtime's defaults. */
  sessionConfig?: Record<string, string>;
  /** Weight variants: one (fp32, fp16, q4…), per graph (`vision_encoder=fp16,decoder_model_merged=q4`), or auto (default). */
  variant?: string;
  /** Preset name; default: the one recorded in the folder's config, else llava-1.5-hf. */
  preset?: string;
  overrides?: PresetOverrides;
  /** Reuse the KV cache of the prompt before the image across requests (default true). */
  prefixReuse?: boolean;
  /**
   * The decoder's KV cache: 'shared' (default) preallocates it and lets the graph write each step in place when
   * the graph can (GroupQueryAttention; others fall back to 'copy'); 'copy' feeds each step's present back as past.
   */
  kvCache?: KvMode;
  /**
   * Continuous batching (default true): a generation that starts while others run on the same decoder joins them,
   * and one decoder run per step serves them all. Beam search always runs alone.
   */
  batching?: boolean;
  /**
   * Run one dummy frame (vision, a prefill as long as an image prompt, two decode steps) while loading, so the
   * first caption is as fast as the next (default true; sessions already warmed by another load are skipped).
   */
  warmup?: boolean;
  runtime?: Runtime;
  signal?: AbortSignal;
  /** Called as each ONNX session finishes loading (large models take a while per file). */
  onProgress?: (loaded: number, total: number) => void;
}

/** Image features in the runtime, by handle: `projected` once they are in the LLM's embedding space. */
export interface ImageFeatures {
  handle: TensorHandle;
  projected: boolean;
  ms: number;
}

/** What the load's warm-up did. */
export interface WarmupResult {
  /** False when every session had been warmed by an earlier load (they are shared). */
  ran: boolean;
  /** Prompt positions its prefill ran (image rows included). */
  prefillTokens: number;
  ms: number;
}

export interface GenerateRequest {
  prompt: PromptSegment[] | string;
  image: ImageFeatures | null;
  options?: Partial<GenerationOptions>;
  onText?: (delta: string) => void;
  onProgress?: (tokens: number, tokensPerSecond: number) => void;
  signal?: AbortSignal;
  /** Keep the image's handle after generation (default: freed). */
  keepImage?: boolean;
}

export interface LlavaResult {
  text: string;
  tokenIds: number[];
  promptTokenCount: number;
  imageTokenCount: number;
  provider: string;
  finishReason: FinishReason;
  /** Prompt tokens whose KV cache came from the previous request (the part before the image). */
  prefixReusedTokens: number;
  timings: Timings;
  /** With a JSON format: the parsed answer (it matches the schema). */
  json?: unknown;
}

export interface DescribeRequest extends Omit<PromptInput, 'image'> {
  image: Uint8Array;
  /** Decoding options (the pixel cap, the resize mode); the model fixes the size. */
  preprocess?: Partial<PreprocessOptions>;
  options?: Partial<GenerationOptions>;
  onText?: (delta: string) => void;
  signal?: AbortSignal;
}

const MODULE_PATH = require.resolve('./worker-tasks');

/**
 * The preset with its preprocessing complete: the folder's preprocessor_config.json, under what the preset fixes
 * explicitly (the mmpretrain presets' squash), under the caller's overrides; the graph fixes the size.
 */
function presetFor(folder: ModelFolder, options: LoadOptions): ResolvedPreset {
  const recorded = folder.config[RECORD_KEY]?.preset;
  const base = getPreset(options.preset ?? (typeof recorded === 'string' ? recorded : 'llava-1.5-hf'));
  const size = folder.config.vision_config.image_size;
  const fromFolder = preprocessFromConfig(folder.preprocessor, size);
  const merged = mergePreset(mergePreset({ ...base, preprocess: fromFolder }, { preprocess: base.preprocess }), options.overrides ?? {});
  const preprocess = { ...merged.preprocess, size } as PreprocessOptions;
  if (preprocess.mode !== 'crop' && preprocess.mode !== 'pad') delete preprocess.shortestEdge;
  return { ...merged, preprocess };
}

function eosIds(folder: ModelFolder, tokenizer: PromptTokenizer): number[] {
  const configured = folder.generation.eos_token_id ?? folder.config.text_config.eos_token_id;
  const ids = configured === undefined ? [] : Array.isArray(configured) ? configured : [configured];
  if (ids.length === 0 && tokenizer.eosTokenId !== null) ids.push(tokenizer.eosTokenId);
  return ids;
}

export class LlavaModel {
  private closed = false;
  /**
   * Image features this model made that are not yet consumed (by project or generate) or freed. close() frees
   * them: a message lost in transit while Node-RED stops a flow would otherwise hold its tensor for good.
   */
  private readonly liveImages = new Map<string, TensorHandle>();
  /** What the load's warm-up did (null when it was turned off). */
  warmup: WarmupResult | null = null;
  /** Which open model made each live image, so a holder can free one without knowing its model. */
  private static readonly owners = new Map<string, LlavaModel>();

  private constructor(
    readonly folder: ModelFolder,
    readonly preset: ResolvedPreset,
    readonly tokenizer: PromptTokenizer,
    private readonly runtime: Runtime,
    private readonly vision: SessionLease,
    private readonly projector: SessionLease | null,
    private readonly embed: SessionLease,
    private readonly decoder: SessionLease,
    private readonly prefixReuse: boolean,
    private readonly kvCache: KvMode,
    private readonly batching: boolean,
  ) {}

  static async load(dir: string, options: LoadOptions = {}): Promise<LlavaModel> {
    const folder = openModelFolder(dir, options.variant ?? 'auto');
    const tokenizer = PromptTokenizer.fromFolder(folder.dir);
    const runtime = options.runtime ?? getRuntime();
    await runtime.registerTaskModule(MODULE_PATH);
    const files = folder.files;
    const total = files.projector ? 4 : 3;
    let loaded = 0;
    const open = async (file: string, threads = options.threads) => {
      const lease = await runtime.openSession({ modelPath: file, providers: options.providers, threads, config: options.sessionConfig }, options.signal);
      options.onProgress?.(++loaded, total);
      return lease;
    };
    const leases = await Promise.allSettled([
      open(files.vision),
      files.projector ? open(files.projector) : Promise.resolve(null),
      // A row gather per token: one thread, so a decode step does not wake the thread pool twice.
      open(files.embed, 1),
      open(files.decoder),
    ]);
    const failed = leases.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      for (const r of leases) if (r.status === 'fulfilled') r.value?.release();
      throw failed.reason;
    }
    const [vision, projector, embed, decoder] = leases.map((r) => (r as PromiseFulfilledResult<SessionLease | null>).value);
    let preset: ResolvedPreset;
    try {
      checkGraphsAgainstConfig(folder.config, { vision: vision!.info, projector: projector?.info ?? null, embed: embed!.info, decoder: decoder!.info });
      // After the graph check: a config that does not fit its graphs is the first thing to say.
      preset = presetFor(folder, options);
    } catch (err) {
      for (const lease of [vision, projector, embed, decoder]) lease?.release();
      throw new Error(`model folder ${folder.dir}: ${(err as Error).message}`);
    }
    const model = new LlavaModel(
      folder,
      preset,
      tokenizer,
      runtime,
      vision!,
      projector,
      embed!,
      decoder!,
      options.prefixReuse ?? true,
      options.kvCache ?? 'shared',
      options.batching ?? true,
    );
    if (options.warmup ?? true) {
      try {
        model.warmup = await model.warm(options.signal);
      } catch (err) {
        model.close();
        throw new Error(`model folder ${folder.dir}: warm-up run failed: ${(err as Error).message}`);
      }
    }
    return model;
  }

  /**
   * One frame through the real stages on a blank image (preprocess, vision, projector, the default caption prompt,
   * three greedy tokens). A session's first runs pay for first touch of its memory-mapped weights, the arena's growth
   * to a prompt's size, the thread pool's start, and the worker for its tokenizer and code: this moves that cost
   * from the first caption to the load.
   */
  private async warm(signal?: AbortSignal): Promise<WarmupResult> {
    const keys = [this.vision, this.projector, this.embed, this.decoder].filter((l) => l !== null).map((l) => l.info.key);
    const warmed = (mark: boolean) => this.runtime.task<boolean>(WARMED_TASK, { keys, mark } satisfies WarmedPayload, { signal, label: 'warm-up' });
    if (await warmed(false)) return { ran: false, prefillTokens: 0, ms: 0 };
    const started = performance.now();
    const blank = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#808080' } })
      .jpeg()
      .toBuffer();
    const image = await this.project(await this.encodeImage(await this.preprocess(blank), signal), signal);
    const r = await this.generate({ prompt: this.prompt({}), image, options: { maxNewTokens: 3, ignoreEos: true, doSample: false }, signal });
    await warmed(true);
    return { ran: true, prefillTokens: r.promptTokenCount, ms: performance.now() - started };
  }

  get provider(): string {
    return this.decoder.info.provider;
  }

  get providerFailures(): ProviderFailure[] {
    return this.decoder.info.providerFailures;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('this LLaVA model has been closed');
  }

  /** Tracks a handle this model made; one that arrives after close() (its job was running) is freed at once. */
  private async adopt(handle: TensorHandle): Promise<TensorHandle> {
    if (this.closed) {
      await this.runtime.free(handle).catch(() => undefined);
      throw new Error('this LLaVA model has been closed');
    }
    this.liveImages.set(handle.handle, handle);
    LlavaModel.owners.set(handle.handle, this);
    return handle;
  }

  /** The image is consumed or freed: this model no longer answers for it. */
  private disown(handle: TensorHandle): void {
    this.liveImages.delete(handle.handle);
    LlavaModel.owners.delete(handle.handle);
  }

  /**
   * Frees image features through the models that made them. A handle no open model answers for was consumed
   * already, or freed when its model closed: nothing to do.
   */
  static async releaseHandles(handles: readonly TensorHandle[]): Promise<void> {
    await Promise.all(
      handles.flatMap((h) => {
        const owner = LlavaModel.owners.get(h.handle);
        return owner ? [owner.releaseHandle(h)] : [];
      }),
    );
  }

  preprocess(bytes: Uint8Array, overrides: Partial<PreprocessOptions> = {}): Promise<PreprocessedImage> {
    return preprocessImage(bytes, { ...this.preset.preprocess, ...overrides, size: this.preset.preprocess.size });
  }

  /** Runs the vision encoder; with the transformers.js layout its output is already projected. */
  async encodeImage(image: PreprocessedImage | Float32Array, signal?: AbortSignal): Promise<ImageFeatures> {
    this.assertOpen();
    const pixels = image instanceof Float32Array ? image : image.pixels;
    const size = this.preset.preprocess.size;
    if (pixels.length !== 3 * size * size) {
      throw new Error(`pixel tensor has ${pixels.length} values; this model needs 3×${size}×${size}`);
    }
    // Feed what the session declares: pixels as float32 or float16, rank 4 or 5, and image_sizes (height, width).
    const inputs = visionInputs(this.vision.info);
    const dims = inputs.pixels.shape.length === 5 ? [1, 1, 3, size, size] : [1, 3, size, size];
    const feeds: Record<string, TensorValue> = {
      [inputs.pixels.name]:
        inputs.pixels.type === 'float16' ? { type: 'float16', dims, data: floatArrayToHalf(pixels) } : { type: 'float32', dims, data: pixels },
    };
    if (inputs.imageSizes) {
      const [height, width] = image instanceof Float32Array ? [size, size] : [image.sourceHeight, image.sourceWidth];
      feeds[inputs.imageSizes.name] = { type: 'int64', dims: [1, 2], data: BigInt64Array.from([BigInt(height), BigInt(width)]) };
    }
    const output = visionOutput(this.vision.info).name;
    const r = await this.runtime.run(this.vision, feeds, { keep: [output], signal, label: 'clip encode' });
    return { handle: await this.adopt(r.handles[output]), projected: this.projector === null, ms: r.ms };
  }

  /** Maps vision features into the LLM's embedding space (split layout); passes projected features through. */
  async project(features: ImageFeatures, signal?: AbortSignal): Promise<ImageFeatures> {
    this.assertOpen();
    if (features.projected || !this.projector) return { ...features, projected: true, ms: 0 };
    const input = this.projector.info.inputs[0].name;
    const output = this.projector.info.outputs[0].name;
    try {
      const r = await this.runtime.run(this.projector, { [input]: features.handle }, { keep: [output], signal, label: 'project' });
      return { handle: await this.adopt(r.handles[output]), projected: true, ms: r.ms };
    } finally {
      await this.releaseHandle(features.handle);
    }
  }

  /** Frees image features that will not reach generation (a dropped message). */
  releaseImage(features: ImageFeatures): Promise<void> {
    return this.releaseHandle(features.handle);
  }

  private releaseHandle(handle: TensorHandle): Promise<void> {
    this.disown(handle);
    return this.runtime.free(handle);
  }

  prompt(input: PromptInput): PromptSegment[] {
    return buildPrompt(this.preset, this.tokenizer.chatTemplate, input);
  }

  async generate(request: GenerateRequest): Promise<LlavaResult> {
    const freeImage = request.image !== null && !request.keepImage;
    if (freeImage) this.disown(request.image!.handle);
    try {
      this.assertOpen();
      if (request.image && !request.image.projected) {
        throw new Error('image features must be projected before generation (run project first)');
      }
      const segments = typeof request.prompt === 'string' ? [request.prompt] : request.prompt.map((s) => s.text);
      if (segments.every((s) => s.trim() === '')) throw new Error('the prompt is empty: give a question or a prompt template');
      const text = this.folder.config.text_config;
      const imageTokenCount = request.image ? request.image.handle.dims[1] : 0;
      const encoded = this.tokenizer.encodePrompt(request.prompt, { imageTokenCount, style: this.preset.tokenization });
      if (encoded.imagePositions.length > 0 && !request.image) throw new Error('the prompt has an <image> slot but no image was given');
      if (request.image && encoded.imagePositions.length === 0) throw new Error('an image was given but the prompt has no <image> slot');
      if (encoded.imageCount > 1) throw new Error(`the prompt has ${encoded.imageCount} <image> slots; one image per prompt is supported`);
      assertFitsContext(encoded, text.max_position_embeddings);
      const options: GenerationOptions = { ...this.preset.generation, ...request.options };
      // The request's budget follows the one option rule; below, it is cut to the context left.
      checkNumberOption(GENERATION_OPTION_SPECS.maxNewTokens, options.maxNewTokens, 'Invalid generation options: maxNewTokens');
      // An unsupported keyword or invalid schema fails here, before any work in the worker.
      if (options.format) compileJsonFormat(options.format);
      options.eosTokenIds ??= eosIds(this.folder, this.tokenizer);
      // Never generate past the model's positions.
      options.maxNewTokens = Math.min(options.maxNewTokens, text.max_position_embeddings - encoded.ids.length);

      const payload: GeneratePayload = {
        embedKey: this.embed.info.key,
        decoderKey: this.decoder.info.key,
        shape: kvShape(this.folder.config),
        tokenizerDir: this.folder.dir,
        ids: encoded.ids,
        imagePositions: encoded.imagePositions,
        image: request.image?.handle ?? null,
        freeImage,
        options,
        prefixReuse: this.prefixReuse,
        kvCache: this.kvCache,
        batch: this.batching && (options.numBeams ?? 1) <= 1,
      };
      const r = await this.runtime.task<GenerateTaskResult>(GENERATE_TASK, payload, {
        signal: request.signal,
        label: 'llm generate',
        ...(payload.batch ? { batchKey: `${GENERATE_TASK}:${payload.decoderKey}` } : {}),
        onEvent: (e) => {
          const event = e as GenerateEvent;
          if (event.type === 'text') request.onText?.(event.delta);
          else request.onProgress?.(event.tokens, event.tokensPerSecond);
        },
      });
      const json = options.format ? parseJsonAnswer(r.text, r.jsonComplete === true, r.finishReason, r.tokenIds.length) : undefined;
      return {
        ...(options.format ? { json } : {}),
        text: r.text,
        tokenIds: r.tokenIds,
        promptTokenCount: r.promptTokenCount,
        imageTokenCount: r.imageTokenCount,
        provider: this.provider,
        finishReason: r.finishReason,
        prefixReusedTokens: r.prefixReused,
        timings: { preprocess_ms: 0, vision_ms: 0, projector_ms: 0, ...r.timings },
      };
    } catch (err) {
      // The worker frees the image itself once the task runs; before that, free it here.
      if (freeImage && request.image) await this.runtime.free(request.image.handle).catch(() => undefined);
      throw err;
    }
  }

  /** The whole pipeline for one image: preprocess → vision → projector → prompt → generate. */
  async describe(request: DescribeRequest): Promise<LlavaResult> {
    const image = await this.preprocess(request.image, request.preprocess);
    const features = await this.encodeImage(image, request.signal);
    const embeds = await this.project(features, request.signal);
    const result = await this.generate({
      prompt: this.prompt({ ...request, image: true }),
      image: embeds,
      options: request.options,
      onText: request.onText,
      signal: request.signal,
    });
    result.timings.preprocess_ms = image.ms;
    result.timings.vision_ms = features.ms;
    result.timings.projector_ms = embeds.ms;
    return result;
  }

  /**
   * Frees the image features it made that nobody consumed, and releases this model's sessions (they unload after
   * the runtime's grace period if nobody else uses them).
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const unconsumed = [...this.liveImages.values()];
    for (const handle of unconsumed) this.disown(handle);
    if (unconsumed.length) this.runtime.free(unconsumed).catch(() => undefined);
    for (const lease of [this.vision, this.projector, this.embed, this.decoder]) lease?.release();
  }
}

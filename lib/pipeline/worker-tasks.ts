// LLaVA's per-token work, run inside the inference worker (registered with runtime.registerTaskModule):
// prompt embeddings with the image features spliced in, prefill (reusing the KV cache of the prompt's prefix
// before the image), and the generation loop. Nothing per token touches the main thread.
import type { TaskIO, TaskModule, TaskResult, WorkerContext, WorkerSession } from '../runtime/types';
import type { TensorHandle } from '../runtime/tensor';
import { generate } from './generation';
import { JsonSchemaConstraint } from './generation/json-constraint';
import { compileJsonFormat } from './generation/json-schema';
import { tokenBytes, TokenVocabulary } from './generation/json-vocabulary';
import { BatchMember, DecodeBatch } from './decode-batch';
import { KvCache, KvDecoder, KvMode, toFloat32 } from './decoder';
import { EmbedTable, openEmbedTable } from '../model/embed-table';
import type { KvShape } from './graph-check';
import { PromptTokenizer } from './tokens';
import type { FinishReason, GenerationOptions, Timings } from './types';

export const GENERATE_TASK = 'llava.generate';
export const WARMED_TASK = 'llava.warmed';

export interface GeneratePayload {
  embedKey: string;
  decoderKey: string;
  shape: KvShape;
  /** Model folder: the tokenizer for streaming text and stop strings is loaded (once) from it. */
  tokenizerDir: string;
  ids: number[];
  /** Indices of ids whose rows are the image's feature rows, in order. */
  imagePositions: number[];
  /** Image embeddings [1, imagePositions.length, hidden] in the tensor store (already projected). */
  image: TensorHandle | null;
  /** Free the image handle when generation ends, whatever the outcome. */
  freeImage: boolean;
  options: GenerationOptions;
  /** Keep and reuse the KV cache of the tokens before the image (the system prompt) across requests. */
  prefixReuse: boolean;
  kvCache: KvMode;
  /** Join the decode batch of the generations running on the same decoder (continuous batching). */
  batch: boolean;
}

export interface GenerateTaskResult {
  tokenIds: number[];
  text: string;
  finishReason: FinishReason;
  promptTokenCount: number;
  imageTokenCount: number;
  prefixReused: number;
  /** With a JSON format: whether the document is complete (text is then exactly its bytes). */
  jsonComplete?: boolean;
  /** The worker's part of Timings (json_mask_ms_per_token with a JSON format). */
  timings: Omit<Timings, 'preprocess_ms' | 'vision_ms' | 'projector_ms'>;
}

/** Events a generate task emits; the main thread turns them into streamed text and status. */
export type GenerateEvent = { type: 'text'; delta: string } | { type: 'progress'; tokens: number; tokensPerSecond: number };

/** What the worker keeps per tokenizer folder: the tokenizer, its JSON vocabularies, and the sessions it serves. */
interface FolderState {
  tokenizer: PromptTokenizer;
  /** Token bytes and tries per logits width, built on the first JSON request. */
  vocabularies: Map<number, TokenVocabulary>;
  /** Keys of the sessions generating with it: it is dropped when the last of them closes. */
  sessions: Set<string>;
}

const folders = new Map<string, FolderState>();
/** The last prefix KV cache per decoder session (a snapshot: later steps never change it). */
const prefixCaches = new Map<string, { ids: number[]; cache: KvCache }>();
/** Per embed session: its graph's table when it is a plain Gather (null: the session runs), open until it closes. */
const embedTables = new Map<string, EmbedTable | null>();

function decoderFor(ctx: WorkerContext, p: GeneratePayload): KvDecoder {
  const embed = ctx.session(p.embedKey);
  let table = embedTables.get(p.embedKey);
  if (table === undefined) {
    try {
      table = openEmbedTable(embed.info.modelPath);
    } catch {
      table = null; // a file this scan cannot read: onnxruntime could, so the session serves
    }
    embedTables.set(p.embedKey, table);
  }
  return new KvDecoder(embed, ctx.session(p.decoderKey), p.shape, table);
}

function folderFor(p: GeneratePayload): FolderState {
  let f = folders.get(p.tokenizerDir);
  if (!f) {
    f = { tokenizer: PromptTokenizer.fromFolder(p.tokenizerDir), vocabularies: new Map(), sessions: new Set() };
    folders.set(p.tokenizerDir, f);
  }
  f.sessions.add(p.embedKey).add(p.decoderKey);
  return f;
}

function vocabularyFor(f: FolderState, size: number): TokenVocabulary {
  let v = f.vocabularies.get(size);
  if (!v) {
    v = new TokenVocabulary(tokenBytes(f.tokenizer.tokenizer), size);
    f.vocabularies.set(size, v);
  }
  return v;
}

/** The decode batch of each decoder session with generations running in it; dropped when the last one leaves. */
const batches = new Map<string, DecodeBatch>();

function batchFor(ctx: WorkerContext, p: GeneratePayload): DecodeBatch {
  let batch = batches.get(p.decoderKey);
  if (!batch) {
    const decoder = decoderFor(ctx, p);
    const created: DecodeBatch = new DecodeBatch(decoder, () => {
      if (batches.get(p.decoderKey) === created) batches.delete(p.decoderKey);
    });
    void created.exclusive(() => decoder.useMode(p.kvCache));
    batches.set(p.decoderKey, created);
    batch = created;
  }
  return batch;
}

/**
 * The runtime closed session `key`: its prefix cache and decode batch go, and so does a tokenizer folder's state once no open
 * session uses it (switching models keeps nothing of the old one; a folder rewritten in place is read afresh).
 */
export function sessionClosed(key: string): void {
  prefixCaches.delete(key);
  batches.delete(key);
  embedTables.get(key)?.close();
  embedTables.delete(key);
  for (const [dir, f] of folders) {
    f.sessions.delete(key);
    if (f.sessions.size === 0) folders.delete(dir);
  }
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function withoutImageRows(p: GeneratePayload): number[] {
  const image = new Set(p.imagePositions);
  return p.ids.filter((_, i) => !image.has(i));
}

/** Prompt embeddings [ids.length × hidden]: token embeddings, with the image rows replaced by its features. */
async function promptEmbeddings(ctx: WorkerContext, decoder: KvDecoder, p: GeneratePayload): Promise<Float32Array> {
  const hidden = p.shape.hiddenSize;
  const textIds = p.ids.slice();
  for (const pos of p.imagePositions) textIds[pos] = 0; // placeholder ids may lie outside the vocabulary
  const embeds = await decoder.embed(textIds);
  if (p.imagePositions.length === 0) return embeds;
  if (!p.image) throw new Error('the prompt has an <image> slot but no image features were given');
  const image = ctx.tensors.get(p.image);
  const [, rows, width] = image.dims;
  if (rows !== p.imagePositions.length || width !== hidden) {
    throw new Error(`image features are [${image.dims.join(', ')}] but the prompt has ${p.imagePositions.length} image positions of width ${hidden}`);
  }
  const features = toFloat32(image);
  p.imagePositions.forEach((pos, r) => embeds.set(features.subarray(r * hidden, (r + 1) * hidden), pos * hidden));
  return embeds;
}

/** Prefill; with prefix reuse the tokens before the image run (or are restored) separately, so output never depends on a cache hit. */
async function prefill(decoder: KvDecoder, embeds: Float32Array, p: GeneratePayload): Promise<{ logits: Float32Array; reused: number }> {
  const hidden = p.shape.hiddenSize;
  const total = p.ids.length;
  const prefixLen = p.prefixReuse && p.imagePositions.length > 0 ? p.imagePositions[0] : 0;
  let reused = 0;
  if (prefixLen > 0) {
    const prefixIds = p.ids.slice(0, prefixLen);
    const cached = prefixCaches.get(p.decoderKey);
    if (cached && sameIds(cached.ids, prefixIds)) {
      decoder.restore(cached.cache);
      reused = prefixLen;
    } else {
      await decoder.forward(embeds.subarray(0, prefixLen * hidden), prefixLen);
      prefixCaches.set(p.decoderKey, { ids: prefixIds, cache: decoder.snapshot() });
    }
  }
  const [logits] = await decoder.forward(embeds.subarray(prefixLen * hidden), total - prefixLen);
  return { logits, reused };
}

/**
 * New-token positions the shared KV buffers are first sized for: a long maxNewTokens that ends early at EOS does not
 * allocate its whole cache up front (past this the buffers double, one copy each time).
 */
const RESERVED_NEW_TOKENS = 256;

/**
 * Streamed text goes to the main thread at most once per STREAM_INTERVAL_MS: a message per token costs a thread
 * wake-up on both sides, a large share of a step on small models. A delta waits at most that long.
 */
export const STREAM_INTERVAL_MS = 25;
/** Progress (tokens so far, rate) goes to the main thread at most this often. */
export const PROGRESS_INTERVAL_MS = 250;

class TextEvents {
  private pending = '';
  private last = -Infinity;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly io: TaskIO) {}

  push(delta: string): void {
    this.pending += delta;
    const wait = this.last + STREAM_INTERVAL_MS - performance.now();
    if (wait <= 0) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), wait);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.pending) return;
    this.io.emit({ type: 'text', delta: this.pending } satisfies GenerateEvent);
    this.pending = '';
    this.last = performance.now();
  }
}

async function generateTask(ctx: WorkerContext, p: GeneratePayload, io: TaskIO) {
  const started = performance.now();
  let member: BatchMember | null = null;
  const text = new TextEvents(io);
  try {
    const folder = folderFor(p);
    const tokenizer = folder.tokenizer;
    const decoder = decoderFor(ctx, p);
    const batch = p.batch ? batchFor(ctx, p) : null;
    // Batched: this prompt's own runs wait for the batch's current step, never run beside it.
    const alone = <T>(work: () => Promise<T>): Promise<T> => (batch ? batch.exclusive(work) : work());
    await alone(() => decoder.useMode(p.kvCache));
    decoder.reserve(p.ids.length + Math.min(p.options.maxNewTokens, RESERVED_NEW_TOKENS));
    const format = p.options.format;
    const vocabulary = format ? vocabularyFor(folder, decoder.vocabSize) : null;
    const constraint = format ? new JsonSchemaConstraint(compileJsonFormat(format).compiled, vocabulary!, p.options.eosTokenIds ?? []) : undefined;
    const embeds = await promptEmbeddings(ctx, decoder, p);
    if (io.signal.aborted) throw io.signal.reason ?? new Error('aborted');
    const { logits, reused } = await alone(() => prefill(decoder, embeds, p));
    member = batch ? await batch.join(decoder.state, p.options.maxNewTokens) : null;
    const prefillMs = performance.now() - started;

    let firstTokenMs = 0;
    let steps = 0;
    let lastProgress = 0;
    const stepper = {
      vocabSize: decoder.vocabSize,
      step: (tokens: number[], parents: number[]) => {
        const now = performance.now();
        if (steps++ === 0) firstTokenMs = now - started;
        if (now - lastProgress > PROGRESS_INTERVAL_MS) {
          lastProgress = now;
          const elapsed = (now - started - prefillMs) / 1000;
          io.emit({ type: 'progress', tokens: steps, tokensPerSecond: elapsed > 0 ? steps / elapsed : 0 } satisfies GenerateEvent);
        }
        return member ? member.step(tokens[0]).then((row) => [row]) : decoder.step(tokens, parents);
      },
    };
    const result = await generate(logits, stepper, p.options, {
      decode: (ids) => tokenizer.decode(ids, { skipSpecial: true }),
      onText: (delta) => text.push(delta),
      signal: io.signal,
      // The time limit covers prefill too: it is what the caller waits for.
      startedAt: started,
      promptTokenIds: withoutImageRows(p),
      constraint,
    });
    if (firstTokenMs === 0) firstTokenMs = performance.now() - started;
    const generated = result.tokenIds.length;
    const out: GenerateTaskResult = {
      tokenIds: result.tokenIds,
      // A JSON answer is exactly the bytes the grammar accepted (the tokenizer's decode may clean up spaces).
      text: vocabulary ? vocabulary.decode(result.tokenIds).trimStart() : result.text,
      finishReason: result.finishReason,
      promptTokenCount: p.ids.length,
      imageTokenCount: p.imagePositions.length,
      prefixReused: reused,
      ...(constraint ? { jsonComplete: constraint.complete(result.tokenIds) } : {}),
      timings: {
        prefill_ms: prefillMs,
        first_token_ms: firstTokenMs,
        decode_ms: result.decodeMs,
        decode_tokens_per_s: result.decodeMs > 0 ? (generated * 1000) / result.decodeMs : 0,
        ...(member && member.peak > 1 ? { decode_batch: member.peak } : {}),
        ...(constraint ? { json_mask_ms_per_token: constraint.masks > 0 ? constraint.maskMs / constraint.masks : 0 } : {}),
      },
    };
    return { result: out };
  } finally {
    await member?.leave();
    text.flush();
    if (p.freeImage && p.image) ctx.tensors.free(p.image);
  }
}

export interface WarmedPayload {
  keys: string[];
  /** Record the sessions as warmed (after a warm-up ran). */
  mark: boolean;
}

/** Sessions that have run a warm-up; a reloaded session is a new object and is warmed again. */
const warmed = new WeakSet<WorkerSession>();

/** Whether every session has been warmed (a model loaded twice shares its sessions); with `mark`, records them. */
function warmedTask(ctx: WorkerContext, p: WarmedPayload): TaskResult {
  const sessions = p.keys.map((k) => ctx.session(k));
  if (p.mark) for (const s of sessions) warmed.add(s);
  return { result: sessions.every((s) => warmed.has(s)) };
}

export const tasks: TaskModule['tasks'] = {
  [GENERATE_TASK]: generateTask,
  [WARMED_TASK]: warmedTask,
};

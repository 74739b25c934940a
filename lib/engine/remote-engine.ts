// An OpenAI-compatible chat-completions server as an engine (vLLM, SGLang, llama.cpp's llama-server, Ollama's
// /v1, TGI, `llava serve`): POST {base}/v1/chat/completions with the question and the image as a data URI,
// streamed back over SSE. Node's fetch, no client library.
import { openAiResponseFormat } from '../pipeline/generation/json-schema';
import { CAPTION_INSTRUCTION } from '../pipeline/templates';
import type { FinishReason, GenerationOptions } from '../pipeline/types';
import { DEFAULT_REMOTE_IMAGE_SIDE, imageForRemote, jpegDataUri } from './image-for-remote';
import { Semaphore } from './semaphore';
import { SseParser } from './sse';
import type { ChatPrompt, Engine, EngineRequest, EngineResult, EngineState, EngineUsage } from './types';

export interface RemoteTimeouts {
  /** Until the server answers with its response headers (default 10 s). */
  connectMs: number;
  /** Until the first text arrives: a CPU server's prefill of a 576-token image can take a minute (default 120 s). */
  firstTokenMs: number;
  /** The whole request (default 300 s). */
  totalMs: number;
}

export interface RemoteEngineOptions {
  /** http(s)://host:port, with or without a trailing /v1. */
  baseUrl: string;
  /** The model name the server serves (its /v1/models id). */
  model: string;
  /** Sent as a Bearer token; never logged. */
  apiKey?: string;
  timeouts?: Partial<RemoteTimeouts>;
  /** Retries on 429, 503 and broken connections before the first token (default 3). */
  retries?: number;
  /** First back-off delay; doubles per retry, jittered; a Retry-After header wins up to 30 s (default 500 ms). */
  backoffMs?: number;
  /** Requests in flight at once; the rest wait here (default 4). */
  concurrency?: number;
  /** Longest side of the JPEG sent (default 672 px). */
  imageMaxSide?: number;
}

export const DEFAULT_TIMEOUTS: RemoteTimeouts = { connectMs: 10_000, firstTokenMs: 120_000, totalMs: 300_000 };
const MAX_RETRY_AFTER_MS = 30_000;
/** How much longer than maxTime the engine reads an answer whose server ignored max_time. */
export const TIME_LIMIT_GRACE_MS = 1000;
const RETRY_STATUS = new Set([429, 503]);
const CONNECTION_ERRORS = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

/** OpenAI has no field for these; refusing them beats a caption generated with settings the user did not get. */
const UNSUPPORTED_OPTIONS = ['minNewTokens', 'ignoreEos', 'topK', 'minP', 'repetitionPenalty', 'lengthPenalty'] as const;

/** An engine request that failed; `status` is the HTTP status when the server answered. */
export class RemoteEngineError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly retryable = false,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'RemoteEngineError';
  }
}

/**
 * The chat-completions fields a GenerationOptions maps to; sampling fields only when sampling is on; a JSON answer
 * format becomes response_format (json_object, or json_schema with the normalised schema).
 */
export function openAiSampling(options: Partial<GenerationOptions> = {}): Record<string, unknown> {
  for (const name of UNSUPPORTED_OPTIONS) {
    if (options[name] !== undefined && options[name] !== false) {
      throw new Error(`${name} is not part of the OpenAI chat-completions API: a remote engine cannot apply it`);
    }
  }
  if ((options.numBeams ?? 1) > 1) throw new Error('beam search (numBeams > 1) is not part of the OpenAI chat-completions API');
  const body: Record<string, unknown> = {};
  if (options.maxNewTokens !== undefined) body.max_tokens = options.maxNewTokens;
  if (options.doSample === true) {
    body.temperature = options.temperature ?? 1;
    if (options.topP !== undefined) body.top_p = options.topP;
    if (options.seed !== undefined) body.seed = options.seed;
  } else if (options.doSample === false) {
    body.temperature = 0;
  }
  if (options.stopStrings?.length) body.stop = options.stopStrings;
  // `llava serve`'s extension; other servers ignore it, and the engine stops reading shortly after the limit itself.
  if (options.maxTime !== undefined) body.max_time = options.maxTime;
  if (options.format) body.response_format = openAiResponseFormat(options.format);
  return body;
}

/** System, earlier turns, then the question; the image goes with the first user turn, before its text. */
export function chatMessages(chat: ChatPrompt, imageUrl: string): unknown[] {
  const messages: unknown[] = [];
  if (chat.system !== undefined) messages.push({ role: 'system', content: chat.system });
  let image = true;
  const user = (text: string) => {
    const content = image
      ? [
          { type: 'image_url', image_url: { url: imageUrl } },
          { type: 'text', text },
        ]
      : text;
    image = false;
    return { role: 'user', content };
  };
  for (const turn of chat.history ?? []) {
    messages.push(user(turn.user), { role: 'assistant', content: turn.assistant });
  }
  messages.push(user(chat.question ?? CAPTION_INSTRUCTION));
  return messages;
}

function finishReason(value: unknown): FinishReason {
  return value === 'length' || value === 'time' ? value : 'eos';
}

function usageFrom(value: unknown): EngineUsage | undefined {
  const u = value as { prompt_tokens?: unknown; completion_tokens?: unknown; total_tokens?: unknown } | null;
  if (!u || typeof u.prompt_tokens !== 'number' || typeof u.completion_tokens !== 'number') return undefined;
  return {
    promptTokens: u.prompt_tokens,
    completionTokens: u.completion_tokens,
    totalTokens: typeof u.total_tokens === 'number' ? u.total_tokens : u.prompt_tokens + u.completion_tokens,
  };
}

/** The server's own words: OpenAI's {error: {message}}, llama-server's and Ollama's {error: "…"}, or the body. */
export function serverErrorMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: unknown; message?: unknown; detail?: unknown };
    const e = parsed.error;
    if (typeof e === 'string') return e;
    if (e && typeof (e as { message?: unknown }).message === 'string') return (e as { message: string }).message;
    if (typeof parsed.message === 'string') return parsed.message;
    if (typeof parsed.detail === 'string') return parsed.detail;
  } catch {
    // not JSON: the text itself
  }
  const text = body.trim().replace(/\s+/g, ' ');
  return text.length > 300 ? `${text.slice(0, 300)}…` : text || '(empty response)';
}

function connectionCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && CONNECTION_ERRORS.has(code)) return code;
  }
  return undefined;
}

function retryAfter(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, seconds * 1000));
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.min(MAX_RETRY_AFTER_MS, Math.max(0, at - Date.now()));
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** `http://host:port` without a trailing "/" or "/v1" (both are accepted in the setting). */
export function normaliseBaseUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`the engine URL "${url}" is not a URL (expected e.g. http://gpu-box:8000)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`the engine URL must be http or https, got ${u.protocol}`);
  if (u.username || u.password) throw new Error('put the API key in its own setting, not in the engine URL');
  return u.href.replace(/\/+$/, '').replace(/\/v1$/, '');
}

export class RemoteEngine implements Engine {
  readonly kind = 'remote';
  readonly label: string;
  private readonly base: string;
  private readonly timeouts: RemoteTimeouts;
  private readonly slots: Semaphore;
  private readonly closing = new AbortController();

  /** The longest side of the JPEG this engine sends (image load encodes to it, so nothing is encoded twice). */
  get imageMaxSide(): number {
    return this.options.imageMaxSide ?? DEFAULT_REMOTE_IMAGE_SIDE;
  }

  constructor(private readonly options: RemoteEngineOptions) {
    this.base = normaliseBaseUrl(options.baseUrl);
    if (!options.model) throw new Error('the remote engine needs the model name its server serves');
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    for (const [name, ms] of Object.entries(this.timeouts)) {
      if (!(ms > 0)) throw new Error(`the ${name} timeout must be a positive number of milliseconds, got ${ms}`);
    }
    const concurrency = options.concurrency ?? 4;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`the engine's concurrency must be an integer ≥ 1, got ${concurrency}`);
    this.slots = new Semaphore(concurrency);
    this.label = `${new URL(this.base).host} ${options.model}`;
  }

  private headers(json: boolean): Record<string, string> {
    const h: Record<string, string> = { accept: json ? 'text/event-stream, application/json' : 'application/json' };
    if (json) h['content-type'] = 'application/json';
    if (this.options.apiKey) h.authorization = `Bearer ${this.options.apiKey}`;
    return h;
  }

  async check(signal?: AbortSignal): Promise<EngineState> {
    const timeout = AbortSignal.timeout(this.timeouts.connectMs);
    const combined = AbortSignal.any(signal ? [timeout, signal, this.closing.signal] : [timeout, this.closing.signal]);
    let res: Response;
    try {
      res = await fetch(`${this.base}/v1/models`, { headers: this.headers(false), signal: combined });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      const why = timeout.aborted ? `no answer within ${this.timeouts.connectMs / 1000} s` : (connectionCode(err) ?? (err as Error).message);
      return { state: 'unreachable', error: `${this.base}: ${why}` };
    }
    const body = await res.text().catch(() => '');
    if (!res.ok) return { state: 'error', error: `${this.base}/v1/models: ${res.status} ${serverErrorMessage(body)}` };
    let ids: string[] = [];
    try {
      const data = (JSON.parse(body) as { data?: Array<{ id?: unknown }> }).data ?? [];
      ids = data.map((m) => String(m.id));
    } catch {
      return { state: 'error', error: `${this.base}/v1/models did not answer JSON` };
    }
    // Some servers (Ollama, llama-server) answer any name; only a list without ours is a mismatch.
    if (ids.length && !ids.includes(this.options.model)) {
      return { state: 'error', error: `model "${this.options.model}" is not served at ${this.base} (it serves ${ids.slice(0, 5).join(', ')})` };
    }
    return { state: 'ready', detail: this.label };
  }

  async generate(request: EngineRequest): Promise<EngineResult> {
    const started = performance.now();
    const sampling = openAiSampling(request.options);
    const image = await imageForRemote(request.image, { maxSide: this.options.imageMaxSide, maxInputPixels: request.maxInputPixels });
    const body = JSON.stringify({
      model: this.options.model,
      messages: chatMessages(request.chat, jpegDataUri(image.jpeg)),
      stream: true,
      stream_options: { include_usage: true },
      ...sampling,
      ...(request.responseFormat ? { response_format: request.responseFormat } : {}),
    });
    const signal = request.signal ? AbortSignal.any([request.signal, this.closing.signal]) : this.closing.signal;
    const release = await this.slots.acquire(signal);
    try {
      const retries = this.options.retries ?? 3;
      const backoff = this.options.backoffMs ?? 500;
      for (let attempt = 0; ; attempt++) {
        try {
          const result = await this.attempt(body, request, signal, started);
          result.timings.preprocess_ms = image.ms;
          return result;
        } catch (err) {
          if (signal.aborted) throw signal.reason;
          const e = err as RemoteEngineError;
          if (!(e instanceof RemoteEngineError) || !e.retryable || attempt >= retries) throw err;
          const delay = e.retryAfterMs ?? backoff * 2 ** attempt * (0.75 + Math.random() / 2);
          await sleep(delay, signal);
        }
      }
    } finally {
      release();
    }
  }

  /** One POST and its stream. Failures before the first token are retryable when the cause is. */
  private async attempt(body: string, request: EngineRequest, outer: AbortSignal, started: number): Promise<EngineResult> {
    const local = new AbortController();
    let expired: string | null = null;
    const expire = (what: string) => () => {
      expired = what;
      local.abort(new RemoteEngineError(`${this.base}: ${what}`));
    };
    const seconds = (ms: number) => `${ms / 1000} s`;
    const total = setTimeout(expire(`no complete answer within ${seconds(this.timeouts.totalMs)}`), this.timeouts.totalMs);
    let stage = setTimeout(expire(`no response within ${seconds(this.timeouts.connectMs)}`), this.timeouts.connectMs);
    // The time limit, for servers that do not know max_time: the answer so far, with finish reason "time". A server
    // that knows it ends the answer itself (with its usage counts), so the engine waits a grace time longer.
    let timeUp = false;
    const maxTimeMs = request.options?.maxTime === undefined ? undefined : request.options.maxTime * 1000;
    const limit =
      maxTimeMs === undefined
        ? undefined
        : setTimeout(
            () => {
              timeUp = true;
              local.abort(new Error('the time limit was reached'));
            },
            Math.max(0, maxTimeMs + TIME_LIMIT_GRACE_MS - (performance.now() - started)),
          );
    const signal = AbortSignal.any([outer, local.signal]);
    let text = '';
    let firstTokenMs: number | undefined;
    const result = (finish: FinishReason, usage?: EngineUsage): EngineResult => {
      const totalMs = performance.now() - started;
      return { text, finishReason: finish, usage, timings: { first_token_ms: firstTokenMs ?? totalMs, total_ms: totalMs }, ranOn: this.label };
    };
    try {
      let res: Response;
      try {
        res = await fetch(`${this.base}/v1/chat/completions`, { method: 'POST', headers: this.headers(true), body, signal });
      } catch (err) {
        if (outer.aborted) throw outer.reason;
        if (timeUp) return result('time');
        if (expired) throw new RemoteEngineError(`${this.base}: ${String(expired)}`);
        const code = connectionCode(err);
        throw new RemoteEngineError(`cannot reach ${this.base}: ${code ?? (err as Error).message}`, undefined, code !== undefined);
      }
      clearTimeout(stage);
      if (!res.ok) {
        const message = serverErrorMessage(await res.text().catch(() => ''));
        throw new RemoteEngineError(
          `${this.base} answered ${res.status}: ${message}`,
          res.status,
          RETRY_STATUS.has(res.status),
          retryAfter(res.headers.get('retry-after')),
        );
      }
      stage = setTimeout(expire(`no first token within ${seconds(this.timeouts.firstTokenMs)}`), this.timeouts.firstTokenMs);
      let finish: FinishReason | undefined;
      let usage: EngineUsage | undefined;
      let tokens = 0;
      const onChunk = (chunk: ChatChunk) => {
        if (chunk.error !== undefined) throw new RemoteEngineError(`${this.base}: ${serverErrorMessage(JSON.stringify({ error: chunk.error }))}`);
        usage = usageFrom(chunk.usage) ?? usage;
        const choice = chunk.choices?.[0];
        if (!choice) return;
        const delta = choice.delta?.content ?? choice.message?.content;
        if (typeof delta === 'string' && delta.length > 0) {
          if (firstTokenMs === undefined) {
            firstTokenMs = performance.now() - started;
            clearTimeout(stage);
          }
          text += delta;
          tokens++;
          request.onEvent?.({ type: 'text', delta });
          const decodeS = (performance.now() - started - firstTokenMs) / 1000;
          request.onEvent?.({ type: 'progress', tokens, tokensPerSecond: decodeS > 0 ? (tokens - 1) / decodeS : 0 });
        }
        if (choice.finish_reason) finish = finishReason(choice.finish_reason);
      };
      try {
        if ((res.headers.get('content-type') ?? '').includes('application/json')) {
          // A server that ignored stream: true answers one completion object.
          onChunk(JSON.parse(await res.text()) as ChatChunk);
        } else {
          await readEvents(res, onChunk);
        }
      } catch (err) {
        if (outer.aborted) throw outer.reason;
        if (timeUp) return result('time', usage);
        if (expired) throw new RemoteEngineError(`${this.base}: ${String(expired)}${text ? ` (after ${tokens} pieces of text)` : ''}`);
        if (err instanceof RemoteEngineError) throw err;
        const code = connectionCode(err);
        if (firstTokenMs === undefined) {
          throw new RemoteEngineError(
            `${this.base}: the connection broke before the answer began (${code ?? (err as Error).message})`,
            undefined,
            code !== undefined,
          );
        }
        throw new RemoteEngineError(`${this.base}: the connection broke mid-answer after ${tokens} pieces of text (${code ?? (err as Error).message})`);
      }
      if (finish === undefined) {
        throw new RemoteEngineError(
          `${this.base}: the answer stream ended without a finish reason (the server stopped mid-answer?)`,
          undefined,
          firstTokenMs === undefined,
        );
      }
      return result(finish, usage);
    } finally {
      clearTimeout(total);
      clearTimeout(stage);
      clearTimeout(limit);
    }
  }

  async close(): Promise<void> {
    this.closing.abort(new Error('the engine was closed'));
  }
}

interface ChatChunk {
  choices?: Array<{ delta?: { content?: unknown }; message?: { content?: unknown }; finish_reason?: unknown }>;
  usage?: unknown;
  error?: unknown;
}

/** Reads the SSE body to `data: [DONE]` (or its end), handing each JSON chunk to onChunk. */
async function readEvents(res: Response, onChunk: (chunk: ChatChunk) => void): Promise<void> {
  if (!res.body) throw new RemoteEngineError('the server sent no body');
  const parser = new SseParser();
  const decoder = new TextDecoder();
  for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
    for (const event of parser.push(decoder.decode(bytes, { stream: true }))) {
      if (event.data === '[DONE]') return;
      let chunk: ChatChunk;
      try {
        chunk = JSON.parse(event.data) as ChatChunk;
      } catch {
        throw new RemoteEngineError(`the server streamed something that is not JSON: ${event.data.slice(0, 120)}`);
      }
      onChunk(chunk);
    }
  }
  parser.end();
}

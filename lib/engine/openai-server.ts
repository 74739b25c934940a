// An engine behind OpenAI's chat-completions API (what `llava serve` runs): GET /v1/models, POST
// /v1/chat/completions (plain and SSE streaming, one image as a data URI), GET /health (503 while loading).
// Bounded: N generations at once, M waiting (429 beyond), a request-size cap (413), OpenAI-shaped errors.
import { randomUUID, timingSafeEqual, createHash } from 'crypto';
import * as http from 'http';
import type { AddressInfo } from 'net';
import { assertDecodable, DEFAULT_MAX_INPUT_PIXELS } from '../pipeline/image-preprocess';
import type { HistoryTurn } from '../pipeline/templates';
import { compileJsonFormat } from '../pipeline/generation/json-schema';
import type { GenerationOptions, JsonFormat } from '../pipeline/types';
import { Semaphore } from './semaphore';
import { sseData } from './sse';
import type { ChatPrompt, Engine, EngineResult } from './types';

export interface OpenAiServerOptions {
  /** The engine, or its load in progress (/health answers 503 until it settles). */
  engine: Engine | Promise<Engine>;
  /** The id clients put in `model` (and /v1/models lists). */
  modelName: string;
  /** When set, /v1/* requests need `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Generations at once (default 1). */
  parallel?: number;
  /** Requests waiting for a slot before new ones get 429 (default 16). */
  maxQueue?: number;
  /** Largest request body (default 20 MiB). */
  maxBodyBytes?: number;
  /** Fetch http(s) image URLs (default: refused; send data URIs). */
  allowRemoteImages?: boolean;
  maxInputPixels?: number;
  /** Called once per finished request (for a log line). */
  onRequest?: (line: string) => void;
}

export const DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024;
const REMOTE_IMAGE_TIMEOUT_MS = 10_000;

/** An error with its HTTP status and OpenAI's error fields. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  body(): string {
    return JSON.stringify({ error: { message: this.message, type: this.type, param: this.param, code: this.code } });
  }
}

const bad = (message: string, param: string | null = null, code: string | null = null) => new ApiError(400, message, 'invalid_request_error', param, code);

/** Messages of errors the engine raises on a request's content (not on its own failure): those are 400s. */
const CLIENT_ERROR = /^(not a decodable image|Invalid generation options|prompt needs \d+ positions|the (prompt|question) is empty|the image has \d+ pixels)/;

interface ParsedRequest {
  stream: boolean;
  includeUsage: boolean;
  chat: ChatPrompt;
  imageUrl: string;
  options: Partial<GenerationOptions>;
}

function textOf(content: unknown, where: string): { text: string; images: string[] } {
  if (typeof content === 'string') return { text: content, images: [] };
  if (!Array.isArray(content)) throw bad(`${where}.content must be a string or an array of content parts`, where);
  const texts: string[] = [];
  const images: string[] = [];
  content.forEach((part: unknown, i) => {
    const p = part as { type?: unknown; text?: unknown; image_url?: unknown };
    if (p?.type === 'text' && typeof p.text === 'string') texts.push(p.text);
    else if (p?.type === 'image_url') {
      const url = typeof p.image_url === 'string' ? p.image_url : (p.image_url as { url?: unknown } | undefined)?.url;
      if (typeof url !== 'string' || url === '') throw bad(`${where}.content[${i}].image_url.url must be a string`, `${where}.content[${i}]`);
      images.push(url);
    } else throw bad(`${where}.content[${i}] is not a text or image_url part (type ${JSON.stringify(p?.type)})`, `${where}.content[${i}]`);
  });
  return { text: texts.join('\n'), images };
}

function integer(value: unknown, name: string, min: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Number.isInteger(value) || (value as number) < min) throw bad(`${name} must be an integer ≥ ${min}`, name);
  return value as number;
}

function number(value: unknown, name: string, ok: (v: number) => boolean, range: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) throw bad(`${name} must be ${range}`, name);
  return value;
}

/** response_format → the answer format the constrained decoder takes (checked here: a bad schema is a 400). */
function responseFormat(value: unknown): JsonFormat | undefined {
  const f = value as { type?: unknown; json_schema?: { schema?: unknown } } | undefined | null;
  if (f === undefined || f === null || f.type === 'text') return undefined;
  let format: JsonFormat;
  if (f.type === 'json_object') format = { type: 'json' };
  else if (f.type === 'json_schema') format = { type: 'json_schema', schema: f.json_schema?.schema };
  else throw bad(`response_format.type must be text, json_object or json_schema, got ${JSON.stringify(f.type)}`, 'response_format');
  try {
    compileJsonFormat(format);
  } catch (err) {
    throw bad(`response_format: ${(err as Error).message}`, 'response_format');
  }
  return format;
}

/** The request body → what the engine needs; every mistake is a 400 naming the field. */
export function parseChatRequest(body: unknown, modelName: string): ParsedRequest {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw bad('the request body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (typeof b.model !== 'string' || b.model === '') throw bad('you must provide a model parameter', 'model');
  if (b.model !== modelName)
    throw new ApiError(404, `The model '${b.model}' does not exist (this server serves '${modelName}')`, 'invalid_request_error', 'model', 'model_not_found');
  if (!Array.isArray(b.messages) || b.messages.length === 0) throw bad('messages must be a non-empty array', 'messages');
  if (b.n !== undefined && b.n !== null && b.n !== 1) throw bad('only n = 1 is supported', 'n');
  if (b.logprobs === true) throw bad('logprobs are not supported', 'logprobs');
  if (b.tools !== undefined && Array.isArray(b.tools) && b.tools.length > 0) throw bad('tools are not supported', 'tools');
  const format = responseFormat(b.response_format);

  let system: string | undefined;
  const turns: Array<{ role: 'user' | 'assistant'; text: string }> = [];
  const images: string[] = [];
  b.messages.forEach((m: unknown, i) => {
    const where = `messages[${i}]`;
    const msg = m as { role?: unknown; content?: unknown };
    const role = msg?.role;
    if (role === 'system' || role === 'developer') {
      if (turns.length) throw bad(`${where}: a system message must come before the conversation`, where);
      const { text, images: found } = textOf(msg.content, where);
      if (found.length) throw bad(`${where}: a system message cannot hold an image`, where);
      system = system === undefined ? text : `${system}\n${text}`;
    } else if (role === 'user' || role === 'assistant') {
      const { text, images: found } = textOf(msg.content ?? '', where);
      if (found.length && role !== 'user') throw bad(`${where}: only user messages can hold an image`, where);
      if (found.length && turns.some((t) => t.role === 'user')) throw bad(`${where}: the image must be in the first user message`, where);
      images.push(...found);
      const expected = turns.length % 2 === 0 ? 'user' : 'assistant';
      if (role !== expected) throw bad(`${where}: messages must alternate user, assistant, user…, got ${role} where ${expected} was expected`, where);
      turns.push({ role, text });
    } else throw bad(`${where}.role must be system, user or assistant, got ${JSON.stringify(role)}`, where);
  });
  if (turns.length === 0 || turns[turns.length - 1].role !== 'user') throw bad('the last message must be from the user', 'messages');
  if (images.length === 0)
    throw bad('this server needs one image per request: add an image_url part (a data: URI) to the first user message', 'messages', 'image_required');
  if (images.length > 1) throw bad(`one image per request is supported, got ${images.length}`, 'messages');
  const history: HistoryTurn[] = [];
  for (let i = 0; i + 1 < turns.length; i += 2) history.push({ user: turns[i].text, assistant: turns[i + 1].text });
  // An image with no text asks for the caption instruction.
  const last = turns[turns.length - 1].text;
  const question = last.trim() === '' ? undefined : last;

  const options: Partial<GenerationOptions> = {};
  const maxTokens = integer(b.max_completion_tokens ?? b.max_tokens, b.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens', 1);
  if (maxTokens !== undefined) options.maxNewTokens = maxTokens;
  const temperature = number(b.temperature, 'temperature', (v) => v >= 0 && v <= 2, 'a number from 0 to 2');
  // Absent: the model preset's own decoding (greedy or beam search for LLaVA); 0: greedy; above: sampling.
  if (temperature === 0) options.doSample = false;
  else if (temperature !== undefined) Object.assign(options, { doSample: true, temperature });
  const topP = number(b.top_p, 'top_p', (v) => v > 0 && v <= 1, 'in (0, 1]');
  if (topP !== undefined) options.topP = topP;
  const seed = integer(b.seed, 'seed', Number.MIN_SAFE_INTEGER);
  if (seed !== undefined) options.seed = seed;
  if (b.stop !== undefined && b.stop !== null) {
    const stop = typeof b.stop === 'string' ? [b.stop] : b.stop;
    if (!Array.isArray(stop) || stop.length > 4 || !stop.every((s) => typeof s === 'string' && s.length > 0)) {
      throw bad('stop must be a non-empty string or an array of up to 4 of them', 'stop');
    }
    options.stopStrings = stop as string[];
  }
  // An extension of OpenAI's API: a time limit in seconds (the answer so far ends with finish_reason "time").
  const maxTime = number(b.max_time, 'max_time', (v) => v > 0, 'a number of seconds > 0');
  if (maxTime !== undefined) options.maxTime = maxTime;
  if (format) options.format = format;
  if (b.stream !== undefined && typeof b.stream !== 'boolean' && b.stream !== null) throw bad('stream must be a boolean', 'stream');
  const streamOptions = b.stream_options as { include_usage?: unknown } | undefined | null;
  return {
    stream: b.stream === true,
    includeUsage: streamOptions?.include_usage === true,
    chat: { ...(question !== undefined ? { question } : {}), ...(system !== undefined ? { system } : {}), ...(history.length ? { history } : {}) },
    imageUrl: images[0],
    options,
  };
}

async function imageBytes(url: string, allowRemote: boolean, maxBytes: number): Promise<Buffer> {
  const data = /^data:([^,;]*)((?:;[^,;]*)*?);base64,/i.exec(url);
  if (data) return Buffer.from(url.slice(data[0].length), 'base64');
  if (/^data:/i.test(url)) throw bad('an image data URI must be base64-encoded (data:image/jpeg;base64,…)', 'messages');
  if (/^https?:/i.test(url)) {
    if (!allowRemote)
      throw bad(
        'image URLs are refused by this server: send the image as a data URI (or start it with --allow-remote-images)',
        'messages',
        'remote_image_refused',
      );
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(REMOTE_IMAGE_TIMEOUT_MS), redirect: 'follow' });
    } catch (err) {
      throw bad(`could not fetch the image at ${url}: ${(err as Error).message}`, 'messages');
    }
    if (!res.ok) throw bad(`could not fetch the image at ${url}: HTTP ${res.status}`, 'messages');
    const length = Number(res.headers.get('content-length'));
    if (length > maxBytes) throw bad(`the image at ${url} is larger than ${maxBytes} bytes`, 'messages');
    const bytes = Buffer.from(await res.arrayBuffer());
    if (bytes.length > maxBytes) throw bad(`the image at ${url} is larger than ${maxBytes} bytes`, 'messages');
    return bytes;
  }
  throw bad('an image URL must be a data: URI (or http(s) when the server allows remote images)', 'messages');
}

/** OpenAI's finish reasons, and "time", which only a request that set max_time can get. */
function finishReason(result: EngineResult): 'stop' | 'length' | 'time' {
  if (result.finishReason === 'time') return 'time';
  return result.finishReason === 'length' ? 'length' : 'stop';
}

function usageJson(result: EngineResult) {
  const u = result.usage;
  return u ? { prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.totalTokens } : undefined;
}

function sameSecret(given: string, expected: string): boolean {
  // Hash both so the comparison takes the same time whatever the lengths.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export class OpenAiServer {
  readonly server: http.Server;
  private engine: Engine | null = null;
  private loadError: Error | null = null;
  private readonly slots: Semaphore;
  private readonly maxQueue: number;
  private readonly maxBodyBytes: number;
  private readonly created = Math.floor(Date.now() / 1000);
  private readonly inflight = new Set<AbortController>();

  constructor(private readonly options: OpenAiServerOptions) {
    const parallel = options.parallel ?? 1;
    if (!Number.isInteger(parallel) || parallel < 1) throw new Error(`parallel must be an integer ≥ 1, got ${parallel}`);
    this.slots = new Semaphore(parallel);
    this.maxQueue = options.maxQueue ?? 16;
    this.maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    Promise.resolve(options.engine).then(
      (engine) => (this.engine = engine),
      (err) => (this.loadError = err instanceof Error ? err : new Error(String(err))),
    );
    this.server = http.createServer((req, res) => {
      this.route(req, res).catch((err) => this.fail(res, err));
    });
    // Keep idle connections longer than clients' pools do (undici: 4 s), so a client never sends a request on a
    // connection this server is closing (a POST on it fails with "other side closed" / EPIPE).
    this.server.keepAliveTimeout = 65_000;
    this.server.headersTimeout = 66_000;
  }

  listen(port = 0, host = '127.0.0.1'): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Stops listening, aborts running generations and closes the engine. */
  async close(): Promise<void> {
    for (const c of this.inflight) c.abort(new Error('the server is shutting down'));
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    await this.engine?.close();
  }

  private send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (res.headersSent) return void res.end();
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  }

  private fail(res: http.ServerResponse, err: unknown): void {
    const e = err instanceof ApiError ? err : new ApiError(500, (err as Error)?.message ?? String(err), 'server_error');
    if (res.headersSent) {
      // Mid-stream: the error as the last event, as OpenAI-compatible servers do.
      if (!res.writableEnded) res.end(sseData(e.body()));
      return;
    }
    this.send(res, e.status, e.body(), e.status === 429 || e.status === 503 ? { 'retry-after': '1' } : {});
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/health' && req.method === 'GET') {
      if (this.engine) return this.send(res, 200, { status: 'ok' });
      if (this.loadError) return this.send(res, 500, { status: 'error', error: this.loadError.message });
      return this.send(res, 503, { status: 'loading' });
    }
    if (path.startsWith('/v1/') && this.options.apiKey !== undefined) {
      const auth = req.headers.authorization ?? '';
      const given = auth.startsWith('Bearer ') ? auth.slice(7) : '';
      if (!sameSecret(given, this.options.apiKey)) {
        req.resume();
        throw new ApiError(401, 'Incorrect API key provided', 'invalid_request_error', null, 'invalid_api_key');
      }
    }
    if (path === '/v1/models' && req.method === 'GET') {
      return this.send(res, 200, {
        object: 'list',
        data: [{ id: this.options.modelName, object: 'model', created: this.created, owned_by: 'node-red-contrib-llava' }],
      });
    }
    if (path === '/v1/chat/completions') {
      if (req.method !== 'POST') throw new ApiError(405, 'use POST for /v1/chat/completions');
      return this.chat(req, res);
    }
    req.resume();
    throw new ApiError(404, `no route ${req.method} ${path}`, 'invalid_request_error', null, 'not_found');
  }

  private async readBody(req: http.IncomingMessage): Promise<Buffer> {
    const declared = Number(req.headers['content-length']);
    const tooLarge = () => new ApiError(413, `the request body is larger than ${this.maxBodyBytes} bytes`, 'invalid_request_error', null, 'request_too_large');
    const chunks: Buffer[] = [];
    let size = 0;
    let over = declared > this.maxBodyBytes;
    // Read (and discard) to the end even when too large: the client then gets the 413, not a reset connection.
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > this.maxBodyBytes) over = true;
      if (!over) chunks.push(chunk as Buffer);
    }
    if (over) throw tooLarge();
    return Buffer.concat(chunks);
  }

  private async chat(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = performance.now();
    const raw = await this.readBody(req);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      throw bad('We could not parse the JSON body of your request: it is not valid JSON');
    }
    const request = parseChatRequest(body, this.options.modelName);
    const image = await imageBytes(request.imageUrl, this.options.allowRemoteImages === true, this.maxBodyBytes);
    const maxInputPixels = this.options.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS;
    try {
      await assertDecodable(image, maxInputPixels);
    } catch (err) {
      throw bad((err as Error).message, 'messages', 'invalid_image');
    }
    if (this.loadError) throw new ApiError(500, `the model failed to load: ${this.loadError.message}`, 'server_error');
    if (!this.engine) throw new ApiError(503, 'the model is still loading; retry shortly', 'server_error', null, 'model_loading');
    if (this.slots.running >= this.slots.limit && this.slots.waiting >= this.maxQueue) {
      throw new ApiError(
        429,
        `the server is busy (${this.slots.running} running, ${this.slots.waiting} waiting); retry later`,
        'server_error',
        null,
        'queue_full',
      );
    }
    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableEnded) abort.abort(new Error('the client went away'));
    };
    res.on('close', onClose);
    this.inflight.add(abort);
    const release = await this.slots.acquire(abort.signal);
    try {
      const engine = this.engine;
      const id = `chatcmpl-${randomUUID()}`;
      const created = Math.floor(Date.now() / 1000);
      const chunk = (choice: object | null, extra: object = {}) =>
        sseData(
          JSON.stringify({
            id,
            object: 'chat.completion.chunk',
            created,
            model: this.options.modelName,
            choices: choice ? [{ index: 0, ...choice }] : [],
            ...extra,
          }),
        );
      if (request.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
        res.write(chunk({ delta: { role: 'assistant', content: '' }, finish_reason: null }));
      }
      let result: EngineResult;
      try {
        result = await engine.generate({
          image,
          chat: request.chat,
          options: request.options,
          maxInputPixels,
          signal: abort.signal,
          onEvent: request.stream
            ? (e) => {
                if (e.type === 'text') res.write(chunk({ delta: { content: e.delta }, finish_reason: null }));
              }
            : undefined,
        });
      } catch (err) {
        if (abort.signal.aborted) throw new ApiError(499, 'the request was cancelled', 'server_error');
        const message = (err as Error).message ?? String(err);
        throw CLIENT_ERROR.test(message) ? bad(message) : new ApiError(500, message, 'server_error');
      }
      const usage = usageJson(result);
      if (request.stream) {
        res.write(chunk({ delta: {}, finish_reason: finishReason(result) }));
        if (request.includeUsage) res.write(chunk(null, { usage }));
        res.end(sseData('[DONE]'));
      } else {
        this.send(res, 200, {
          id,
          object: 'chat.completion',
          created,
          model: this.options.modelName,
          choices: [{ index: 0, message: { role: 'assistant', content: result.text }, finish_reason: finishReason(result), logprobs: null }],
          usage,
          timings: result.timings,
        });
      }
      this.options.onRequest?.(
        `${request.stream ? 'stream' : 'plain'} ${result.usage?.promptTokens ?? '?'}+${result.usage?.completionTokens ?? '?'} tokens ${Math.round(performance.now() - started)} ms`,
      );
    } finally {
      release();
      this.inflight.delete(abort);
      res.off('close', onClose);
    }
  }
}

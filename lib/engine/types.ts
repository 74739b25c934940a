// The seam between callers (CLI, nodes, `llava serve`) and engines: an image and a prompt in, text and events out,
// cancellable. This process's ONNX runtime (local-engine.ts) and an OpenAI-compatible server (remote-engine.ts)
// are the two implementations.
import type { HistoryTurn, PromptSegment } from '../pipeline/templates';
import type { FinishReason, GenerationOptions } from '../pipeline/types';

/**
 * What is asked, as a chat: what any engine understands. A remote server renders it with its own chat template;
 * the local engine with the model's preset.
 */
export interface ChatPrompt {
  /** The user's question; absent: the caption instruction. */
  question?: string;
  /** Replaces the template's system prompt. */
  system?: string;
  /** Earlier turns, oldest first; the image goes with the first user turn. */
  history?: HistoryTurn[];
}

/** OpenAI's response_format, passed on as given (e.g. {type: 'json_schema', json_schema: {name, schema}}). */
export type ResponseFormat = { type: string; [key: string]: unknown };

export interface EngineRequest {
  /** The encoded image (JPEG, PNG, WebP…) as a file holds it. */
  image: Uint8Array;
  chat: ChatPrompt;
  /**
   * The prompt exactly as the local engine should tokenize it (a prompt template's output). The local engine uses
   * it instead of rendering `chat`; a remote server always gets `chat` (it applies its own template).
   */
  rendered?: PromptSegment[];
  options?: Partial<GenerationOptions>;
  responseFormat?: ResponseFormat;
  /** Refuse images with more pixels than this before decoding them (default 100 MP). */
  maxInputPixels?: number;
  signal?: AbortSignal;
  onEvent?: (event: EngineEvent) => void;
}

export type EngineEvent =
  /** A piece of the answer as it is generated. */
  | { type: 'text'; delta: string }
  /** Decode progress (tokens so far, their rate). */
  | { type: 'progress'; tokens: number; tokensPerSecond: number };

export interface EngineUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

/** Milliseconds; fields an engine cannot measure are absent. */
export interface EngineTimings {
  /** Request start → first text (prefill, vision and, for a remote engine, the network). */
  first_token_ms?: number;
  total_ms: number;
  preprocess_ms?: number;
  vision_ms?: number;
  projector_ms?: number;
  prefill_ms?: number;
  decode_ms?: number;
  decode_tokens_per_s?: number;
}

export interface EngineResult {
  text: string;
  /** A remote server's "stop" is reported as eos: OpenAI's API does not tell an end token from a stop string. */
  finishReason: FinishReason;
  /** Absent when a remote server sent none. */
  usage?: EngineUsage;
  timings: EngineTimings;
  /** Who ran it: the execution provider (local) or the server's model name at its URL (remote). */
  ranOn: string;
  /** Token ids, when the engine exposes them (local only). */
  tokenIds?: number[];
}

export type EngineState =
  { state: 'loading'; progress?: string } | { state: 'ready'; detail: string } | { state: 'unreachable'; error: string } | { state: 'error'; error: string };

export interface Engine {
  readonly kind: 'local' | 'remote';
  /** For status and logs: the provider in use, or the server's host and model (never the API key). */
  readonly label: string;
  generate(request: EngineRequest): Promise<EngineResult>;
  /** Whether the engine can take requests now (remote: reachability and the model listed by the server). */
  check(signal?: AbortSignal): Promise<EngineState>;
  /** Aborts what runs and releases what the engine holds. */
  close(): Promise<void>;
}

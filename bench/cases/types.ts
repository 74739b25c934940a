// What the benchmark parent sends a case process, and what a case reports back (one JSON line).
import type { KvMode } from '../../lib/pipeline/decoder';
import type { BuiltModel } from '../models';

export type CaseKind = 'ours' | 'transformers.js' | 'bare-ort' | 'llama.cpp' | 'vision-sweep' | 'batching';

export interface CaseInput {
  kind: CaseKind;
  model: BuiltModel;
  image: string;
  /** Tokens generated per run (greedy; EOS ignored so every engine makes the same count). */
  tokens: number;
  repeats: number;
  /** A whole prompt with one <image>, the same text for every engine. */
  prompt: string;
  /** bare-ort: the cache length to start from (the pipeline's prompt length). */
  contextTokens?: number;
  /** ours: LlavaModel's warm-up at load (default true; false shows what it saves). */
  warmup?: boolean;
  /** ours: LlavaModel's KV cache mode (default 'shared'). */
  kvCache?: KvMode;
  /** ours: the runtime's niceness (how far below the main thread the inference threads run; default the runtime's, 0). */
  niceness?: number;
  /** ours, bare-ort: onnxruntime session config entries over the pipeline's (lib/runtime/session-host.ts). */
  sessionConfig?: Record<string, string>;
  /** llama.cpp: the GGUF written from the same weights. */
  gguf?: string;
}

/** Figures of one run; absent fields are ones the engine does not expose. */
export interface RunFigures {
  [field: string]: number;
}

export interface CaseOutput {
  runs: RunFigures[];
  /** Process peak resident set, bytes. */
  peakRssBytes: number;
  /** vision-sweep: median ms per session configuration. */
  configs?: Record<string, number>;
}

export const RESULT_PREFIX = 'BENCH_RESULT ';

export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

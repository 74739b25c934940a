// llama.cpp (node-llama-cpp, devDependency, its prebuilt CPU binaries) on a GGUF written from the same weights as
// the ONNX folder (bench/gguf.ts): prefill of the pipeline's prompt length, then greedy decode, like llama-bench's
// pp / tg@depth. The first generation after the load is reported apart (first_* fields), as for ours.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { LlamaContextSequence, Token } from 'node-llama-cpp';
import { CaseInput, CaseOutput, peakRssBytes, RunFigures } from './types';

type NodeLlamaCpp = typeof import('node-llama-cpp');

/** node-llama-cpp is an ES module; tsc's CommonJS output would turn import() into require(). */
const importEsm = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<NodeLlamaCpp>;

export interface LlamaCppSession {
  sequence: LlamaContextSequence;
  dispose(): Promise<void>;
}

/** A GGUF loaded on the CPU with one sequence of `contextSize` positions. */
export async function openLlamaCpp(gguf: string, contextSize: number, threads = os.availableParallelism()): Promise<LlamaCppSession> {
  const { getLlama } = await importEsm('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  const model = await llama.loadModel({ modelPath: gguf });
  const context = await model.createContext({ contextSize, threads, sequences: 1 });
  return {
    sequence: context.getSequence(),
    async dispose() {
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}

/** Greedy continuation of `prompt` (token ids), `count` tokens, no stop token. */
export async function llamaCppGreedy(sequence: LlamaContextSequence, prompt: number[], count: number): Promise<number[]> {
  await sequence.clearHistory();
  const ids: number[] = [];
  for await (const token of sequence.evaluate(prompt as Token[], { temperature: 0 })) {
    ids.push(token as unknown as number);
    if (ids.length >= count) break;
  }
  return ids;
}

async function generation(sequence: LlamaContextSequence, prompt: Token[], tokens: number): Promise<RunFigures> {
  await sequence.clearHistory();
  const t0 = performance.now();
  await sequence.evaluateWithoutGeneratingNewTokens(prompt);
  const prefillMs = performance.now() - t0;
  // As ours: the first step is not timed, then tokens − 1 steps; greedy, no stop token.
  const steps = sequence.evaluate([prompt[prompt.length - 1]], { temperature: 0 });
  await steps.next();
  const t1 = performance.now();
  for (let i = 1; i < tokens; i++) await steps.next();
  const decodeMs = performance.now() - t1;
  await steps.return();
  return { prefill_ms: prefillMs, decode_tok_s: ((tokens - 1) * 1000) / decodeMs };
}

export async function runLlamaCpp(input: CaseInput): Promise<CaseOutput> {
  if (!input.gguf) throw new Error('llama.cpp case without a GGUF file');
  const promptTokens = input.contextTokens ?? 0;
  if (promptTokens < 1) throw new Error("llama.cpp case without a prompt length (it takes ours' from the same round: include ours)");
  const started = performance.now();
  const session = await openLlamaCpp(input.gguf, promptTokens + input.tokens + 16);
  const loadMs = performance.now() - started;
  const vocab: number = JSON.parse(fs.readFileSync(path.join(input.model.dir, 'config.json'), 'utf8')).text_config.vocab_size;
  const prompt = Array.from({ length: promptTokens }, (_, i) => ((i * 7919 + 13) % vocab) as Token);
  const runs: RunFigures[] = [];
  try {
    const first = await generation(session.sequence, prompt, input.tokens);
    for (let r = 0; r < input.repeats; r++) {
      runs.push({
        ...(await generation(session.sequence, prompt, input.tokens)),
        load_ms: loadMs,
        first_prefill_ms: first.prefill_ms,
        first_decode_tok_s: first.decode_tok_s,
      });
    }
  } finally {
    await session.dispose();
  }
  return { runs, peakRssBytes: peakRssBytes() };
}

// Worker side: creating ORT sessions (provider fallback, threads, config) and running them with plain tensors.
import * as ort from 'onnxruntime-node';
import type { ResolvedSpec } from './protocol';
import { createWithFallback } from './providers';
import type { TensorValue } from './tensor';
import type { SessionInfo, TensorInfo, WorkerSession } from './types';
import { fromOrtTensor, toOrtTensor } from './ort-values';

// ORT's own log lines (e.g. each failed provider) go to stderr; failures reach the caller as errors instead.
ort.env.logLevel = 'fatal';
const FATAL = 4;

/**
 * Spinning threads busy-wait after each run for work that will not come, burning the cores Node-RED's main
 * thread and other flows need; the cost of not spinning (waking threads per run) is small next to a model step.
 */
const NO_SPINNING = { 'session.intra_op.allow_spinning': '0', 'session.inter_op.allow_spinning': '0' };

/**
 * A parallel loop is handed out in shrinking blocks that idle threads claim, instead of one fixed share per
 * thread: on a shared machine, a thread that wakes late or is descheduled no longer holds up the whole kernel.
 * Side by side on the 2-core machine beside other jobs (0.5b, median of paired rounds, same logits): int4 decode
 * steps 1.29× faster at load average 9 (faster in 34 of 41 rounds), 1.02× at 7 (17 of 31); fp32 decode 1.07× (13
 * of 21); the int4 576-token prefill 1.04× (8 of 9). It costs little when every thread is on time.
 */
const DYNAMIC_BLOCKS = { 'session.dynamic_block_base': '4' };

/**
 * ORT's memory patterns are off: a pattern is planned after the first run of each input shape and, from the second
 * run of that shape on, takes one new block from the arena for all the run's intermediates. The block is fresh memory,
 * so the second frame of a camera paid again for first-touch page faults (7b-2L int4, same prompt each frame:
 * 138k faults in the first run, 77k in the second, then ~3k; the second prefill 1.6-1.8x the third) and the
 * process kept ~300 MB more. Without patterns the arena reuses what the first run touched.
 */
const MEMORY_PATTERNS = false;

function tensorInfo(meta: readonly ort.InferenceSession.ValueMetadata[]): TensorInfo[] {
  return meta.map((m) => ({
    name: m.name,
    type: m.isTensor ? m.type : 'non-tensor',
    shape: m.isTensor ? [...m.shape] : [],
  }));
}

export class HostedSession implements WorkerSession {
  private active = 0;
  private idle: (() => void) | null = null;
  private released = false;

  constructor(
    readonly info: SessionInfo,
    private readonly session: ort.InferenceSession,
  ) {}

  async run(feeds: Record<string, TensorValue>, fetch?: string[], outputs: Record<string, TensorValue> = {}): Promise<Record<string, TensorValue>> {
    if (this.released) throw new Error(`session for ${this.info.modelPath} was closed`);
    const names = fetch ?? this.session.outputNames;
    for (const n of [...names, ...Object.keys(outputs)]) {
      if (!this.session.outputNames.includes(n)) {
        throw new Error(`unknown output '${n}' (the model's outputs: ${this.session.outputNames.join(', ')})`);
      }
    }
    const ortFeeds: Record<string, ort.Tensor> = {};
    // A tensor both fed and bound as an output (a KV cache written in place) is wrapped once.
    const wrapped = new Map<TensorValue, ort.Tensor>();
    for (const [name, v] of Object.entries(feeds)) wrapped.set(v, (ortFeeds[name] = toOrtTensor(v, `input '${name}'`)));
    const fetches: Record<string, ort.Tensor | null> = {};
    for (const n of names) fetches[n] = null;
    for (const [name, v] of Object.entries(outputs)) fetches[name] = wrapped.get(v) ?? toOrtTensor(v, `output buffer '${name}'`);
    this.active++;
    try {
      const result = await this.session.run(ortFeeds, fetches);
      const out: Record<string, TensorValue> = {};
      for (const n of Object.keys(fetches)) {
        // ORT wrote pre-allocated outputs in place: hand back the caller's own objects.
        out[n] = outputs[n] ?? fromOrtTensor(result[n], `output '${n}'`);
      }
      return out;
    } finally {
      if (--this.active === 0) this.idle?.();
    }
  }

  /** Waits for runs in progress, then frees the ORT session; a second call does nothing. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.active > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    await this.session.release();
  }
}

export async function loadSession(key: string, spec: ResolvedSpec): Promise<HostedSession> {
  const started = performance.now();
  const choice = await createWithFallback(spec.providers, (provider) =>
    ort.InferenceSession.create(spec.modelPath, {
      executionProviders: [provider],
      intraOpNumThreads: spec.threads,
      enableMemPattern: MEMORY_PATTERNS,
      logSeverityLevel: FATAL,
      extra: { ...NO_SPINNING, ...DYNAMIC_BLOCKS, ...spec.config },
    }),
  );
  const session = choice.value;
  const info: SessionInfo = {
    key,
    modelPath: spec.modelPath,
    inputs: tensorInfo(session.inputMetadata),
    outputs: tensorInfo(session.outputMetadata),
    provider: choice.provider,
    providerFailures: choice.failures,
    loadMs: performance.now() - started,
  };
  return new HostedSession(info, session);
}

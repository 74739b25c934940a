// Bookkeeping both generation loops share: the stepper call with its checks and timing, and the checks that end a
// generation early (an abort, the time limit).
import { performance } from 'node:perf_hooks';
import type { DecoderStepper } from './types';

/** What ends a generation early: an abort, or the time limit. */
export type Interruption = 'aborted' | 'time';

/** The time-limit stopping criterion (HF's MaxTimeCriteria): reached once `limitMs` have passed since `startedAt`. */
export class TimeLimit {
  constructor(
    private readonly limitMs: number,
    private readonly startedAt = performance.now(),
  ) {}

  get reached(): boolean {
    return performance.now() - this.startedAt >= this.limitMs;
  }
}

export class StepperCalls {
  steps = 0;
  stepperMs = 0;
  private readonly startedAt = performance.now();

  constructor(
    private readonly stepper: DecoderStepper,
    private readonly signal?: AbortSignal,
    private readonly timeLimit = new TimeLimit(Infinity),
  ) {}

  get aborted(): boolean {
    return this.signal?.aborted === true;
  }

  /**
   * Why generation must end before the next decoder step (an abort, or the time limit), or undefined. Checked after
   * a token is chosen, so a generation keeps its first token (it comes from the prefill) whatever the time limit.
   */
  get interruption(): Interruption | undefined {
    if (this.aborted) return 'aborted';
    return this.timeLimit.reached ? 'time' : undefined;
  }

  get elapsedMs(): number {
    return performance.now() - this.startedAt;
  }

  async step(tokens: number[], parents: number[]): Promise<Float32Array[]> {
    const t0 = performance.now();
    const rows = await this.stepper.step(tokens, parents);
    this.stepperMs += performance.now() - t0;
    this.steps++;
    if (!Array.isArray(rows) || rows.length !== tokens.length) {
      throw new Error(`Decoder step returned ${Array.isArray(rows) ? rows.length : typeof rows} logits rows for ${tokens.length} sequences`);
    }
    for (const row of rows) checkLogitsRow(row, this.stepper.vocabSize);
    return rows;
  }
}

export function checkLogitsRow(row: unknown, vocabSize: number): asserts row is Float32Array {
  if (!(row instanceof Float32Array) || row.length !== vocabSize) {
    const got = row instanceof Float32Array ? `${row.length} values` : typeof row;
    throw new Error(`Expected a Float32Array of ${vocabSize} logits (the vocabulary size), got ${got}`);
  }
}

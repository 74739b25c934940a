// Bookkeeping both generation loops share: the stepper call with its checks and timing, and abort checks.
import { performance } from 'node:perf_hooks';
import type { DecoderStepper } from './types';

export class StepperCalls {
  steps = 0;
  stepperMs = 0;
  private readonly startedAt = performance.now();

  constructor(private readonly stepper: DecoderStepper, private readonly signal?: AbortSignal) {}

  get aborted(): boolean {
    return this.signal?.aborted === true;
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

// Beam search with the semantics of HF transformers' current GenerationMixin._beam_search (no sampling):
//   - scores are log_softmax(logits), then the logits processors, plus the beam's running sum of log-probs;
//   - each step keeps the best max(2, 1 + #eos) × numBeams continuations over all live beams;
//   - walking them best first, a continuation that ends (EOS, a stop string, or max_new_tokens reached)
//     becomes a finished hypothesis only if it ranks among the first numBeams; the others continue, up to
//     numBeams of them;
//   - a finished hypothesis scores sum_logprobs / generated_len ** lengthPenalty, where generated_len counts
//     the tokens generated including the EOS token (HF ≥ 4.50; older BeamSearchScorer excluded it);
//     numBeams finished hypotheses are kept;
//   - early_stopping=False (HF's default): once numBeams hypotheses are finished, stop when the best live beam's
//     sum_logprobs / current_len ** lengthPenalty cannot beat the worst of them (exact for lengthPenalty <= 0,
//     a heuristic above 0, as in HF);
//   - the result is the best finished hypothesis.
// One deliberate difference: HF pads the beam list with -1e9 dummy beams when fewer than numBeams
// continuations are available (tiny vocabularies); here the list just holds fewer live beams.
import type { FinishReason } from '../types';
import type { ResolvedGenerationOptions } from './options';
import type { Interruption, StepperCalls } from './run-state';
import { StopStringMatcher } from './stop-strings';
import type { GenerationHooks, GenerationResult, LogitsProcessor } from './types';
import { logSoftmaxInPlace } from './vector-math';

interface Beam {
  ids: number[];
  /** Sum of (processed) log-probs. */
  logProb: number;
}

interface Hypothesis {
  ids: number[];
  score: number;
  finishReason: FinishReason;
}

/** The best `capacity` (score, beam, token) triples offered, best first; earlier offers win ties. */
class TopContinuations {
  readonly score: Float64Array;
  readonly beam: Int32Array;
  readonly token: Int32Array;
  count = 0;

  constructor(readonly capacity: number) {
    this.score = new Float64Array(capacity);
    this.beam = new Int32Array(capacity);
    this.token = new Int32Array(capacity);
  }

  /** Offers row[t] + base for every token t of one beam. */
  offerRow(row: Float32Array, base: number, beam: number): void {
    for (let t = 0; t < row.length; t++) {
      const s = row[t] + base;
      if (!(s > -Infinity)) continue;
      if (this.count === this.capacity && !(s > this.score[this.capacity - 1])) continue;
      this.insert(s, beam, t);
    }
  }

  private insert(s: number, beam: number, token: number): void {
    let i = this.count < this.capacity ? this.count++ : this.capacity - 1;
    while (i > 0 && this.score[i - 1] < s) {
      this.score[i] = this.score[i - 1];
      this.beam[i] = this.beam[i - 1];
      this.token[i] = this.token[i - 1];
      i--;
    }
    this.score[i] = s;
    this.beam[i] = beam;
    this.token[i] = token;
  }
}

/** The numBeams best finished hypotheses, best first. */
class FinishedHypotheses {
  readonly list: Hypothesis[] = [];

  constructor(private readonly capacity: number) {}

  get full(): boolean {
    return this.list.length >= this.capacity;
  }

  get worstScore(): number {
    return this.list[this.list.length - 1].score;
  }

  add(h: Hypothesis): void {
    if (this.full && !(h.score > this.worstScore)) return;
    let i = 0;
    while (i < this.list.length && this.list[i].score >= h.score) i++;
    this.list.splice(i, 0, h);
    if (this.list.length > this.capacity) this.list.pop();
  }
}

/** After an abort or the time limit: the best of the finished hypotheses and the live beams, as the text so far. */
function bestSoFar(
  finished: Hypothesis | undefined,
  beams: Beam[],
  penalised: (logProb: number, length: number) => number,
  finishReason: Interruption,
): Hypothesis {
  let best: Hypothesis = { ids: finished?.ids ?? [], score: finished?.score ?? -Infinity, finishReason };
  for (const beam of beams) {
    if (beam.ids.length === 0) continue;
    const score = penalised(beam.logProb, beam.ids.length);
    if (score > best.score) best = { ids: beam.ids, score, finishReason };
  }
  return best;
}

export async function beamSearch(
  initialLogits: Float32Array,
  calls: StepperCalls,
  options: ResolvedGenerationOptions,
  hooks: GenerationHooks,
  processors: readonly LogitsProcessor[],
): Promise<GenerationResult> {
  const { numBeams, lengthPenalty, maxNewTokens } = options;
  const eos = new Set(options.ignoreEos ? [] : options.eosTokenIds);
  const stops = new StopStringMatcher(options.stopStrings);
  const promptIds = hooks.promptTokenIds ?? [];
  const penalised = (logProb: number, length: number) => logProb / length ** lengthPenalty;
  const rowScratch = Array.from({ length: numBeams }, () => new Float32Array(initialLogits.length));
  const top = new TopContinuations(Math.max(2, 1 + eos.size) * numBeams);
  const finished = new FinishedHypotheses(numBeams);
  let beams: Beam[] = [{ ids: [], logProb: 0 }];
  let rows: Float32Array[] = [initialLogits];
  let interruption: Interruption | undefined;

  for (let length = 1; length <= maxNewTokens; length++) {
    if (calls.aborted) {
      interruption = 'aborted';
      break;
    }
    top.count = 0;
    for (let b = 0; b < beams.length; b++) {
      const scores = rowScratch[b];
      scores.set(rows[b]);
      logSoftmaxInPlace(scores);
      const history = { promptIds, generatedIds: beams[b].ids };
      for (const processor of processors) processor.apply(scores, history);
      top.offerRow(scores, beams[b].logProb, b);
    }
    if (top.count === 0) throw new Error('Every token of every beam was filtered out');
    const next: Beam[] = [];
    const parents: number[] = [];
    for (let rank = 0; rank < top.count; rank++) {
      const parent = beams[top.beam[rank]];
      const token = top.token[rank];
      const logProb = top.score[rank];
      const ids = [...parent.ids, token];
      const endsWithEos = eos.has(token);
      const endsWithStop = !endsWithEos && stops.active && stops.firstMatch(hooks.decode(ids)) >= 0;
      if (endsWithEos || endsWithStop || length === maxNewTokens) {
        if (rank < numBeams) {
          const finishReason: FinishReason = endsWithEos ? 'eos' : endsWithStop ? 'stop' : 'length';
          finished.add({ ids: endsWithEos ? parent.ids : ids, score: penalised(logProb, length), finishReason });
        }
      } else if (next.length < numBeams) {
        next.push({ ids, logProb });
        parents.push(top.beam[rank]);
      }
    }
    if (next.length === 0) break;
    if (finished.full && !(penalised(next[0].logProb, length) > finished.worstScore)) break;
    beams = next;
    interruption = calls.interruption;
    if (interruption) break;
    rows = await calls.step(
      next.map((beam) => beam.ids[beam.ids.length - 1]),
      parents,
    );
  }

  const best: Hypothesis = interruption
    ? bestSoFar(finished.list[0], beams, penalised, interruption)
    : (finished.list[0] ?? { ids: [], score: 0, finishReason: 'length' }); // maxNewTokens = 0
  let text = best.ids.length > 0 ? hooks.decode(best.ids) : '';
  if (best.finishReason === 'stop' || interruption) {
    const at = stops.active ? stops.firstMatch(text) : -1;
    if (at >= 0) text = text.slice(0, at);
  }
  if (text.length > 0) hooks.onText?.(text);
  return {
    tokenIds: best.ids,
    text,
    finishReason: best.finishReason,
    steps: calls.steps,
    decodeMs: calls.elapsedMs,
    stepperMs: calls.stepperMs,
  };
}

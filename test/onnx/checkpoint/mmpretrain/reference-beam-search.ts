// Float64 beam search over the reference decoder, written from HF transformers' GenerationMixin._beam_search
// (≥ 4.50, no sampling, early_stopping=False), which mmpretrain's llava-7b-v1.5_caption calls through
// lang_encoder.generate(num_beams=3, length_penalty=-1.0):
//   - each step scores every (beam, token) as the beam's sum of log-probs + log_softmax(logits), and keeps the best
//     max(2, 1 + #eos) × num_beams of them;
//   - best first, a candidate that ends (EOS, or max_new_tokens reached) is a finished hypothesis if it ranks among
//     the first num_beams, scored sum / generated_len ** length_penalty (generated_len counts the EOS); the others
//     are the next live beams, at most num_beams;
//   - the num_beams best finished hypotheses are kept; with all slots full, search stops when the best live beam's
//     sum / current_len ** length_penalty does not beat the worst of them;
//   - the answer is the best finished hypothesis (EOS not included in the returned ids).
import { emptyRefCache, referenceDecoder, referenceEmbed, RefKvCache, RefTensor } from '../../../support/reference';
import type { TinyModel } from '../../../support/tiny-model';

export interface BeamOptions {
  numBeams: number;
  lengthPenalty: number;
  maxNewTokens: number;
  eosIds: number[];
}

interface LiveBeam {
  ids: number[];
  logProb: number;
  logits: Float64Array;
  cache: RefKvCache;
}

function logSoftmax(row: Float64Array): Float64Array {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  const log = max + Math.log(sum);
  return row.map((v) => v - log);
}

function lastRow(logits: RefTensor): Float64Array {
  const vocab = logits.dims[2];
  return logits.data.slice((logits.dims[1] - 1) * vocab, logits.dims[1] * vocab);
}

/** Beam search from prompt ids whose image rows take `image`'s rows; returns the best hypothesis' ids. */
export function referenceBeamSearch(model: TinyModel, ids: number[], imagePositions: number[], image: RefTensor, o: BeamOptions): number[] {
  const c = model.config;
  const h = c.text_config.hidden_size;
  const embeds = referenceEmbed(
    model.weights,
    c,
    ids.map((id, i) => (imagePositions.includes(i) ? 0 : id)),
  );
  imagePositions.forEach((pos, r) => embeds.data.set(image.data.subarray(r * h, (r + 1) * h), pos * h));
  const prefill = referenceDecoder(model.weights, c, {
    embeds,
    attentionMask: ids.map(() => 1),
    positionIds: ids.map((_, i) => i),
    past: emptyRefCache(c, 1),
  });
  let beams: LiveBeam[] = [{ ids: [], logProb: 0, logits: lastRow(prefill.logits), cache: prefill.present }];
  let finished: Array<{ ids: number[]; score: number }> = [];
  const keep = Math.max(2, 1 + o.eosIds.length) * o.numBeams;
  const penalised = (logProb: number, length: number) => logProb / length ** o.lengthPenalty;

  for (let length = 1; length <= o.maxNewTokens; length++) {
    const candidates: Array<{ beam: LiveBeam; token: number; logProb: number }> = [];
    for (const beam of beams) {
      logSoftmax(beam.logits).forEach((lp, token) => candidates.push({ beam, token, logProb: beam.logProb + lp }));
    }
    candidates.sort((a, b) => b.logProb - a.logProb);
    const next: typeof candidates = [];
    candidates.slice(0, keep).forEach((cand, rank) => {
      const eos = o.eosIds.includes(cand.token);
      if (eos || length === o.maxNewTokens) {
        if (rank < o.numBeams) finished.push({ ids: eos ? cand.beam.ids : [...cand.beam.ids, cand.token], score: penalised(cand.logProb, length) });
      } else if (next.length < o.numBeams) {
        next.push(cand);
      }
    });
    finished = finished.sort((a, b) => b.score - a.score).slice(0, o.numBeams);
    if (next.length === 0) break;
    if (finished.length === o.numBeams && !(penalised(next[0].logProb, length) > finished[finished.length - 1].score)) break;
    beams = next.map((cand) => {
      const past = cand.beam.cache;
      const out = referenceDecoder(model.weights, c, {
        embeds: referenceEmbed(model.weights, c, [cand.token]),
        attentionMask: new Array(past.length + 1).fill(1),
        positionIds: [past.length],
        past,
      });
      return { ids: [...cand.beam.ids, cand.token], logProb: cand.logProb, logits: lastRow(out.logits), cache: out.present };
    });
  }
  return finished[0].ids;
}

import assert from 'node:assert/strict';
import {
  buildLogitsProcessors,
  MinNewTokens,
  MinP,
  RepetitionPenalty,
  resolveGenerationOptions,
  Temperature,
  TopK,
  TopP,
} from '../../../lib/pipeline/generation';
import { seededRandom } from '../../../lib/pipeline/generation/rng';
import { kthLargest } from '../../../lib/pipeline/generation/vector-math';

const noHistory = { promptIds: [], generatedIds: [] };

function randomRow(n: number, seed: number, spread = 5): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: n }, () => (random() * 2 - 1) * spread);
}

function probabilities(row: Float32Array): number[] {
  const max = Math.max(...row);
  const e = Array.from(row, (v) => (v > -Infinity ? Math.exp(v - max) : 0));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/** Reference nucleus by a full sort: tokens kept while the mass ranked above them is < p. */
function nucleus(row: Float32Array, p: number): Set<number> {
  const probs = probabilities(row);
  const order = probs.map((_, i) => i).sort((a, b) => probs[b] - probs[a]);
  const kept = new Set<number>();
  let before = 0;
  for (const i of order) {
    if (before >= p) break;
    kept.add(i);
    before += probs[i];
  }
  return kept;
}

function keptTokens(row: Float32Array): Set<number> {
  const kept = new Set<number>();
  row.forEach((v, i) => v > -Infinity && kept.add(i));
  return kept;
}

describe('generation: logits processors', () => {
  it('repetition penalty divides positive and multiplies negative scores of each distinct seen token once (HF)', () => {
    const penalty = 1.3;
    const row = Float32Array.from([2, -2, 1, 0.5, -1, 3]);
    const original = Array.from(row);
    // Token 1 is seen three times (prompt and generated) but is penalised once; -200 (LLaVA image placeholder) is skipped.
    new RepetitionPenalty(penalty, row.length).apply(row, { promptIds: [1, -200, 5], generatedIds: [1, 1, 4] });
    const seen = new Set([1, 5, 4]);
    const expected = original.map((s, i) => (seen.has(i) ? (s < 0 ? s * penalty : s / penalty) : s));
    expected.forEach((v, i) => assert.ok(Math.abs(row[i] - v) < 1e-6, `token ${i}: ${row[i]} vs ${v}`));
    // The marks are cleared: a second call with no history changes nothing.
    const again = Float32Array.from(row);
    new RepetitionPenalty(penalty, row.length).apply(again, noHistory);
    assert.deepEqual(Array.from(again), Array.from(row));
  });

  it('min_new_tokens removes every EOS id until enough tokens exist', () => {
    const processor = new MinNewTokens(2, [0, 3]);
    const early = Float32Array.from([5, 1, 1, 5]);
    processor.apply(early, { promptIds: [7, 7, 7], generatedIds: [1] });
    assert.deepEqual(Array.from(early), [-Infinity, 1, 1, -Infinity]);
    const late = Float32Array.from([5, 1, 1, 5]);
    processor.apply(late, { promptIds: [], generatedIds: [1, 2] });
    assert.deepEqual(Array.from(late), [5, 1, 1, 5]);
  });

  it('temperature divides the scores', () => {
    const row = Float32Array.from([1, -2, 0.5]);
    new Temperature(0.5).apply(row);
    assert.deepEqual(Array.from(row), [2, -4, 1]);
  });

  it('kthLargest matches a sort, with duplicates and removed tokens', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const random = seededRandom(seed);
      const n = 1 + Math.floor(random() * 300);
      const row = Float32Array.from({ length: n }, () => (random() < 0.2 ? -Infinity : Math.round(random() * 20)));
      const sorted = Array.from(row).sort((a, b) => b - a);
      const k = 1 + Math.floor(random() * n);
      assert.equal(kthLargest(row, k, new Float32Array(n)), sorted[k - 1], `seed ${seed} k ${k}`);
    }
  });

  it('top-k keeps the k best scores and every tie with the k-th', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const row = randomRow(500, seed);
      const k = 1 + ((seed * 7) % 40);
      const expected = new Set(
        Array.from(row.keys())
          .sort((a, b) => row[b] - row[a])
          .slice(0, k),
      );
      new TopK(k, row.length).apply(row);
      assert.deepEqual(keptTokens(row), expected);
    }
    const tied = Float32Array.from([1, 3, 2, 3, 2, 0]);
    new TopK(2, tied.length).apply(tied);
    assert.deepEqual(keptTokens(tied), new Set([1, 3]));
    const tiedAtK = Float32Array.from([1, 3, 2, 3, 2, 0]);
    new TopK(3, tiedAtK.length).apply(tiedAtK);
    assert.deepEqual(keptTokens(tiedAtK), new Set([1, 2, 3, 4]));
  });

  it('top-p keeps the smallest most-probable set reaching p, as a full sort would', () => {
    for (let seed = 1; seed <= 20; seed++) {
      for (const p of [0.1, 0.5, 0.9, 0.99]) {
        const row = randomRow(1000, seed, seed % 2 === 0 ? 8 : 1);
        const expected = nucleus(row, p);
        new TopP(p, row.length).apply(row);
        assert.deepEqual(keptTokens(row), expected, `seed ${seed} p ${p}`);
      }
    }
  });

  it('top-p handles a near-flat large vocabulary (the nucleus is most of it)', () => {
    const row = randomRow(20000, 3, 0.01);
    const expected = nucleus(row, 0.95);
    new TopP(0.95, row.length).apply(row);
    assert.deepEqual(keptTokens(row), expected);
    assert.ok(expected.size > 15000);
  });

  it('min-p removes tokens below minP × the top probability', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const row = randomRow(300, seed);
      const probs = probabilities(row);
      const top = Math.max(...probs);
      const expected = new Set(probs.flatMap((q, i) => (q >= 0.1 * top ? [i] : [])));
      new MinP(0.1).apply(row);
      assert.deepEqual(keptTokens(row), expected);
    }
  });

  it('composes processors in HF order, sampling warpers only when sampling', () => {
    const all = resolveGenerationOptions(
      { maxNewTokens: 4, doSample: true, temperature: 0.7, topK: 5, topP: 0.9, minP: 0.05, repetitionPenalty: 1.2, minNewTokens: 1, eosTokenIds: [0] },
      100,
    );
    const names = (o: typeof all) => buildLogitsProcessors(o, 100).map((p) => p.constructor.name);
    assert.deepEqual(names(all), ['RepetitionPenalty', 'MinNewTokens', 'Temperature', 'TopK', 'TopP', 'MinP']);
    assert.deepEqual(names({ ...all, doSample: false }), ['RepetitionPenalty', 'MinNewTokens']);
    // Order matters: temperature before top-p widens the nucleus of a sharp distribution.
    const row = Float32Array.from([3, 2, 1, 0]);
    const pipeline = buildLogitsProcessors(resolveGenerationOptions({ maxNewTokens: 1, doSample: true, temperature: 4, topP: 0.6 }, 4), 4);
    for (const p of pipeline) p.apply(row, noHistory);
    assert.deepEqual(keptTokens(row), nucleus(Float32Array.from([0.75, 0.5, 0.25, 0]), 0.6));
    assert.equal(keptTokens(row).size, 2); // without the temperature first it would be 1 token
  });
});

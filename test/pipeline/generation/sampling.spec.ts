import assert from 'node:assert/strict';
import { buildLogitsProcessors, generate, MultinomialSampler, resolveGenerationOptions, seededRandom } from '../../../lib/pipeline/generation';
import type { GenerationOptions } from '../../../lib/pipeline/types';
import { ByteVocab, hashedModel, TableStepper } from './table-lm';

const V = 12;
const EOS = 0;
const noText = { decode: (ids: number[]) => ids.join(',') };

async function run(model: ReturnType<typeof hashedModel>, options: GenerationOptions) {
  const stepper = new TableStepper(V, model);
  const result = await generate(stepper.initialLogits(), stepper, options, noText);
  return { result, stepper };
}

function argmaxOf(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** The exact distribution after the processors, from the filtered softmax. */
function filteredSoftmax(row: Float32Array): number[] {
  const max = Math.max(...row);
  const e = Array.from(row, (v) => (v > -Infinity ? Math.exp(v - max) : 0));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

describe('generation: greedy and sampling', () => {
  it('greedy follows the argmax path of the model and feeds each token back with parent 0', async () => {
    for (let seed = 1; seed <= 10; seed++) {
      const model = hashedModel(V, seed);
      const { result, stepper } = await run(model, { maxNewTokens: 15, eosTokenIds: [EOS] });
      const expected: number[] = [];
      let reason = 'length';
      while (expected.length < 15) {
        const next = argmaxOf(model(expected));
        if (next === EOS) {
          reason = 'eos';
          break;
        }
        expected.push(next);
      }
      assert.deepEqual(result.tokenIds, expected);
      assert.equal(result.finishReason, reason);
      assert.equal(result.text, expected.join(','));
      // One step per token after the first, except none after the last token of a 'length' finish.
      const stepsExpected = reason === 'eos' ? expected.length : expected.length - 1;
      assert.equal(result.steps, stepsExpected);
      assert.deepEqual(
        stepper.calls.map((c) => c.tokens[0]),
        expected.slice(0, stepsExpected),
      );
      assert.ok(stepper.calls.every((c) => c.parents.length === 1 && c.parents[0] === 0));
    }
  });

  it('sampling is reproducible under a seed and differs across seeds', async () => {
    const model = hashedModel(V, 42, 1.5);
    const options = { maxNewTokens: 20, doSample: true, eosTokenIds: [EOS] };
    const a = await run(model, { ...options, seed: 7 });
    const b = await run(model, { ...options, seed: 7 });
    assert.deepEqual(a.result.tokenIds, b.result.tokenIds);
    const distinct = new Set<string>();
    for (let seed = 0; seed < 8; seed++) distinct.add((await run(model, { ...options, seed })).result.tokenIds.join(','));
    assert.ok(distinct.size >= 6, `only ${distinct.size} distinct sequences from 8 seeds`);
  });

  it('top-k = 1 and temperature 0 sample exactly the greedy path', async () => {
    for (let seed = 1; seed <= 5; seed++) {
      const model = hashedModel(V, seed, 1);
      const greedy = (await run(model, { maxNewTokens: 12, eosTokenIds: [EOS] })).result.tokenIds;
      const topK1 = (await run(model, { maxNewTokens: 12, eosTokenIds: [EOS], doSample: true, topK: 1, seed })).result.tokenIds;
      const cold = (await run(model, { maxNewTokens: 12, eosTokenIds: [EOS], doSample: true, temperature: 0, seed })).result.tokenIds;
      assert.deepEqual(topK1, greedy);
      assert.deepEqual(cold, greedy);
    }
  });

  it('draw frequencies match the exact filtered softmax for temperature, top-k, top-p and min-p', () => {
    const row = Float32Array.from([2.0, 1.6, 1.1, 0.9, 0.3, -0.2, -1.0, 0.0]);
    const cases: GenerationOptions[] = [
      { maxNewTokens: 1, doSample: true },
      { maxNewTokens: 1, doSample: true, temperature: 0.6 },
      { maxNewTokens: 1, doSample: true, temperature: 2.5 },
      { maxNewTokens: 1, doSample: true, topK: 3 },
      { maxNewTokens: 1, doSample: true, topP: 0.75 },
      { maxNewTokens: 1, doSample: true, minP: 0.3 },
      { maxNewTokens: 1, doSample: true, temperature: 1.5, topK: 6, topP: 0.9, minP: 0.1 },
    ];
    const draws = 40000;
    for (const [c, options] of cases.entries()) {
      const processed = Float32Array.from(row);
      for (const p of buildLogitsProcessors(resolveGenerationOptions(options, row.length), row.length)) {
        p.apply(processed, { promptIds: [], generatedIds: [] });
      }
      const expected = filteredSoftmax(processed);
      const sampler = new MultinomialSampler(seededRandom(1000 + c), row.length);
      const counts = new Array(row.length).fill(0);
      for (let i = 0; i < draws; i++) counts[sampler.select(Float32Array.from(processed))]++;
      counts.forEach((n, t) => {
        if (expected[t] === 0) assert.equal(n, 0, `case ${c}: filtered token ${t} was drawn`);
        else assert.ok(Math.abs(n / draws - expected[t]) < 0.012, `case ${c} token ${t}: ${n / draws} vs ${expected[t]}`);
      });
    }
    // And the filters did filter: top-k=3 leaves 3 tokens, top-p=0.75 a strict subset.
    const kept = (options: GenerationOptions) => {
      const r = Float32Array.from(row);
      for (const p of buildLogitsProcessors(resolveGenerationOptions(options, row.length), row.length)) p.apply(r, { promptIds: [], generatedIds: [] });
      return filteredSoftmax(r).filter((q) => q > 0).length;
    };
    assert.equal(kept(cases[3]), 3);
    assert.ok(kept(cases[4]) < row.length && kept(cases[4]) > 1);
  });

  it('reports decoder steps and the time spent in them', async () => {
    const model = hashedModel(V, 3);
    const slow = new TableStepper(V, model);
    const stepper = {
      vocabSize: V,
      step: async (tokens: number[], parents: number[]) => {
        await new Promise((resolve) => setTimeout(resolve, 15));
        return slow.step(tokens, parents);
      },
    };
    const result = await generate(slow.initialLogits(), stepper, { maxNewTokens: 4, ignoreEos: true }, noText);
    assert.equal(result.steps, 3);
    assert.ok(result.stepperMs >= 3 * 14, `stepperMs ${result.stepperMs}`);
    assert.ok(result.decodeMs >= result.stepperMs);
  });

  it('repetition penalty steers greedy decoding away from seen tokens (prompt included)', async () => {
    const vocab = new ByteVocab();
    // A model that always prefers 'a' (score 2) over 'b' (score 1.5): penalised 'a' (2/1.5 = 1.33) loses to 'b'.
    const model = (_prefix: readonly number[]) => {
      const row = new Float32Array(vocab.size);
      row[vocab.byte(97)] = 2;
      row[vocab.byte(98)] = 1.5;
      return row;
    };
    const stepper = new TableStepper(vocab.size, model);
    const plain = await generate(stepper.initialLogits(), stepper, { maxNewTokens: 3 }, { decode: vocab.decode });
    assert.equal(plain.text, 'aaa');
    // Penalty 1.5: 'a' once seen scores 2/1.5 = 1.33, 'b' once seen 1.0.
    const withPenalty = await generate(stepper.initialLogits(), stepper, { maxNewTokens: 3, repetitionPenalty: 1.5 }, { decode: vocab.decode });
    assert.equal(withPenalty.text, 'aba');
    const promptHasA = await generate(
      stepper.initialLogits(),
      stepper,
      { maxNewTokens: 3, repetitionPenalty: 1.5 },
      {
        decode: vocab.decode,
        promptTokenIds: [vocab.byte(97)],
      },
    );
    assert.equal(promptHasA.text, 'baa');
  });
});

import assert from 'node:assert/strict';
import { generate } from '../../../lib/pipeline/generation';
import type { FinishReason, GenerationOptions } from '../../../lib/pipeline/types';
import { ByteVocab, hashedModel, LanguageModel, logSoftmax, probabilityModel, TableStepper } from './table-lm';

const EOS = 0;
const idsText = { decode: (ids: number[]) => ids.join(',') };

interface Best {
  ids: number[];
  finishReason: FinishReason;
  score: number;
}

/**
 * Exhaustive search over every sequence of up to maxLen tokens: a sequence ends at EOS (EOS counted in its length,
 * not in its ids) or at maxLen. score = sum of log-probs / length ** lengthPenalty; `adjust` rewrites the log-probs
 * of a prefix the way the logits processors do in beam search (after log_softmax).
 */
function exhaustiveBest(
  model: LanguageModel,
  maxLen: number,
  lengthPenalty: number,
  adjust?: (logp: number[], prefix: number[]) => void,
  eosIds: readonly number[] = [EOS],
): Best {
  let best: Best | undefined;
  const consider = (ids: number[], sum: number, length: number, finishReason: FinishReason) => {
    const score = sum / length ** lengthPenalty;
    if (best === undefined || score > best.score) best = { ids, finishReason, score };
  };
  const visit = (prefix: number[], sum: number) => {
    const logp = logSoftmax(model(prefix));
    adjust?.(logp, prefix);
    logp.forEach((lp, token) => {
      if (lp === -Infinity) return;
      if (eosIds.includes(token)) consider(prefix, sum + lp, prefix.length + 1, 'eos');
      else if (prefix.length + 1 === maxLen) consider([...prefix, token], sum + lp, maxLen, 'length');
      else visit([...prefix, token], sum + lp);
    });
  };
  visit([], 0);
  return best!;
}

async function beam(model: LanguageModel, vocabSize: number, options: GenerationOptions, hooks: Partial<Parameters<typeof generate>[3]> = {}) {
  const stepper = new TableStepper(vocabSize, model);
  const result = await generate(stepper.initialLogits(), stepper, options, { ...idsText, ...hooks });
  return { result, stepper };
}

describe('generation: beam search', () => {
  it('with beams enough to prune nothing, equals exhaustive search for several length penalties', async () => {
    // V = 4 (EOS + 3), L = 4: at most 27 live prefixes and 121 finished sequences, so 128 beams keep everything.
    let nonIdentityGathers = 0;
    const outcomes = new Set<string>();
    for (let seed = 1; seed <= 12; seed++) {
      const model = hashedModel(4, seed, 2);
      for (const lengthPenalty of [-1, 0, 1, 2]) {
        const expected = exhaustiveBest(model, 4, lengthPenalty);
        outcomes.add(`${expected.finishReason}:${expected.ids.length}`);
        const { result, stepper } = await beam(model, 4, { maxNewTokens: 4, numBeams: 128, lengthPenalty, eosTokenIds: [EOS] });
        assert.deepEqual(result.tokenIds, expected.ids, `seed ${seed} lp ${lengthPenalty}`);
        assert.equal(result.finishReason, expected.finishReason);
        assert.equal(result.text, expected.ids.join(','));
        nonIdentityGathers += stepper.calls.filter((c) => c.parents.some((p, i) => p !== i)).length;
      }
    }
    assert.ok(nonIdentityGathers > 0);
    assert.ok(outcomes.size >= 4, `the tables exercise too few outcomes: ${[...outcomes]}`);
  });

  it('matches exhaustive search under repetition penalty and min_new_tokens (applied to log-probs, per beam)', async () => {
    const prompt = [2];
    for (let seed = 1; seed <= 8; seed++) {
      const model = hashedModel(4, 100 + seed, 2);
      const expected = exhaustiveBest(model, 4, 1, (logp, prefix) => {
        for (const id of new Set([...prompt, ...prefix])) logp[id] *= 1.8; // log-probs are negative: multiplied
        if (prefix.length < 2) logp[EOS] = -Infinity;
      });
      const { result } = await beam(
        model,
        4,
        { maxNewTokens: 4, numBeams: 128, repetitionPenalty: 1.8, minNewTokens: 2, eosTokenIds: [EOS] },
        { promptTokenIds: prompt },
      );
      assert.deepEqual(result.tokenIds, expected.ids, `seed ${seed}`);
      assert.ok(result.tokenIds.length >= 2);
    }
  });

  it('handles several EOS ids, and ignore_eos turns them into ordinary tokens', async () => {
    for (let seed = 1; seed <= 6; seed++) {
      const model = hashedModel(5, 200 + seed, 2);
      const twoEos = exhaustiveBest(model, 3, 1, undefined, [0, 3]);
      const { result } = await beam(model, 5, { maxNewTokens: 3, numBeams: 128, eosTokenIds: [0, 3] });
      assert.deepEqual([result.tokenIds, result.finishReason], [twoEos.ids, twoEos.finishReason], `seed ${seed}`);
      const noEos = exhaustiveBest(model, 3, 1, undefined, []);
      const ignored = await beam(model, 5, { maxNewTokens: 3, numBeams: 128, eosTokenIds: [0, 3], ignoreEos: true });
      assert.deepEqual([ignored.result.tokenIds, ignored.result.finishReason], [noEos.ids, 'length'], `seed ${seed}`);
    }
  });

  it('mmpretrain caption settings (3 beams, length_penalty -1) find the sequence greedy misses', async () => {
    const [A, B, C] = [1, 2, 3];
    const model = probabilityModel(4, (prefix) => {
      const key = prefix.join(',');
      if (key === '')
        return [
          [A, 0.5],
          [B, 0.45],
          [C, 0.05],
        ];
      if (key === `${A}`)
        return [
          [EOS, 0.25],
          [A, 0.25],
          [B, 0.25],
          [C, 0.25],
        ];
      if (key === `${B}`)
        return [
          [EOS, 0.95],
          [A, 0.05],
        ];
      return [
        [EOS, 0.9],
        [A, 0.06],
        [B, 0.04],
      ];
    });
    const greedy = await beam(model, 4, { maxNewTokens: 50, eosTokenIds: [EOS] });
    assert.deepEqual(greedy.result.tokenIds, [A]);
    const options = { numBeams: 3, lengthPenalty: -1, eosTokenIds: [EOS] };
    const expected = exhaustiveBest(model, 6, -1);
    const short = await beam(model, 4, { ...options, maxNewTokens: 6 });
    assert.deepEqual(short.result.tokenIds, expected.ids);
    assert.deepEqual(expected.ids, [B]);
    // With max_new_tokens 50 the answer is the same, and the early-stopping heuristic ends the search long before.
    const long = await beam(model, 4, { ...options, maxNewTokens: 50 });
    assert.deepEqual(long.result.tokenIds, [B]);
    assert.equal(long.result.finishReason, 'eos');
    assert.ok(long.result.steps < 6, `ran ${long.result.steps} steps`);
  });

  it('early stopping (HF False heuristic) stops once no live beam can beat the finished ones', async () => {
    const model = probabilityModel(3, () => [
      [EOS, 0.9],
      [1, 0.06],
      [2, 0.04],
    ]);
    // lengthPenalty 0: scores only fall with length, so exhaustive search to 8 tokens settles it for 30.
    const expected = exhaustiveBest(model, 8, 0, (logp, prefix) => {
      if (prefix.length < 1) logp[EOS] = -Infinity;
    });
    const { result } = await beam(model, 3, { maxNewTokens: 30, numBeams: 2, lengthPenalty: 0, minNewTokens: 1, eosTokenIds: [EOS] });
    assert.deepEqual(result.tokenIds, expected.ids);
    assert.equal(result.finishReason, 'eos');
    assert.ok(result.steps < 5, `ran ${result.steps} steps`);
  });

  it('a stop string ends a hypothesis and is trimmed from the text; the text reaches onText once', async () => {
    const vocab = new ByteVocab();
    const [a, b, c] = [vocab.byte(97), vocab.byte(98), vocab.byte(99)];
    const model = probabilityModel(vocab.size, (prefix) =>
      prefix.length === 0
        ? [
            [a, 0.7],
            [c, 0.3],
          ]
        : [
            [b, 0.6],
            [c, 0.4],
          ],
    );
    const deltas: string[] = [];
    const stepper = new TableStepper(vocab.size, model);
    const result = await generate(
      stepper.initialLogits(),
      stepper,
      { maxNewTokens: 5, numBeams: 2, stopStrings: ['ab'], eosTokenIds: [ByteVocab.EOS] },
      {
        decode: vocab.decode,
        onText: (d) => deltas.push(d),
      },
    );
    assert.equal(result.finishReason, 'stop');
    assert.deepEqual(result.tokenIds, [a, b]);
    assert.equal(result.text, '');
    assert.deepEqual(deltas, []);
    const plainDeltas: string[] = [];
    const plain = await generate(
      stepper.initialLogits(),
      stepper,
      { maxNewTokens: 3, numBeams: 2 },
      {
        decode: vocab.decode,
        onText: (d) => plainDeltas.push(d),
      },
    );
    assert.equal(plain.finishReason, 'length');
    assert.equal(plain.text, 'abb');
    assert.deepEqual(plainDeltas, [plain.text]);
  });

  it('an abort ends the search with finishReason aborted and the best text so far', async () => {
    const controller = new AbortController();
    const model = hashedModel(6, 5, 1);
    let calls = 0;
    const stepper = new TableStepper(6, model, () => {
      if (++calls === 2) controller.abort();
    });
    const result = await generate(stepper.initialLogits(), stepper, { maxNewTokens: 20, numBeams: 3 }, { ...idsText, signal: controller.signal });
    assert.equal(result.finishReason, 'aborted');
    assert.equal(result.steps, 2);
    assert.equal(result.tokenIds.length, 2);
  });
});

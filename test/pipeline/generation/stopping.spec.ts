import assert from 'node:assert/strict';
import { generate } from '../../../lib/pipeline/generation';
import { parseCheckedJsonAnswer } from '../../../lib/pipeline/generation/json-schema';
import type { GenerationOptions } from '../../../lib/pipeline/types';
import { ByteVocab, LanguageModel, scriptedModel, TableStepper } from './table-lm';

const vocab = new ByteVocab(['▁Hello', ',', '▁world', '▁E', 'ND', '▁the', '▁end']);
const EOS = ByteVocab.EOS;

async function run(model: LanguageModel, options: GenerationOptions, signal?: AbortSignal, onStep?: () => void) {
  const deltas: string[] = [];
  const stepper = new TableStepper(vocab.size, model, onStep);
  const result = await generate(stepper.initialLogits(), stepper, options, { decode: vocab.decode, onText: (d) => deltas.push(d), signal });
  assert.equal(deltas.join(''), result.text, 'onText deltas join to the final text');
  return { result, deltas, stepper };
}

describe('generation: stopping', () => {
  const hello = [vocab.piece('▁Hello'), vocab.piece(','), vocab.piece('▁world')];

  it('stops at an EOS id, without the EOS in the output', async () => {
    const { result } = await run(scriptedModel(vocab.size, hello, EOS), { maxNewTokens: 10, eosTokenIds: [5, EOS] });
    assert.equal(result.finishReason, 'eos');
    assert.deepEqual(result.tokenIds, hello);
    assert.equal(result.text, 'Hello, world');
  });

  it('stops at max_new_tokens without a wasted decoder step', async () => {
    const { result, stepper } = await run(scriptedModel(vocab.size, hello, EOS), { maxNewTokens: 2, eosTokenIds: [EOS] });
    assert.equal(result.finishReason, 'length');
    assert.deepEqual(result.tokenIds, hello.slice(0, 2));
    assert.equal(stepper.calls.length, 1);
    const none = await run(scriptedModel(vocab.size, hello, EOS), { maxNewTokens: 0 });
    assert.deepEqual([none.result.tokenIds, none.result.text, none.result.finishReason, none.result.steps], [[], '', 'length', 0]);
  });

  it('ignore_eos generates through EOS up to max_new_tokens', async () => {
    const { result } = await run(scriptedModel(vocab.size, hello, EOS), { maxNewTokens: 5, eosTokenIds: [EOS], ignoreEos: true });
    assert.equal(result.finishReason, 'length');
    assert.deepEqual(result.tokenIds, [...hello, EOS, EOS]);
  });

  it('min_new_tokens suppresses EOS until enough tokens exist, then EOS stops', async () => {
    // EOS is the model's first choice everywhere; the runner-up is 'x'.
    const model: LanguageModel = () => {
      const row = new Float32Array(vocab.size);
      row[EOS] = 5;
      row[vocab.byte(120)] = 3;
      return row;
    };
    const { result } = await run(model, { maxNewTokens: 10, minNewTokens: 3, eosTokenIds: [EOS] });
    assert.equal(result.text, 'xxx');
    assert.equal(result.finishReason, 'eos');
  });

  it('a stop string spanning token boundaries stops generation and is trimmed; no part of it is streamed', async () => {
    const script = [...hello, vocab.piece('▁E'), vocab.piece('ND'), vocab.piece('▁the'), vocab.piece('▁end')];
    const { result, deltas } = await run(scriptedModel(vocab.size, script, EOS), { maxNewTokens: 20, eosTokenIds: [EOS], stopStrings: ['END'] });
    assert.equal(result.finishReason, 'stop');
    assert.equal(result.text, 'Hello, world ');
    assert.deepEqual(result.tokenIds, script.slice(0, 5));
    assert.ok(deltas.every((d) => !d.includes('E')));
  });

  it('a stop string split into single bytes, the earliest of several stop strings wins', async () => {
    const script = vocab.bytesOf('say <|end|> more');
    const { result } = await run(scriptedModel(vocab.size, script, EOS), { maxNewTokens: 40, stopStrings: ['more', '<|end|>'] });
    assert.equal(result.finishReason, 'stop');
    assert.equal(result.text, 'say ');
    assert.equal(result.tokenIds.length, 'say <|end|>'.length);
  });

  it('held-back text that does not become a stop string is streamed once it is clear', async () => {
    const script = vocab.bytesOf('a <|en|x b');
    const deltasAt: string[][] = [];
    const deltas: string[] = [];
    const stepper = new TableStepper(vocab.size, scriptedModel(vocab.size, script, EOS), () => deltasAt.push([...deltas]));
    const result = await generate(
      stepper.initialLogits(),
      stepper,
      { maxNewTokens: 40, eosTokenIds: [EOS], stopStrings: ['<|end|>'] },
      {
        decode: vocab.decode,
        onText: (d) => deltas.push(d),
      },
    );
    assert.equal(result.finishReason, 'eos');
    assert.equal(result.text, 'a <|en|x b');
    assert.equal(deltas.join(''), result.text);
    // While '<|en' could still become '<|end|>', nothing past 'a ' was streamed.
    const afterPrefix = deltasAt['a <|en'.length - 1].join('');
    assert.equal(afterPrefix, 'a ');
  });

  it('an abort signal ends generation with finishReason aborted, keeping the text so far', async () => {
    const controller = new AbortController();
    let steps = 0;
    const script = vocab.bytesOf('abcdefghij');
    const { result } = await run(scriptedModel(vocab.size, script, EOS), { maxNewTokens: 20, eosTokenIds: [EOS] }, controller.signal, () => {
      if (++steps === 3) controller.abort();
    });
    assert.equal(result.finishReason, 'aborted');
    // Tokens come from the prefill logits and steps 1-2; the abort is seen before step 3's logits are used.
    assert.equal(result.text, 'abc');
    assert.equal(result.steps, 3);
    const before = new AbortController();
    before.abort();
    const early = await run(scriptedModel(vocab.size, script, EOS), { maxNewTokens: 20 }, before.signal);
    assert.deepEqual([early.result.finishReason, early.result.text, early.result.steps], ['aborted', '', 0]);
  });

  describe('time limit (maxTime)', () => {
    const script = vocab.bytesOf('the quick brown fox jumps over the lazy dog, again and again and again');
    /** The table model with a decoder step that takes `ms` (a slow decoder). */
    const slowStepper = (ms: number) => {
      const stepper = new TableStepper(vocab.size, scriptedModel(vocab.size, script, vocab.byte(46)));
      const step = stepper.step.bind(stepper);
      stepper.step = async (tokens, parents) => {
        await new Promise((r) => setTimeout(r, ms));
        return step(tokens, parents);
      };
      return stepper;
    };

    for (const numBeams of [1, 2]) {
      it(`${numBeams > 1 ? 'beam search' : 'greedy'}: a slow decoder runs into the limit: finishReason time, the text so far kept`, async () => {
        const stepper = slowStepper(15);
        const deltas: string[] = [];
        const result = await generate(
          stepper.initialLogits(),
          stepper,
          { maxNewTokens: 500, maxTime: 0.12, numBeams, eosTokenIds: [EOS] },
          {
            decode: vocab.decode,
            onText: (d) => deltas.push(d),
          },
        );
        assert.equal(result.finishReason, 'time');
        assert.ok(result.tokenIds.length >= 2 && result.tokenIds.length < 500, `${result.tokenIds.length} tokens`);
        assert.equal(result.text, vocab.decode(script.slice(0, result.tokenIds.length)), 'the text generated so far');
        assert.equal(deltas.join(''), result.text);
        // Generous bounds: it stopped at the first check after 120 ms, not long after.
        assert.ok(result.decodeMs >= 120 && result.decodeMs < 5000, `${result.decodeMs} ms`);
      });
    }

    it('counts from startedAt (prefill included) and always keeps the first token', async () => {
      for (const numBeams of [1, 2]) {
        const stepper = new TableStepper(vocab.size, scriptedModel(vocab.size, script, EOS));
        const result = await generate(
          stepper.initialLogits(),
          stepper,
          { maxNewTokens: 50, maxTime: 1, numBeams },
          {
            decode: vocab.decode,
            startedAt: performance.now() - 2000,
          },
        );
        assert.deepEqual([result.finishReason, result.text, result.steps], ['time', 't', 0], `numBeams ${numBeams}`);
      }
    });

    it('a generation that ends in time is not affected', async () => {
      const { result } = await run(scriptedModel(vocab.size, hello, EOS), { maxNewTokens: 10, eosTokenIds: [EOS], maxTime: 60 });
      assert.deepEqual([result.finishReason, result.text], ['eos', 'Hello, world']);
      await assert.rejects(run(scriptedModel(vocab.size, hello, EOS), { maxNewTokens: 10, maxTime: 0 }), /maxTime must be a number > 0, got 0/);
    });

    it('a JSON answer cut off by the time limit is an error that says so, with the partial text', () => {
      assert.throws(
        () => parseCheckedJsonAnswer('{"person": tr', 'time', 5, { type: 'json' }),
        /cut off by the time limit before its JSON was complete; partial text: \{"person": tr$/,
      );
    });
  });

  it('rejects bad options and bad decoder output with clear errors', async () => {
    const model = scriptedModel(vocab.size, hello, EOS);
    const bad: [GenerationOptions, RegExp][] = [
      [{} as GenerationOptions, /maxNewTokens is required/],
      [{ maxNewTokens: 1.5 }, /maxNewTokens must be an integer/],
      [{ maxNewTokens: 5, topP: 0 }, /topP must be in \(0, 1\]/],
      [{ maxNewTokens: 5, temperature: -1 }, /temperature must be a number >= 0/],
      [{ maxNewTokens: 5, eosTokenIds: [vocab.size] }, /eos token id .* outside the vocabulary/],
      [{ maxNewTokens: 5, stopStrings: [''] }, /stopStrings must be non-empty strings/],
      [{ maxNewTokens: 5, numBeams: 2, doSample: true }, /beam sampling/],
      [{ maxNewTokens: 5, repetitionPenalty: 0 }, /repetitionPenalty must be a number > 0/],
    ];
    for (const [options, message] of bad) await assert.rejects(run(model, options), message);
    const stepper = new TableStepper(vocab.size, () => new Float32Array(7));
    await assert.rejects(generate(new Float32Array(vocab.size), stepper, { maxNewTokens: 3 }, { decode: vocab.decode }), /Float32Array of \d+ logits/);
    const allFiltered = new TableStepper(vocab.size, () => new Float32Array(vocab.size).fill(-Infinity));
    await assert.rejects(generate(allFiltered.initialLogits(), allFiltered, { maxNewTokens: 3 }, { decode: vocab.decode }), /filtered out/);
  });
});

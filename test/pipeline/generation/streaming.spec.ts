import assert from 'node:assert/strict';
import { generate, StopStringMatcher, TextStreamer } from '../../../lib/pipeline/generation';
import { seededRandom } from '../../../lib/pipeline/generation/rng';
import type { GenerationOptions } from '../../../lib/pipeline/types';
import { llamaTinyTokenizer, qwen2TinyTokenizer } from '../../../lib/model/tiny-tokenizer';
import { PromptTokenizer } from '../../../lib/pipeline/tokens';
import { ByteVocab, hashedModel, scriptedModel, TableStepper } from './table-lm';

const vocab = new ByteVocab(['▁Hello', '▁', 'Hi', '▁日本', '▁wor', 'ld']);
const EOS = ByteVocab.EOS;

async function stream(script: number[], options: Partial<GenerationOptions> = {}) {
  const deltas: string[] = [];
  const stepper = new TableStepper(vocab.size, scriptedModel(vocab.size, script, EOS));
  const result = await generate(
    stepper.initialLogits(),
    stepper,
    { maxNewTokens: 100, eosTokenIds: [EOS], ...options },
    {
      decode: vocab.decode,
      onText: (d) => deltas.push(d),
    },
  );
  return { result, deltas };
}

describe('generation: UTF-8-safe streaming', () => {
  it('multi-byte characters split across byte tokens stream whole, never as U+FFFD', async () => {
    const text = 'Café 日本 👍 ok';
    const { result, deltas } = await stream(vocab.bytesOf(text));
    assert.equal(result.text, text);
    assert.equal(deltas.join(''), text);
    assert.ok(
      deltas.every((d) => !d.includes('\uFFFD')),
      JSON.stringify(deltas),
    );
    // Every character arrives as soon as its last byte does: one delta per character.
    assert.deepEqual(deltas, [...text]);
  });

  it('emits nothing for a partial character, then the character once its last byte arrives', () => {
    const deltas: string[] = [];
    const streamer = new TextStreamer(vocab.decode, new StopStringMatcher([]), (d) => deltas.push(d));
    const ids = vocab.bytesOf('日');
    streamer.update(ids.slice(0, 1));
    streamer.update(ids.slice(0, 2));
    assert.deepEqual(deltas, []);
    streamer.update(ids);
    assert.deepEqual(deltas, ['日']);
  });

  it('SentencePiece pieces: the leading space of the text is stripped once, later spaces kept', async () => {
    const script = [vocab.piece('▁Hello'), vocab.piece('▁wor'), vocab.piece('ld'), vocab.piece('▁日本'), ...vocab.bytesOf('!')];
    const { result, deltas } = await stream(script);
    assert.equal(result.text, 'Hello world 日本!');
    assert.deepEqual(deltas, ['Hello', ' wor', 'ld', ' 日本', '!']);
    const loneSpace = await stream([vocab.piece('▁'), vocab.piece('▁Hello'), vocab.piece('Hi')]);
    assert.equal(loneSpace.result.text, ' HelloHi');
    assert.equal(loneSpace.deltas.join(''), loneSpace.result.text);
  });

  it('bytes that never form a character are flushed at the end, so deltas still join to the text', async () => {
    const script = [...vocab.bytesOf('ab'), vocab.byte(0xe6), vocab.byte(0x97)];
    const { result, deltas } = await stream(script);
    assert.equal(result.text, vocab.decode(script));
    assert.ok(result.text.endsWith('\uFFFD'));
    assert.equal(deltas.join(''), result.text);
  });

  it('sampled byte soup (broken UTF-8 included): deltas join to the final text', async () => {
    for (let seed = 1; seed <= 5; seed++) {
      const model = hashedModel(vocab.size, seed, 1);
      const deltas: string[] = [];
      const stepper = new TableStepper(vocab.size, model);
      const result = await generate(
        stepper.initialLogits(),
        stepper,
        { maxNewTokens: 60, doSample: true, seed },
        {
          decode: vocab.decode,
          onText: (d) => deltas.push(d),
        },
      );
      assert.equal(result.text, vocab.decode(result.tokenIds));
      assert.equal(deltas.join(''), result.text);
    }
  });
});

describe('generation: incremental detokenization with the real tokenizers', () => {
  const tokenizers = (
    [
      ['tiny LLaMA (SentencePiece, byte fallback)', llamaTinyTokenizer({ imStartEnd: true }), true],
      ['tiny LLaMA, special tokens kept', llamaTinyTokenizer({ imStartEnd: true }), false],
      ['tiny Qwen2 (byte-level BPE)', qwen2TinyTokenizer(), true],
      ['tiny Qwen2, special tokens kept', qwen2TinyTokenizer(), false],
    ] as const
  ).map(([label, tiny, skipSpecial]) => {
    const pt = new PromptTokenizer(tiny.tokenizerJson, tiny.tokenizerConfig);
    return {
      label,
      vocabSize: tiny.vocabSize,
      decode: (ids: number[]) => pt.decode(ids, { skipSpecial }),
      encode: (text: string) => pt.tokenizer.encode(text, { add_special_tokens: false }).ids,
    };
  });
  const SAMPLE = ' The image shows a cat 🐱 on a red chair — café, 日本語, naïve Ωmega!\n  Two  spaces 👍🏽 and <image> text. ';

  /** Feeds ids one at a time, as the token loop does, recording the length of every list decode receives. */
  function streamIds(decode: (ids: number[]) => string, ids: readonly number[], stops: string[] = []) {
    const windows: number[] = [];
    const deltas: string[] = [];
    const streamer = new TextStreamer(
      (w) => {
        windows.push(w.length);
        return decode(w);
      },
      new StopStringMatcher(stops),
      (d) => deltas.push(d),
    );
    const fed: number[] = [];
    let stopped = false;
    for (const id of ids) {
      fed.push(id);
      if (streamer.update(fed)) {
        stopped = true;
        break;
      }
    }
    const stepWindows = windows.slice();
    return { text: streamer.finish(), deltas, fed, stopped, stepWindows, finishWindows: windows.slice(stepWindows.length) };
  }

  /** Random ids: uniform over the whole vocabulary (byte pieces, specials), mixed with runs of encoded text. */
  function randomIds(tok: (typeof tokenizers)[number], seed: number, length: number): number[] {
    const random = seededRandom(seed);
    const text = tok.encode(SAMPLE);
    const ids: number[] = [];
    while (ids.length < length) {
      if (random() < 0.5) ids.push(Math.floor(random() * tok.vocabSize));
      else {
        const start = Math.floor(random() * text.length);
        ids.push(...text.slice(start, start + 1 + Math.floor(random() * 8)));
      }
    }
    return ids.slice(0, length);
  }

  it('a decode that rewrites earlier text (clean_up_tokenization_spaces): the final text is still the whole decode', () => {
    const tiny = llamaTinyTokenizer();
    const pt = new PromptTokenizer(tiny.tokenizerJson, { ...tiny.tokenizerConfig, clean_up_tokenization_spaces: true });
    const decode = (ids: number[]) => pt.decode(ids, { skipSpecial: true });
    const ids = [
      ...pt.tokenizer.encode('Hello . world', { add_special_tokens: false }).ids,
      ...pt.tokenizer.encode(' ok'.repeat(50), { add_special_tokens: false }).ids,
    ];
    const { text, deltas, stepWindows } = streamIds(decode, ids);
    assert.equal(text, 'Hello. world' + ' ok'.repeat(50));
    // The streamed "Hello " can no longer grow into the text: streaming stops there, as it did with whole decodes,
    // and costs nothing more per step.
    assert.equal(deltas.join(''), 'Hello ');
    assert.ok(stepWindows.length <= 12, `${stepWindows.length} decodes`);
  });

  for (const tok of tokenizers) {
    it(`${tok.label}: deltas and final text equal the decode of the whole list, for random ids and text`, () => {
      const cases = [tok.encode(SAMPLE), tok.encode('日本'.repeat(3) + '🐱'), ...[1, 2, 3, 4, 5, 6].map((seed) => randomIds(tok, seed, 150))];
      for (const ids of cases) {
        const { text, deltas } = streamIds(tok.decode, ids);
        assert.equal(text, tok.decode(ids));
        assert.equal(deltas.join(''), text, JSON.stringify(ids));
      }
    });

    it(`${tok.label}: a stop string stops at the same token as a whole decode finds it, cut before, never streamed`, () => {
      for (let seed = 1; seed <= 6; seed++) {
        const ids = randomIds(tok, 100 + seed, 120);
        const full = tok.decode(ids);
        const random = seededRandom(seed);
        let stop = '';
        while (stop.length === 0 || stop.includes('\uFFFD')) {
          const at = Math.floor(random() * (full.length - 4));
          stop = full.slice(at, at + 2 + Math.floor(random() * 3));
        }
        let expectedLength = 1;
        while (!tok.decode(ids.slice(0, expectedLength)).includes(stop)) expectedLength++;
        const { text, deltas, fed, stopped } = streamIds(tok.decode, ids, [stop, 'never-in-the-text']);
        assert.ok(stopped);
        assert.equal(fed.length, expectedLength, `stop ${JSON.stringify(stop)}`);
        const before = tok.decode(ids.slice(0, expectedLength));
        assert.equal(text, before.slice(0, before.indexOf(stop)));
        assert.equal(deltas.join(''), text);
      }
    });

    it(`${tok.label}: each step decodes a window of a few ids, however long the answer`, async () => {
      const text = tok.encode(SAMPLE.repeat(40)).slice(0, 500);
      const random = randomIds(tok, 7, 500);
      for (const ids of [text, random]) {
        assert.equal(ids.length, 500);
        const { stepWindows, finishWindows } = streamIds(tok.decode, ids);
        assert.ok(Math.max(...stepWindows) <= 16, `largest window ${Math.max(...stepWindows)}`);
        assert.ok(stepWindows.length <= 2 * ids.length, `${stepWindows.length} decodes for ${ids.length} steps`);
        assert.deepEqual(finishWindows, [500], 'the final text is one decode of the whole list');
      }
      // Through the token loop: a 500-token answer, the decode hook counted.
      const windows: number[] = [];
      const stepper = new TableStepper(tok.vocabSize, scriptedModel(tok.vocabSize, text, 0));
      const result = await generate(
        stepper.initialLogits(),
        stepper,
        { maxNewTokens: 500 },
        {
          decode: (ids) => {
            windows.push(ids.length);
            return tok.decode(ids);
          },
        },
      );
      assert.deepEqual(result.tokenIds, text);
      assert.equal(result.text, tok.decode(text));
      assert.equal(windows.pop(), 500);
      assert.ok(Math.max(...windows) <= 16, `largest window ${Math.max(...windows)}`);
    });
  }
});

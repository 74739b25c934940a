import assert from 'node:assert/strict';
import { generate, StopStringMatcher, TextStreamer } from '../../../lib/pipeline/generation';
import type { GenerationOptions } from '../../../lib/pipeline/types';
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

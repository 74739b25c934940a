import { strict as assert } from 'assert';
import { Tokenizer } from '@huggingface/tokenizers';
import { llamaTinyTokenizer, qwen2TinyTokenizer } from '../../lib/model/tiny-tokenizer';

const ROUND_TRIP = [
  'Describe the image in detail.',
  'USER: What are these? ASSISTANT:',
  'Grüße aus Köln, naïve café',
  'Привет, мир — 日本語のテキスト',
  'emoji 😀🦙 and a ZWJ family 👨‍👩‍👧',
  'tabs\tand\nnew lines  and  double spaces',
];

describe('tiny tokenizers', () => {
  describe('LLaMA (llava-hf shape)', () => {
    const tiny = llamaTinyTokenizer();
    const tok = new Tokenizer(tiny.tokenizerJson, tiny.tokenizerConfig);

    it('has the LLaMA id layout: specials 0–2, byte pieces 3–258, added tokens last', () => {
      assert.deepEqual([tok.token_to_id('<unk>'), tok.token_to_id('<s>'), tok.token_to_id('</s>')], [0, 1, 2]);
      assert.equal(tok.token_to_id('<0x00>'), 3);
      assert.equal(tok.token_to_id('<0x0A>'), 13);
      assert.equal(tok.token_to_id('<0xFF>'), 258);
      assert.equal(tiny.imageTokenId, tiny.vocabSize - 2);
      assert.equal(tiny.padTokenId, tiny.vocabSize - 1);
      assert.equal(tok.token_to_id('<image>'), tiny.imageTokenId);
      assert.equal(tok.id_to_token(tiny.vocabSize - 1), '<pad>');
      assert.ok(tiny.vocabSize > 500 && tiny.vocabSize < 1000, `vocab ${tiny.vocabSize}`);
    });

    it('learned merges make prompt words a handful of ids', () => {
      const ids = tok.encode('USER: <image>\nDescribe the image in detail. ASSISTANT:').ids;
      assert.ok(ids.length <= 12, `${ids.length} ids: ${ids}`);
      assert.equal(ids[0], 1, 'BOS from the post-processor');
      assert.ok(ids.includes(tiny.imageTokenId), '<image> is one added token');
      assert.ok(ids.includes(13), '"\\n" is the byte piece <0x0A> = 13');
    });

    it('round-trips ASCII, accented, Cyrillic, CJK and emoji text (byte fallback)', () => {
      for (const text of ROUND_TRIP) {
        const enc = tok.encode(text);
        assert.equal(tok.decode(enc.ids, { skip_special_tokens: true }), text);
      }
      const emoji = tok.encode('😀', { add_special_tokens: false }).tokens;
      assert.deepEqual(emoji, ['▁', '<0xF0>', '<0x9F>', '<0x98>', '<0x80>']);
    });

    it('adds <im_start>/<im_end> for v1 and keeps them single tokens', () => {
      const v1 = llamaTinyTokenizer({ imStartEnd: true });
      const t = new Tokenizer(v1.tokenizerJson, v1.tokenizerConfig);
      const ids = t.encode('User: <im_start><image><im_end>\nx', { add_special_tokens: false }).ids;
      assert.deepEqual(ids.slice(-5, -2), [v1.imStartTokenId, v1.imageTokenId, v1.imEndTokenId]);
      assert.equal(v1.vocabSize, tiny.vocabSize + 2);
    });

    it('tokenizer_config says add_bos_token, non-legacy, and carries the LLaVA-1.5 chat template', () => {
      const c = tiny.tokenizerConfig;
      assert.equal(c.add_bos_token, true);
      assert.equal(c.legacy, false);
      assert.match(String(c.chat_template), /ASSISTANT:/);
    });
  });

  describe('Qwen2 (byte-level)', () => {
    const tiny = qwen2TinyTokenizer();
    const tok = new Tokenizer(tiny.tokenizerJson, tiny.tokenizerConfig);

    it('keeps ChatML specials and <image> single tokens, in Qwen order, with no BOS', () => {
      const ids = tok.encode('<|im_start|>user\n<image>\nHi<|im_end|>').ids;
      assert.equal(ids[0], tok.token_to_id('<|im_start|>'));
      assert.ok(ids.includes(tiny.imageTokenId));
      assert.equal(ids[ids.length - 1], tiny.eosTokenId);
      assert.equal(tiny.bosTokenId, null);
      assert.deepEqual(
        ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<image>'].map((t) => tok.token_to_id(t)),
        [tiny.padTokenId, tiny.padTokenId + 1, tiny.padTokenId + 2, tiny.padTokenId + 3],
      );
    });

    it('round-trips text exactly', () => {
      for (const text of ROUND_TRIP) assert.equal(tok.decode(tok.encode(text).ids), text);
    });
  });
});

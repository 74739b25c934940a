// JSON-schema constrained decoding: the schema compiler's errors, the token mask against a brute-force oracle, no
// valid document ever blocked on real vocabularies, and random-weight models that always answer valid JSON.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { generate } from '../../../lib/pipeline/generation';
import { JsonSchemaConstraint } from '../../../lib/pipeline/generation/json-constraint';
import { advanceBytes, initialState, isComplete } from '../../../lib/pipeline/generation/json-grammar';
import { AnswerCutOffError, compileJsonFormat, compileJsonSchema, parseJsonAnswer, SchemaError } from '../../../lib/pipeline/generation/json-schema';
import { tokenBytes, TokenVocabulary } from '../../../lib/pipeline/generation/json-vocabulary';
import { seededRandom } from '../../../lib/pipeline/generation/rng';
import { llamaTinyTokenizer, qwen2TinyTokenizer, TinyTokenizer } from '../../../lib/model/tiny-tokenizer';
import { PromptTokenizer } from '../../../lib/pipeline/tokens';
import { syntheticByteLevelVocabulary } from '../../../bench/synthetic-vocabulary';
import { hashedModel, TableStepper } from './table-lm';
import { allDocuments, indexByBytes, randomTokenization, randomValue, validator } from './json-support';

const encoder = new TextEncoder();

const DOORBELL = {
  type: 'object',
  properties: { person: { type: 'boolean' }, count: { type: 'integer', minimum: 0, maximum: 20 }, description: { type: 'string', maxLength: 30 } },
  required: ['person', 'count', 'description'],
  additionalProperties: false,
};
const DETECTIONS = {
  type: 'object',
  properties: {
    objects: {
      type: 'array',
      minItems: 1,
      maxItems: 3,
      items: {
        type: 'object',
        properties: {
          label: { enum: ['car', 'person', 'dog', 'parcel'] },
          score: { type: 'number', minimum: 0, maximum: 1 },
          colour: { type: ['string', 'null'], maxLength: 8 },
        },
        required: ['label', 'score'],
      },
    },
    night: { type: 'boolean' },
  },
  required: ['objects'],
};
const TREE = {
  $defs: {
    node: {
      type: 'object',
      properties: { name: { type: 'string', maxLength: 5 }, children: { type: 'array', maxItems: 2, items: { $ref: '#/$defs/node' } } },
      required: ['name'],
    },
  },
  anyOf: [{ $ref: '#/$defs/node' }, { type: 'null' }],
};
const MIXED = {
  type: 'object',
  properties: {
    id: {
      anyOf: [
        { type: 'integer', minimum: -50, maximum: 50 },
        { type: 'string', minLength: 2, maxLength: 4 },
      ],
    },
    ratio: { type: 'number', exclusiveMinimum: -2.5, maximum: 7 },
    big: { type: 'number' },
    code: { type: 'string', pattern: '^[A-Z]{2}-\\d{2,3}$' },
    ok: { const: true },
    tags: { type: 'array', items: { type: 'string', maxLength: 3 }, maxItems: 3 },
    extra: {},
  },
  required: ['id', 'ok'],
  additionalProperties: false,
};

function tinyVocabulary(tok: TinyTokenizer): { vocab: TokenVocabulary; tokenizer: PromptTokenizer } {
  const tokenizer = new PromptTokenizer(tok.tokenizerJson, tok.tokenizerConfig);
  return { vocab: new TokenVocabulary(tokenBytes(tokenizer.tokenizer), tok.vocabSize), tokenizer };
}

function accepts(schema: unknown, text: string): { prefix: boolean; complete: boolean } {
  const state = advanceBytes(initialState(compileJsonSchema(schema).root), encoder.encode(text));
  return { prefix: state.length > 0, complete: isComplete(state) };
}

describe('JSON schema compiler', () => {
  it('names an unsupported keyword and where it is', () => {
    assert.throws(() => compileJsonSchema({ type: 'string', format: 'date-time' }), /#: unsupported keyword "format"/);
    assert.throws(() => compileJsonSchema({ oneOf: [{ type: 'string' }] }), /unsupported keyword "oneOf"/);
    assert.throws(() => compileJsonSchema({ type: 'object', properties: { a: { not: { type: 'null' } } } }), /#\/properties\/a: unsupported keyword "not"/);
    assert.throws(() => compileJsonSchema({ type: 'array', items: { type: 'integer', multipleOf: 2 } }), /#\/items: unsupported keyword "multipleOf"/);
    assert.throws(() => compileJsonSchema({ type: 'string', pattern: '^(?=a)' }), /lookaround/);
    assert.throws(() => compileJsonSchema({ type: 'string', pattern: '(a)\\1' }), /backreferences/);
  });

  it('explains an invalid schema', () => {
    assert.throws(() => compileJsonSchema('{"type": "object",'), /not valid JSON/);
    assert.throws(() => compileJsonSchema({ type: 'strin' }), /"strin" is not a JSON Schema type/);
    assert.throws(() => compileJsonSchema({ type: 'object', properties: { a: {} }, required: 'a' }), /required must be an array of strings/);
    assert.throws(() => compileJsonSchema({ type: 'object', properties: { a: {} }, required: ['b'] }), /"b" must be listed in properties/);
    assert.throws(() => compileJsonSchema({ type: 'array', minItems: -1 }), /minItems must be a non-negative integer/);
    assert.throws(() => compileJsonSchema({ type: 'string', minLength: 5, maxLength: 2 }), /minLength 5 is above maxLength 2/);
    assert.throws(() => compileJsonSchema({ type: 'integer', minimum: 1.2, maximum: 1.8 }), /no integer lies between the bounds/);
    assert.throws(() => compileJsonSchema({ enum: [] }), /enum must be a non-empty array/);
    assert.throws(() => compileJsonSchema({ $ref: '#/$defs/missing' }), /points to nothing/);
    assert.throws(() => compileJsonSchema(42), SchemaError);
    assert.throws(() => compileJsonSchema(false), /accepts no value/);
    assert.throws(() => compileJsonFormat({ type: 'json_schema', schema: undefined }), /needs a schema/);
  });

  it('compiles a schema once (cached by its canonical form) and exposes the canonical schema', () => {
    const a = compileJsonSchema({ type: 'object', properties: { x: { type: 'integer' } }, required: ['x'] });
    const b = compileJsonSchema(JSON.stringify({ required: ['x'], properties: { x: { type: 'integer' } }, type: 'object' }));
    assert.equal(a, b);
    assert.deepEqual(compileJsonFormat({ type: 'json' }).schema, { type: 'object' });
    assert.deepEqual(compileJsonFormat({ type: 'json_schema', schema: '{"type":"boolean","title":"t"}' }).schema, { title: 't', type: 'boolean' });
  });

  it('an enum of one value admits exactly that value', () => {
    const schema = { enum: [{ a: [1, 'x'] }] };
    assert.deepEqual(accepts(schema, '{"a":[1,"x"]}'), { prefix: true, complete: true });
    assert.deepEqual(accepts(schema, '{"a":[1,"x"'), { prefix: true, complete: false });
    assert.equal(accepts(schema, '{"a":[1,"y"').prefix, false);
    assert.equal(accepts(schema, '{"a":[1,"x"]} ').prefix, false);
    assert.deepEqual(accepts({ const: 'only' }, '"only"'), { prefix: true, complete: true });
  });

  it('the empty schema admits any JSON value; {type: object} any object', () => {
    const random = seededRandom(3);
    for (let i = 0; i < 200; i++) {
      const text = JSON.stringify(randomValue({}, random));
      assert.deepEqual(accepts({}, text), { prefix: true, complete: true }, text);
    }
    assert.equal(accepts({ type: 'object' }, '[1]').prefix, false);
    assert.deepEqual(accepts({ type: 'object' }, '{"a":{"b":[null,true,"x",-1.5e-3]}}'), { prefix: true, complete: true });
  });

  it('follows strings, numbers and patterns byte by byte', () => {
    assert.equal(accepts(MIXED, '{"id":51').prefix, false);
    assert.equal(accepts(MIXED, '{"id":-5').prefix, true);
    assert.equal(accepts(MIXED, '{"id":-50').prefix, true);
    assert.equal(accepts(MIXED, '{"id":-0').prefix, false, 'an integer has no "-0"');
    assert.equal(accepts(MIXED, '{"id":"a"').prefix, false, 'minLength 2');
    assert.equal(accepts(MIXED, '{"id":"abcde').prefix, false, 'maxLength 4');
    assert.equal(accepts(MIXED, '{"id":1,"ok":true,"ratio":-2.5').prefix, false, 'exclusiveMinimum');
    assert.equal(accepts(MIXED, '{"id":1,"ok":true,"ratio":-2.49').prefix, true);
    assert.equal(accepts(MIXED, '{"id":1,"ok":true,"ratio":7.01').prefix, false);
    assert.equal(accepts(MIXED, '{"id":1,"ok":true,"code":"AB-1"').prefix, false, 'pattern needs 2-3 digits');
    assert.deepEqual(accepts(MIXED, '{"id":1,"ok":true,"code":"AB-12"}'), { prefix: true, complete: true });
    assert.equal(accepts(MIXED, '{"id":1,"ok":true,"code":"Ab').prefix, false);
    assert.equal(accepts(MIXED, '{"id":1,"ok":true,"id":2').prefix, false, 'no key twice');
    assert.equal(accepts(MIXED, '{"id":1,"nope"').prefix, false, 'additionalProperties false');
    assert.equal(accepts(MIXED, '{"id":1}').prefix, false, 'required ok');
    assert.equal(accepts(MIXED, '{"id":1, "ok":true}').prefix, false, 'compact: no whitespace');
    assert.deepEqual(accepts(MIXED, '{"ok":true,"id":"\\u00e9\\n","tags":["中文","\\"ab"]}'), { prefix: true, complete: true });
    assert.equal(accepts(MIXED, '{"ok":true,"id":"\\q').prefix, false, 'invalid escape');
    assert.equal(advanceBytes(initialState(compileJsonSchema({ type: 'string' }).root), Uint8Array.of(0x22, 0xff)).length, 0);
    assert.equal(advanceBytes(initialState(compileJsonSchema({ type: 'string' }).root), Uint8Array.of(0x22, 0xc3)).length, 1);
    assert.equal(advanceBytes(initialState(compileJsonSchema({ type: 'string' }).root), Uint8Array.of(0x22, 0xc3, 0x28)).length, 0);
  });
});

describe('JSON mask against a brute-force oracle (tiny vocabulary)', () => {
  // A vocabulary whose pieces cross structural characters, with a two-byte character split into its bytes.
  const pieces = [
    '{',
    '}',
    '{"',
    '"',
    '"}',
    '":',
    ':',
    ',',
    ',"',
    '":"',
    '",',
    'ok',
    'o',
    'k',
    'n',
    's',
    'x',
    'true',
    't',
    'r',
    'u',
    'e',
    'tr',
    'ue',
    'false',
    'f',
    'a',
    'l',
    'fa',
    'lse',
    'null',
    'nu',
    'll',
    '-',
    '0',
    '1',
    '2',
    '12',
    '10',
    '1,',
    'ab',
    ' ',
    ' {',
    '\n',
    '[',
    ']',
    '[]',
    '],',
    'é',
  ];
  const tokens: Array<Uint8Array | null> = [null, ...pieces.map((p) => encoder.encode(p)), Uint8Array.of(0xc3), Uint8Array.of(0xa9)];
  const EOS = 0;
  const vocab = new TokenVocabulary(tokens, tokens.length + 3);
  // Characters a string can hold with this vocabulary (no quote, no backslash, no control character).
  const alphabet = [...new Set(pieces.join('').replace(/["\n]/g, ''))];

  const cases: Array<[string, Record<string, unknown>]> = [
    [
      'an object with optional keys, a bounded integer and a short string',
      {
        type: 'object',
        properties: { ok: { type: 'boolean' }, n: { type: 'integer', minimum: -1, maximum: 12 }, s: { type: 'string', maxLength: 1 } },
        required: ['ok'],
        additionalProperties: false,
      },
    ],
    [
      'nested arrays with anyOf items and number enums',
      {
        type: 'array',
        maxItems: 3,
        items: { anyOf: [{ type: 'null' }, { enum: [1, 10, 12] }, { type: 'array', maxItems: 1, items: { type: 'boolean' } }] },
      },
    ],
  ];
  for (const [name, schema] of cases) {
    it(`allowed tokens equal the oracle's at every step: ${name}`, () => {
      const documents = allDocuments(schema, alphabet);
      const check = validator(schema);
      for (const d of documents) check(JSON.parse(d)); // the enumeration is right
      // Byte strings as latin1 keys: the prefixes of the UTF-8 documents include ends inside a character.
      const key = (bytes: ArrayLike<number>): string => Buffer.from(Uint8Array.from(bytes)).toString('latin1');
      const complete = new Set(documents.flatMap((d) => [d, ' ' + d, '\n' + d]).map((d) => key(encoder.encode(d))));
      const prefixes = new Set<string>();
      for (const d of complete) for (let i = 0; i <= d.length; i++) prefixes.add(d.slice(0, i));
      const constraint = new JsonSchemaConstraint(compileJsonSchema(schema), vocab, [EOS]);
      const random = seededRandom(11);
      let steps = 0;
      for (let walk = 0; walk < 150; walk++) {
        const ids: number[] = [];
        let text = '';
        for (;;) {
          const expected = new Set<number>();
          tokens.forEach((bytes, id) => {
            if (bytes && prefixes.has(text + key(bytes))) expected.add(id);
          });
          if (complete.has(text)) expected.add(EOS);
          const allowed = constraint.allowedTokens(constraint.stateAfter(ids));
          const got = new Set(Array.from(allowed.keys()).filter((id) => allowed[id]));
          assert.deepEqual(
            [...got].sort((a, b) => a - b),
            [...expected].sort((a, b) => a - b),
            `after ${JSON.stringify(vocab.decode(ids))}`,
          );
          steps++;
          if (got.size === 0) assert.fail(`dead end after ${JSON.stringify(vocab.decode(ids))}`);
          const next = [...got][Math.floor(random() * got.size)];
          if (next === EOS) break;
          ids.push(next);
          text += key(tokens[next]!);
        }
      }
      assert.ok(steps > 500);
    });
  }
});

describe('JSON mask never blocks a valid document', () => {
  const schemas: Array<[string, unknown]> = [
    ['doorbell', DOORBELL],
    ['detections', DETECTIONS],
    ['recursive tree', TREE],
    ['mixed', { ...MIXED, properties: { ...MIXED.properties, code: { type: 'string', maxLength: 6 } } }],
    ['any JSON', {}],
  ];

  function checkEveryPrefix(constraint: JsonSchemaConstraint, ids: number[], eos: number, doc: string): void {
    for (let i = 0; i <= ids.length; i++) {
      const allowed = constraint.allowedTokens(constraint.stateAfter(ids.slice(0, i)));
      const next = i < ids.length ? ids[i] : eos;
      if (!allowed[next]) assert.fail(`token ${next} blocked after ${i} of ${ids.length} tokens of ${doc}`);
    }
  }

  for (const [name, tok] of [
    ['LLaMA (SentencePiece, byte fallback)', llamaTinyTokenizer()],
    ['Qwen2 (byte-level BPE)', qwen2TinyTokenizer()],
  ] as const) {
    it(`${name} tiny tokenizer: the encoder's tokens of random documents`, () => {
      const { vocab, tokenizer } = tinyVocabulary(tok);
      const random = seededRandom(5);
      for (const [label, schema] of schemas) {
        const constraint = new JsonSchemaConstraint(compileJsonSchema(schema), vocab, [tok.eosTokenId]);
        for (let k = 0; k < 40; k++) {
          const doc = JSON.stringify(randomValue(schema, random));
          const ids = tokenizer.encodeSegments([{ text: doc, user: true }], false);
          assert.equal(vocab.decode(ids).trimStart(), doc, 'token bytes spell the document');
          checkEveryPrefix(constraint, ids, tok.eosTokenId, `${label}: ${doc}`);
        }
      }
    });
  }

  it('a generated 152k byte-level vocabulary: random tokenizations of random documents', function () {
    this.timeout(120000);
    const synthetic = syntheticByteLevelVocabulary();
    const vocab = new TokenVocabulary(synthetic.tokens, synthetic.logitsWidth);
    const { byBytes, maxLength } = indexByBytes(synthetic.tokens);
    const random = seededRandom(9);
    for (const [label, schema] of schemas) {
      const constraint = new JsonSchemaConstraint(compileJsonSchema(schema), vocab, [synthetic.eosTokenId]);
      for (let k = 0; k < 6; k++) {
        const doc = JSON.stringify(randomValue(schema, random));
        const ids = randomTokenization(encoder.encode(doc), byBytes, maxLength, random);
        checkEveryPrefix(constraint, ids, synthetic.eosTokenId, `${label}: ${doc}`);
      }
    }
  });

  const llama2 = path.resolve(__dirname, '..', '..', '..', '..', '..', 'shared', 'reference', 'llama2-tokenizer');
  it('the LLaMA-2 tokenizer (32k SentencePiece; when LLAMA2_TOKENIZER_DIR or the shared reference folder is there)', function () {
    const dir = process.env.LLAMA2_TOKENIZER_DIR ?? llama2;
    if (!fs.existsSync(path.join(dir, 'tokenizer.json'))) this.skip();
    this.timeout(120000);
    const tokenizer = PromptTokenizer.fromFolder(dir);
    const vocab = new TokenVocabulary(tokenBytes(tokenizer.tokenizer), 32000);
    const random = seededRandom(13);
    for (const [label, schema] of schemas) {
      const constraint = new JsonSchemaConstraint(compileJsonSchema(schema), vocab, [2]);
      for (let k = 0; k < 15; k++) {
        const doc = JSON.stringify(randomValue(schema, random));
        const ids = tokenizer.encodeSegments([{ text: doc, user: true }], false);
        assert.equal(vocab.decode(ids).trimStart(), doc);
        checkEveryPrefix(constraint, ids, 2, `${label}: ${doc}`);
      }
    }
  });
});

describe('constrained generation with random-weight models', () => {
  // A random model writes a string without maxLength until the token limit: these schemas bound every string.
  const MIXED_BOUNDED = {
    ...MIXED,
    properties: { ...MIXED.properties, extra: { type: 'array', maxItems: 2, items: { anyOf: [{ type: 'integer' }, { type: 'null' }] } } },
  };
  const bounded: Array<[string, unknown]> = [
    ['doorbell', DOORBELL],
    ['detections', DETECTIONS],
    ['mixed', MIXED_BOUNDED],
  ];

  async function run(tok: TinyTokenizer, vocab: TokenVocabulary, tokenizer: PromptTokenizer, schema: unknown, seed: number, options: Record<string, unknown>) {
    const constraint = new JsonSchemaConstraint(compileJsonSchema(schema), vocab, [tok.eosTokenId]);
    const stepper = new TableStepper(tok.vocabSize, hashedModel(tok.vocabSize, seed, 6));
    const result = await generate(
      stepper.initialLogits(),
      stepper,
      { maxNewTokens: 400, eosTokenIds: [tok.eosTokenId], ...options },
      {
        decode: (ids) => tokenizer.decode(ids, { skipSpecial: true }),
        constraint,
      },
    );
    return { result, text: vocab.decode(result.tokenIds), complete: constraint.complete(result.tokenIds), constraint };
  }

  for (const [name, tok] of [
    ['Qwen2', qwen2TinyTokenizer()],
    ['LLaMA', llamaTinyTokenizer()],
  ] as const) {
    it(`${name} vocabulary: 3 schemas × 100 sampling seeds, every answer parses and validates (ajv)`, async function () {
      this.timeout(120000);
      const { vocab, tokenizer } = tinyVocabulary(tok);
      for (const [label, schema] of bounded) {
        const check = validator(schema);
        for (let seed = 0; seed < 100; seed++) {
          const { result, text, complete } = await run(tok, vocab, tokenizer, schema, seed, { doSample: true, seed, temperature: 1.5 });
          assert.equal(result.finishReason, 'eos', `${label} seed ${seed}: ${text}`);
          assert.ok(complete);
          check(JSON.parse(text));
        }
      }
    });

    it(`${name} vocabulary: greedy and beam search answers validate; each beam keeps its own parse state`, async function () {
      this.timeout(60000);
      const { vocab, tokenizer } = tinyVocabulary(tok);
      for (const [label, schema] of bounded) {
        const check = validator(schema);
        for (let seed = 0; seed < 5; seed++) {
          for (const options of [{}, { numBeams: 3 }, { numBeams: 2, repetitionPenalty: 1.3 }]) {
            const { result, text } = await run(tok, vocab, tokenizer, schema, seed, options);
            assert.equal(result.finishReason, 'eos', `${label} ${JSON.stringify(options)}: ${text}`);
            check(JSON.parse(text));
          }
        }
      }
    });
  }

  it('unbounded schemas (any object, a recursive tree): a finished answer validates, the others are cut off, never invalid', async function () {
    this.timeout(60000);
    const tok = qwen2TinyTokenizer();
    const { vocab, tokenizer } = tinyVocabulary(tok);
    for (const schema of [{ type: 'object' }, TREE]) {
      const check = validator(schema);
      let finished = 0;
      for (let seed = 0; seed < 20; seed++) {
        const { result, text, complete } = await run(tok, vocab, tokenizer, schema, seed, { doSample: true, seed, maxNewTokens: 60 });
        if (result.finishReason === 'eos') {
          finished++;
          check(parseJsonAnswer(text, complete, result.finishReason, result.tokenIds.length));
        } else {
          assert.throws(() => parseJsonAnswer(text, complete, result.finishReason, result.tokenIds.length), AnswerCutOffError);
        }
      }
      assert.ok(finished > 0, `some answers finish for ${JSON.stringify(schema)}`);
    }
  });

  it('without the constraint the same models do not write valid JSON', async () => {
    const tok = qwen2TinyTokenizer();
    const { tokenizer } = tinyVocabulary(tok);
    const check = validator(DOORBELL);
    let valid = 0;
    for (let seed = 0; seed < 30; seed++) {
      const stepper = new TableStepper(tok.vocabSize, hashedModel(tok.vocabSize, seed, 6));
      const r = await generate(
        stepper.initialLogits(),
        stepper,
        { maxNewTokens: 60, eosTokenIds: [tok.eosTokenId], doSample: true, seed },
        { decode: (ids) => tokenizer.decode(ids, { skipSpecial: true }) },
      );
      try {
        check(JSON.parse(r.text));
        valid++;
      } catch {
        // expected
      }
    }
    assert.equal(valid, 0);
  });

  it('a token limit before the document closes is an error with the partial text, never a value', async () => {
    const tok = qwen2TinyTokenizer();
    const { vocab, tokenizer } = tinyVocabulary(tok);
    const { result, text, complete } = await run(tok, vocab, tokenizer, DOORBELL, 1, { maxNewTokens: 6 });
    assert.equal(result.finishReason, 'length');
    assert.equal(complete, false);
    assert.throws(
      () => parseJsonAnswer(text, complete, result.finishReason, result.tokenIds.length),
      (err: unknown) => {
        assert.ok(err instanceof AnswerCutOffError);
        assert.match(err.message, /cut off by the token limit \(6 tokens\)/);
        assert.equal(err.partialText, text);
        assert.ok(text.trimStart().startsWith('{'));
        return true;
      },
    );
  });

  it('a JSON format needs an end-of-sequence token', async () => {
    const tok = qwen2TinyTokenizer();
    const { vocab } = tinyVocabulary(tok);
    assert.throws(() => new JsonSchemaConstraint(compileJsonSchema(DOORBELL), vocab, []), /end-of-sequence/);
    const stepper = new TableStepper(tok.vocabSize, hashedModel(tok.vocabSize, 1));
    await assert.rejects(
      generate(
        stepper.initialLogits(),
        stepper,
        { maxNewTokens: 5, eosTokenIds: [tok.eosTokenId], ignoreEos: true, format: { type: 'json' } },
        { decode: () => '' },
      ),
      /JSON format needs the end-of-sequence token/,
    );
  });
});

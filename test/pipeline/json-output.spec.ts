// JSON answers through the whole pipeline: tiny random-weight models (LLaMA and Qwen2 tokenizers), the mask built in
// the inference worker, the answer parsed on the main thread, cut-off and schema errors on the request.
import { strict as assert } from 'assert';
import sharp from 'sharp';
import { getRuntime } from '../../lib/runtime';
import { LlavaModel } from '../../lib/pipeline/llava-model';
import { AnswerCutOffError, SchemaError } from '../../lib/pipeline/generation/json-schema';
import { tinyModel } from '../support/tiny-model';
import { validator } from './generation/json-support';

const DOORBELL = {
  type: 'object',
  properties: { person: { type: 'boolean' }, count: { type: 'integer', minimum: 0 }, description: { type: 'string', maxLength: 24 } },
  required: ['person', 'count', 'description'],
  additionalProperties: false,
};

describe('JSON answers from LlavaModel (tiny random-weight models)', function () {
  this.timeout(120000);
  let image: Buffer;
  before(async () => {
    image = await sharp({ create: { width: 32, height: 24, channels: 3, background: { r: 200, g: 40, b: 90 } } })
      .png()
      .toBuffer();
  });
  after(() => getRuntime().dispose());

  for (const arch of ['tiny', 'tiny-qwen2'] as const) {
    it(`${arch}: greedy, sampled and beam answers are parsed values that match the schema`, async () => {
      const model = await LlavaModel.load(tinyModel({ arch, decoder: 'optimized' }).dir);
      const check = validator(DOORBELL);
      try {
        const runs = [{}, { doSample: true, seed: 1 }, { doSample: true, seed: 2, temperature: 1.4 }, { numBeams: 3 }];
        for (const options of runs) {
          let streamed = '';
          const result = await model.describe({
            image,
            question: 'Is someone at the door?',
            options: { maxNewTokens: 200, format: { type: 'json_schema', schema: DOORBELL }, ...options },
            onText: (d) => (streamed += d),
          });
          assert.equal(result.finishReason, 'eos', JSON.stringify(options));
          check(result.json);
          assert.deepEqual(result.json, JSON.parse(result.text));
          assert.ok(result.timings.json_mask_ms_per_token! > 0);
          if (!options.numBeams) assert.equal(streamed.trimStart(), result.text);
        }
        // format json: any object (a random model may write one string until the limit: then it is cut off).
        const any = await model
          .describe({ image, question: 'x', options: { maxNewTokens: 60, format: { type: 'json' }, doSample: true, seed: 5 } })
          .catch((err: unknown) => {
            assert.ok(err instanceof AnswerCutOffError && err.partialText.startsWith('{'));
            return null;
          });
        if (any) assert.ok(any.json !== null && typeof any.json === 'object' && !Array.isArray(any.json));
      } finally {
        model.close();
      }
    });
  }

  it('a token limit before the document closes rejects with the partial text', async () => {
    const model = await LlavaModel.load(tinyModel({ arch: 'tiny', decoder: 'optimized' }).dir);
    try {
      await assert.rejects(
        model.describe({ image, question: 'x', options: { maxNewTokens: 4, format: { type: 'json_schema', schema: DOORBELL } } }),
        (err: unknown) => {
          assert.ok(err instanceof AnswerCutOffError);
          assert.match(err.message, /cut off by the token limit \(4 tokens\)/);
          assert.ok(err.partialText.startsWith('{'), err.partialText);
          return true;
        },
      );
    } finally {
      model.close();
    }
  });

  it('an unsupported keyword or an invalid schema rejects the request, naming it', async () => {
    const model = await LlavaModel.load(tinyModel({ arch: 'tiny', decoder: 'optimized' }).dir);
    try {
      const features = await model.project(await model.encodeImage(await model.preprocess(image)));
      await assert.rejects(
        model.generate({
          prompt: model.prompt({ image: true, question: 'x' }),
          image: features,
          options: { maxNewTokens: 5, format: { type: 'json_schema', schema: { type: 'string', format: 'email' } } },
        }),
        (err: unknown) => err instanceof SchemaError && /unsupported keyword "format"/.test(err.message),
      );
      await assert.rejects(
        model.describe({ image, question: 'x', options: { maxNewTokens: 5, format: { type: 'json_schema', schema: '{"type": ' } } }),
        /not valid JSON/,
      );
    } finally {
      model.close();
    }
  });
});

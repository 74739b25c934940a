// `npm run bench:json`: the cost of JSON-schema constrained decoding per token, next to a decode step of the 0.5b
// model. Masks are computed over a generated 152k byte-level vocabulary (Qwen2's size) while a random-logits
// stepper samples constrained answers for a few schemas; the decode step is the 0.5b int4 decoder's (the bench's
// cached folder, built on first use, or --model DIR). Decode steps are timed before and after the masks, side by
// side, so the share is a ratio under the same load.
//   node dist/bench/json-mask.js [--model DIR] [--answers N]
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import { generate } from '../lib/pipeline/generation';
import { JsonSchemaConstraint } from '../lib/pipeline/generation/json-constraint';
import { compileJsonSchema } from '../lib/pipeline/generation/json-schema';
import { TokenVocabulary } from '../lib/pipeline/generation/json-vocabulary';
import { seededRandom } from '../lib/pipeline/generation/rng';
import type { DecoderStepper } from '../lib/pipeline/generation/types';
import { LlavaModel } from '../lib/pipeline/llava-model';
import { getRuntime } from '../lib/runtime';
import { ensureModel, modelSpecs } from './models';
import { syntheticByteLevelVocabulary } from './synthetic-vocabulary';

const SCHEMAS: Record<string, unknown> = {
  doorbell: {
    type: 'object',
    properties: { person: { type: 'boolean' }, count: { type: 'integer', minimum: 0, maximum: 20 }, description: { type: 'string', maxLength: 120 } },
    required: ['person', 'count', 'description'],
    additionalProperties: false,
  },
  detections: {
    type: 'object',
    properties: {
      objects: {
        type: 'array',
        minItems: 1,
        maxItems: 4,
        items: {
          type: 'object',
          properties: {
            label: { enum: ['car', 'person', 'dog', 'parcel'] },
            score: { type: 'number', minimum: 0, maximum: 1 },
            colour: { type: 'string', maxLength: 12 },
          },
          required: ['label', 'score'],
        },
      },
    },
    required: ['objects'],
  },
  'any object (format json)': { type: 'object' },
};

/** Random logits per step (uniform × spread), seeded: a stand-in for the model that costs almost nothing. */
class RandomStepper implements DecoderStepper {
  private readonly random;

  constructor(
    readonly vocabSize: number,
    seed: number,
  ) {
    this.random = seededRandom(seed);
  }

  row(): Float32Array {
    const row = new Float32Array(this.vocabSize);
    for (let i = 0; i < row.length; i++) row[i] = this.random() * 6;
    return row;
  }

  async step(tokens: number[]): Promise<Float32Array[]> {
    return tokens.map(() => this.row());
  }
}

function stats(values: number[]): { mean: number; p50: number; p95: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { mean: values.reduce((s, v) => s + v, 0) / values.length, p50: sorted[Math.floor(sorted.length / 2)], p95: sorted[Math.floor(sorted.length * 0.95)] };
}

async function decodeStepMs(dir: string): Promise<number> {
  const model = await LlavaModel.load(dir, { providers: 'cpu' });
  try {
    await model.generate({ prompt: 'USER: Describe a door. ASSISTANT:', image: null, options: { maxNewTokens: 4, ignoreEos: true } }); // warm-up
    const r = await model.generate({ prompt: 'USER: Describe a door. ASSISTANT:', image: null, options: { maxNewTokens: 24, ignoreEos: true } });
    return r.timings.decode_ms / r.tokenIds.length;
  } finally {
    model.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { model: { type: 'string' }, answers: { type: 'string' } }, strict: true });
  const answers = Number(values.answers ?? 4);
  const root = path.resolve(__dirname, '..', '..');
  const log = (line: string) => process.stderr.write(`[bench:json] ${line}\n`);
  const dir =
    values.model ??
    ensureModel(
      modelSpecs(true).find((s) => s.name === '0.5b' && s.quantize === 'int4')!,
      path.join(root, '.cache', 'bench'),
      log,
    ).dir;
  const load = os.loadavg();

  log(`decode steps of ${path.basename(dir)}`);
  const before = await decodeStepMs(dir);

  log('building the 152k-token vocabulary and its tries');
  const t0 = performance.now();
  const synthetic = syntheticByteLevelVocabulary();
  const vocab = new TokenVocabulary(synthetic.tokens, synthetic.logitsWidth);
  const buildMs = performance.now() - t0;
  const rows: Array<{ schema: string; masks: number; mean: number; p50: number; p95: number }> = [];
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    const times: number[] = [];
    for (let seed = 0; seed < answers; seed++) {
      const constraint = new JsonSchemaConstraint(compileJsonSchema(schema), vocab, [synthetic.eosTokenId]);
      const timed = {
        apply(scores: Float32Array, history: Parameters<JsonSchemaConstraint['apply']>[1]) {
          const t = performance.now();
          constraint.apply(scores, history);
          times.push(performance.now() - t);
        },
      };
      const stepper = new RandomStepper(synthetic.logitsWidth, seed);
      await generate(
        stepper.row(),
        stepper,
        { maxNewTokens: 96, eosTokenIds: [synthetic.eosTokenId], doSample: true, seed },
        { decode: () => '', constraint: timed },
      );
    }
    rows.push({ schema: name, masks: times.length, ...stats(times) });
  }

  const after = await decodeStepMs(dir);
  await getRuntime().dispose();
  const step = (before + after) / 2;
  const loadEnd = os.loadavg();
  const out = process.stdout;
  out.write(`\nJSON-schema mask per token, ${synthetic.logitsWidth}-wide logits (${synthetic.tokens.length} token ids, generated byte-level vocabulary)\n`);
  out.write(
    `0.5b int4 decode step: ${step.toFixed(1)} ms (${before.toFixed(1)} before, ${after.toFixed(1)} after); vocabulary tables built once in ${buildMs.toFixed(0)} ms\n`,
  );
  out.write(`load average ${load.map((l) => l.toFixed(1)).join(' ')} → ${loadEnd.map((l) => l.toFixed(1)).join(' ')}, ${os.availableParallelism()} cores\n\n`);
  out.write('schema                      masks   mean ms   p50 ms   p95 ms   mean / decode step\n');
  for (const r of rows) {
    out.write(
      `${r.schema.padEnd(26)} ${String(r.masks).padStart(6)} ${r.mean.toFixed(2).padStart(9)} ${r.p50.toFixed(2).padStart(8)} ${r.p95.toFixed(2).padStart(8)} ${((100 * r.mean) / step).toFixed(1).padStart(12)} %\n`,
    );
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});

// What a decode step costs outside onnxruntime. The embedding of a step's token is read from the embed graph's table
// (a plain Gather of an fp32/fp16 initializer, inline or external) instead of running the embed session, giving the
// session's bytes; and a step allocates no logits, position or mask buffer of its own: it writes the logits into one
// bound buffer and feeds views of kept ones. Either way the logits are the session path's, bit for bit.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { EMBED_IO } from '../../lib/model/graph-io';
import { EmbedTable, openEmbedTable } from '../../lib/model/embed-table';
import { Graph, tensor } from '../../lib/onnx/graph';
import { KvDecoder } from '../../lib/pipeline/decoder';
import { kvShape } from '../../lib/pipeline/graph-check';
import { floatArrayToHalf, halfArrayToFloat } from '../../lib/util/float16';
import { wave } from '../onnx/support';
import { decoderSessions, RecordingSession } from '../support/decoder-sessions';
import { tinyModel } from '../support/tiny-model';

const V = 50;
const H = 24;

/** input_ids → Gather(table) [→ Mul] → inputs_embeds, after an unused initializer (so an external table sits at an offset). */
function embedGraph(file: string, type: 'float32' | 'float16', opts: { external: boolean; scaled?: boolean }): void {
  const g = new Graph('embed_tokens');
  const ids = g.input(EMBED_IO.inputIds, 'int64', ['batch', 'sequence']);
  g.initializer('unused', tensor('float32', [400], wave(400, 0.1)));
  const values = wave(V * H, 0.7);
  const table = g.initializer('table', tensor(type, [V, H], type === 'float32' ? values : floatArrayToHalf(values)));
  let out = g.op('Gather', [table, ids], { axis: 0 });
  if (opts.scaled)
    out = g.op('Mul', [out, g.initializer('scale', tensor(type, [1], type === 'float32' ? Float32Array.of(2) : floatArrayToHalf(Float32Array.of(2))))]);
  g.output(out, type, ['batch', 'sequence', H], EMBED_IO.inputsEmbeds);
  g.writeFile(file, { externalData: opts.external });
}

async function sessionRows(file: string, ids: number[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(file, { logSeverityLevel: 3 });
  try {
    const out = await session.run({ [EMBED_IO.inputIds]: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]) });
    const t = out[EMBED_IO.inputsEmbeds];
    return t.type === 'float16' ? halfArrayToFloat(t.data as Uint16Array) : (t.data as Float32Array);
  } finally {
    await session.release();
  }
}

describe('decode step: embedding table and kept buffers', () => {
  let root: string;
  before(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-decode-step-'))));
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  for (const type of ['float32', 'float16'] as const) {
    for (const external of [false, true]) {
      it(`a ${type} table ${external ? 'in external data' : 'inline'} gives the embed session's rows`, async () => {
        const file = path.join(root, `embed-${type}-${external}.onnx`);
        embedGraph(file, type, { external });
        const table = openEmbedTable(file);
        assert.ok(table, 'a plain Gather is read as a table');
        try {
          assert.deepEqual([table.type, table.vocabSize, table.hiddenSize], [type, V, H]);
          const ids = [0, 7, V - 1, 7];
          assert.deepEqual(table.rows(ids), await sessionRows(file, ids));
        } finally {
          table.close();
        }
      });
    }
  }

  it('any other graph is not read as a table (the session keeps serving it)', () => {
    const scaled = path.join(root, 'embed-scaled.onnx');
    embedGraph(scaled, 'float32', { external: false, scaled: true });
    assert.equal(openEmbedTable(scaled), null);
    assert.equal(openEmbedTable(path.join(tinyModel({ decoder: 'optimized' }).dir, 'onnx', 'decoder_model_merged.onnx')), null);
  });

  it('steps read the table, write logits into one bound buffer and feed kept buffers, with the session path logits', async () => {
    const model = tinyModel({ decoder: 'optimized' });
    const shape = kvShape(model.config);
    const { embed, decoder } = await decoderSessions(model);
    const table = openEmbedTable(path.join(model.dir, 'onnx', 'embed_tokens.onnx')) as EmbedTable;
    assert.ok(table);
    const embedRuns = new RecordingSession(embed);
    const decoderRuns = new RecordingSession(decoder);
    const fast = new KvDecoder(embedRuns, decoderRuns, shape, table);
    const plain = new KvDecoder(embed, decoder, shape);
    try {
      for (const d of [fast, plain]) assert.equal(await d.useMode('shared'), 'shared');
      const prompt = wave(6 * shape.hiddenSize, 0.4);
      assert.deepEqual(await fast.forward(prompt, 6), await plain.forward(prompt, 6));
      embedRuns.runs.length = 0;
      decoderRuns.runs.length = 0;
      const rows: Float32Array[] = [];
      for (const token of [3, 9, 4, 3]) {
        const [row] = await fast.step([token], [0]);
        const [expected] = await plain.step([token], [0]);
        assert.deepEqual(row, expected, `logits after token ${token}`);
        rows.push(row);
      }
      assert.equal(embedRuns.runs.length, 0, 'no embed session run per step');
      const buffers = (name: string) => new Set(decoderRuns.runs.map((r) => r.feeds[name].data.buffer));
      assert.equal(buffers('position_ids').size, 1, 'one position buffer for every step');
      assert.equal(buffers('attention_mask').size, 1, 'one mask buffer for every step');
      const bound = new Set(decoderRuns.runs.map((r) => r.bound?.logits?.data));
      assert.equal(bound.size, 1, 'one bound logits buffer for every step');
      const [logits] = bound;
      assert.ok(
        rows.every((r) => r.buffer === logits?.buffer),
        'the rows are views of it, not copies',
      );
    } finally {
      table.close();
      await Promise.all([embed.release(), decoder.release()]);
    }
  });
});

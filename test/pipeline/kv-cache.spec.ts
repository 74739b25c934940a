// The decoder's KV cache modes, as the graph's outputs set them: an optimized graph outputs only the new positions
// ('append': the cache stays in preallocated buffers the graph reads where they lie and this side writes into), a
// portable one outputs present = past + new ('copy'). On the same weights the two must give the same logits step by
// step (prefill, steps, buffer growth, a beam reorder, snapshot/restore), the append mode without a cache-sized
// buffer per step, and the pipeline the same greedy and beam ids.
import { strict as assert } from 'assert';
import sharp from 'sharp';
import { kvShape } from '../../lib/pipeline/graph-check';
import { KvDecoder } from '../../lib/pipeline/decoder';
import { LlavaModel } from '../../lib/pipeline/llava-model';
import { getRuntime } from '../../lib/runtime';
import { wave } from '../onnx/support';
import { decoderSessions, RecordingSession } from '../support/decoder-sessions';
import { tinyModel } from '../support/tiny-model';

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const TOL = 1e-4;

describe('decoder KV cache: append (optimized graph) vs copy (portable graph)', () => {
  after(() => getRuntime().dispose());

  it('append gives the copy logits through prefill, steps, growth, a beam reorder and a restore, in one buffer', async () => {
    const optimized = tinyModel({ decoder: 'optimized' });
    const portable = tinyModel({ decoder: 'portable' });
    const fast = await decoderSessions(optimized);
    const plain = await decoderSessions(portable);
    const shape = kvShape(optimized.config);
    const recording = new RecordingSession(fast.decoder);
    const append = new KvDecoder(fast.embed, recording, shape);
    const copy = new KvDecoder(plain.embed, plain.decoder, shape);
    assert.equal(append.kvMode, 'append');
    assert.equal(copy.kvMode, 'copy');
    append.reserve(8); // the prompt and 3 steps; grows (to 16) in the steps after
    const H = shape.hiddenSize;
    const prompt = wave(5 * H, 0.3);
    const [a] = await append.forward(prompt, 5);
    const [b] = await copy.forward(prompt, 5);
    assert.ok(maxDiff(a, b) < TOL);
    const snapshot = append.snapshot();
    const copySnapshot = copy.snapshot();
    recording.runs.length = 0;
    for (const token of [3, 9, 4]) {
      const [x] = await append.step([token], [0]);
      const [y] = await copy.step([token], [0]);
      assert.ok(maxDiff(x, y) < TOL, `step with token ${token}`);
    }
    // Each step read the same buffer of the reserved 8 positions, behind a mask of the slots in use.
    assert.equal(recording.runs.length, 3);
    for (const r of recording.runs) {
      const past = r.feeds['past_key_values.0.key'];
      assert.ok(past.data === recording.runs[0].feeds['past_key_values.0.key'].data, 'the same buffer every step');
      assert.equal(past.dims[2], 8);
    }
    // The last step's mask (the mask buffer is rewritten each step): the 7 slots in use, one free, the new position.
    const mask = recording.runs[2].feeds.attention_mask.data as BigInt64Array;
    assert.deepEqual(Array.from(mask, Number), [1, 1, 1, 1, 1, 1, 1, 0, 1]);
    for (const token of [5, 6, 7]) await Promise.all([append.step([token], [0]), copy.step([token], [0])]);
    assert.equal(append.cacheLength, 11); // past the reserved 8: the buffers grew and kept their contents
    const [x] = await append.step([1, 2], [0, 0]);
    const [y] = await copy.step([1, 2], [0, 0]);
    assert.ok(maxDiff(x, y) < TOL, 'a beam of two from one sequence');
    // The snapshot taken after the prompt was not changed by the steps written into the buffers since.
    append.restore(snapshot);
    copy.restore(copySnapshot);
    const [p] = await append.step([8], [0]);
    const [q] = await copy.step([8], [0]);
    assert.ok(maxDiff(p, q) < TOL, 'after restoring the prompt snapshot');
    await Promise.all([fast.embed.release(), fast.decoder.release(), plain.embed.release(), plain.decoder.release()]);
  });

  it('the pipeline gives the same greedy and beam ids and prefix reuse with either graph', async () => {
    const pixels = Buffer.from(Array.from({ length: 40 * 36 * 3 }, (_, i) => (i * 31) & 255));
    const image = await sharp(pixels, { raw: { width: 40, height: 36, channels: 3 } })
      .png()
      .toBuffer();
    const results: Record<string, number[][]> = {};
    for (const decoder of ['optimized', 'portable'] as const) {
      const m = await LlavaModel.load(tinyModel({ decoder }).dir, { warmup: false });
      try {
        const ask = (options: object) => m.describe({ image, question: 'What is it?', options: { maxNewTokens: 6, ignoreEos: true, ...options } });
        // The second greedy run restores the prefix cache (the prompt before the image) from a snapshot.
        results[decoder] = [(await ask({})).tokenIds, (await ask({})).tokenIds, (await ask({ numBeams: 3 })).tokenIds];
      } finally {
        m.close();
      }
    }
    assert.equal(results.optimized[0].length, 6);
    assert.deepEqual(results.optimized[1], results.optimized[0]);
    assert.deepEqual(results.optimized, results.portable);
  });
});

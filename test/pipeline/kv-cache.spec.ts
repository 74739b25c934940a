// The decoder's KV cache modes: 'shared' binds each present output to its past buffer (GroupQueryAttention writes
// the new positions in place), 'copy' feeds each step's present back. Shared must give the copy mode's logits step
// by step (prefill, steps, buffer growth, a beam reorder, snapshot/restore) without allocating a cache per step, fall
// back to copy on a graph that concatenates (portable), and give the pipeline the same greedy and beam ids.
import { strict as assert } from 'assert';
import sharp from 'sharp';
import { kvShape } from '../../lib/pipeline/graph-check';
import { KvDecoder, KvMode } from '../../lib/pipeline/decoder';
import { LlavaModel } from '../../lib/pipeline/llava-model';
import { getRuntime } from '../../lib/runtime';
import { wave } from '../onnx/support';
import { decoderSessions, RecordingSession } from '../support/decoder-sessions';
import { tinyModel } from '../support/tiny-model';

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('decoder KV cache: shared buffer vs copy', () => {
  after(() => getRuntime().dispose());

  it('optimized graph: shared gives the copy logits through prefill, steps, growth, a beam reorder and a restore, with one buffer', async () => {
    const model = tinyModel({ decoder: 'optimized' });
    const { embed, decoder } = await decoderSessions(model);
    const shape = kvShape(model.config);
    const recording = new RecordingSession(decoder);
    const shared = new KvDecoder(embed, recording, shape);
    const copy = new KvDecoder(embed, decoder, shape);
    assert.equal(await shared.useMode('shared'), 'shared');
    assert.equal(await copy.useMode('copy'), 'copy');
    shared.reserve(8); // the prompt and 3 steps; grows (to 16) in the steps after
    const H = shape.hiddenSize;
    const prompt = wave(5 * H, 0.3);
    const [a] = await shared.forward(prompt, 5);
    const [b] = await copy.forward(prompt, 5);
    assert.ok(maxDiff(a, b) < 1e-5);
    const snapshot = shared.snapshot();
    const copySnapshot = copy.snapshot();
    recording.runs.length = 0;
    for (const token of [3, 9, 4]) {
      const [x] = await shared.step([token], [0]);
      const [y] = await copy.step([token], [0]);
      assert.ok(maxDiff(x, y) < 1e-5, `step with token ${token}`);
    }
    // Each step ran on one buffer, bound as its own present: nothing the size of the cache was made per step.
    assert.equal(recording.runs.length, 3);
    for (const r of recording.runs) {
      const past = r.feeds['past_key_values.0.key'].data;
      assert.ok(r.bound?.['present.0.key']?.data === past, 'present bound to the past buffer');
      assert.ok(past === recording.runs[0].feeds['past_key_values.0.key'].data, 'the same buffer every step');
    }
    for (const token of [5, 6, 7]) await Promise.all([shared.step([token], [0]), copy.step([token], [0])]);
    assert.equal(shared.cacheLength, 11); // past the reserved 8: the buffers grew and kept their contents
    const [x] = await shared.step([1, 2], [0, 0]);
    const [y] = await copy.step([1, 2], [0, 0]);
    assert.ok(maxDiff(x, y) < 1e-5, 'a beam of two from one sequence');
    // The snapshot taken after the prompt was not changed by the steps written in place since.
    shared.restore(snapshot);
    copy.restore(copySnapshot);
    const [p] = await shared.step([8], [0]);
    const [q] = await copy.step([8], [0]);
    assert.ok(maxDiff(p, q) < 1e-5, 'after restoring the prompt snapshot');
    await Promise.all([embed.release(), decoder.release()]);
  });

  it('portable graph (Concat cache): shared falls back to copy', async () => {
    const model = tinyModel({ decoder: 'portable' });
    const { embed, decoder } = await decoderSessions(model);
    const d = new KvDecoder(embed, decoder, kvShape(model.config));
    assert.equal(await d.useMode('shared'), 'copy');
    await Promise.all([embed.release(), decoder.release()]);
  });

  it('the pipeline gives the same greedy and beam ids and prefix reuse with either mode', async () => {
    const model = tinyModel({ decoder: 'optimized' });
    const pixels = Buffer.from(Array.from({ length: 40 * 36 * 3 }, (_, i) => (i * 31) & 255));
    const image = await sharp(pixels, { raw: { width: 40, height: 36, channels: 3 } })
      .png()
      .toBuffer();
    const results: Record<string, number[][]> = {};
    for (const kvCache of ['shared', 'copy'] as KvMode[]) {
      const m = await LlavaModel.load(model.dir, { kvCache, warmup: false });
      try {
        const ask = (options: object) => m.describe({ image, question: 'What is it?', options: { maxNewTokens: 6, ignoreEos: true, ...options } });
        // The second greedy run restores the prefix cache (the prompt before the image) from a snapshot.
        results[kvCache] = [(await ask({})).tokenIds, (await ask({})).tokenIds, (await ask({ numBeams: 3 })).tokenIds];
      } finally {
        m.close();
      }
    }
    assert.equal(results.shared[0].length, 6);
    assert.deepEqual(results.shared[1], results.shared[0]);
    assert.deepEqual(results.shared, results.copy);
  });
});

// The benchmark's GGUF writer: llama.cpp (node-llama-cpp) running a written F32 file generates the same greedy ids
// as the float64 reference on the same weights, for a LLaMA (RoPE rows permuted) and a Qwen2 (q/k/v biases, tied
// embeddings) config; Q4_0 blocks decode back to the values within half a quantization step.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { quantizeQ4_0, writeGguf } from '../../bench/gguf';
import { llamaCppGreedy, openLlamaCpp } from '../../bench/cases/llama-cpp';
import { halfToFloat } from '../../lib/util/float16';
import { referenceGreedy } from '../support/reference-pipeline';
import { tinyModel } from '../support/tiny-model';

describe('bench GGUF writer', function () {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-gguf-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const arch of ['tiny', 'tiny-qwen2'] as const) {
    it(`llama.cpp on the F32 file generates the float64 reference's greedy ids (${arch})`, async () => {
      const tiny = tinyModel({ arch, seed: 5 });
      const file = path.join(dir, `${arch}.gguf`);
      writeGguf(file, tiny.config, tiny.weights, 'F32');
      const prompt = [1, 300, 301, 17, 42, 280, 99, 5];
      const expected = referenceGreedy(tiny, prompt, [], null, 6);
      const session = await openLlamaCpp(file, 64, 1);
      try {
        assert.deepEqual(await llamaCppGreedy(session.sequence, prompt, 6), expected);
      } finally {
        await session.dispose();
      }
    });
  }

  it('Q4_0 blocks hold an fp16 scale and nibbles that decode within half a step (one at the clamped end)', () => {
    const x = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i * 1.3) * (i < 32 ? 1 : 0.01));
    x[7] = -2.5; // the block's largest magnitude, negative: its scale is −(−2.5)/8 and it decodes exactly
    const q = quantizeQ4_0(x);
    assert.equal(q.length, 2 * 18);
    for (let b = 0; b < 2; b++) {
      const d = halfToFloat(q.readUInt16LE(b * 18));
      for (let j = 0; j < 32; j++) {
        const byte = q[b * 18 + 2 + (j % 16)];
        const nibble = j < 16 ? byte & 15 : byte >> 4;
        const value = (nibble - 8) * d;
        // Q4_0's range is −8d..7d: a value near −max clamps to nibble 15, one step short.
        const bound = nibble === 15 ? Math.abs(d) : Math.abs(d) / 2;
        assert.ok(Math.abs(value - x[b * 32 + j]) <= bound + 1e-6, `block ${b} value ${j}: ${value} vs ${x[b * 32 + j]}`);
      }
    }
    assert.ok(Math.abs(halfToFloat(q.readUInt16LE(0)) - 2.5 / 8) < 1e-3);
  });
});

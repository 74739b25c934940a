// A real-width check, kept out of the default suite (set LLAVA_SLOW=1): llava-1.5-7b widths (CLIP-L/14-336 +
// LLaMA-7B, vocab 32064) with 2 vision and 2 decoder layers and random weights. The decoder (~2.1 GB fp32)
// crosses the protobuf limit, so this also proves the automatic external data path at scale.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { architecture, withTinyTokenizer } from '../../lib/onnx/architectures';
import { openModelFolder } from '../../lib/model/folder';
import { randomWeights } from '../../lib/onnx/random-weights';
import { writeModelFolder } from '../../lib/onnx/write-model';
import { maxAbsDiff, referenceDecoder } from '../support/reference';
import { runDecoder, seqSlice, wave } from './support';

(process.env.LLAVA_SLOW ? describe : describe.skip)('7B-width model (LLAVA_SLOW=1)', function () {
  this.timeout(600_000);
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-7b-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('builds with external data, encodes an image and runs a decode step matching the reference', async () => {
    const arch = withTinyTokenizer(architecture('llava-1.5-7b', { textLayers: 2, visionLayers: 2 }));
    const c = arch.config;
    const weights = randomWeights(c, 1);
    let t = Date.now();
    const written = writeModelFolder({ outDir: dir, config: c, weights, tokenizer: { kind: 'tiny-llama' } });
    const buildS = (Date.now() - t) / 1000;
    assert.ok(written.files.includes('onnx/decoder_model_merged.onnx_data'));
    const folder = openModelFolder(dir);

    t = Date.now();
    const vision = await ort.InferenceSession.create(folder.files.vision);
    const { image_features } = await vision.run({ pixel_values: new ort.Tensor('float32', wave(3 * 336 * 336), [1, 3, 336, 336]) });
    assert.deepEqual(image_features.dims, [1, 576, 4096]);
    await vision.release();
    const visionS = (Date.now() - t) / 1000;

    t = Date.now();
    const decoder = await ort.InferenceSession.create(folder.files.decoder);
    const loadS = (Date.now() - t) / 1000;
    const S = 3;
    const H = 4096;
    const embeds = { data: Float64Array.from(wave(S * H, 0.4)), dims: [1, S, H] };
    const prefill = await runDecoder(decoder, c, seqSlice(embeds, 0, 2), [1, 1], [0, 1]);
    t = Date.now();
    const step = await runDecoder(decoder, c, seqSlice(embeds, 2, 3), [1, 1, 1], [2], prefill.present);
    const stepS = (Date.now() - t) / 1000;
    assert.deepEqual(step.present['present.1.key'].dims, [1, 32, 3, 128]);
    const ref = referenceDecoder(weights, c, { embeds, attentionMask: [1, 1, 1], positionIds: [0, 1, 2] });
    const diff = maxAbsDiff(step.logits, ref.logits.data.subarray(2 * 32064));
    assert.ok(diff < 1e-3, `decode step vs reference: ${diff}`);
    await decoder.release();
    const rss = process.memoryUsage().rss / 1e9;
    console.log(
      `      build ${buildS.toFixed(1)} s, vision run ${visionS.toFixed(1)} s, decoder load ${loadS.toFixed(1)} s, ` +
        `decode step ${stepS.toFixed(2)} s, max |Δlogit| ${diff.toExponential(2)}, rss now ${rss.toFixed(1)} GB`,
    );
  });
});

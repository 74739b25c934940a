import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { architecture } from '../../lib/onnx/architectures';
import { RECORD_KEY } from '../../lib/model/config';
import { openModelFolder } from '../../lib/model/folder';
import { randomWeights } from '../../lib/onnx/random-weights';
import { writeModelFolder, WriteModelOptions } from '../../lib/onnx/write-model';
import { maxAbsDiff, referenceDecoder, referenceEmbed, referenceProjector, referenceVision } from '../support/reference';
import { runDecoder, wave } from './support';

function maxTokenId(tokenizerJson: { model: { vocab: Record<string, number> }; added_tokens: Array<{ id: number }> }): number {
  return Math.max(...Object.values(tokenizerJson.model.vocab), ...tokenizerJson.added_tokens.map((t) => t.id));
}

describe('onnx/write-model', () => {
  let root: string;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-write-'));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  const tiny = architecture('tiny');
  const weights = randomWeights(tiny.config, 4);
  const base = (name: string, extra: Partial<WriteModelOptions> = {}): WriteModelOptions => ({
    outDir: path.join(root, name),
    config: tiny.config,
    weights,
    tokenizer: { kind: 'tiny-llama' },
    source: 'tiny',
    ...extra,
  });

  it('transformers-js layout: the loader reads it and the three graphs compute the reference pipeline', async () => {
    const written = writeModelFolder(base('tjs'));
    assert.deepEqual(written.files.filter((f) => f.startsWith('onnx')).sort(), [
      'onnx/decoder_model_merged.onnx',
      'onnx/embed_tokens.onnx',
      'onnx/vision_encoder.onnx',
    ]);
    const folder = openModelFolder(written.dir);
    assert.equal(folder.layout, 'transformers-js');
    assert.equal(folder.files.projector, undefined);
    assert.equal(folder.config.image_seq_length, 16);
    assert.equal(folder.preprocessor.crop_size && (folder.preprocessor.crop_size as { height: number }).height, 32);
    assert.equal(folder.generation.eos_token_id, tiny.config.text_config.eos_token_id);
    const tok = JSON.parse(fs.readFileSync(path.join(folder.dir, 'tokenizer.json'), 'utf8'));
    assert.equal(maxTokenId(tok) + 1, folder.config.text_config.vocab_size);

    const c = folder.config;
    const pixels = wave(3 * 32 * 32, 0.3);
    const vision = await ort.InferenceSession.create(folder.files.vision);
    const { image_features } = await vision.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, 32, 32]) });
    const refImage = referenceProjector(weights, c, referenceVision(weights, c, pixels, 1));
    assert.ok(maxAbsDiff(image_features.data as Float32Array, refImage.data) < 1e-4);

    // Splice: [bos, 16 image rows, two text tokens], then the decoder, as the pipeline will.
    const ids = [1, 13, 42];
    const embed = await ort.InferenceSession.create(folder.files.embed);
    const { inputs_embeds } = await embed.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, 3]) });
    const H = c.text_config.hidden_size;
    const text = inputs_embeds.data as Float32Array;
    const seq = Float64Array.from([...text.subarray(0, H), ...(image_features.data as Float32Array), ...text.subarray(H)]);
    const refSeq = Float64Array.from([...referenceEmbed(weights, c, [1]).data, ...refImage.data, ...referenceEmbed(weights, c, [13, 42]).data]);
    const S = 19;
    const decoder = await ort.InferenceSession.create(folder.files.decoder);
    const out = await runDecoder(decoder, c, { data: seq, dims: [1, S, H] }, Array(S).fill(1), [...Array(S).keys()]);
    const ref = referenceDecoder(weights, c, { embeds: { data: refSeq, dims: [1, S, H] }, attentionMask: Array(S).fill(1), positionIds: [...Array(S).keys()] });
    assert.ok(maxAbsDiff(out.logits, ref.logits.data) < 1e-4);
  });

  it('split layout: vision features at vision width, then multi_modal_projector image_features → image_embeds', async () => {
    const written = writeModelFolder(base('split', { layout: 'split', decoder: 'portable' }));
    const folder = openModelFolder(written.dir);
    assert.equal(folder.layout, 'split');
    assert.ok(folder.files.projector?.endsWith(path.join('onnx', 'multi_modal_projector.onnx')));
    const meta = folder.config['node-red-contrib-llava'] as Record<string, unknown>;
    assert.equal(meta.layout, 'split');
    assert.equal(meta.decoder, 'portable');
    const vision = await ort.InferenceSession.create(folder.files.vision);
    assert.deepEqual(vision.outputNames, ['image_features']);
    const projector = await ort.InferenceSession.create(folder.files.projector!);
    assert.deepEqual(projector.inputNames, ['image_features']);
    assert.deepEqual(projector.outputNames, ['image_embeds']);
    const { image_features } = await vision.run({ pixel_values: new ort.Tensor('float32', wave(3 * 32 * 32), [1, 3, 32, 32]) });
    assert.deepEqual(image_features.dims, [1, 16, 32]);
    const { image_embeds } = await projector.run({ image_features });
    assert.deepEqual(image_embeds.dims, [1, 16, 64]);
  });

  it('int4: decoder_model_merged_q4.onnx with MatMulNBits, opened as variant q4 (other parts fall back to fp32)', () => {
    const written = writeModelFolder(base('q4', { quantize: 'int4' }));
    assert.equal(written.variant, 'q4');
    const folder = openModelFolder(written.dir, 'q4');
    assert.ok(folder.files.decoder.endsWith('decoder_model_merged_q4.onnx'));
    assert.ok(folder.files.vision.endsWith('vision_encoder.onnx'));
    const bytes = fs.readFileSync(folder.files.decoder);
    assert.ok(bytes.includes('MatMulNBits') && bytes.includes('GroupQueryAttention'));
    // 4-bit weights: the decoder file is much smaller than the fp32 one of the same model.
    const fp32 = fs.statSync(path.join(root, 'tjs', 'onnx', 'decoder_model_merged.onnx')).size;
    assert.ok(bytes.length < fp32 / 3, `${bytes.length} vs ${fp32}`);
  });

  it('quantizeVision int8: MatMulNBits in vision_encoder.onnx only, recorded in config.json', () => {
    const written = writeModelFolder(base('qv', { quantizeVision: 'int8' }));
    assert.equal(written.variant, 'fp32');
    const folder = openModelFolder(written.dir);
    assert.ok(fs.readFileSync(folder.files.vision).includes('MatMulNBits'));
    assert.ok(!fs.readFileSync(folder.files.decoder).includes('MatMulNBits'));
    const record = JSON.parse(fs.readFileSync(path.join(written.dir, 'config.json'), 'utf8'))[RECORD_KEY];
    assert.equal(record.quantize_vision, 'int8');
    assert.equal(record.quantize, null);
    assert.equal(record.accuracy_level, 4);
  });

  it('external data round trip: .onnx_data files load by path with the same results as inline graphs', async () => {
    const written = writeModelFolder(base('ext', { externalData: true }));
    assert.ok(written.files.includes('onnx/decoder_model_merged.onnx_data'));
    assert.ok(written.files.includes('onnx/vision_encoder.onnx_data'));
    const config = JSON.parse(fs.readFileSync(path.join(written.dir, 'config.json'), 'utf8'));
    assert.equal(config['transformers.js_config'].use_external_data_format['decoder_model_merged.onnx'], true);
    const inline = openModelFolder(path.join(root, 'tjs'));
    const ext = openModelFolder(written.dir);
    assert.ok(fs.statSync(ext.files.decoder).size < fs.statSync(inline.files.decoder).size / 10);
    const S = 4;
    const H = 64;
    const embeds = { data: Float64Array.from(wave(S * H)), dims: [1, S, H] };
    const c = inline.config;
    const a = await runDecoder(await ort.InferenceSession.create(inline.files.decoder), c, embeds, Array(S).fill(1), [0, 1, 2, 3]);
    const b = await runDecoder(await ort.InferenceSession.create(ext.files.decoder), c, embeds, Array(S).fill(1), [0, 1, 2, 3]);
    assert.deepEqual(Array.from(b.logits), Array.from(a.logits));
  });

  it('refuses a non-empty output folder unless overwrite is set', () => {
    const dir = path.join(root, 'busy');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'keep me');
    assert.throws(() => writeModelFolder(base('busy')), /output folder is not empty/);
    writeModelFolder(base('busy', { overwrite: true }));
    assert.equal(fs.readFileSync(path.join(dir, 'notes.txt'), 'utf8'), 'keep me');
    assert.ok(fs.existsSync(path.join(dir, 'onnx', 'decoder_model_merged.onnx')));
  });

  it('checks config and weights before writing anything', () => {
    const dir = path.join(root, 'bad');
    const c = architecture('tiny').config;
    c.text_config.hidden_act = 'gelu';
    assert.throws(() => writeModelFolder({ ...base('bad'), config: c }), /text hidden_act "gelu" is not supported/);
    assert.equal(fs.existsSync(dir), false);
  });

  it('tiny-qwen2 gets the Qwen2 tokenizer and a config without bos', () => {
    const q = architecture('tiny-qwen2');
    const written = writeModelFolder({
      outDir: path.join(root, 'qwen'),
      config: q.config,
      weights: randomWeights(q.config),
      tokenizer: { kind: 'tiny-qwen2' },
    });
    const folder = openModelFolder(written.dir);
    const tok = JSON.parse(fs.readFileSync(path.join(folder.dir, 'tokenizer.json'), 'utf8'));
    assert.equal(maxTokenId(tok) + 1, folder.config.text_config.vocab_size);
    assert.equal(folder.generation.bos_token_id, undefined);
    assert.equal(folder.config.text_config.model_type, 'qwen2');
  });
});

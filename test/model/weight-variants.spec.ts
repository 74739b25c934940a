// Weight variants per graph, as transformers.js's dtype object: every suffix it knows, the folder's own choice in
// config.json's transformers.js_config, and fp16 graphs with float32 or float16 inputs/outputs.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { AutoProcessor, env, LlavaForConditionalGeneration, RawImage, Tensor } from '@huggingface/transformers';
import { chooseVariants, formatVariants, parseVariantSpec, WEIGHT_VARIANTS } from '../../lib/model/weight-variants';
import { openModelFolder } from '../../lib/model/folder';
import { LlavaModel } from '../../lib/pipeline/llava-model';
import { getRuntime } from '../../lib/runtime';
import { tinyModel } from '../support/tiny-model';
import { bnb4ProjectorGraph, fp16EmbedGraph, fp16VisionGraph, Fp16Io } from '../support/variant-graphs';

const names = (files: string[]) => (f: string) => files.includes(f);

describe('weight variants per graph', () => {
  it('knows every transformers.js suffix, and parses one variant, per-graph lists and dtype objects', () => {
    assert.deepEqual(Object.keys(WEIGHT_VARIANTS), ['fp32', 'fp16', 'q8', 'int8', 'uint8', 'q4', 'q4f16', 'q2', 'q2f16', 'q1', 'q1f16', 'bnb4']);
    assert.deepEqual(Object.values(WEIGHT_VARIANTS), [
      '',
      '_fp16',
      '_quantized',
      '_int8',
      '_uint8',
      '_q4',
      '_q4f16',
      '_q2',
      '_q2f16',
      '_q1',
      '_q1f16',
      '_bnb4',
    ]);
    assert.deepEqual(parseVariantSpec('q2f16'), { base: 'q2f16', graphs: {} });
    const recipe = { vision_encoder: 'fp16', embed_tokens: 'fp16', decoder_model_merged: 'q4' };
    assert.deepEqual(parseVariantSpec('vision_encoder=fp16, embed_tokens=fp16,decoder_model_merged=q4'), { base: 'auto', graphs: recipe });
    assert.deepEqual(parseVariantSpec(recipe), { base: 'auto', graphs: recipe });
    assert.deepEqual(parseVariantSpec('q1,decoder_model_merged=bnb4'), { base: 'q1', graphs: { decoder_model_merged: 'bnb4' } });
    assert.equal(formatVariants(recipe), 'vision_encoder=fp16,embed_tokens=fp16,decoder_model_merged=q4');
    assert.equal(formatVariants({ vision_encoder: 'q4', decoder_model_merged: 'q4' }), 'q4');
    assert.throws(() => parseVariantSpec('q3'), /unknown weight variant "q3" in "q3"; one of: auto, fp32, fp16/);
    assert.throws(() => parseVariantSpec('vision=fp16'), /unknown graph "vision" in variant "vision=fp16"; one of: vision_encoder, multi_modal_projector/);
  });

  it('auto reads transformers.js_config (dtype string, per graph, device_config.cpu), else the recorded variant, else fp32', () => {
    const files = [
      'vision_encoder.onnx',
      'vision_encoder_fp16.onnx',
      'embed_tokens.onnx',
      'embed_tokens_fp16.onnx',
      'decoder_model_merged.onnx',
      'decoder_model_merged_q4.onnx',
      'decoder_model_merged_q2f16.onnx',
    ];
    const has = names(files);
    const auto = parseVariantSpec();
    assert.deepEqual(chooseVariants(has, auto), { vision_encoder: 'fp32', embed_tokens: 'fp32', decoder_model_merged: 'fp32' });
    const recipe = { vision_encoder: 'fp16', embed_tokens: 'fp16', decoder_model_merged: 'q4' };
    assert.deepEqual(chooseVariants(has, auto, { transformersJs: { dtype: recipe } }), recipe);
    assert.deepEqual(chooseVariants(has, auto, { transformersJs: { dtype: 'fp32', device_config: { cpu: { dtype: { decoder_model_merged: 'q2f16' } } } } }), {
      vision_encoder: 'fp32',
      embed_tokens: 'fp32',
      decoder_model_merged: 'q2f16',
    });
    // The variant this package's builder recorded; the small graphs follow it where they have it.
    assert.deepEqual(chooseVariants(names([...files, 'vision_encoder_q4.onnx']), auto, { recorded: 'q4' }), {
      vision_encoder: 'q4',
      embed_tokens: 'fp32',
      decoder_model_merged: 'q4',
    });
    // A named graph must exist; a bare variant lets the small graphs fall back to fp32.
    assert.deepEqual(chooseVariants(has, parseVariantSpec('q4')), { vision_encoder: 'fp32', embed_tokens: 'fp32', decoder_model_merged: 'q4' });
    assert.throws(
      () => chooseVariants(has, parseVariantSpec('vision_encoder=q4')),
      /has no q4 vision_encoder \(onnx\/vision_encoder_q4\.onnx\); available: fp32, fp16/,
    );
    assert.throws(() => chooseVariants(has, auto, { transformersJs: { dtype: { embed_tokens: 'q8' } } }), /has no q8 embed_tokens/);
    const noFp32 = names(['vision_encoder.onnx', 'embed_tokens.onnx', 'decoder_model_merged_q4.onnx', 'decoder_model_merged_q1.onnx']);
    assert.throws(() => chooseVariants(noFp32, auto), /has decoder variants q4, q1 and no fp32 one: choose one with --variant/);
  });

  it('a MatMulBnb4 (bnb4, NF4) file computes its dequantized weights, and the loader runs it when asked', async () => {
    const tiny = tinyModel({ layout: 'split', decoder: 'portable' });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-bnb4-'));
    const runtime = getRuntime();
    try {
      fs.cpSync(tiny.dir, dir, { recursive: true });
      const bnb4File = path.join(dir, 'onnx', 'multi_modal_projector_bnb4.onnx');
      const plainFile = path.join(dir, 'dequantized.onnx');
      bnb4ProjectorGraph(tiny.weights, tiny.config, 'bnb4').writeFile(bnb4File);
      bnb4ProjectorGraph(tiny.weights, tiny.config, 'dequantized').writeFile(plainFile);
      const dv = tiny.config.vision_config.hidden_size;
      const data = Float32Array.from({ length: 3 * dv }, (_, i) => Math.sin(i * 0.7));
      const outputs: Float32Array[] = [];
      for (const file of [bnb4File, plainFile]) {
        const lease = await runtime.openSession({ modelPath: file });
        try {
          const r = await runtime.run(lease, { image_features: { type: 'float32', dims: [1, 3, dv], data: data.slice() } });
          outputs.push(r.values.image_embeds.data as Float32Array);
        } finally {
          lease.release();
        }
      }
      const worst = outputs[0].reduce((m, v, i) => Math.max(m, Math.abs(v - outputs[1][i])), 0);
      assert.ok(worst < 1e-4, `MatMulBnb4 differs from the dequantized weights by ${worst}`);
      assert.ok(outputs[0].some((v) => Math.abs(v) > 1e-3));

      const folder = openModelFolder(dir, 'multi_modal_projector=bnb4');
      assert.deepEqual(folder.variants, { vision_encoder: 'fp32', multi_modal_projector: 'bnb4', embed_tokens: 'fp32', decoder_model_merged: 'fp32' });
      const model = await LlavaModel.load(dir, { variant: 'multi_modal_projector=bnb4' });
      try {
        const image = await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 200, g: 40, b: 90 } } })
          .png()
          .toBuffer();
        const r = await model.describe({ image, question: 'What?', options: { maxNewTokens: 3, ignoreEos: true } });
        assert.equal(r.tokenIds.length, 3);
      } finally {
        model.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('a mixed folder: fp16 vision and embeddings, q4 decoder', function () {
    let root: string;
    let image: Buffer;
    const pixels = new Uint8ClampedArray(32 * 32 * 3).map((_, i) => (i * 37 + (i >> 5) * 11) % 256);
    const recipe = { vision_encoder: 'fp16', embed_tokens: 'fp16', decoder_model_merged: 'q4' };
    const prompt = 'USER: <image>\nWhat is shown? ASSISTANT:';

    /** The q4 tiny folder plus fp16 vision/embed files with `io` inputs/outputs, its config choosing the recipe. */
    function mixedFolder(io: Fp16Io): string {
      const tiny = tinyModel({ quantize: 'int4' });
      const dir = path.join(root, `mixed-${io}`);
      fs.cpSync(tiny.dir, dir, { recursive: true });
      fp16VisionGraph(tiny.weights, tiny.config, io).writeFile(path.join(dir, 'onnx', 'vision_encoder_fp16.onnx'));
      fp16EmbedGraph(tiny.weights, tiny.config, io).writeFile(path.join(dir, 'onnx', 'embed_tokens_fp16.onnx'));
      const configFile = path.join(dir, 'config.json');
      const config = JSON.parse(fs.readFileSync(configFile, 'utf8'));
      config['transformers.js_config'] = { dtype: recipe };
      delete config['node-red-contrib-llava'].variant;
      fs.writeFileSync(configFile, JSON.stringify(config));
      return dir;
    }

    async function ours(dir: string, variant?: string): Promise<{ ids: number[]; model: LlavaModel }> {
      const model = await LlavaModel.load(dir, { variant });
      const features = await model.project(await model.encodeImage(await model.preprocess(image)));
      const r = await model.generate({ prompt, image: features, options: { maxNewTokens: 5 } });
      return { ids: r.tokenIds, model };
    }

    before(async () => {
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-variants-'));
      image = await sharp(Buffer.from(pixels), { raw: { width: 32, height: 32, channels: 3 } })
        .png()
        .toBuffer();
    });
    after(() => {
      fs.rmSync(root, { recursive: true, force: true });
      return getRuntime().dispose();
    });

    it('opens the recipe config.json names, and float16 I/O converts at the boundary to the same tokens', async () => {
      const f32 = mixedFolder('float32');
      const f16 = mixedFolder('float16');
      assert.deepEqual(openModelFolder(f32).variants, recipe);
      assert.match(openModelFolder(f32).files.vision, /vision_encoder_fp16\.onnx$/);
      assert.deepEqual(openModelFolder(f32, 'q4').variants, { vision_encoder: 'fp32', embed_tokens: 'fp32', decoder_model_merged: 'q4' });
      const a = await ours(f32);
      const b = await ours(f16);
      const c = await ours(f16, 'vision_encoder=fp16,embed_tokens=fp16,decoder_model_merged=q4');
      try {
        assert.ok(a.ids.length > 0);
        assert.deepEqual(b.ids, a.ids);
        assert.deepEqual(c.ids, a.ids);
        assert.equal((b.model as unknown as { vision: { info: { inputs: { type: string }[] } } }).vision.info.inputs[0].type, 'float16');
      } finally {
        for (const r of [a, b, c]) r.model.close();
      }
    });

    it('transformers.js 4.3.1 on the same folder, image and prompt gives the same greedy ids', async () => {
      const dir = mixedFolder('float32');
      env.allowRemoteModels = false;
      env.localModelPath = root;
      const name = path.basename(dir);
      const model = await LlavaForConditionalGeneration.from_pretrained(name, { device: 'cpu', local_files_only: true });
      const processor = await AutoProcessor.from_pretrained(name, { local_files_only: true });
      const inputs = await processor(new RawImage(pixels, 32, 32, 3), prompt);
      const promptIds = Array.from(inputs.input_ids.data as BigInt64Array, Number);
      const out = (await model.generate({ ...inputs, max_new_tokens: 5, do_sample: false })) as Tensor;
      const theirs = Array.from(out.data as BigInt64Array, Number).slice(promptIds.length);
      const mine = await ours(dir);
      try {
        assert.deepEqual(mine.ids, theirs);
      } finally {
        mine.model.close();
        await model.dispose();
      }
    });
  });
});

// Folders shaped like the public LLaVA-family repos (configs field for field, tiny widths; test/support/public-fixtures.ts)
// load with their own processor, template and configs, and transformers.js 4.3.1, the reference implementation of
// that folder layout, gives the same prompt ids and greedy ids on the same folder, image and question. The images
// are already at the model's input size: transformers.js resizes with sharp, we with PIL's arithmetic.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { AutoImageProcessor, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer, env, RawImage, Tensor } from '@huggingface/transformers';
import { openModelFolder } from '../../lib/model/folder';
import { LlavaModel } from '../../lib/pipeline/llava-model';
import { promptToString } from '../../lib/pipeline/templates';
import { getRuntime } from '../../lib/runtime';
import { buildFixture, FIXTURE_NAMES, FixtureName } from '../support/public-fixtures';

const QUESTION = 'What is shown?';

const ids = (t: Tensor) => Array.from(t.data as BigInt64Array, Number);

describe('public LLaVA-family folders against transformers.js', function () {
  let root: string;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-public-'));
    env.allowRemoteModels = false;
    env.localModelPath = root;
  });
  after(() => {
    fs.rmSync(root, { recursive: true, force: true });
    return getRuntime().dispose();
  });

  const geometry: Record<FixtureName, string> = {
    'tiny-random-LlavaForConditionalGeneration': 'crop',
    'llava-1.5-7b-hf': 'crop',
    'bakLlava-v1-hf': 'crop',
    'llava-interleave-qwen-0.5b-hf': 'squash',
    'llava-onevision-qwen2-0.5b-ov-hf': 'squash',
    nanoLLaVA: 'squash',
  };

  for (const name of FIXTURE_NAMES) {
    it(`${name}: the folder's processor and chat template; transformers.js gives the same prompt and greedy ids`, async () => {
      const f = buildFixture(root, name);
      const size = f.config.vision_config.image_size;
      const pixels = new Uint8ClampedArray(size * size * 3).map((_, i) => (i * 29 + (i % 7) * 41) % 256);
      const png = await sharp(Buffer.from(pixels), { raw: { width: size, height: size, channels: 3 } })
        .png()
        .toBuffer();

      const model = await LlavaModel.load(f.dir);
      let mine: number[];
      let minePrompt: number[];
      try {
        assert.equal(model.preset.preprocess.mode, geometry[name]);
        const segments = model.prompt({ question: QUESTION });
        assert.equal(promptToString(segments), f.chatPrompt(QUESTION));
        const features = await model.project(await model.encodeImage(await model.preprocess(png)));
        assert.equal(features.handle.dims[1], f.imageTokens);
        minePrompt = model.tokenizer.encodePrompt(segments, { imageTokenCount: f.imageTokens, style: model.preset.tokenization }).ids;
        const r = await model.generate({ prompt: segments, image: features, options: { maxNewTokens: 5 } });
        mine = r.tokenIds;
        assert.ok(mine.length > 0);
        assert.equal(r.imageTokenCount, f.imageTokens);
        const decoderInputs = (model as unknown as { decoder: { info: { inputs: { name: string }[] } } }).decoder.info.inputs.map((i) => i.name);
        assert.equal(decoderInputs.includes('use_cache_branch'), name === 'tiny-random-LlavaForConditionalGeneration');
      } finally {
        model.close();
      }

      const tjs = await AutoModelForImageTextToText.from_pretrained(name, { device: 'cpu', dtype: 'fp32', local_files_only: true });
      try {
        const image = new RawImage(pixels, size, size, 3);
        const prompt = f.chatPrompt(QUESTION);
        let inputs: Record<string, Tensor>;
        if (f.processorExpands) {
          const processor = await AutoProcessor.from_pretrained(name, { local_files_only: true });
          inputs = await processor(image, prompt);
        } else {
          const imageProcessor = await AutoImageProcessor.from_pretrained(name, { local_files_only: true });
          const tokenizer = await AutoTokenizer.from_pretrained(name, { local_files_only: true });
          inputs = { ...(await imageProcessor(image)), ...tokenizer(prompt.replace('<image>', '<image>'.repeat(f.imageTokens))) };
        }
        assert.deepEqual(ids(inputs.input_ids), minePrompt);
        const out = (await tjs.generate({ ...inputs, max_new_tokens: 5, do_sample: false })) as Tensor;
        assert.deepEqual(mine, ids(out).slice(minePrompt.length));
      } finally {
        await tjs.dispose();
      }
    });
  }

  it("nanoLLaVA without image_token_index takes the tokenizer's <image> id", () => {
    const f = buildFixture(path.join(root, 'no-image-token'), 'nanoLLaVA', 5);
    const configFile = path.join(f.dir, 'config.json');
    const c = JSON.parse(fs.readFileSync(configFile, 'utf8'));
    delete c.image_token_index;
    fs.writeFileSync(configFile, JSON.stringify(c));
    assert.equal(openModelFolder(f.dir).config.image_token_index, f.tokenizer.imageTokenId);
  });

  it('bad folders: one error naming what was found and what is supported', () => {
    const f = buildFixture(path.join(root, 'bad'), 'llava-interleave-qwen-0.5b-hf', 3);
    const configFile = path.join(f.dir, 'config.json');
    const good = fs.readFileSync(configFile, 'utf8');
    const edit = (change: (c: Record<string, any>) => void) => {
      const c = JSON.parse(good);
      change(c);
      fs.writeFileSync(configFile, JSON.stringify(c));
    };
    try {
      edit((c) => (c.model_type = 'llava_next'));
      assert.throws(() => openModelFolder(f.dir), /model_type is "llava_next" \(LLaVA-NeXT .*\); supported: llava, llava_onevision, llava_qwen2/);
      edit((c) => (c.vision_config.model_type = 'dinov2'));
      assert.throws(() => openModelFolder(f.dir), /vision_config\.model_type "dinov2" is not supported \(supported: clip_vision_model, siglip_vision_model\)/);
      edit((c) => (c.text_config.model_type = 'phi3'));
      assert.throws(() => openModelFolder(f.dir), /text_config\.model_type "phi3" is not supported \(supported: llama, mistral, qwen2\)/);
      fs.writeFileSync(configFile, good);
      fs.renameSync(path.join(f.dir, 'onnx', 'embed_tokens.onnx'), path.join(f.dir, 'onnx', 'embed.onnx'));
      assert.throws(
        () => openModelFolder(f.dir),
        /model folder is missing onnx\/embed_tokens\.onnx \(onnx\/ holds .*embed\.onnx.*; a LLaVA model folder has vision_encoder, embed_tokens and decoder_model_merged/,
      );
    } finally {
      fs.writeFileSync(configFile, good);
    }
  });
});

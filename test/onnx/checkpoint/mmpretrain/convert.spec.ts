// Issue #8: the seed's three models, converted with `llava build --from-mmpretrain` from tiny random checkpoints
// with mmpretrain's key names, generate what mmpretrain's code would: the ids equal a float64 reference run with
// mmpretrain's semantics (squash, last ViT layer without final norm, CLS dropped, projector, chunk-wise prompt
// without BOS, features spliced at the <image> slot, <im_start>/<im_end> around it for v1), greedy for v1 caption
// and v1.5 VQA, beam search (3 beams, length penalty −1) for v1.5 caption. The model is loaded without naming a
// preset: the folder's config.json must select the seed's.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { openModelFolder } from '../../../../lib/model/folder';
import { LlavaModel } from '../../../../lib/pipeline/llava-model';
import { getRuntime } from '../../../../lib/runtime';
import { llamaTinyTokenizer, writeTinyTokenizer } from '../../../../lib/model/tiny-tokenizer';
import { clipVision, llavaLanguage } from '../../../support/checkpoint-writers/mmpretrain-tiny';
import { useTmpDir } from '../../../support/checkpoint-writers/tmp-dir';
import { torchSave } from '../../../support/checkpoint-writers/torch-save';
import { maxAbsDiff } from '../../../support/reference';
import { referenceGreedy } from '../../../support/reference-pipeline';
import { referenceBeamSearch } from './reference-beam-search';
import { ConvertedSeedModel, convertTinySeedModel, llavaCli, SeedModel, seedPixels, SeedRequest, seedRequest, seedTestImage } from './support';

/** Runs a one-input, one-output graph. */
async function runOnce(file: string, input: ort.Tensor): Promise<ort.Tensor> {
  const session = await ort.InferenceSession.create(file);
  try {
    const out = await session.run({ [session.inputNames[0]]: input });
    return out[session.outputNames[0]];
  } finally {
    await session.release();
  }
}

const EOS = 2;

describe('mmpretrain seed models: llava build --from-mmpretrain, then generation', function () {
  const tmp = useTmpDir('llava-seed');
  let image: Buffer;
  before(async () => {
    image = await seedTestImage();
  });
  after(() => getRuntime().dispose());

  async function withModel<T>(dir: string, fn: (m: LlavaModel) => Promise<T>): Promise<T> {
    const model = await LlavaModel.load(dir, { providers: 'cpu' });
    try {
      return await fn(model);
    } finally {
      model.close();
    }
  }

  function assertSeedFolder(converted: ConvertedSeedModel, name: SeedModel): void {
    const folder = openModelFolder(converted.dir);
    assert.equal(folder.layout, 'split');
    assert.ok(folder.files.projector?.endsWith('multi_modal_projector.onnx'));
    const meta = folder.config['node-red-contrib-llava'] as Record<string, unknown>;
    assert.equal(meta.preset, name);
    assert.equal(meta.layout, 'split');
  }

  /** v1 only: the tokenizer the folder got has <im_start>/<im_end> as special added tokens at mmpretrain's ids. */
  function assertImStartEnd(converted: ConvertedSeedModel): void {
    const json = JSON.parse(fs.readFileSync(path.join(converted.dir, 'tokenizer.json'), 'utf8'));
    const [start, end] = converted.imStartEnd!;
    for (const [content, id] of [
      ['<im_start>', start],
      ['<im_end>', end],
    ] as const) {
      const token = json.added_tokens.find((t: { content: string }) => t.content === content);
      assert.ok(token, `${content} is an added token`);
      assert.equal(token.id, id);
      assert.equal(token.special, true);
    }
  }

  /**
   * What the pipeline feeds the decoder is what mmpretrain feeds it: the same prompt ids and image slot, pixels
   * and (through the folder's vision encoder and projector) image embeddings. Returns mmpretrain's request.
   */
  async function assertSameInputs(model: LlavaModel, converted: ConvertedSeedModel, name: SeedModel, question?: string): Promise<SeedRequest> {
    const req = await seedRequest(converted, name, image, question);
    const encoded = model.tokenizer.encodePrompt(model.prompt({ question, image: true }), {
      imageTokenCount: req.imagePositions.length,
      style: model.preset.tokenization,
    });
    assert.deepEqual(encoded.imagePositions, req.imagePositions);
    assert.deepEqual(
      encoded.ids.map((id, i) => (req.imagePositions.includes(i) ? 0 : id)),
      req.ids,
    );

    const pixels = (await model.preprocess(image)).pixels;
    const refPixels = await seedPixels(image, model.preset.preprocess.size);
    assert.ok(maxAbsDiff(pixels, refPixels) < 1e-5, `squash preprocessing: max |Δ| ${maxAbsDiff(pixels, refPixels)}`);
    const files = openModelFolder(converted.dir).files;
    const size = model.preset.preprocess.size;
    const embeds = await runOnce(files.projector!, await runOnce(files.vision, new ort.Tensor('float32', pixels, [1, 3, size, size])));
    const scale = req.image.data.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    assert.ok(scale > 0.1, 'the reference image embeddings are not degenerate');
    assert.deepEqual(embeds.dims, req.image.dims);
    const diff = maxAbsDiff(embeds.data as Float32Array, req.image.data);
    assert.ok(diff < 1e-4 * Math.max(1, scale), `image embeddings: max |ONNX − reference| ${diff}`);
    return req;
  }

  for (const tokenizerHasImStartEnd of [true, false]) {
    const label = tokenizerHasImStartEnd ? 'a tokenizer that has <im_start>/<im_end>' : 'a tokenizer without them (added by the build)';
    it(`llava-7b-v1_caption with ${label}: greedy ids equal the mmpretrain reference`, async () => {
      const converted = convertTinySeedModel(tmp(), 'llava-7b-v1_caption', { tokenizerHasImStartEnd });
      assertSeedFolder(converted, 'llava-7b-v1_caption');
      assertImStartEnd(converted);
      await withModel(converted.dir, async (model) => {
        assert.equal(model.preset.name, 'llava-7b-v1_caption');
        const req = await assertSameInputs(model, converted, 'llava-7b-v1_caption');
        const [start, end] = converted.imStartEnd!;
        assert.equal(req.ids[req.imagePositions[0] - 1], start, '<im_start> right before the image rows');
        assert.equal(req.ids[req.imagePositions.at(-1)! + 1], end, '<im_end> right after them');
        assert.equal(req.imagePositions.length, 256, '224 px, patch 14, CLS dropped');
        const expected = referenceGreedy(converted.reference, req.ids, req.imagePositions, req.image, 12, [EOS]);
        const result = await model.describe({ image, options: { maxNewTokens: 12 } });
        assert.deepEqual(result.tokenIds, expected);
        assert.equal(result.imageTokenCount, 256);
      });
    });
  }

  it('llava-7b-v1.5_vqa: greedy ids equal the mmpretrain reference', async () => {
    const converted = convertTinySeedModel(tmp(), 'llava-7b-v1.5_vqa');
    assertSeedFolder(converted, 'llava-7b-v1.5_vqa');
    const question = 'What is the colour of the car?';
    await withModel(converted.dir, async (model) => {
      assert.equal(model.preset.name, 'llava-7b-v1.5_vqa');
      const req = await assertSameInputs(model, converted, 'llava-7b-v1.5_vqa', question);
      assert.equal(req.imagePositions.length, 576, '336 px, patch 14, CLS dropped');
      assert.notEqual(req.ids[0], 1, 'no BOS');
      const expected = referenceGreedy(converted.reference, req.ids, req.imagePositions, req.image, 12, [EOS]);
      const result = await model.describe({ image, question, options: { maxNewTokens: 12 } });
      assert.deepEqual(result.tokenIds, expected);
    });
  });

  it("llava-7b-v1.5_caption: the preset's beam search (3 beams, length penalty −1, 50 tokens) equals the float64 beam search", async () => {
    const converted = convertTinySeedModel(tmp(), 'llava-7b-v1.5_caption');
    assertSeedFolder(converted, 'llava-7b-v1.5_caption');
    await withModel(converted.dir, async (model) => {
      assert.equal(model.preset.name, 'llava-7b-v1.5_caption');
      const req = await assertSameInputs(model, converted, 'llava-7b-v1.5_caption');
      assert.deepEqual([model.preset.generation.numBeams, model.preset.generation.lengthPenalty, model.preset.generation.maxNewTokens], [3, -1, 50]);
      // The preset as it is, then with greedy's second token as the end token: a hypothesis that ends early competes
      // with 50-token ones under the length penalty.
      const greedy = referenceGreedy(converted.reference, req.ids, req.imagePositions, req.image, 50, [EOS]);
      const beam = referenceBeamSearch(converted.reference, req.ids, req.imagePositions, req.image, {
        numBeams: 3,
        lengthPenalty: -1,
        maxNewTokens: 50,
        eosIds: [EOS],
      });
      assert.notDeepEqual(beam, greedy, 'the beams find another answer than greedy on this input');
      assert.deepEqual((await model.describe({ image })).tokenIds, beam);

      const early = greedy[1];
      const withEarlyEos = referenceBeamSearch(converted.reference, req.ids, req.imagePositions, req.image, {
        numBeams: 3,
        lengthPenalty: -1,
        maxNewTokens: 50,
        eosIds: [early],
      });
      const result = await model.describe({ image, options: { eosTokenIds: [early] } });
      assert.deepEqual(result.tokenIds, withEarlyEos);
      assert.equal(result.finishReason, 'eos');
    });
  });

  it("the README's 7B recipe on a tiny checkpoint: --quantize int4 build, then llava generate --variant q4", async () => {
    const converted = convertTinySeedModel(tmp(), 'llava-7b-v1.5_vqa', { extraArgs: ['--quantize', 'int4'] });
    const folder = openModelFolder(converted.dir, 'q4');
    assert.ok(folder.files.decoder.endsWith('decoder_model_merged_q4.onnx'));
    assert.equal((folder.config['node-red-contrib-llava'] as Record<string, unknown>).preset, 'llava-7b-v1.5_vqa');
    const imageFile = path.join(tmp(), 'q4-image.png');
    fs.writeFileSync(imageFile, image);
    const r = llavaCli(
      'generate',
      '--model',
      converted.dir,
      '--variant',
      'q4',
      '--image',
      imageFile,
      '--prompt',
      'What is the colour of the car?',
      '--max-new-tokens',
      '4',
      '--provider',
      'cpu',
      '--json',
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.image_token_count, 576);
    assert.equal(out.token_ids.length, 4);
  });

  it('explains what is wrong, before writing anything', () => {
    const dir = fs.mkdtempSync(path.join(tmp(), 'bad-'));
    const tokenizerDir = path.join(dir, 'tokenizer');
    const tok = llamaTinyTokenizer();
    writeTinyTokenizer(tokenizerDir, tok);
    const llavaFile = path.join(dir, 'llava.pth');
    const clipFile = path.join(dir, 'clip.pth');
    torchSave(llavaFile, llavaLanguage(tok.vocabSize, 1));
    torchSave(clipFile, clipVision('visual.', 224));
    const out = path.join(dir, 'out');
    const build = (...args: string[]) =>
      llavaCli('build', '--from-mmpretrain', llavaFile, '--vision', clipFile, '--vision-heads', '2', '--text-heads', '3', '--out', out, ...args);
    const cases: Array<[string[], number, RegExp]> = [
      [['--tokenizer', tokenizerDir], 2, /--from-mmpretrain needs --preset NAME, one of llava-7b-v1_caption, llava-7b-v1.5_caption, llava-7b-v1.5_vqa$/],
      [['--tokenizer', tokenizerDir, '--preset', 'v1'], 2, /one of .* \(got "v1"\)$/],
      [['--tokenizer', tokenizerDir, '--preset', 'llava-7b-v1_caption', '--layout', 'transformers-js'], 2, /writes the split layout/],
      [['--preset', 'llava-7b-v1_caption'], 2, /needs --tokenizer DIR/],
      [['--tokenizer', dir, '--preset', 'llava-7b-v1_caption'], 1, /holds no tokenizer files/],
      // v1 needs two more embedding rows than this tokenizer has, for the <im_start>/<im_end> mmpretrain adds.
      [
        ['--tokenizer', tokenizerDir, '--preset', 'llava-7b-v1_caption'],
        1,
        /the tokenizer has \d+ tokens, so <im_start> would be added as id \d+, but the checkpoint's embeddings use id \d+/,
      ],
      [['--tokenizer', tokenizerDir, '--preset', 'llava-7b-v1.5_caption'], 1, /uses 336 px/],
    ];
    for (const [args, status, message] of cases) {
      const r = build(...args);
      assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr.trim(), message);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      assert.equal(fs.existsSync(out), false, `${args.join(' ')} wrote nothing`);
    }
    fs.rmSync(path.join(tokenizerDir, 'tokenizer.json'));
    const noJson = build('--tokenizer', tokenizerDir, '--preset', 'llava-7b-v1_caption');
    assert.match(noJson.stderr, /has no tokenizer.json/);
  });
});

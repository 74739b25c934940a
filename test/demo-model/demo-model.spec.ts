// The shipped demo model (demo-model/, made by scripts/demo-model) sees: it captions synthetic scenes it was not
// trained on, through the prompts a user gets (the model's own chat template, and the caption example's template).
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { LlavaModel } from '../../lib/pipeline/llava-model';
import { renderTemplate, CAPTION_INSTRUCTION } from '../../lib/pipeline/templates';
import { getRuntime } from '../../lib/runtime';
import { DEMO_QUESTIONS } from '../../scripts/demo-model/export-data';
import { DEMO_SCENE_SEED, HELD_OUT_SEED_START, renderScene, scene } from '../../scripts/demo-model/scenes';
import { repoRoot } from '../support/node-red';

const DEMO_DIR = path.join(repoRoot, 'demo-model');
const SCENES = 60;

describe('demo model: captions held-out synthetic scenes', function () {
  let model: LlavaModel;
  before(async () => {
    model = await LlavaModel.load(DEMO_DIR, { providers: 'cpu', threads: 1 });
  });
  after(async () => {
    model.close();
    await getRuntime().dispose();
  });

  /** Share of held-out scenes whose caption the model gets exactly, asking with `ask`; the misses for the message. */
  async function accuracy(ask: (png: Buffer) => Promise<string>): Promise<{ share: number; misses: string[] }> {
    const misses: string[] = [];
    for (let seed = HELD_OUT_SEED_START + 100; seed < HELD_OUT_SEED_START + 100 + SCENES; seed++) {
      const s = scene(seed);
      const text = (await ask(await renderScene(s))).trim();
      if (text !== s.caption) misses.push(`seed ${seed}: expected "${s.caption}", got "${text}"`);
    }
    return { share: 1 - misses.length / SCENES, misses };
  }

  it('is a real model folder of the package, small enough to ship', () => {
    const bytes = fs.readdirSync(path.join(DEMO_DIR, 'onnx')).reduce((sum, f) => sum + fs.statSync(path.join(DEMO_DIR, 'onnx', f)).size, 0);
    assert.ok(bytes < 8 * 2 ** 20, `demo model is ${bytes} bytes`);
    assert.equal(model.folder.config.vision_config.image_size, 64);
  });

  it('≥ 90 % exact with the model\'s own prompt (llava generate, a plain question)', async () => {
    for (const question of [undefined, DEMO_QUESTIONS[1]]) {
      const { share, misses } = await accuracy(async (png) => (await model.describe({ image: png, question })).text);
      assert.ok(share >= 0.9, `${(share * 100).toFixed(0)} % exact for ${question ?? 'the default question'}:\n${misses.join('\n')}`);
    }
  });

  it('≥ 90 % exact with the caption example\'s template (mmpretrain v1.5 caption)', async () => {
    const prompt = renderTemplate('mmpretrain_v1.5_caption', { question: CAPTION_INSTRUCTION, image: true });
    const { share, misses } = await accuracy(async (png) => {
      const embeds = await model.project(await model.encodeImage(await model.preprocess(png)));
      return (await model.generate({ prompt, image: embeds })).text;
    });
    assert.ok(share >= 0.9, `${(share * 100).toFixed(0)} % exact:\n${misses.join('\n')}`);
  });

  it('captions the picture npm start deploys', async () => {
    const s = scene(DEMO_SCENE_SEED);
    assert.equal((await model.describe({ image: await renderScene(s) })).text.trim(), s.caption);
  });
});

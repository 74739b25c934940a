// Issue #8 in Node-RED: a folder converted with `llava build --from-mmpretrain`, selected in the model config node
// with preset "auto", runs the caption example flow with the seed's settings (the folder's preset: squash resize,
// beam search for v1.5 caption) and captions exactly as the pipeline does.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { LlavaModel } from '../../../../lib/pipeline/llava-model';
import { useTmpDir } from '../../../support/checkpoint-writers/tmp-dir';
import { coreNode, helper, repoRoot, useNodeRedHelper } from '../../../support/node-red';
import { convertTinySeedModel, SeedModel, seedTestImage } from './support';

const llavaNodes = ['llava-model', 'llava-image-load', 'llava-clip-encode', 'llava-project', 'llava-prompt-template', 'llava-generate'].map((t) =>
  require(path.join(repoRoot, 'dist', 'nodes', `${t}.js`)),
);
const coreNodes = ['common/20-inject.js', 'common/21-debug.js', 'common/90-comment.js', 'storage/10-file.js'].map(coreNode);

type Msg = Record<string, any>;

describe('mmpretrain seed models in the caption example flow', function () {
  useNodeRedHelper();
  const tmp = useTmpDir('llava-seed-nr');
  let image: Buffer;
  let imageFile: string;

  before(async () => {
    image = await seedTestImage();
    imageFile = path.join(tmp(), 'image.png');
    fs.writeFileSync(imageFile, image);
  });

  /** examples/caption.json with the model config at `modelDir` (preset as shipped: "auto") and the prompt `template`. */
  async function caption(modelDir: string, template: string): Promise<Msg> {
    const example: Msg[] = JSON.parse(fs.readFileSync(path.join(repoRoot, 'examples', 'caption.json'), 'utf8'));
    const config = example.find((n) => n.type === 'llava-model')!;
    assert.equal(config.preset, 'auto', 'the example takes the preset from the model folder');
    config.modelDir = modelDir;
    config.provider = 'cpu'; // as the pipeline below runs
    example.find((n) => n.type === 'file in')!.filename = imageFile;
    example.find((n) => n.type === 'llava-prompt-template')!.preset = template;
    const generate = example.find((n) => n.type === 'llava-generate')!;
    assert.equal(generate.numBeams, '', 'beams come from the preset');
    generate.wires = [['out'], []];
    const tab = example.find((n) => n.z)!.z;
    await helper.load([...llavaNodes, ...coreNodes], [{ id: tab, type: 'tab' }, ...example, { id: 'out', type: 'helper', z: tab, x: 100, y: 100 }] as any);
    const done = new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no caption within 60 s')), 60_000);
      helper.getNode('out').once('input', (m: Msg) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
    helper.getNode(example.find((n) => n.type === 'inject')!.id).receive({ payload: Date.now() });
    return done;
  }

  const cases: Array<[SeedModel, string]> = [
    ['llava-7b-v1.5_caption', 'mmpretrain_v1.5_caption'], // the example as shipped
    ['llava-7b-v1_caption', 'mmpretrain_v1_caption'],
  ];
  for (const [name, template] of cases) {
    it(`${name}: the caption ids equal the pipeline's with the folder's preset`, async () => {
      const converted = convertTinySeedModel(tmp(), name);
      const msg = await caption(converted.dir, template);
      const model = await LlavaModel.load(converted.dir, { providers: 'cpu' });
      try {
        assert.equal(model.preset.name, name);
        const expected = await model.describe({ image });
        assert.ok(expected.tokenIds.length > 0);
        assert.deepEqual(msg.llava.generation.tokenIds, expected.tokenIds);
        assert.equal(msg.payload, expected.text);
        assert.equal(msg.llava.generation.imageTokens, name === 'llava-7b-v1_caption' ? 256 : 576);
      } finally {
        model.close();
      }
    });
  }
});

// scripts/start.js (`npm start`): the first-start demo flow is the caption example, deployable, pointed at the demo
// model and image, and says plainly that a random model's captions are meaningless.
import * as assert from 'assert';
import * as path from 'path';
import { repoRoot } from '../support/node-red';

const start = require(path.join(repoRoot, 'scripts', 'start.js'));

describe('package: npm start demo flow', () => {
  const flow: any[] = start.demoFlow('/models/demo', '/images/demo.png');

  it('is the caption example on one tab, pointed at the demo model and image', () => {
    const tab = flow.find((n) => n.type === 'tab');
    for (const n of flow) {
      if (n.type === 'tab' || n.type === 'llava-model') assert.strictEqual(n.z, undefined, n.id);
      else assert.strictEqual(n.z, tab.id, n.id);
    }
    const model = flow.find((n) => n.type === 'llava-model');
    assert.strictEqual(model.modelDir, '/models/demo');
    assert.strictEqual(flow.find((n) => n.type === 'file in').filename, '/images/demo.png');
    const chain = ['inject', 'file in', 'llava-image-load', 'llava-clip-encode', 'llava-project', 'llava-prompt-template', 'llava-generate', 'debug'];
    let node = flow.find((n) => n.type === 'inject');
    for (const type of chain.slice(1)) {
      node = flow.find((n) => n.id === node.wires[0][0]);
      assert.strictEqual(node.type, type);
    }
    assert.strictEqual(flow.find((n) => n.type === 'llava-prompt-template').preset, 'mmpretrain_v1.5_caption');
  });

  it('says the captions are meaningless where a user looks: tab, comment and debug node', () => {
    assert.match(flow.find((n) => n.type === 'tab').info, /meaningless/);
    assert.match(flow.find((n) => n.type === 'comment').name, /random demo model.*meaningless/);
    assert.match(flow.find((n) => n.type === 'debug' && n.active).name, /meaningless/);
  });
});

// scripts/start.js (`npm start`): the first-start demo flow is the caption example, deployable, pointed at the demo
// model and image, and says what the demo model knows.
import * as assert from 'assert';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DEMO_SCENE_SEED, scene } from '../../scripts/demo-model/scenes';
import { freePort, repoRoot } from '../support/node-red';

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

  it('says what the demo model knows where a user looks: the tab and the comment', () => {
    assert.match(flow.find((n) => n.type === 'tab').label, /demo model: it only knows coloured shapes/);
    assert.match(flow.find((n) => n.type === 'comment').name, /Demo: click the inject button/);
    assert.match(flow.find((n) => n.type === 'comment').info, /trained on synthetic pictures/);
    assert.strictEqual(flow.find((n) => n.type === 'debug' && n.name === 'caption').console, true);
  });
});

describe('package: npm start, first start (end to end)', function () {
  let userDir: string;
  before(() => {
    userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-start-'));
  });
  after(() => fs.rmSync(userDir, { recursive: true, force: true }));

  it('deploys the caption flow against the demo model and captions the demo picture correctly on inject', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [path.join(repoRoot, 'scripts', 'start.js')], {
      env: { ...process.env, PORT: String(port), LLAVA_USER_DIR: userDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stdout.on('data', (d) => (log += d));
    child.stderr.on('data', (d) => (log += d));
    const waitFor = async (re: RegExp, what: string, ms: number) => {
      const end = Date.now() + ms;
      while (!re.test(log)) {
        if (child.exitCode !== null || Date.now() > end) throw new Error(`no ${what}:\n${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    try {
      await waitFor(/Started flows/, 'flow start', 60_000);
      assert.match(log, /deployed the caption example against the demo model in demo-model/);
      const res = await fetch(`http://127.0.0.1:${port}/inject/cap00000000000i`, { method: 'POST' });
      assert.strictEqual(res.status, 200);
      // the debug node also logs to the console: "[debug:caption] <text>"
      const expected = scene(DEMO_SCENE_SEED).caption;
      await waitFor(/\[debug:caption\] \S/, 'caption', 60_000);
      assert.match(log, new RegExp(`\\] ${expected}\\s*$`, 'm'), `the demo caption is "${expected}"`);
      assert.doesNotMatch(log, /\[error\]/);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  });
});

// The llava-model config node with a Hub id, and its admin endpoints, in Node-RED's test helper against the Hub
// look-alike: nodes using the model show the download's percentage, the dialog's Download starts, follows and
// cancels one, and the node's token credential reaches the Hub only.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { helper, repoRoot, useNodeRedHelper } from '../support/node-red';
import { HubServer, startHubServer } from '../support/hub-server';
import { multiVariantRepoDir, tempCache } from './support';

const REPO = 'llava-test/tiny-llava';
const llavaNodes = ['llava-model', 'llava-clip-encode'].map((t) => require(path.join(repoRoot, 'dist', 'nodes', `${t}.js`)));

function flow(modelDir: string, variant = 'q4'): any[] {
  return [
    { id: 'tab', type: 'tab' },
    { id: 'model', type: 'llava-model', modelDir, provider: 'cpu', threads: 1, variant, preset: 'auto', imageRoots: '' },
    { id: 'encode', type: 'llava-clip-encode', model: 'model', z: 'tab', x: 100, y: 100, wires: [[]] },
  ];
}

async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('llava-model with a Hub id (Node-RED)', function () {
  let server: HubServer;
  let repoDir: string;
  let cacheDir: string;
  const saved = { HF_ENDPOINT: process.env.HF_ENDPOINT, HF_HUB_CACHE: process.env.HF_HUB_CACHE, HF_TOKEN: process.env.HF_TOKEN };

  useNodeRedHelper();
  before(async () => {
    repoDir = multiVariantRepoDir();
    server = await startHubServer([{ repo: REPO, dir: repoDir }]);
    process.env.HF_ENDPOINT = server.endpoint;
    delete process.env.HF_TOKEN;
  });
  beforeEach(() => {
    cacheDir = tempCache();
    process.env.HF_HUB_CACHE = cacheDir;
    server.faults = {};
    server.token = undefined;
    server.requests.length = 0;
  });
  after(async () => {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    await server.close();
    fs.rmSync(repoDir, { recursive: true, force: true });
  });

  it('a deployed Hub id downloads first: the nodes using it show "downloading N %", then ready', async () => {
    server.faults.chunkDelayMs = 40;
    await helper.load(llavaNodes, flow(REPO));
    const encode = helper.getNode('encode') as unknown as { status: { args: Array<[{ text?: string }]> } };
    const texts = () => encode.status.args.map((a) => a[0].text ?? '');
    await until('ready (cpu)', () => texts().includes('ready (cpu)'), 60_000);
    const percents = texts()
      .filter((t) => t.startsWith('downloading'))
      .map((t) => Number(/^downloading (\d+) %$/.exec(t)?.[1]));
    assert.ok(
      percents.some((p) => p > 0 && p < 100),
      texts().join(' | '),
    );
    assert.deepEqual(
      percents,
      [...percents].sort((a, b) => a - b),
      'the percentage only grows',
    );
    assert.ok(
      fs.existsSync(path.join(cacheDir, 'models--llava-test--tiny-llava', 'snapshots', server.repo(REPO).commit, 'onnx', 'decoder_model_merged_q4.onnx')),
    );
  });

  it('admin endpoints: known models, start a download and follow it to done, cancel one, refuse a bad id', async () => {
    await helper.load(llavaNodes, []);
    const known = await helper.request().get('/llava-model/hub').expect(200);
    assert.ok(known.body.known.some((m: { repo: string; downloadSize: string }) => m.repo === 'llava-hf/llava-onevision-qwen2-0.5b-ov-hf' && m.downloadSize));

    server.faults.chunkDelayMs = 200;
    const started = await helper.request().post('/llava-model/hub/downloads').send({ model: REPO, variant: 'fp32' }).expect(200);
    assert.equal(started.body.state, 'running');
    const again = await helper.request().post('/llava-model/hub/downloads').send({ model: REPO, variant: 'fp32' }).expect(200);
    assert.equal(again.body.id, started.body.id, 'a second request joins the running download');
    const stateOf = async (id: string) => (await helper.request().get('/llava-model/hub')).body.downloads.find((d: { id: string }) => d.id === id);
    await until('the decoder under way', async () => /\.onnx$/.test((await stateOf(started.body.id)).file ?? ''));
    const cancelled = await helper.request().delete(`/llava-model/hub/downloads/${started.body.id}`).expect(200);
    assert.equal(cancelled.body.id, started.body.id);
    const state = await until('cancelled', async () => {
      const s = await stateOf(started.body.id);
      return s.state === 'cancelled' && s;
    });
    const blobs = path.join(cacheDir, 'models--llava-test--tiny-llava', 'blobs');
    assert.equal(fs.readdirSync(blobs).filter((f) => f.endsWith('.incomplete')).length, 1, 'the partial file is kept');
    assert.ok(state.bytes > 0);

    server.faults.chunkDelayMs = 0;
    const resumed = await helper.request().post('/llava-model/hub/downloads').send({ model: REPO, variant: 'fp32' }).expect(200);
    assert.notEqual(resumed.body.id, started.body.id);
    const done = await until('done', async () => {
      const s = await stateOf(resumed.body.id);
      return s.state === 'done' && s;
    });
    assert.equal(done.dir, path.join(cacheDir, 'models--llava-test--tiny-llava', 'snapshots', server.repo(REPO).commit));
    assert.ok(
      server.requests.some((r) => r.range?.startsWith('bytes=')),
      'resumed with a Range',
    );

    const bad = await helper.request().post('/llava-model/hub/downloads').send({ model: '../../etc' }).expect(400);
    assert.match(bad.body.error, /not a Hub model id/);
    const badVariant = await helper.request().post('/llava-model/hub/downloads').send({ model: REPO, variant: 'q3' }).expect(400);
    assert.match(badVariant.body.error, /unknown weight variant "q3"/);
    await helper.request().delete('/llava-model/hub/downloads/nope').expect(404);
  });

  it("the node's token credential goes to the Hub, not to the CDN; without it the status says a token is needed", async () => {
    server.token = 'hf_node_secret';
    await helper.load(llavaNodes, flow(REPO));
    const model = helper.getNode('model') as unknown as { modelState: { state: string; error?: Error } };
    const failed = await until('the load error', () => model.modelState.state === 'error' && model.modelState.error);
    assert.match(failed.message, /llava-test\/tiny-llava needs a Hub token \(401\)/);
    await helper.unload();
    server.requests.length = 0;
    await helper.load(llavaNodes, flow(REPO), { model: { token: 'hf_node_secret' } });
    const withToken = helper.getNode('encode') as unknown as { status: { args: Array<[{ text?: string }]> } };
    await until('ready (cpu)', () => withToken.status.args.some((a) => a[0].text === 'ready (cpu)'), 60_000);
    assert.ok(server.requests.filter((r) => r.server === 'hub').every((r) => r.authorization === 'Bearer hf_node_secret'));
    assert.ok(server.requests.filter((r) => r.server === 'cdn').every((r) => r.authorization === undefined));
  });
});

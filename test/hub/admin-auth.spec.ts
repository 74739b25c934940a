// The Download admin endpoint behind Node-RED's admin login (real Node-RED, real HTTP): a user with read-only
// permissions sees the model list but is refused a download, and nothing is fetched or written; a user granted
// llava-model.write starts one and it completes.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { HubServer, startHubServer } from '../support/hub-server';
import { nodeRedDir, RunningNodeRed, startNodeRed } from '../support/node-red';
import { multiVariantRepoDir, tempCache } from './support';

const REPO = 'llava-test/tiny-llava';

describe('Hub download endpoint under adminAuth (real Node-RED)', function () {
  let server: HubServer;
  let repoDir: string;
  let cacheDir: string;
  let hfHome: string;
  let nr: RunningNodeRed;

  before(async () => {
    repoDir = multiVariantRepoDir();
    cacheDir = tempCache();
    hfHome = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-hf-home-'));
    server = await startHubServer([{ repo: REPO, dir: repoDir }]);
    const bcrypt = require(require.resolve('bcryptjs', { paths: [nodeRedDir] })) as { hashSync(p: string, rounds: number): string };
    const password = bcrypt.hashSync('secret', 4);
    nr = await startNodeRed({
      env: { HF_ENDPOINT: server.endpoint, HF_HUB_CACHE: cacheDir, HF_HOME: hfHome, HF_TOKEN: '', HF_HUB_OFFLINE: '' },
      settings: {
        adminAuth: {
          type: 'credentials',
          users: [
            { username: 'viewer', password, permissions: 'read' },
            { username: 'fetcher', password, permissions: ['read', 'llava-model.write'] },
          ],
        },
      },
    });
  });
  after(async () => {
    await nr?.stop();
    await server?.close();
    for (const d of [repoDir, cacheDir, hfHome]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  async function login(username: string): Promise<Record<string, string>> {
    const res = await fetch(`${nr.url}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: 'node-red-admin', grant_type: 'password', scope: '', username, password: 'secret' }),
    });
    assert.equal(res.status, 200, `${username} logs in`);
    return { authorization: `Bearer ${((await res.json()) as { access_token: string }).access_token}` };
  }

  const startDownload = (headers: Record<string, string>) =>
    fetch(`${nr.url}/llava-model/hub/downloads`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ model: REPO, variant: 'q4' }),
    });

  async function downloads(headers: Record<string, string>): Promise<{ id: string; state: string; dir?: string }[]> {
    const res = await fetch(`${nr.url}/llava-model/hub`, { headers });
    assert.equal(res.status, 200);
    return ((await res.json()) as { downloads: { id: string; state: string; dir?: string }[] }).downloads;
  }

  it('read-only: refused (and without a login), nothing fetched or written; with llava-model.write: downloads', async () => {
    assert.equal((await startDownload({})).status, 401, 'no login');
    const viewer = await login('viewer');
    assert.equal((await startDownload(viewer)).status, 401, 'read-only user');
    assert.equal((await fetch(`${nr.url}/llava-model/hub/downloads/x`, { method: 'DELETE', headers: viewer })).status, 401);
    assert.deepEqual(await downloads(viewer), [], 'the read-only user may look: no download exists');
    assert.equal(server.requests.length, 0, 'the Hub was not asked');
    assert.deepEqual(fs.readdirSync(cacheDir), [], 'nothing written to the cache');

    const fetcher = await login('fetcher');
    const started = await startDownload(fetcher);
    assert.equal(started.status, 200, await started.clone().text());
    const { id } = (await started.json()) as { id: string };
    const deadline = Date.now() + 60_000;
    let done: { state: string; dir?: string } | undefined;
    while (!done && Date.now() < deadline) {
      const d = (await downloads(viewer)).find((x) => x.id === id);
      if (d && d.state !== 'running') done = d;
      else await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(done?.state, 'done', JSON.stringify(done));
    assert.equal(done?.dir, path.join(cacheDir, 'models--llava-test--tiny-llava', 'snapshots', server.repo(REPO).commit));
    assert.ok(fs.existsSync(path.join(done!.dir!, 'onnx', 'decoder_model_merged_q4.onnx')));
  });
});

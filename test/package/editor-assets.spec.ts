// A real Node-RED (the CLI, as `npm start` runs it) loads this package from the working tree and its editor API
// serves our node definitions, icons and example flows. This proves the build puts .html and icons/ where Node-RED
// looks (next to each node's .js) and that package.json's node-red section is right.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { RunningNodeRed, repoRoot, startNodeRed } from '../support/node-red';

const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
const moduleName: string = pkg.name;
const types = Object.keys(pkg['node-red'].nodes);
const iconFiles = fs.readdirSync(path.join(repoRoot, 'icons')).sort();

async function get(nr: RunningNodeRed, url: string, accept = 'application/json') {
  const res = await fetch(nr.url + url, { headers: { Accept: accept, 'Node-RED-API-Version': 'v2' } });
  assert.strictEqual(res.status, 200, `GET ${url} → ${res.status}\n${nr.log()}`);
  return res;
}

describe('package: Node-RED serves this package', function () {
  let nr: RunningNodeRed;

  before(async function () {
    nr = await startNodeRed();
  });
  after(async function () {
    await nr?.stop();
  });

  it('GET /nodes lists the module with all six types loaded, without errors', async () => {
    const sets: any[] = await (await get(nr, '/nodes')).json();
    const ours = sets.filter((s) => s.module === moduleName);
    assert.deepStrictEqual(
      ours
        .map((s) => s.types)
        .flat()
        .sort(),
      [...types].sort(),
      nr.log(),
    );
    for (const set of ours) {
      assert.strictEqual(set.err, undefined, `${set.id} failed to load: ${JSON.stringify(set.err)}`);
      assert.strictEqual(set.enabled, true, set.id);
    }
  });

  it('GET /nodes (html) carries every registerType, palette nodes in category LLaVA', async () => {
    const html = await (await get(nr, '/nodes', 'text/html')).text();
    for (const type of types) {
      const at = html.indexOf(`RED.nodes.registerType('${type}'`);
      assert.ok(at >= 0, `${type} definition served`);
      const category = /category:\s*'([^']+)'/.exec(html.slice(at))![1];
      assert.strictEqual(category, type === 'llava-model' ? 'config' : 'LLaVA', type);
    }
  });

  it('GET /icons lists our icons and GET /icons/<module>/<file> returns each SVG', async () => {
    const list: Record<string, string[]> = await (await get(nr, '/icons')).json();
    assert.deepStrictEqual([...(list[moduleName] ?? [])].sort(), iconFiles, JSON.stringify(Object.keys(list)));
    for (const file of iconFiles) {
      const res = await get(nr, `/icons/${moduleName}/${file}`, 'image/svg+xml');
      assert.match(res.headers.get('content-type') ?? '', /svg/);
      assert.strictEqual(await res.text(), fs.readFileSync(path.join(repoRoot, 'icons', file), 'utf8'));
    }
  });

  it('GET /resources/<module>/llava-editor.js serves the editor script the nodes share', async () => {
    const res = await get(nr, `/resources/${moduleName}/llava-editor.js`, '*/*');
    assert.match(res.headers.get('content-type') ?? '', /javascript/);
    assert.strictEqual(await res.text(), fs.readFileSync(path.join(repoRoot, 'resources', 'llava-editor.js'), 'utf8'));
    const html = await (await get(nr, '/nodes', 'text/html')).text();
    assert.ok(html.includes(`<script src="resources/${moduleName}/llava-editor.js"></script>`), 'the node definitions load it from there');
  });

  it('lists the example flows under Import ▸ Examples', async () => {
    const examples: any = await (await get(nr, `/library/examples/flows/${moduleName}`)).json();
    const names = examples.map((e: any) => (typeof e === 'string' ? e : e.fn)).sort();
    assert.deepStrictEqual(names, ['caption', 'dashboard', 'doorbell', 'mqtt-camera', 'mqtt-shared-cameras', 'vqa']);
  });
});

// The package as a Node-RED user gets it: `npm pack`, installed into a clean user folder the way the palette
// manager installs (its own package.json, `npm install --save --omit=dev …` run there), offline where the npm cache
// allows and with NuGet unreachable, then Node-RED (the devDependency 4.1, or LLAVA_NODE_RED: 5 on Node 22 in CI)
// started from that folder. Then node-red-dev, the Flow Library's scorecard tool, on the installed package.
// One install (about a minute: onnxruntime-node alone unpacks to ~290 MB); the npm cache makes it offline.
import * as assert from 'assert';
import { execFileSync, spawnSync, SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { freePort, nodeRedDir, repoRoot, RunningNodeRed, startNodeRed } from '../support/node-red';

const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
const NODE_TYPES = Object.keys(pkg['node-red'].nodes).sort();
/** What Node-RED's palette manager runs in the user folder (@node-red/registry installer.js, Node-RED 4.1). */
const PALETTE_MANAGER_ARGS = ['--no-audit', '--no-update-notifier', '--no-fund', '--save', '--save-prefix=~', '--omit=dev', '--engine-strict'];
/** The line the README tells palette-manager and offline users to put in the user folder's .npmrc. */
const NPMRC_SKIP_CUDA = 'onnxruntime-node-install=skip';
const CUDA_LIBS = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so', 'libonnxruntime_providers_tensorrt.so'];

/** A 127.0.0.1 port nothing listens on: a proxy there makes every request through it fail at once (no network). */
async function closedPort(): Promise<number> {
  const port = await freePort();
  await new Promise<void>((resolve) => {
    const probe = net.connect(port, '127.0.0.1');
    probe.once('error', () => resolve());
    probe.once('connect', () => assert.fail(`port ${port} is open`));
  });
  return port;
}

/**
 * This process's environment without npm's npm_* variables: under `npm test` they carry this repository's npm
 * settings (its .npmrc skips the CUDA download), which would leak into the user's install and hide what it does.
 */
const userEnv: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));

function npm(args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs = 8 * 60_000): SpawnSyncReturns<string> {
  return spawnSync('npm', args, { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20, timeout: timeoutMs });
}

/** What went wrong with an npm run, for assertion messages. */
const npmFailure = (run: SpawnSyncReturns<string>) => `exit ${run.status}${run.signal ? ` (${run.signal}: timed out)` : ''}:\n${run.stdout}\n${run.stderr}`;

describe('package: installed as a Node-RED user would (npm pack → a clean user folder → Node-RED)', function () {
  this.timeout(10 * 60_000);
  let work: string;
  let packed: { filename: string; size: number; unpackedSize: number; files: { path: string; size: number }[] };
  let userDir: string;
  let nuGetBlocked: NodeJS.ProcessEnv;
  let installed = false;

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-install-'));
    // The build is done (npm test builds first); `npm pack` alone would run `prepare` and build again.
    [packed] = JSON.parse(
      execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], {
        cwd: repoRoot,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }),
    );
    // onnxruntime-node's install script downloads through global-agent, which reads GLOBAL_AGENT_HTTPS_PROXY (npm does
    // not): NuGet is unreachable for the script, the npm registry (or its cache) stays reachable for npm.
    const proxy = `http://127.0.0.1:${await closedPort()}`;
    nuGetBlocked = { ...userEnv, GLOBAL_AGENT_HTTPS_PROXY: proxy, GLOBAL_AGENT_HTTP_PROXY: proxy };
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it('the tarball holds the nodes, icons, examples and docs, and no tests, source maps, caches or bench results', () => {
    const files = packed.files.map((f) => f.path);
    for (const [type, js] of Object.entries<string>(pkg['node-red'].nodes)) {
      assert.ok(files.includes(js), js);
      assert.ok(files.includes(js.replace(/\.js$/, '.html')), `${type}.html`);
    }
    for (const icon of fs.readdirSync(path.join(repoRoot, 'icons'))) assert.ok(files.includes(`dist/nodes/icons/${icon}`), icon);
    for (const f of ['package.json', 'README.md', 'LICENSE', 'dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/lib/cli.js']) assert.ok(files.includes(f), f);
    for (const f of fs.readdirSync(path.join(repoRoot, 'resources'))) assert.ok(files.includes(`resources/${f}`), `resources/${f} (the shared editor script)`);
    const stray = files.filter((f) =>
      /^(dist\/)?(test|bench|scripts)\/|\.map$|\.tsbuildinfo$|^\.|\/\.|\.tgz$|\.onnx$|\.safetensors$|^(lib|nodes)\/.*\.ts$/.test(f),
    );
    assert.deepStrictEqual(stray, []);
    assert.ok(
      files.every((f) => /^(dist\/(lib|nodes)\/|resources\/|examples\/[a-z-]+\.json$|package\.json$|README\.md$|LICENSE$)/.test(f)),
      'only dist/lib, dist/nodes, resources, examples and docs',
    );
    // Sanity bounds (0.18 MB packed, 0.7 MB unpacked, ~200 files when written): a model, a cache or a test
    // fixture that slips in breaks them.
    assert.ok(packed.size < 1_000_000, `packed ${packed.size} bytes`);
    assert.ok(packed.unpackedSize < 3_000_000, `unpacked ${packed.unpackedSize} bytes`);
    assert.ok(files.length < 600, `${files.length} files`);
  });

  it('installs into a clean user folder as the palette manager does: offline from the npm cache, NuGet unreachable', function () {
    userDir = path.join(work, 'node-red');
    fs.mkdirSync(userDir);
    // What Node-RED writes into a new user folder, plus the .npmrc line the README gives.
    fs.writeFileSync(
      path.join(userDir, 'package.json'),
      JSON.stringify({ name: 'node-red-project', description: 'A Node-RED Project', version: '0.0.1', private: true, dependencies: {} }, null, 4),
    );
    fs.writeFileSync(path.join(userDir, '.npmrc'), `${NPMRC_SKIP_CUDA}\n`);
    const tarball = path.join(work, packed.filename);
    const args = ['install', ...PALETTE_MANAGER_ARGS, '--', tarball];
    // Offline: every package from the npm cache (whatever the network). A cache without them (a fresh machine's
    // first run) is filled once from the registry, then this is offline on every later run.
    let run = npm([...args.slice(0, 1), '--offline', ...args.slice(1)], userDir, {
      ...nuGetBlocked,
      HTTPS_PROXY: nuGetBlocked.GLOBAL_AGENT_HTTPS_PROXY,
      HTTP_PROXY: nuGetBlocked.GLOBAL_AGENT_HTTPS_PROXY,
    });
    if (run.status !== 0 && /ENOTCACHED/.test(run.stderr)) {
      console.log('      (the npm cache lacks some packages: this first install fills it from the registry; later runs are offline)');
      run = npm([...args.slice(0, 1), '--prefer-offline', ...args.slice(1)], userDir, nuGetBlocked);
    }
    assert.strictEqual(run.status, 0, `npm install: ${npmFailure(run)}`);
    installed = true;
    const saved = JSON.parse(fs.readFileSync(path.join(userDir, 'package.json'), 'utf8'));
    assert.match(saved.dependencies['node-red-contrib-llava'], /node-red-contrib-llava-0\.1\.0\.tgz$/);
    const here = path.join(userDir, 'node_modules', 'node-red-contrib-llava');
    assert.strictEqual(JSON.parse(fs.readFileSync(path.join(here, 'package.json'), 'utf8')).version, pkg.version);
    for (const f of Object.values<string>(pkg['node-red'].nodes)) assert.ok(fs.existsSync(path.join(here, f)), f);
    // No dev dependency came along (Node-RED, mocha, transformers.js, playwright are the project's, not the user's).
    for (const dev of ['node-red', 'mocha', '@huggingface/transformers', 'playwright-core', 'typescript']) {
      assert.ok(!fs.existsSync(path.join(userDir, 'node_modules', dev)), `${dev} was installed`);
    }
    // The CPU build, without the CUDA provider libraries the script would have fetched from NuGet.
    const ortBin = path.join(userDir, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', process.platform, process.arch);
    assert.ok(fs.existsSync(path.join(ortBin, 'onnxruntime_binding.node')), 'onnxruntime-node binding');
    for (const lib of CUDA_LIBS) assert.ok(!fs.existsSync(path.join(ortBin, lib)), `${lib} was downloaded`);
  });

  it("onnxruntime-node's install script: without the setting it fails when NuGet is unreachable; the .npmrc line or the variable skips it", function () {
    if (!installed) this.skip();
    if (`${process.platform}/${process.arch}` !== 'linux/x64') this.skip(); // the CUDA download exists on Linux x64 only
    const ort = path.join(userDir, 'node_modules', 'onnxruntime-node');
    // As npm runs it for a dependency (npm_config_* carries the user's npm settings; not the project's own install).
    const script = (env: NodeJS.ProcessEnv) =>
      spawnSync(process.execPath, ['script/install.js'], {
        cwd: ort,
        env: { ...nuGetBlocked, npm_config_local_prefix: userDir, npm_package_json: path.join(ort, 'package.json'), ...env },
        encoding: 'utf8',
        timeout: 60_000,
      });
    const plain = script({});
    assert.notStrictEqual(plain.status, 0, 'the download was attempted and failed');
    assert.match(plain.stderr, /ECONNREFUSED|ENOTFOUND|socket hang up|Failed to/, plain.stderr);
    assert.strictEqual(script({ npm_config_onnxruntime_node_install: 'skip' }).status, 0, 'the .npmrc line (npm passes it as npm_config_…)');
    assert.strictEqual(script({ ONNXRUNTIME_NODE_INSTALL: 'skip' }).status, 0, 'ONNXRUNTIME_NODE_INSTALL=skip');
  });

  describe('from a clone, built on install (opt-in: LLAVA_TEST_SOURCE_INSTALLS=1; minutes, the clone installs its dev dependencies)', function () {
    this.timeout(40 * 60_000);
    before(function () {
      if (!process.env.LLAVA_TEST_SOURCE_INSTALLS) this.skip();
    });
    /** A clean user folder with the README's .npmrc line, where `spec` is installed as the palette manager does. */
    const installInto = (name: string, spec: string) => {
      const dir = path.join(work, name);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'node-red-project', version: '0.0.1', private: true, dependencies: {} }));
      fs.writeFileSync(path.join(dir, '.npmrc'), `${NPMRC_SKIP_CUDA}\n`);
      const run = npm(['install', '--prefer-offline', ...PALETTE_MANAGER_ARGS, '--', spec], dir, nuGetBlocked, 30 * 60_000);
      assert.strictEqual(run.status, 0, `npm install ${spec}: ${npmFailure(run)}`);
      return path.join(dir, 'node_modules', 'node-red-contrib-llava');
    };
    /** The installed package loads: every node module and the library, from the user folder's node_modules. */
    const assertLoads = (here: string) => {
      for (const f of Object.values<string>(pkg['node-red'].nodes)) assert.ok(fs.existsSync(path.join(here, f)), f);
      const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(here, pkg.main))}); console.log('loaded')`], { encoding: 'utf8' });
      assert.strictEqual(probe.stdout.trim(), 'loaded', probe.stderr);
    };

    it('a git URL: npm clones it, installs its dev dependencies and runs `prepare` (the build)', () => {
      const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
      const here = installInto('from-git', `git+file://${repoRoot}#${head}`);
      assertLoads(here);
      assert.ok(!fs.existsSync(path.join(here, 'test')) && !fs.existsSync(path.join(here, 'dist', 'test')), 'packed as the tarball is: no tests');
    });

    it('a folder: npm links it and runs its `prepare` there (the clone has run `npm install`)', () => {
      const here = installInto('from-folder', repoRoot);
      assert.strictEqual(fs.realpathSync(here), fs.realpathSync(repoRoot), 'a link to the clone');
      assertLoads(here);
    });
  });

  describe('Node-RED started from that user folder', function () {
    let nr: RunningNodeRed;
    before(async function () {
      if (!installed) this.skip();
      nr = await startNodeRed({ userDir, timeoutMs: 120_000 });
    });
    after(async () => {
      await nr?.stop();
    });

    it('loads the six node types from node_modules, with no errors', async () => {
      // The Node-RED in use: the devDependency (4.1 on this Node), or LLAVA_NODE_RED (CI: 5 on Node 22).
      const settings: { version: string } = await (await fetch(`${nr.url}/settings`)).json();
      // (Node-RED adds "-git" to its version when it runs from inside a git checkout, as the devDependency here does.)
      assert.strictEqual(settings.version.replace(/-git$/, ''), JSON.parse(fs.readFileSync(path.join(nodeRedDir, 'package.json'), 'utf8')).version);
      const sets: { module: string; version: string; types: string[]; enabled: boolean; err?: string }[] = await (
        await fetch(`${nr.url}/nodes`, { headers: { Accept: 'application/json' } })
      ).json();
      const ours = sets.filter((s) => s.module === 'node-red-contrib-llava');
      assert.deepStrictEqual(ours.flatMap((s) => s.types).sort(), NODE_TYPES);
      for (const s of ours) assert.deepStrictEqual([s.enabled, s.err ?? null, s.version], [true, null, pkg.version], JSON.stringify(s));
      const info: { nodes?: string[] } = await (await fetch(`${nr.url}/nodes/node-red-contrib-llava`, { headers: { Accept: 'application/json' } })).json();
      assert.ok(info.nodes && info.nodes.length === NODE_TYPES.length, JSON.stringify(info));
      assert.doesNotMatch(nr.log(), /\[(error|warn)\].*llava|Waiting for missing types/i, nr.log());
    });

    it('serves their editor definitions, help, icons and the shared editor script', async () => {
      const html = await (await fetch(`${nr.url}/nodes`, { headers: { Accept: 'text/html' } })).text();
      for (const type of NODE_TYPES) {
        assert.ok(html.includes(`RED.nodes.registerType('${type}'`) || html.includes(`RED.nodes.registerType("${type}"`), `${type} registers`);
        assert.match(html, new RegExp(`data-help-name="${type}"[^>]*>\\s*<p>[^<]{10,}`), `${type} help`);
      }
      for (const icon of fs.readdirSync(path.join(repoRoot, 'icons'))) {
        const res = await fetch(`${nr.url}/icons/node-red-contrib-llava/${icon}`);
        assert.strictEqual(res.status, 200, icon);
        assert.match(await res.text(), /^<svg[\s>]/, `${icon} is the SVG`);
      }
      for (const f of fs.readdirSync(path.join(repoRoot, 'resources'))) {
        const res = await fetch(`${nr.url}/resources/node-red-contrib-llava/${f}`);
        assert.strictEqual(res.status, 200, f);
        assert.strictEqual(await res.text(), fs.readFileSync(path.join(repoRoot, 'resources', f), 'utf8'), f);
      }
    });

    it('lists the examples under Import ▸ Examples and serves each flow', async () => {
      const examples = (await fs.promises.readdir(path.join(repoRoot, 'examples'))).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
      const listing: { fn: string }[] = await (await fetch(`${nr.url}/library/examples/flows/node-red-contrib-llava`)).json();
      assert.deepStrictEqual(listing.map((e) => e.fn).sort(), examples.sort(), JSON.stringify(listing));
      for (const name of examples) {
        const flow = await (await fetch(`${nr.url}/library/examples/flows/node-red-contrib-llava/${name}`)).json();
        assert.deepStrictEqual(flow, JSON.parse(fs.readFileSync(path.join(repoRoot, 'examples', `${name}.json`), 'utf8')), name);
      }
    });
  });

  it('node-red-dev validate (the Flow Library scorecard) passes every check on the installed package', async function () {
    if (!installed) this.skip();
    const here = path.join(userDir, 'node_modules', 'node-red-contrib-llava');
    const scorecardFile = path.join(work, 'scorecard.json');
    const reachable = (url: string) =>
      fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(5_000) }).then(
        (r) => r.ok,
        () => false,
      );
    // D02 and D03 ask the npm registry for the dependency tree and the latest versions: without it they cannot run.
    if (!(await reachable('https://registry.npmjs.org/onnxruntime-node'))) {
      console.log('      (the npm registry is unreachable: node-red-dev D02 and D03 need it; not run)');
      this.skip();
    }
    // P08 and N01 read https://catalogue.nodered.org/catalogue.json; offline they read an empty catalogue (see the fixture).
    const catalogueReachable = await reachable('https://catalogue.nodered.org/catalogue.json');
    const preload = catalogueReachable ? [] : ['-r', path.join(__dirname, 'fixtures', 'offline-catalogue.js')];
    if (!catalogueReachable) console.log('      (catalogue.nodered.org unreachable: P08 and N01 checked against an empty catalogue)');
    const cli = path.join(path.dirname(require.resolve('node-red-dev/package.json')), 'bin', 'run');
    const run = spawnSync(process.execPath, [...preload, cli, 'validate', '-p', here, '-o', scorecardFile], { encoding: 'utf8', timeout: 5 * 60_000 });
    assert.ok(fs.existsSync(scorecardFile), `no scorecard:\n${run.stdout}\n${run.stderr}`);
    const scorecard = JSON.parse(fs.readFileSync(scorecardFile, 'utf8'));
    const checks = Object.entries<{ test: boolean }>(scorecard).filter(([k]) => /^[A-Z]\d\d$/.test(k));
    const failed = checks.filter(([, v]) => v.test !== true);
    assert.deepStrictEqual(failed, [], `${run.stdout}\n${run.stderr}`);
    // The checks node-red-dev 0.1.6 makes: package P01 P03–P08, nodes N01 N02, dependencies D01–D03.
    const ran = checks.map(([k]) => k).sort();
    for (const check of ['P01', 'P03', 'P04', 'P05', 'P06', 'P07', 'P08', 'N01', 'N02', 'D01', 'D02', 'D03'])
      assert.ok(ran.includes(check), `${check} ran (${ran.join(' ')})`);
  });
});

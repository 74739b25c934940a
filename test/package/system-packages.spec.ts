// The test run on a fresh machine, simulated: LLAVA_SYSTEM_PATH stands for a machine whose folders hold no mosquitto
// and no chromium, only a fake apt-get (it records its arguments and "installs" stand-in binaries) and a fake sudo.
// Non-root runs are real: the child runs as user nobody.
import * as assert from 'assert';
import { spawnSync, SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { repoRoot } from '../support/node-red';

const NOBODY = 65534;
const mocha = path.join(repoRoot, 'node_modules', 'mocha', 'bin', 'mocha.js');
const helper = path.join(repoRoot, 'dist', 'test', 'support', 'system-packages.js');
const cli = path.join(repoRoot, 'scripts', 'system-packages.js');

/** A fresh machine's bin folder: apt-get "installs" by writing executables into it; sudo per `sudo`. */
function freshMachine(sudo: 'none' | 'password' | 'nopassword'): { dir: string; bin: string; aptLog: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-fresh-'));
  fs.chmodSync(dir, 0o777);
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin, { mode: 0o777 });
  fs.chmodSync(bin, 0o777);
  const aptLog = path.join(dir, 'apt.log');
  fs.writeFileSync(
    path.join(bin, 'apt-get'),
    `#!/bin/sh\necho "$(id -u) DEBIAN_FRONTEND=$DEBIAN_FRONTEND $*" >> ${aptLog}\n` +
      `if [ "$1" = install ]; then for p in "$@"; do case "$p" in mosquitto|chromium) printf '#!/bin/sh\\n' > ${bin}/$p; chmod 755 ${bin}/$p;; esac; done; fi\n`,
    { mode: 0o755 },
  );
  if (sudo === 'password') fs.writeFileSync(path.join(bin, 'sudo'), '#!/bin/sh\necho "sudo: a password is required" >&2\nexit 1\n', { mode: 0o755 });
  if (sudo === 'nopassword') fs.writeFileSync(path.join(bin, 'sudo'), '#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n', { mode: 0o755 });
  return { dir, bin, aptLog };
}

/** Run mocha on two suites that need mosquitto / chromium and one that needs nothing, on the fresh machine. */
function runSpecs(machine: { dir: string; bin: string }, options: { uid?: number; ci?: boolean }): SpawnSyncReturns<string> {
  const spec = path.join(machine.dir, 'needs.spec.js');
  fs.writeFileSync(
    spec,
    `const { requireSystemPackages } = require(${JSON.stringify(helper)});
describe('mqtt suite', function () {
  before(function () { requireSystemPackages(this, 'mosquitto'); });
  it('one', () => {});
  it('two', () => {});
});
describe('editor suite', function () {
  before(function () { requireSystemPackages(this, 'chromium'); });
  it('three', () => {});
});
describe('plain suite', () => { it('four', () => {}); });
`,
    { mode: 0o644 },
  );
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: machine.dir, LLAVA_SYSTEM_PATH: machine.bin, CI: options.ci ? 'true' : '' };
  return spawnSync(process.execPath, [mocha, '--no-config', '--reporter', 'spec', spec], { env, encoding: 'utf8', uid: options.uid, timeout: 60_000 });
}

const lastLines = (r: SpawnSyncReturns<string>, n: number) => r.stdout.trimEnd().split('\n').slice(-n);

describe('package: test provisioning of mosquitto and chromium (a fresh machine, simulated)', function () {
  const machines: string[] = [];
  const machine = (sudo: 'none' | 'password' | 'nopassword') => {
    const m = freshMachine(sudo);
    machines.push(m.dir);
    return m;
  };
  after(() => machines.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  before(function () {
    if (process.platform !== 'linux' || process.getuid?.() !== 0) this.skip(); // needs root to run a child as nobody
  });

  it('as root: installs both once with apt-get, saying so in one line, then every suite runs', () => {
    const m = machine('none');
    const r = runSpecs(m, { uid: 0 });
    assert.strictEqual(r.status, 0, r.stdout + r.stderr);
    const said = (r.stdout + r.stderr).split('\n').filter((l) => /install/.test(l));
    assert.deepStrictEqual(said, ['installing mosquitto, chromium with apt-get (once, for the MQTT tests and the editor tests)']);
    assert.deepStrictEqual(fs.readFileSync(m.aptLog, 'utf8').trim().split('\n'), [
      '0 DEBIAN_FRONTEND=noninteractive update',
      '0 DEBIAN_FRONTEND=noninteractive install -y --no-install-recommends mosquitto chromium',
    ]);
    assert.match(r.stdout, /4 passing/);
    assert.doesNotMatch(r.stdout, /pending|not run/);
    // A second run finds them and calls apt-get no more.
    const again = runSpecs(m, { uid: 0 });
    assert.strictEqual(again.status, 0, again.stdout + again.stderr);
    assert.strictEqual(fs.readFileSync(m.aptLog, 'utf8').trim().split('\n').length, 2);
  });

  describe('as user nobody', function () {
    before(function () {
      // The child runs node, mocha and the helper from this checkout; a checkout in a private (0700) folder is out of
      // nobody's reach, and then these cases cannot run here.
      const probe = spawnSync(
        process.execPath,
        ['-e', `require(${JSON.stringify(mocha)}.replace(/bin.mocha.js$/, 'package.json')); require(${JSON.stringify(helper)})`],
        {
          encoding: 'utf8',
          uid: NOBODY,
        },
      );
      if (probe.status !== 0) {
        console.log(
          `      (skipped: user nobody cannot read this checkout: ${(probe.stderr || String(probe.error)).split('\n').find((l) => /Error|EACCES/.test(l)) ?? 'unknown error'})`,
        );
        this.skip();
      }
    });

    it('not root, password-less sudo: installs with sudo apt-get', () => {
      const m = machine('nopassword');
      const r = runSpecs(m, { uid: NOBODY });
      assert.strictEqual(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stderr, /^installing mosquitto, chromium with sudo apt-get/m);
      assert.match(fs.readFileSync(m.aptLog, 'utf8'), /install -y --no-install-recommends mosquitto chromium/);
      assert.match(r.stdout, /4 passing/);
    });

    it('not root, sudo asks for a password: those suites are pending and the last lines say how many, why and the command', () => {
      const m = machine('password');
      const r = runSpecs(m, { uid: NOBODY });
      assert.strictEqual(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /1 passing/);
      assert.match(r.stdout, /3 pending/);
      assert.ok(!fs.existsSync(m.aptLog), 'apt-get was not called');
      assert.deepStrictEqual(lastLines(r, 4), [
        '3 tests in 2 suites were not run: mosquitto and chromium are not installed and this process cannot install them (not root, and sudo asks for a password).',
        '  - mqtt suite (2 tests; needs mosquitto)',
        '  - editor suite (1 test; needs chromium)',
        'To run them: sudo apt-get update && sudo apt-get install -y --no-install-recommends mosquitto chromium',
      ]);
    });

    it('not root and no sudo, under CI=true: a failure, not a pending suite', () => {
      const m = machine('none');
      const r = runSpecs(m, { uid: NOBODY, ci: true });
      assert.notStrictEqual(r.status, 0, r.stdout);
      assert.match(r.stdout, /1 passing/);
      assert.match(r.stdout, /2 failing/);
      assert.match(
        r.stdout,
        /CI=true and mosquitto is not installed \(not root, and sudo is not installed\); CI runs every suite: sudo apt-get update && sudo apt-get install -y --no-install-recommends mosquitto/,
      );
    });

    it('the CI entry point (node scripts/system-packages.js --require) exits 1 when it cannot provision, 0 after installing', () => {
      const m = machine('password');
      const env = { PATH: process.env.PATH, HOME: m.dir, LLAVA_SYSTEM_PATH: m.bin };
      const refused = spawnSync(process.execPath, [cli, '--require'], { env, encoding: 'utf8', uid: NOBODY });
      assert.strictEqual(refused.status, 1, refused.stdout + refused.stderr);
      assert.match(refused.stderr, /not installed: mosquitto, chromium \(not root, and sudo asks for a password\); to install: sudo apt-get/);
      const installed = spawnSync(process.execPath, [cli, '--require'], { env, encoding: 'utf8', uid: 0 });
      assert.strictEqual(installed.status, 0, installed.stdout + installed.stderr);
      assert.match(installed.stderr, /^installing mosquitto, chromium with apt-get/);
      const again = spawnSync(process.execPath, [cli, '--require'], { env, encoding: 'utf8', uid: 0 });
      assert.strictEqual(again.stdout.trim(), 'already installed: mosquitto, chromium');
    });
  });
});

// `llava pull` and `llava generate --model org/name` as a user runs them: child processes against the Hub look-alike.
import { strict as assert } from 'assert';
import { spawn } from 'child_process';
import { PassThrough } from 'stream';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { architecture } from '../../lib/onnx/architectures';
import { llamaTinyTokenizer, writeTinyTokenizer } from '../../lib/model/tiny-tokenizer';
import { randomWeights } from '../../lib/onnx/random-weights';
import { writeSafetensors } from '../support/checkpoint-writers/safetensors';
import { pullProgress } from '../../lib/cli/hub-model';
import { HubServer, startHubServer } from '../support/hub-server';
import { repoRoot } from '../support/node-red';
import { multiVariantRepoDir, tempCache } from './support';

const cli = path.join(repoRoot, 'dist', 'lib', 'cli.js');
const REPO = 'llava-test/tiny-llava';
const DECODER_Q4 = 'onnx/decoder_model_merged_q4.onnx';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI as a child process (asynchronous: the test server runs in this process). */
function llava(args: string[], env: NodeJS.ProcessEnv, onStderr?: (text: string, child: ReturnType<typeof spawn>) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH, HOME: os.tmpdir(), ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      onStderr?.(stderr, child);
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A checkpoint repo folder as llava-hf publishes them (config.json, safetensors, tokenizer), tiny and seeded. */
function checkpointRepoDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-hub-ckpt-'));
  const c = architecture('tiny').config;
  const weights = randomWeights(c, 9);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(c));
  writeSafetensors(
    path.join(dir, 'model.safetensors'),
    weights.names().map((n) => {
      const w = weights.get(n)!;
      return { name: n, shape: w.shape, dtype: 'float32' as const, data: w.read() };
    }),
  );
  writeTinyTokenizer(dir, llamaTinyTokenizer());
  return dir;
}

describe('llava pull (CLI)', function () {
  let server: HubServer;
  let repoDir: string;
  let ckptDir: string;
  let cacheDir: string;
  let image: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    repoDir = multiVariantRepoDir();
    ckptDir = checkpointRepoDir();
    server = await startHubServer([
      { repo: REPO, dir: repoDir },
      { repo: 'llava-test/tiny-checkpoint', dir: ckptDir },
    ]);
    image = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'llava-hub-img-')), 'frame.png');
    await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 30, g: 140, b: 220 } } })
      .png()
      .toFile(image);
  });
  beforeEach(() => {
    cacheDir = tempCache();
    env = { HF_ENDPOINT: server.endpoint, HF_HUB_CACHE: cacheDir };
    server.faults = {};
    server.requests.length = 0;
  });
  after(async () => {
    await server.close();
    for (const d of [repoDir, ckptDir, path.dirname(image)]) fs.rmSync(d, { recursive: true, force: true });
  });

  it('pulls a variant with plain progress lines and prints the snapshot folder last; generate --model org/name uses it', async () => {
    const r = await llava(['pull', REPO, '--variant', 'q4'], env);
    assert.equal(r.code, 0, r.stderr);
    const commit = server.repo(REPO).commit;
    const snapshot = path.join(cacheDir, 'models--llava-test--tiny-llava', 'snapshots', commit);
    assert.equal(r.stdout.trim().split('\n').at(-1), snapshot);
    assert.match(r.stderr, new RegExp(`^9 files, 0 in the cache, \\d+\\.\\d kB to download \\(commit ${commit.slice(0, 10)}\\)$`, 'm'));
    assert.match(r.stderr, /^100% \d+\.\d kB\/\d+\.\d kB \d+(\.\d\d?)? [kMG]?B\/s ETA /m);
    assert.ok(fs.existsSync(path.join(snapshot, DECODER_Q4)));

    const gen = ['generate', '--image', image, '--max-new-tokens', '5', '--ignore-eos', '--provider', 'cpu', '--json', '--variant', 'q4'];
    const fromFolder = await llava([...gen, '--model', repoDir], {});
    assert.equal(fromFolder.code, 0, fromFolder.stderr);
    server.requests.length = 0;
    const fromId = await llava([...gen, '--model', REPO], env);
    assert.equal(fromId.code, 0, fromId.stderr);
    assert.deepEqual(JSON.parse(fromId.stdout).token_ids, JSON.parse(fromFolder.stdout).token_ids);
    assert.equal(fromId.stderr, '', 'nothing to download: no progress output');
    assert.equal(server.requests.length, 1, 'one listing request, no download');
    // Offline and --no-pull read the cache without asking the Hub.
    server.requests.length = 0;
    const offline = await llava([...gen, '--model', REPO], { ...env, HF_HUB_OFFLINE: '1' });
    const noPull = await llava([...gen, '--model', `${REPO}@main`, '--no-pull'], env);
    assert.deepEqual([offline.code, noPull.code], [0, 0], offline.stderr + noPull.stderr);
    assert.equal(server.requests.length, 0);
    const missing = await llava([...gen, '--model', REPO, '--variant', 'fp32'], { ...env, HF_HUB_OFFLINE: '1' });
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /^llava: offline \(HF_HUB_OFFLINE is set\), and the cached llava-test\/tiny-llava \(commit [0-9a-f]{10}\) is incomplete: it has no fp32 decoder_model_merged \(onnx\/decoder_model_merged\.onnx\)/,
    );
  });

  it('Ctrl-C keeps the partial file and says so; the same command resumes it', async () => {
    server.faults.chunkDelayMs = 30;
    const r = await llava(['pull', REPO], env, (text, child) => {
      if (/^[1-9]\d?% /m.test(text) && !child.killed) child.kill('SIGINT');
    });
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /interrupted: the partial download is kept; run the same command to resume/);
    const blobs = path.join(cacheDir, 'models--llava-test--tiny-llava', 'blobs');
    const partial = fs.readdirSync(blobs).filter((f) => f.endsWith('.incomplete'));
    assert.equal(partial.length, 1);
    const kept = fs.statSync(path.join(blobs, partial[0])).size;
    server.faults.chunkDelayMs = 0;
    server.requests.length = 0;
    const again = await llava(['pull', REPO], env);
    assert.equal(again.code, 0, again.stderr);
    assert.ok(
      server.requests.some((q) => q.range === `bytes=${kept}-`),
      'resumed with a Range from the kept bytes',
    );
  });

  it('--build converts a checkpoint repo; --model org/name then runs the built folder', async () => {
    const r = await llava(['pull', 'llava-test/tiny-checkpoint', '--build', '--quantize', 'int4'], env);
    assert.equal(r.code, 0, r.stderr);
    const commit = server.repo('llava-test/tiny-checkpoint').commit;
    const built = path.join(path.dirname(cacheDir), 'llava-builds', 'models--llava-test--tiny-checkpoint', `${commit}-int4`);
    try {
      assert.equal(r.stdout.trim().split('\n').at(-1), built);
      assert.ok(fs.existsSync(path.join(built, DECODER_Q4)));
      const gen = await llava(
        ['generate', '--model', 'llava-test/tiny-checkpoint', '--image', image, '--max-new-tokens', '3', '--ignore-eos', '--provider', 'cpu', '--json'],
        env,
      );
      assert.equal(gen.code, 0, gen.stderr);
      assert.equal(JSON.parse(gen.stdout).token_ids.length, 3);
    } finally {
      fs.rmSync(path.join(path.dirname(cacheDir), 'llava-builds', 'models--llava-test--tiny-checkpoint'), { recursive: true, force: true });
    }
  });

  it('on a terminal: one updating bar with bytes, rate and ETA', () => {
    let text = '';
    const tty = Object.assign(new PassThrough(), { isTTY: true }) as unknown as NodeJS.WriteStream;
    (tty as unknown as PassThrough).on('data', (d) => (text += d));
    const show = pullProgress(tty);
    show({ type: 'plan', commit: 'a'.repeat(40), files: [{ name: 'onnx/x.onnx', size: 4e6, cached: false }], bytesToGet: 4e6 });
    show({ type: 'progress', file: 'onnx/x.onnx', fileBytes: 1e6, fileSize: 4e6, bytes: 1e6, total: 4e6 });
    show({ type: 'progress', file: 'onnx/x.onnx', fileBytes: 2e6, fileSize: 4e6, bytes: 2e6, total: 4e6 });
    show({ type: 'file', file: 'onnx/x.onnx', size: 4e6, downloaded: true });
    const updates = text.split('\r').slice(1);
    assert.equal(updates.length, 3);
    assert.match(updates[0], /^\[######\.{18}\] 25% 1\.0 MB\/4\.0 MB \d+(\.\d\d?)? [kMG]?B\/s ETA (\d+s|\d+m\d\ds|--) onnx\/x\.onnx\x1b\[K$/);
    assert.match(updates[1], /^\[#{12}\.{12}\] 50% 2\.0 MB\/4\.0 MB /);
    assert.equal(updates[2], 'onnx/x.onnx (4.0 MB)\x1b[K\n');
  });

  it('errors are one line a user can act on; bad arguments are usage errors', async () => {
    const notFound = await llava(['pull', 'llava-test/missing'], env);
    assert.equal(notFound.code, 1);
    assert.match(
      notFound.stderr,
      /^llava: model llava-test\/missing not found on http:\/\/127\.0\.0\.1:\d+ \(404\): check the name, or set HF_TOKEN if it is private\n$/,
    );
    server.faults.status = 401;
    const unauthorized = await llava(['pull', REPO], { ...env, HF_TOKEN: 'hf_secret_value' });
    assert.equal(unauthorized.code, 1);
    assert.ok(!unauthorized.stderr.includes('hf_secret_value'), 'the token is never printed');
    assert.match(unauthorized.stderr, /refused the token/);
    const usage = await llava(['pull', '../etc'], env);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /is not a Hub model id/);
  });
});

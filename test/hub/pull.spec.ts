// pull() against the Hub look-alike: the cache layout it writes, verification, resume, faults, auth, offline.
import { strict as assert } from 'assert';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { RepoCache } from '../../lib/hub/cache';
import { HubClient } from '../../lib/hub/client';
import { parseRepoRef } from '../../lib/hub/repo-id';
import { fromCache, pull, PullEvent, resolveModel } from '../../lib/hub/pull';
import { LlavaModel } from '../../lib/pipeline/llava-model';
import { getRuntime } from '../../lib/runtime';
import { HubServer, startHubServer } from '../support/hub-server';
import { multiVariantRepoDir, tempCache, testSettings } from './support';

const REPO = 'llava-test/tiny-llava';
const DECODER = 'onnx/decoder_model_merged.onnx';
const DECODER_Q4 = 'onnx/decoder_model_merged_q4.onnx';
const ref = parseRepoRef(REPO);

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

describe('Hub pull', function () {
  let server: HubServer;
  let repoDir: string;
  let cacheDir: string;
  const caches: string[] = [];

  before(async () => {
    repoDir = multiVariantRepoDir();
    server = await startHubServer([
      { repo: REPO, dir: repoDir, tags: ['v1'] },
      { repo: 'llava-test/gated', dir: repoDir, gated: true },
      { repo: 'llava-test/evil', dir: repoDir, extraNames: ['../../../escaped.json'] },
    ]);
  });
  beforeEach(() => {
    cacheDir = tempCache();
    caches.push(cacheDir);
    server.requests.length = 0;
    server.bytesSent.clear();
    server.faults = {};
    server.token = undefined;
  });
  after(async () => {
    await server.close();
    await getRuntime().dispose();
    for (const d of [...caches, repoDir]) fs.rmSync(d, { recursive: true, force: true });
  });

  const settings = (extra = {}) => testSettings(server.endpoint, cacheDir, extra);

  it('writes the Hub cache layout: blobs named by etag, relative links from the snapshot, refs/main', async () => {
    const events: PullEvent[] = [];
    const result = await pull(ref, { settings: settings(), onProgress: (e) => events.push(e) });
    const served = server.repo(REPO);
    const root = path.join(cacheDir, 'models--llava-test--tiny-llava');
    assert.equal(result.commit, served.commit);
    assert.equal(result.dir, path.join(root, 'snapshots', served.commit));
    assert.equal(fs.readFileSync(path.join(root, 'refs', 'main'), 'utf8'), served.commit);
    // auto = the variant config.json records (fp32): the q4 decoder and the README are not fetched.
    assert.deepEqual(result.selection.files, [
      'config.json',
      'generation_config.json',
      DECODER,
      'onnx/embed_tokens.onnx',
      'onnx/vision_encoder.onnx',
      'preprocessor_config.json',
      'processor_config.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    for (const name of result.selection.files) {
      const file = served.files.get(name)!;
      const link = path.join(result.dir, name);
      const target = fs.readlinkSync(link);
      assert.ok(!path.isAbsolute(target), `${name} links relatively (${target})`);
      assert.equal(path.resolve(path.dirname(link), target), path.join(root, 'blobs', file.etag));
      assert.ok(fs.readFileSync(link).equals(file.content), `${name} has the served content`);
    }
    assert.equal(sha256(path.join(result.dir, DECODER)), served.files.get(DECODER)!.etag, 'LFS blob named by its sha256');
    assert.equal(fs.readdirSync(path.join(root, 'blobs')).filter((f) => f.endsWith('.incomplete')).length, 0);
    assert.equal(server.requests.filter((r) => r.path.includes('README') || r.path.includes('_q4')).length, 0);
    // LFS files came from the CDN after a HEAD on the Hub; small files from the Hub itself.
    assert.ok(server.requests.some((r) => r.server === 'hub' && r.method === 'HEAD' && r.path.endsWith(`resolve/${served.commit}/${DECODER}`)));
    assert.ok(server.requests.some((r) => r.server === 'cdn' && r.method === 'GET' && r.path === `/${served.files.get(DECODER)!.etag}`));
    const plan = events.find((e) => e.type === 'plan');
    assert.ok(plan && plan.type === 'plan' && plan.bytesToGet > 700_000);
    const last = events.filter((e) => e.type === 'progress').at(-1);
    assert.ok(last && last.type === 'progress' && last.bytes === last.total, 'progress reaches the total');
    assert.equal(
      result.downloadedBytes,
      result.selection.files.reduce((n, f) => n + served.files.get(f)!.content.length, 0),
    );

    // A second pull finds everything cached: one listing request, no downloads.
    server.requests.length = 0;
    const again = await pull(ref, { settings: settings() });
    assert.equal(again.downloadedBytes, 0);
    assert.deepEqual(
      server.requests.map((r) => `${r.method} ${r.path.split('?')[0]}`),
      [`GET /api/models/${REPO}/revision/main`],
    );
  });

  it('a caption from the pulled id equals the one from the original folder', async () => {
    const dir = await resolveModel(`${REPO}@v1`, { settings: settings(), variant: 'q4' });
    assert.ok(dir.startsWith(cacheDir));
    assert.ok(fs.existsSync(path.join(dir, DECODER_Q4)) && !fs.existsSync(path.join(dir, DECODER)), 'only the q4 decoder');
    assert.equal(fs.readFileSync(path.join(cacheDir, 'models--llava-test--tiny-llava', 'refs', 'v1'), 'utf8'), server.repo(REPO).commit);
    const image = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 40, b: 90 } } })
      .png()
      .toBuffer();
    const caption = async (folder: string) => {
      const model = await LlavaModel.load(folder, { providers: 'cpu', variant: 'q4' });
      try {
        return (await model.describe({ image, options: { maxNewTokens: 6, ignoreEos: true } })).tokenIds;
      } finally {
        model.close();
      }
    };
    const ids = await caption(dir);
    assert.equal(ids.length, 6);
    assert.deepEqual(ids, await caption(repoDir));
  });

  it('resumes a dropped connection with Range: no byte is sent twice', async () => {
    const size = server.repo(REPO).files.get(DECODER)!.content.length;
    server.faults.dropAfter = { file: DECODER, bytes: 200_000 };
    const result = await pull(ref, { settings: settings() });
    assert.equal(sha256(path.join(result.dir, DECODER)), server.repo(REPO).files.get(DECODER)!.etag);
    const gets = server.requests.filter((r) => r.server === 'cdn' && r.path === `/${server.repo(REPO).files.get(DECODER)!.etag}`);
    assert.deepEqual(
      gets.map((r) => r.range),
      [undefined, 'bytes=200000-'],
    );
    assert.equal(server.bytesSent.get(DECODER), size, 'the decoder was sent exactly once in total');
  });

  it('an aborted pull (Ctrl-C) keeps the partial file, and the next pull resumes it', async () => {
    const etag = server.repo(REPO).files.get(DECODER)!.etag;
    const size = server.repo(REPO).files.get(DECODER)!.content.length;
    server.faults.chunkDelayMs = 20;
    const abort = new AbortController();
    await assert.rejects(
      pull(ref, {
        settings: settings(),
        signal: abort.signal,
        onProgress: (e) => {
          if (e.type === 'progress' && e.file === DECODER && e.fileBytes >= 128 * 1024) abort.abort();
        },
      }),
      (err: Error) => err.name === 'AbortError',
    );
    const partial = path.join(cacheDir, 'models--llava-test--tiny-llava', 'blobs', `${etag}.incomplete`);
    const kept = fs.statSync(partial).size;
    assert.ok(kept >= 128 * 1024 && kept < size, `partial file kept (${kept} bytes)`);
    assert.ok(!fs.existsSync(path.join(cacheDir, '.locks', 'models--llava-test--tiny-llava', 'llava-pull.lock')), 'lock released');
    server.faults.chunkDelayMs = 0;
    server.requests.length = 0;
    const result = await pull(ref, { settings: settings() });
    assert.equal(sha256(path.join(result.dir, DECODER)), etag);
    assert.deepEqual(
      server.requests.filter((r) => r.path === `/${etag}`).map((r) => r.range),
      [`bytes=${kept}-`],
    );
    assert.ok(!fs.existsSync(partial));
  });

  it('restarts from zero when the server answers a Range request with 200', async () => {
    const file = server.repo(REPO).files.get(DECODER)!;
    server.faults.dropAfter = { file: DECODER, bytes: 100_000 };
    server.faults.ignoreRange = DECODER;
    const result = await pull(ref, { settings: settings() });
    assert.ok(fs.readFileSync(path.join(result.dir, DECODER)).equals(file.content));
    assert.deepEqual(
      server.requests.filter((r) => r.path === `/${file.etag}`).map((r) => r.range),
      [undefined, 'bytes=100000-'],
    );
    assert.equal(server.bytesSent.get(DECODER), file.content.length + 100_000, 'the 200 answer was taken whole, not appended');
  });

  it('discards a download whose sha256 does not match, and links nothing', async () => {
    server.faults.corrupt = DECODER;
    const etag = server.repo(REPO).files.get(DECODER)!.etag;
    await assert.rejects(
      pull(ref, { settings: settings() }),
      /onnx\/decoder_model_merged\.onnx of llava-test\/tiny-llava failed its hash check \(expected [0-9a-f]{64}, got [0-9a-f]{64}\): the download was discarded/,
    );
    const blobs = path.join(cacheDir, 'models--llava-test--tiny-llava', 'blobs');
    assert.ok(!fs.existsSync(path.join(blobs, etag)) && !fs.existsSync(path.join(blobs, `${etag}.incomplete`)));
    assert.ok(!fs.existsSync(path.join(cacheDir, 'models--llava-test--tiny-llava', 'snapshots', server.repo(REPO).commit, DECODER)));
    assert.ok(!fs.existsSync(path.join(cacheDir, 'models--llava-test--tiny-llava', 'refs', 'main')), 'no ref to an incomplete snapshot');
  });

  it('401: says a token is needed; with the token, it is sent to the Hub but never to the CDN', async () => {
    server.token = 'hf_test_secret';
    await assert.rejects(pull(ref, { settings: settings() }), (err: Error) =>
      /needs a Hub token \(401\).*HF_TOKEN.*accept its licence at http:\/\/127\.0\.0\.1:\d+\/llava-test\/tiny-llava/.test(err.message),
    );
    await assert.rejects(
      pull(ref, { settings: settings({ token: 'hf_wrong' }) }),
      (err: Error) => /refused the token/.test(err.message) && !err.message.includes('hf_wrong'),
    );
    server.requests.length = 0;
    const result = await pull(ref, { settings: settings({ token: 'hf_test_secret' }) });
    assert.ok(fs.existsSync(path.join(result.dir, DECODER)));
    const hub = server.requests.filter((r) => r.server === 'hub');
    const cdn = server.requests.filter((r) => r.server === 'cdn');
    assert.ok(hub.length > 0 && hub.every((r) => r.authorization === 'Bearer hf_test_secret'));
    assert.ok(cdn.length >= 3 && cdn.every((r) => r.authorization === undefined), 'no token on the CDN hop');
  });

  it('403 on a gated repo: accept the licence at the repo page', async () => {
    await assert.rejects(
      pull(parseRepoRef('llava-test/gated'), { settings: settings() }),
      /gated model: accept its licence at http:\/\/127\.0\.0\.1:\d+\/llava-test\/gated/,
    );
  });

  it('404: unknown repo, unknown revision', async () => {
    await assert.rejects(
      pull(parseRepoRef('llava-test/nope'), { settings: settings() }),
      /model llava-test\/nope not found on http:\/\/127\.0\.0\.1:\d+ \(404\)/,
    );
    await assert.rejects(pull(parseRepoRef(`${REPO}@v9`), { settings: settings() }), /revision "v9" not found in llava-test\/tiny-llava \(404\)/);
    await assert.rejects(
      pull(ref, { settings: settings(), variant: 'fp16' }),
      /the repo has no fp16 decoder_model_merged \(onnx\/decoder_model_merged_fp16\.onnx\); available: fp32, q4/,
    );
  });

  it('refuses listed names that would leave the cache', async () => {
    await assert.rejects(
      pull(parseRepoRef('llava-test/evil'), { settings: settings(), include: ['**'] }),
      /unsafe file name "\.\.\/\.\.\/\.\.\/escaped\.json": refused/,
    );
    assert.ok(!fs.existsSync(path.join(cacheDir, 'escaped.json')) && !fs.existsSync(path.join(path.dirname(cacheDir), 'escaped.json')));
  });

  it('offline: uses the cache without a request; without the cache, or missing a file, says what is missing', async () => {
    await assert.rejects(
      resolveModel(REPO, { settings: settings({ offline: true }) }),
      /offline \(HF_HUB_OFFLINE is set\), and llava-test\/tiny-llava is not in the cache .*npx llava pull llava-test\/tiny-llava/,
    );
    const online = await pull(ref, { settings: settings() });
    server.requests.length = 0;
    assert.equal(await resolveModel(REPO, { settings: settings({ offline: true }) }), online.dir);
    await assert.rejects(
      resolveModel(REPO, { settings: settings({ offline: true }), variant: 'q4' }),
      /offline \(HF_HUB_OFFLINE is set\), and the cached llava-test\/tiny-llava \(commit [0-9a-f]{10}\) is incomplete: it has no q4 decoder_model_merged \(onnx\/decoder_model_merged_q4\.onnx\)/,
    );
    fs.rmSync(path.join(online.dir, 'tokenizer.json'));
    assert.throws(() => fromCache(ref, {}, settings(), 'offline'), /is incomplete: tokenizer\.json is missing/);
    assert.equal(server.requests.length, 0, 'offline makes no request');
    // The Hub unreachable without offline mode: the cached snapshot still serves a complete variant.
    fs.symlinkSync(`../../blobs/${server.repo(REPO).files.get('tokenizer.json')!.etag}`, path.join(online.dir, 'tokenizer.json'));
    assert.equal(await resolveModel(REPO, { settings: settings({ endpoint: 'http://127.0.0.1:9' }) }), online.dir);
  });

  it('two pulls at once: one waits for the other, every file is sent once', async () => {
    const waits: string[] = [];
    const [a, b] = await Promise.all([
      pull(ref, { settings: settings() }),
      pull(ref, { settings: settings(), onProgress: (e) => e.type === 'waiting' && waits.push(e.holder) }),
    ]);
    assert.equal(a.dir, b.dir);
    assert.equal(
      a.downloadedBytes + b.downloadedBytes,
      a.selection.files.reduce((n, f) => n + server.repo(REPO).files.get(f)!.content.length, 0),
    );
    assert.equal(waits.length, 1, 'the second pull waited for the lock');
    for (const f of a.selection.files) assert.equal(server.bytesSent.get(f), server.repo(REPO).files.get(f)!.content.length, `${f} sent once`);
  });

  it('a cache it wrote reads back through the layout alone: refs → snapshot → relative link → blob (sha256 = name)', async () => {
    const result = await pull(ref, { settings: settings(), variant: 'decoder_model_merged=q4' });
    // An independent reader following the hub-docs local-cache spec, not our RepoCache.
    const root = path.join(cacheDir, 'models--llava-test--tiny-llava');
    const commit = fs.readFileSync(path.join(root, 'refs', 'main'), 'utf8');
    const link = path.join(root, 'snapshots', commit, 'onnx', 'decoder_model_merged_q4.onnx');
    assert.equal(fs.readlinkSync(link), path.join('..', '..', '..', 'blobs', server.repo(REPO).files.get(DECODER_Q4)!.etag));
    const blob = path.resolve(path.dirname(link), fs.readlinkSync(link));
    assert.equal(sha256(blob), path.basename(blob));
    // Moving the whole cache keeps it valid (links are relative).
    const moved = `${cacheDir}-moved`;
    caches.push(moved);
    fs.renameSync(cacheDir, moved);
    const back = fromCache(ref, { variant: 'decoder_model_merged=q4' }, testSettings(server.endpoint, moved), 'offline');
    assert.deepEqual(back.selection.files, result.selection.files);
    assert.ok(fs.readFileSync(path.join(back.dir, DECODER_Q4)).equals(server.repo(REPO).files.get(DECODER_Q4)!.content));
    // A snapshot link pointing outside the cache is refused.
    const outside = path.join(moved, '..', `outside-${path.basename(moved)}.json`);
    fs.writeFileSync(outside, '{}');
    caches.push(outside);
    fs.rmSync(path.join(back.dir, 'config.json'));
    fs.symlinkSync(path.relative(back.dir, outside), path.join(back.dir, 'config.json'));
    assert.throws(() => new RepoCache(moved, REPO).cachedFile(commit, 'config.json'), /links outside the cache/);
  });

  it('a link or file in the way of a snapshot path is refused: nothing is written through it', () => {
    const cache = new RepoCache(cacheDir, REPO);
    const commit = server.repo(REPO).commit;
    const etag = server.repo(REPO).files.get('config.json')!.etag;
    fs.mkdirSync(cache.blobsDir, { recursive: true });
    fs.writeFileSync(cache.blob(etag), '{}');
    // A snapshot folder that is a link to elsewhere (as a crafted cache or listing could leave it).
    const elsewhere = fs.mkdtempSync(`${cacheDir}-elsewhere-`);
    caches.push(elsewhere);
    fs.mkdirSync(cache.snapshotDir(commit), { recursive: true });
    fs.symlinkSync(elsewhere, path.join(cache.snapshotDir(commit), 'onnx'));
    assert.throws(() => cache.link(commit, 'onnx/model.onnx', etag), /onnx is not a folder \(a file or link is in the way\): refused/);
    // A file listed as config.json and another under config.json/.
    cache.link(commit, 'config.json', etag);
    assert.throws(() => cache.link(commit, 'config.json/x.json', etag), /config\.json is not a folder \(a file or link is in the way\): refused/);
    assert.deepEqual(fs.readdirSync(elsewhere), [], 'nothing written through the link');
  });

  it('plain http only when the endpoint is http: an https Hub cannot send us to an http URL', async () => {
    const client = new HubClient(testSettings('https://hub.invalid', cacheDir, { token: 'hf_x' }));
    await assert.rejects(
      client.download(`${server.cdn}/${server.repo(REPO).files.get(DECODER)!.etag}`, path.join(cacheDir, 'x'), { size: 10, digest: 'sha256' }),
      /refused to follow the Hub to http:\/\/127\.0\.0\.1:\d+: only https/,
    );
    assert.equal(server.requests.length, 0);
  });

  it('checks free disk space before downloading', async () => {
    await assert.rejects(
      pull(ref, { settings: settings(), diskFree: () => 1000 }),
      /not enough disk space for llava-test\/tiny-llava: it needs \d+\.\d kB, 1\.0 kB free in /,
    );
    assert.equal(server.requests.filter((r) => r.server === 'cdn').length, 0, 'nothing downloaded');
  });

  it('disk full while writing (ENOSPC from the kernel): says so, links nothing, releases the lock', async function () {
    // The decoder's partial file is a link to /dev/full, where every write fails with ENOSPC.
    if (!fs.existsSync('/dev/full')) this.skip();
    const etag = server.repo(REPO).files.get(DECODER)!.etag;
    const root = path.join(cacheDir, 'models--llava-test--tiny-llava');
    fs.mkdirSync(path.join(root, 'blobs'), { recursive: true });
    fs.symlinkSync('/dev/full', path.join(root, 'blobs', `${etag}.incomplete`));
    await assert.rejects(
      pull(ref, { settings: settings() }),
      /^Error: disk full while downloading onnx\/decoder_model_merged\.onnx into .*: free some space and pull again \(the partial file is kept and resumed\)$/,
    );
    assert.ok(
      server.requests.some((r) => r.server === 'cdn' && r.path === `/${etag}`),
      'the download had started',
    );
    assert.ok(!fs.existsSync(path.join(root, 'blobs', etag)) && !fs.existsSync(path.join(root, 'snapshots', server.repo(REPO).commit, DECODER)));
    assert.ok(!fs.existsSync(path.join(root, 'refs', 'main')), 'no ref to an incomplete snapshot');
    assert.ok(!fs.existsSync(path.join(cacheDir, '.locks', 'models--llava-test--tiny-llava', 'llava-pull.lock')), 'lock released');
  });
});

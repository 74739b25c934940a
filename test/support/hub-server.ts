// A Hugging Face Hub look-alike on 127.0.0.1 for tests: repos made from model folders built at test time, the
// model-info listing with LFS sizes and sha256, resolve/<rev>/<path> with the Hub's HEAD metadata, LFS files
// redirected to a second "CDN" server, Range requests, and faults to inject (a dropped connection, a Range
// answered with 200, a corrupted byte, 401/403/404). Both servers count the bytes they send per file.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as path from 'path';

export interface FixtureRepo {
  repo: string;
  /** A folder whose files become the repo's files. */
  dir: string;
  /** Branches or tags besides main, all at the one commit (derived from the content). */
  tags?: string[];
  /** Names listed without a file behind them (unsafe-name tests). */
  extraNames?: string[];
  gated?: boolean;
}

interface ServedFile {
  name: string;
  content: Buffer;
  lfs: boolean;
  /** sha256 for LFS files, git blob sha1 otherwise. */
  etag: string;
}

interface ServedRepo {
  repo: string;
  commit: string;
  refs: Record<string, string>;
  files: Map<string, ServedFile>;
  extraNames: string[];
  gated: boolean;
}

export interface Faults {
  /** Close the connection after this many bytes of the named file, once. */
  dropAfter?: { file: string; bytes: number };
  /** Answer a Range request for the named file with 200 and the whole content. */
  ignoreRange?: string;
  /** Flip one byte of the named file in every answer. */
  corrupt?: string;
  /** Answer every request with this status. */
  status?: number;
  /** Delay each body chunk (ms) so a test can watch progress. */
  chunkDelayMs?: number;
}

export interface RequestRecord {
  server: 'hub' | 'cdn';
  method: string;
  path: string;
  range?: string;
  authorization?: string;
}

export interface HubServer {
  endpoint: string;
  cdn: string;
  /** Requests as received, in order. */
  requests: RequestRecord[];
  /** Body bytes sent per repo file name (both servers). */
  bytesSent: Map<string, number>;
  faults: Faults;
  /** When set, every Hub request needs `Authorization: Bearer <token>`. */
  token?: string;
  repo(name: string): ServedRepo;
  close(): Promise<void>;
}

const LFS = /\.(onnx|onnx_data|safetensors|bin)$/;

function gitSha1(content: Buffer): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}

function listFiles(dir: string, rel = ''): string[] {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const name = rel ? `${rel}/${e.name}` : e.name;
    return e.isDirectory() ? listFiles(dir, name) : [name];
  });
}

function serveRepo(fixture: FixtureRepo): ServedRepo {
  const files = new Map<string, ServedFile>();
  const commitHash = createHash('sha1').update(fixture.repo);
  for (const name of listFiles(fixture.dir).sort()) {
    const content = fs.readFileSync(path.join(fixture.dir, name));
    const lfs = LFS.test(name);
    const etag = lfs ? createHash('sha256').update(content).digest('hex') : gitSha1(content);
    files.set(name, { name, content, lfs, etag });
    commitHash.update(name).update(etag);
  }
  const commit = commitHash.digest('hex');
  return {
    repo: fixture.repo,
    commit,
    refs: Object.fromEntries(['main', ...(fixture.tags ?? [])].map((t) => [t, commit])),
    files,
    extraNames: fixture.extraNames ?? [],
    gated: !!fixture.gated,
  };
}

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

export async function startHubServer(fixtures: FixtureRepo[]): Promise<HubServer> {
  const repos = new Map(fixtures.map((f) => [f.repo, serveRepo(f)]));
  const blobs = new Map<string, ServedFile>();
  for (const r of repos.values()) for (const f of r.files.values()) if (f.lfs) blobs.set(f.etag, f);
  const hubServer = http.createServer();
  const cdnServer = http.createServer();
  const [endpoint, cdn] = await Promise.all([listen(hubServer), listen(cdnServer)]);
  const state: HubServer = {
    endpoint,
    cdn,
    requests: [],
    bytesSent: new Map(),
    faults: {},
    repo: (name) => {
      const r = repos.get(name);
      if (!r) throw new Error(`no fixture repo ${name}`);
      return r;
    },
    close: async () => {
      for (const s of [hubServer, cdnServer]) {
        s.closeAllConnections();
        await new Promise((r) => s.close(r));
      }
    },
  };

  const record = (server: 'hub' | 'cdn', req: http.IncomingMessage) =>
    state.requests.push({ server, method: req.method ?? '', path: req.url ?? '', range: req.headers.range, authorization: req.headers.authorization });

  const fail = (res: http.ServerResponse, status: number, code?: string) => {
    res.writeHead(status, { 'content-type': 'application/json', ...(code ? { 'x-error-code': code } : {}) });
    res.end(JSON.stringify({ error: code ?? `status ${status}` }));
  };

  /** The body of a file, honouring Range and the faults. */
  const sendContent = async (req: http.IncomingMessage, res: http.ServerResponse, file: ServedFile, headers: http.OutgoingHttpHeaders) => {
    let content = file.content;
    if (state.faults.corrupt === file.name) {
      content = Buffer.from(content);
      content[content.length >> 1] ^= 0xff;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    let start = 0;
    if (range && state.faults.ignoreRange !== file.name) {
      start = Number(range[1]);
      if (start >= content.length) return fail(res, 416);
      res.writeHead(206, { ...headers, 'content-length': content.length - start, 'content-range': `bytes ${start}-${content.length - 1}/${content.length}` });
    } else {
      res.writeHead(200, { ...headers, 'content-length': content.length });
    }
    if (req.method === 'HEAD') return res.end();
    const drop = state.faults.dropAfter?.file === file.name ? state.faults.dropAfter : undefined;
    const end = drop ? Math.min(content.length, start + drop.bytes) : content.length;
    const count = (n: number) => () => state.bytesSent.set(file.name, (state.bytesSent.get(file.name) ?? 0) + n);
    for (let at = start; at < end;) {
      const chunk = content.subarray(at, Math.min(end, at + 64 * 1024));
      if (res.destroyed) return;
      at += chunk.length;
      // Waits only when the socket's buffer is full (or to pace a slow server), so the server is not what limits
      // a client's rate.
      if (!res.write(chunk, count(chunk.length))) await new Promise((r) => res.once('drain', r));
      if (state.faults.chunkDelayMs) await new Promise((r) => setTimeout(r, state.faults.chunkDelayMs));
    }
    if (drop) {
      state.faults.dropAfter = undefined;
      res.socket?.destroySoon();
      return;
    }
    res.end();
  };

  hubServer.on('request', (req, res) => {
    record('hub', req);
    const url = new URL(req.url ?? '/', endpoint);
    if (state.faults.status) return fail(res, state.faults.status);
    // /api/models/<org>/<name>[/revision/<rev>]
    const api = /^\/api\/models\/([^/]+\/[^/]+?)(?:\/revision\/([^/]+))?$/.exec(url.pathname);
    // /<org>/<name>/resolve/<rev>/<path>
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const repoName = decodeURIComponent((api ?? resolve)?.[1] ?? '');
    const repo = repos.get(repoName);
    if (!api && !resolve) return fail(res, 404);
    if (!repo) return fail(res, state.token ? 401 : 404, 'RepoNotFound');
    if (state.token && req.headers.authorization !== `Bearer ${state.token}`) return fail(res, 401);
    if (repo.gated) return fail(res, 403, 'GatedRepo');
    const revision = decodeURIComponent((api ? api[2] : resolve?.[2]) ?? 'main');
    const commit = /^[0-9a-f]{40}$/.test(revision) ? revision : repo.refs[revision];
    if (!commit) return fail(res, 404, 'RevisionNotFound');
    if (api) {
      const siblings = [...repo.files.values()].map((f) => ({
        rfilename: f.name,
        size: f.lfs ? f.content.length : f.content.length,
        blobId: f.lfs ? gitSha1(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${f.etag}\nsize ${f.content.length}\n`)) : f.etag,
        ...(f.lfs ? { lfs: { sha256: f.etag, size: f.content.length, pointerSize: 134 } } : {}),
      }));
      for (const name of repo.extraNames) siblings.push({ rfilename: name, size: 2, blobId: gitSha1(Buffer.from('{}')) });
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ id: repo.repo, sha: commit, siblings }));
    }
    const name = decodeURIComponent(resolve![3]);
    const file = repo.files.get(name);
    if (!file) return fail(res, 404, 'EntryNotFound');
    if (file.lfs) {
      res.writeHead(302, {
        location: `${cdn}/${file.etag}`,
        'x-repo-commit': commit,
        'x-linked-etag': `"${file.etag}"`,
        'x-linked-size': String(file.content.length),
        etag: `"${gitSha1(Buffer.from(file.etag))}"`,
      });
      return res.end();
    }
    void sendContent(req, res, file, { 'x-repo-commit': commit, etag: `"${file.etag}"` });
  });

  cdnServer.on('request', (req, res) => {
    record('cdn', req);
    const file = blobs.get((req.url ?? '').slice(1));
    if (!file) return fail(res, 404);
    void sendContent(req, res, file, {});
  });

  return state;
}

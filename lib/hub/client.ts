// The Hub's HTTP protocol, as huggingface_hub speaks it (file_download.py, hf_api.py):
//   GET  {endpoint}/api/models/{repo}/revision/{rev}?blobs=true    the commit and every file with size and LFS sha256
//   HEAD {endpoint}/{repo}/resolve/{commit}/{path}                 X-Repo-Commit, X-Linked-Etag / ETag, X-Linked-Size,
//                                                                  and for LFS files a redirect to the CDN
//   GET  <that Location>  with Range: bytes=N-                     the content, resumed where a partial file ends
// Redirects are followed by hand: the token goes only to the endpoint's own origin, never to a CDN host, and a
// redirect may not downgrade to plain http unless the endpoint itself is http.
import { createHash, Hash } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import type { HubSettings } from './settings';

export interface RepoFile {
  /** Path in the repo (`onnx/decoder_model_merged_q4.onnx`). */
  name: string;
  size: number;
  /** The blob name: the LFS sha256 for LFS files, the git blob sha1 otherwise. */
  etag: string;
  lfs: boolean;
}

export interface RepoListing {
  commit: string;
  files: RepoFile[];
}

export interface FileMetadata {
  commit: string;
  etag: string;
  size: number;
  /** Where the content is (a CDN for LFS files, the resolve URL itself otherwise). */
  location: string;
}

/** An answer from the Hub that a user can act on; `status` 0 for network failures. */
export class HubError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code?: string,
  ) {
    super(message);
  }
  /** The Hub could not be reached at all (so a cached copy may be used instead). */
  get network(): boolean {
    return this.status === 0;
  }
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  url: URL;
  body: http.IncomingMessage;
}

const MAX_REDIRECTS = 5;
const IDLE_TIMEOUT_MS = 30_000;
const WRITE_BATCH = 1024 * 1024;
const WRITE_BUFFER_LIMIT = 16 * 1024 * 1024;

function stripEtag(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v?.replace(/^W\//, '').replace(/^"|"$/g, '') || undefined;
}

function header(headers: http.IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Each segment percent-encoded, slashes kept (`onnx/a b.onnx` → `onnx/a%20b.onnx`). */
function encodePath(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

export class HubClient {
  private readonly origin: string;

  constructor(readonly settings: HubSettings) {
    this.origin = new URL(settings.endpoint).origin;
  }

  resolveUrl(repo: string, revision: string, name: string): string {
    return `${this.settings.endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${encodePath(name)}`;
  }

  /** The commit a revision points at and the files in it, with sizes and blob names. */
  async listing(repo: string, revision: string, signal?: AbortSignal): Promise<RepoListing> {
    const url = `${this.settings.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
    const answer = await this.request('GET', url, { signal, followAbsolute: false });
    const text = await readBody(answer.body);
    if (answer.status !== 200) throw this.statusError(answer, repo, revision);
    let info: { sha?: string; siblings?: { rfilename?: string; size?: number; blobId?: string; lfs?: { sha256?: string; size?: number } }[] };
    try {
      info = JSON.parse(text) as typeof info;
    } catch {
      throw new HubError(`${url} did not answer JSON: is HF_ENDPOINT a Hub?`, answer.status);
    }
    if (typeof info.sha !== 'string' || !Array.isArray(info.siblings)) {
      throw new HubError(`the model info for ${repo}@${revision} has no commit or file list`, answer.status);
    }
    const files = info.siblings.map((s) => {
      const lfs = s.lfs?.sha256 !== undefined;
      const size = lfs ? s.lfs?.size : s.size;
      const etag = lfs ? s.lfs?.sha256 : s.blobId;
      if (typeof s.rfilename !== 'string' || typeof size !== 'number' || typeof etag !== 'string') {
        throw new HubError(`the model info for ${repo}@${revision} lists a file without name, size or hash`, answer.status);
      }
      return { name: s.rfilename, size, etag, lfs };
    });
    return { commit: info.sha, files };
  }

  /** HEAD of a file: its commit, etag, size and download location (relative redirects followed, a CDN's not). */
  async metadata(repo: string, revision: string, name: string, signal?: AbortSignal): Promise<FileMetadata> {
    const answer = await this.request('HEAD', this.resolveUrl(repo, revision, name), {
      signal,
      followAbsolute: false,
      headers: { 'accept-encoding': 'identity' },
    });
    answer.body.resume();
    if (answer.status >= 400) throw this.statusError(answer, repo, revision, name);
    const h = answer.headers;
    const commit = header(h, 'x-repo-commit');
    const etag = stripEtag(h['x-linked-etag'] ?? h.etag);
    const size = Number(header(h, 'x-linked-size') ?? header(h, 'content-length'));
    if (!commit || !etag || !Number.isFinite(size)) {
      throw new HubError(`the Hub's answer for ${name} lacks X-Repo-Commit, ETag or size: is HF_ENDPOINT a Hub?`, answer.status);
    }
    const redirect = answer.status >= 300 && answer.status < 400 ? header(h, 'location') : undefined;
    return { commit, etag, size, location: redirect ? new URL(redirect, answer.url).href : answer.url.href };
  }

  /**
   * Downloads `url` into `file`, appending to what a previous attempt left there (Range), restarting from zero when
   * the server ignores the Range (200 instead of 206). Retries dropped connections while bytes keep arriving.
   * Returns the content's digest: sha256, or for git blobs the git sha1 (of "blob <size>\0" + content).
   */
  async download(
    url: string,
    file: string,
    options: { size: number; digest: 'sha256' | 'git-sha1'; signal?: AbortSignal; onBytes?: (have: number) => void },
  ): Promise<string> {
    const { size, signal } = options;
    let failuresWithoutProgress = 0;
    for (;;) {
      let have = fs.existsSync(file) ? fs.statSync(file).size : 0;
      if (have > size) {
        fs.truncateSync(file, 0);
        have = 0;
      }
      const hash = await hashOf(file, have, options);
      options.onBytes?.(have);
      if (have === size) return hash.digest('hex');
      const before = have;
      try {
        const answer = await this.request('GET', url, {
          signal,
          followAbsolute: true,
          headers: { 'accept-encoding': 'identity', ...(have > 0 ? { range: `bytes=${have}-` } : {}) },
        });
        if (answer.status === 200 && have > 0) {
          // The server ignored the Range: start over from the first byte.
          fs.truncateSync(file, 0);
          return await this.receive(answer, file, await hashOf(file, 0, options), 0, options);
        }
        if (answer.status !== 200 && answer.status !== 206) {
          answer.body.resume();
          throw this.statusError(answer, '', '', url);
        }
        return await this.receive(answer, file, hash, have, options);
      } catch (err) {
        if (signal?.aborted) throw signal.reason ?? err;
        if (!(err instanceof HubError) || !err.network) throw err;
        const now = fs.existsSync(file) ? fs.statSync(file).size : 0;
        failuresWithoutProgress = now > before ? 0 : failuresWithoutProgress + 1;
        if (failuresWithoutProgress >= 5) throw err;
        await new Promise((r) => setTimeout(r, 100 * failuresWithoutProgress));
      }
    }
  }

  /**
   * The body into `file` (appended), hashed as it arrives. Bytes reach the disk in writes of about 1 MB, one at a
   * time: a write per 64 kB socket read (what a write stream does while the disk keeps up) costs a thread-pool round
   * trip each, more CPU than the sha256. When the connection fails, what was received is written before the promise
   * rejects, so a resume starts after it.
   */
  private receive(answer: Answer, file: string, hash: Hash, have: number, options: { size: number; onBytes?: (have: number) => void }): Promise<string> {
    return new Promise((resolve, reject) => {
      const body = answer.body;
      let fd: number;
      try {
        fd = fs.openSync(file, 'a');
      } catch (err) {
        body.destroy();
        return reject(err);
      }
      let received = have;
      let queue: Buffer[] = [];
      let queued = 0;
      let writing = false;
      let ended = false;
      let failure: Error | undefined;
      const settle = () =>
        fs.close(fd, () => {
          if (failure) reject(failure);
          else if (received < options.size) reject(new HubError(`download interrupted at ${received} of ${options.size} bytes`, 0));
          else resolve(hash.digest('hex'));
        });
      const next = () => {
        if (writing) return;
        if (queued === 0 || (!ended && queued < WRITE_BATCH)) {
          if (ended) settle();
          return;
        }
        const batch = queue;
        queue = [];
        queued = 0;
        writing = true;
        fs.writev(fd, batch, (err, written) => {
          writing = false;
          if (err) {
            // The disk refused (full, gone): what is queued is lost; the file keeps what was written.
            failure ??= err;
            queue = [];
            queued = 0;
            ended = true;
            body.destroy();
          } else {
            const total = batch.reduce((n, b) => n + b.length, 0);
            if (written < total) {
              // A short write: the rest goes first in the next one.
              queue.unshift(Buffer.concat(batch).subarray(written));
              queued += total - written;
            }
            if (!ended && body.isPaused() && queued <= WRITE_BUFFER_LIMIT) body.resume();
          }
          next();
        });
      };
      const fail = (err: Error) => {
        if (failure) return;
        failure = err;
        ended = true;
        body.destroy();
        next();
      };
      body.on('data', (chunk: Buffer) => {
        if (failure) return;
        received += chunk.length;
        if (received > options.size) return fail(new HubError(`the server sent more than the expected ${options.size} bytes`, 0));
        hash.update(chunk);
        queue.push(chunk);
        queued += chunk.length;
        next();
        // Pause only when the disk falls far behind: a paused response loses what it buffered if the connection
        // then drops, and those bytes would be fetched twice.
        if (queued > WRITE_BUFFER_LIMIT) body.pause();
        options.onBytes?.(received);
      });
      body.on('error', (err) => fail(new HubError(`download interrupted: ${err.message}`, 0)));
      body.on('aborted', () => fail(new HubError('download interrupted: the connection closed', 0)));
      body.on('end', () => {
        if (failure) return;
        ended = true;
        next();
      });
    });
  }

  private statusError(answer: Answer, repo: string, revision: string, name?: string): HubError {
    const code = header(answer.headers, 'x-error-code');
    const what = name ? `${name} in ${repo || 'the repo'}` : `${repo}@${revision}`;
    const page = repo ? `${this.settings.endpoint}/${repo}` : this.settings.endpoint;
    const status = answer.status;
    let message: string;
    if (status === 401 || code === 'GatedRepo' || status === 403) {
      message =
        status === 403 || code === 'GatedRepo'
          ? `access to ${repo || what} is refused (${status}): it is a gated model: accept its licence at ${page} while logged in, and use a token of that account (HF_TOKEN)`
          : this.settings.token
            ? `the Hub refused the token for ${repo || what} (401): check that HF_TOKEN can read this repo, or accept its licence at ${page}`
            : `${repo || what} needs a Hub token (401): it is private or gated: set HF_TOKEN (or run huggingface-cli login), and accept its licence at ${page}`;
    } else if (status === 404) {
      message =
        code === 'RevisionNotFound'
          ? `revision "${revision}" not found in ${repo} (404)`
          : code === 'EntryNotFound' || (name && code !== 'RepoNotFound')
            ? `${what} not found (404)`
            : `model ${repo} not found on ${this.settings.endpoint} (404): check the name, or set HF_TOKEN if it is private`;
    } else {
      message = `the Hub answered ${status} for ${what}`;
    }
    return new HubError(message, status, code);
  }

  /** One HTTP request, redirects followed by hand under the token and downgrade rules above. */
  private async request(
    method: string,
    href: string,
    options: { signal?: AbortSignal; followAbsolute: boolean; headers?: Record<string, string> },
  ): Promise<Answer> {
    let url = new URL(href);
    for (let hop = 0; ; hop++) {
      const answer = await this.send(method, url, options.headers ?? {}, options.signal);
      const location = header(answer.headers, 'location');
      if (answer.status < 300 || answer.status >= 400 || answer.status === 304 || !location) return answer;
      const next = new URL(location, url);
      const relative = !/^[a-z][a-z0-9+.-]*:/i.test(location) && !location.startsWith('//');
      if (!relative && !options.followAbsolute) return answer;
      answer.body.resume();
      if (hop >= MAX_REDIRECTS) throw new HubError(`too many redirects from ${href}`, answer.status);
      url = next;
    }
  }

  private send(method: string, url: URL, extra: Record<string, string>, signal?: AbortSignal): Promise<Answer> {
    const endpointHttps = this.settings.endpoint.startsWith('https:');
    if (url.protocol !== 'https:' && (url.protocol !== 'http:' || endpointHttps)) {
      return Promise.reject(new HubError(`refused to follow the Hub to ${url.protocol}//${url.host}: only https (or http when HF_ENDPOINT is http)`, 400));
    }
    const headers: Record<string, string> = { 'user-agent': 'node-red-contrib-llava', ...extra };
    // The token goes to the endpoint's origin only: never to a CDN or any other host a redirect names.
    if (this.settings.token && url.origin === this.origin) headers.authorization = `Bearer ${this.settings.token}`;
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request(url, { method, headers, signal }, (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, url, body: res }));
      req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(new Error(`no answer from ${url.host} for ${IDLE_TIMEOUT_MS / 1000} s`)));
      req.on('error', (err) => {
        if (signal?.aborted) reject(signal.reason ?? err);
        else reject(new HubError(`cannot reach ${url.host}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, 0));
      });
      req.end();
    });
  }
}

function readBody(body: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    body.on('data', (c: Buffer) => chunks.push(c));
    body.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    body.on('error', (err) => reject(new HubError(`reading the Hub's answer: ${err.message}`, 0)));
  });
}

/** A hash primed with the first `have` bytes already in `file` (a resumed download). */
async function hashOf(file: string, have: number, options: { size: number; digest: 'sha256' | 'git-sha1' }): Promise<Hash> {
  const hash = createHash(options.digest === 'sha256' ? 'sha256' : 'sha1');
  if (options.digest === 'git-sha1') hash.update(`blob ${options.size}\0`);
  if (have > 0) {
    for await (const chunk of fs.createReadStream(file, { start: 0, end: have - 1 })) hash.update(chunk as Buffer);
  }
  return hash;
}

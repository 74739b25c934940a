// `pull`: the files a model needs from a Hub repo into the shared cache, each verified (size and hash) before it
// is renamed into blobs/ and linked from the snapshot; and the way back, a model id to a folder, from the cache
// alone when offline.
import { RECORD_KEY } from '../model/config';
import * as fs from 'fs';
import * as path from 'path';
import { RepoCache, repoFolderName } from './cache';
import { HubClient, HubError, RepoFile } from './client';
import { formatRepoRef, looksLikeRepoId, parseRepoRef, RepoRef } from './repo-id';
import { parseVariantSpec, selectFiles, Selection } from './select';
import type { AutoHints } from '../model/weight-variants';
import { hubSettings, HubSettings } from './settings';

export type PullEvent =
  | { type: 'waiting'; holder: string }
  | { type: 'plan'; commit: string; files: { name: string; size: number; cached: boolean }[]; bytesToGet: number }
  | { type: 'progress'; file: string; fileBytes: number; fileSize: number; bytes: number; total: number }
  | { type: 'file'; file: string; size: number; downloaded: boolean };

export interface PullOptions {
  /** Weight variant spec (see parseVariantSpec); default auto. */
  variant?: string;
  /** Extra files, as globs over repo paths. */
  include?: string[];
  settings?: HubSettings;
  signal?: AbortSignal;
  onProgress?: (e: PullEvent) => void;
  /** Free bytes on the cache's disk (a seam for the disk-full test; statfs by default). */
  diskFree?: (dir: string) => number;
}

export interface PullResult {
  ref: RepoRef;
  commit: string;
  /** The snapshot folder: a model folder the loader opens. */
  dir: string;
  selection: Selection;
  /** Bytes fetched by this pull (0 when everything was cached). */
  downloadedBytes: number;
}

const PROGRESS_INTERVAL_MS = 100;

function diskFree(dir: string): number {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
}

export function formatSize(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

/** What 'auto' consults in a repo's config.json, as the folder loader does (see chooseVariants). */
function autoHints(configFile: string | undefined): AutoHints {
  if (!configFile) return {};
  try {
    const config = JSON.parse(fs.readFileSync(configFile, 'utf8')) as Record<string, { variant?: unknown } | undefined> | null;
    return { transformersJs: config?.['transformers.js_config'], recorded: config?.[RECORD_KEY]?.variant };
  } catch {
    return {};
  }
}

/** Downloads what the model needs into the cache (nothing when it is all there) and returns the snapshot folder. */
export async function pull(ref: RepoRef, options: PullOptions = {}): Promise<PullResult> {
  const settings = options.settings ?? hubSettings();
  if (settings.offline) return fromCache(ref, options, settings, 'offline (HF_HUB_OFFLINE is set)');
  const client = new HubClient(settings);
  const cache = new RepoCache(settings.cacheDir, ref.repo);
  let listing;
  try {
    listing = await client.listing(ref.repo, ref.revision, options.signal);
  } catch (err) {
    // Hub unreachable: a complete cached snapshot still works, as with huggingface_hub.
    if (err instanceof HubError && err.network && cache.readRef(ref.revision)) return fromCache(ref, options, settings, err.message);
    throw err;
  }
  const release = await cache.lock(options.signal, (holder) => options.onProgress?.({ type: 'waiting', holder }));
  try {
    return await fetchSnapshot(client, cache, ref, listing.commit, listing.files, options, settings);
  } finally {
    release();
  }
}

async function fetchSnapshot(
  client: HubClient,
  cache: RepoCache,
  ref: RepoRef,
  commit: string,
  listed: RepoFile[],
  options: PullOptions,
  settings: HubSettings,
): Promise<PullResult> {
  const byName = new Map(listed.map((f) => [f.name, f]));
  const spec = parseVariantSpec(options.variant);
  let downloadedBytes = 0;
  // Progress events follow the plan event; the config fetched before the plan reports none.
  const get = async (file: RepoFile, done: number, total: number, report = true) => {
    const got = await fetchFile(
      client,
      cache,
      ref.repo,
      commit,
      file,
      options,
      settings,
      (fileBytes) => report && progress({ type: 'progress', file: file.name, fileBytes, fileSize: file.size, bytes: done + fileBytes, total }),
    );
    downloadedBytes += got;
    options.onProgress?.({ type: 'file', file: file.name, size: file.size, downloaded: got > 0 });
  };
  let last = 0;
  const progress = (e: PullEvent & { type: 'progress' }) => {
    const now = Date.now();
    if (now - last < PROGRESS_INTERVAL_MS && e.fileBytes < e.fileSize) return;
    last = now;
    options.onProgress?.(e);
  };

  // config.json first: 'auto' consults it.
  const config = byName.get('config.json');
  const configWasCached = cache.cachedFile(commit, 'config.json') !== undefined;
  if (config) await get(config, 0, config.size, false);
  const selection = selectFiles([...byName.keys()], spec, options.include, autoHints(config && cache.cachedFile(commit, 'config.json')));
  const files = selection.files.map((n) => byName.get(n) as RepoFile);
  const present = files.map((f) => cache.cachedFile(commit, f.name) !== undefined);
  const plan = files.map((f, i) => ({ name: f.name, size: f.size, cached: f.name === 'config.json' ? configWasCached : present[i] }));
  const missing = files.filter((_, i) => !present[i]);
  const partial = (f: RepoFile) => {
    try {
      return fs.statSync(cache.incomplete(f.etag)).size;
    } catch {
      return 0;
    }
  };
  const bytesToGet = missing.filter((f) => !fs.existsSync(cache.blob(f.etag))).reduce((n, f) => n + f.size - partial(f), 0);
  options.onProgress?.({ type: 'plan', commit, files: plan, bytesToGet });
  if (bytesToGet > 0) {
    fs.mkdirSync(cache.root, { recursive: true });
    const free = (options.diskFree ?? diskFree)(cache.root);
    if (free < bytesToGet) {
      throw new Error(`not enough disk space for ${formatRepoRef(ref)}: it needs ${formatSize(bytesToGet)}, ${formatSize(free)} free in ${settings.cacheDir}`);
    }
  }
  const total = missing.reduce((n, f) => n + f.size, 0);
  let done = 0;
  for (const f of missing) {
    await get(f, done, total);
    done += f.size;
  }
  for (const [i, f] of files.entries())
    if (present[i] && f.name !== 'config.json') options.onProgress?.({ type: 'file', file: f.name, size: f.size, downloaded: false });
  cache.writeRef(ref.revision, commit);
  return { ref, commit, dir: cache.snapshotDir(commit), selection, downloadedBytes };
}

/** One file into blobs/ (verified) and linked from the snapshot; returns the bytes downloaded. */
async function fetchFile(
  client: HubClient,
  cache: RepoCache,
  repo: string,
  commit: string,
  file: RepoFile,
  options: PullOptions,
  settings: HubSettings,
  onBytes: (n: number) => void,
): Promise<number> {
  if (cache.cachedFile(commit, file.name)) return 0;
  cache.snapshotFile(commit, file.name); // refuses an unsafe name before any request
  if (fs.existsSync(cache.blob(file.etag))) {
    cache.link(commit, file.name, file.etag);
    return 0;
  }
  const meta = await client.metadata(repo, commit, file.name, options.signal);
  if (meta.etag !== file.etag || meta.size !== file.size) {
    throw new HubError(
      `the Hub's listing and its metadata for ${file.name} disagree (etag ${file.etag} / ${meta.etag}, size ${file.size} / ${meta.size})`,
      200,
    );
  }
  const incomplete = cache.incomplete(file.etag);
  fs.mkdirSync(path.dirname(incomplete), { recursive: true });
  const started = fs.existsSync(incomplete) ? fs.statSync(incomplete).size : 0;
  let digest: string;
  try {
    digest = await client.download(meta.location, incomplete, {
      size: file.size,
      digest: file.etag.length === 64 ? 'sha256' : 'git-sha1',
      signal: options.signal,
      onBytes,
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
      throw new Error(
        `disk full while downloading ${file.name} into ${settings.cacheDir}: free some space and pull again (the partial file is kept and resumed)`,
      );
    }
    throw err;
  }
  if (digest !== file.etag) {
    fs.rmSync(incomplete, { force: true });
    throw new Error(`${file.name} of ${repo} failed its hash check (expected ${file.etag}, got ${digest}): the download was discarded; pull again`);
  }
  fs.renameSync(incomplete, cache.blob(file.etag));
  cache.link(commit, file.name, file.etag);
  return Math.max(0, file.size - started);
}

/** The model from the cache alone; `why` says why the Hub is not asked. Errors name what is missing. */
export function fromCache(ref: RepoRef, options: Pick<PullOptions, 'variant' | 'include'>, settings: HubSettings, why: string): PullResult {
  const cache = new RepoCache(settings.cacheDir, ref.repo);
  const commit = cache.readRef(ref.revision);
  const name = formatRepoRef(ref);
  if (!commit || !fs.existsSync(cache.snapshotDir(commit))) {
    throw new Error(`${why}, and ${name} is not in the cache (${settings.cacheDir}): pull it while online (npx llava pull ${name})`);
  }
  const names = cache.snapshotFiles(commit);
  let selection: Selection;
  try {
    if (!names.includes('config.json')) throw new Error('config.json is missing');
    selection = selectFiles(names, parseVariantSpec(options.variant), options.include, autoHints(cache.cachedFile(commit, 'config.json')));
    if (selection.kind === 'onnx' && !names.includes('tokenizer.json')) throw new Error('tokenizer.json is missing');
  } catch (err) {
    throw new Error(
      `${why}, and the cached ${name} (commit ${commit.slice(0, 10)}) is incomplete: ${(err as Error).message.replace(/^the repo has/, 'it has')}; pull it while online`,
    );
  }
  return { ref, commit, dir: cache.snapshotDir(commit), selection, downloadedBytes: 0 };
}

/**
 * Where `llava pull --build` puts the ONNX folder converted from a checkpoint repo: beside the Hub cache (not in
 * it, which other tools scan), one folder per commit and quantization.
 */
export function buildDir(settings: HubSettings, repo: string, commit: string, quantize?: string): string {
  return path.join(path.dirname(settings.cacheDir), 'llava-builds', repoFolderName(repo), quantize ? `${commit}-${quantize}` : commit);
}

/**
 * The model folder a pulled snapshot gives: the snapshot itself, or for a checkpoint repo the folder `--build`
 * converted it into (the build whose quantization the variant names first).
 */
export function modelFolderOf(result: PullResult, settings: HubSettings, variant = 'auto'): string {
  if (result.selection.kind !== 'checkpoint') return result.dir;
  const order = /q4/.test(variant) ? ['int4', undefined, 'int8'] : /int8/.test(variant) ? ['int8', undefined, 'int4'] : [undefined, 'int4', 'int8'];
  for (const q of order) {
    const dir = buildDir(settings, result.ref.repo, result.commit, q);
    if (fs.existsSync(path.join(dir, 'config.json'))) return dir;
  }
  const name = formatRepoRef(result.ref);
  throw new Error(`${name} is a checkpoint repo (safetensors, no ONNX graphs): convert it once with npx llava pull ${name} --build [--quantize int4]`);
}

export interface ResolveOptions extends PullOptions {
  /** false: use the cache only, never download (--no-pull). */
  pull?: boolean;
}

/**
 * A model setting (`--model`, the config node's field) to a folder: an existing folder as it is; `org/name[@rev]`
 * to its cached snapshot, pulling what is missing unless told not to or offline.
 */
export async function resolveModel(model: string, options: ResolveOptions = {}): Promise<string> {
  if (fs.existsSync(model) || !looksLikeRepoId(model)) return model;
  const ref = parseRepoRef(model);
  const settings = options.settings ?? hubSettings();
  const result =
    options.pull === false && !settings.offline
      ? fromCache(ref, options, settings, `${model} is not a folder and pulling is off`)
      : await pull(ref, { ...options, settings });
  return modelFolderOf(result, settings, options.variant);
}

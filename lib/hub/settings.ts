// Where the Hub is and where its files go, from the same environment variables huggingface_hub reads, so a
// model pulled here is shared with Python tools and other Hub clients (and the other way round).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface HubSettings {
  /** Origin (and optional path prefix) of the Hub: HF_ENDPOINT, else https://huggingface.co. */
  endpoint: string;
  /** The cache root holding models--org--name folders: HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
  cacheDir: string;
  /** Bearer token: HF_TOKEN, else the token file ($HF_TOKEN_PATH, else $HF_HOME/token). Never logged. */
  token?: string;
  /** HF_HUB_OFFLINE=1: only the cache is used, no request is made. */
  offline: boolean;
}

const TRUE = new Set(['1', 'on', 'yes', 'true']);

function hfHome(env: NodeJS.ProcessEnv): string {
  return env.HF_HOME || path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'huggingface');
}

function readTokenFile(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Plain http is accepted only for an endpoint the user named so (a local mirror or a test server). */
export function checkEndpoint(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new Error(`HF_ENDPOINT is not a URL: "${endpoint}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`HF_ENDPOINT must be an http(s) URL, got "${endpoint}"`);
  if (url.username || url.password) throw new Error('HF_ENDPOINT must not carry credentials: set HF_TOKEN');
  return endpoint.replace(/\/+$/, '');
}

/** Settings from the environment; fields given in `overrides` win (a --cache-dir flag, a node's credential). */
export function hubSettings(overrides: Partial<HubSettings> = {}, env: NodeJS.ProcessEnv = process.env): HubSettings {
  const home = hfHome(env);
  const token = env.HF_TOKEN?.trim() || readTokenFile(env.HF_TOKEN_PATH || path.join(home, 'token'));
  const settings: HubSettings = {
    endpoint: env.HF_ENDPOINT || 'https://huggingface.co',
    cacheDir: env.HF_HUB_CACHE || path.join(home, 'hub'),
    token,
    offline: TRUE.has((env.HF_HUB_OFFLINE ?? '').toLowerCase()),
  };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) (settings as unknown as Record<string, unknown>)[k] = v;
  settings.endpoint = checkEndpoint(settings.endpoint);
  settings.cacheDir = path.resolve(settings.cacheDir);
  return settings;
}

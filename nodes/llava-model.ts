// llava-model: the config node that says which engine runs the model: this process (a model folder loaded once on
// the shared runtime) or an OpenAI-compatible server (its URL, model name and API key, the key in Node-RED's
// credentials). Every node that uses it waits for the load or the server's reachability and shows it.
import type { Node, NodeAPI, NodeDef } from 'node-red';
import * as fs from 'fs';
import { looksLikeRepoId } from '../lib/hub/repo-id';
import { LocalEngine } from '../lib/engine/local-engine';
import { RemoteEngine } from '../lib/engine/remote-engine';
import type { Engine, EngineRequest, EngineState } from '../lib/engine/types';
import { LlavaModel } from '../lib/pipeline/llava-model';
import { isProviderChoice, PROVIDER_CHOICES } from '../lib/runtime/providers';
import type { ProviderPreference } from '../lib/runtime/types';
import { ModelConfigNode, ModelState, parseRoots } from './shared/model-client';
import { errorMessage } from './shared/status';
import { registerHubAdmin, startDownload } from './llava-model-hub';

interface LlavaModelDef extends NodeDef {
  /** 'local' (this process) or 'openai' (an OpenAI-compatible server); absent in flows saved before: local. */
  engine?: string;
  engineUrl?: string;
  engineModel?: string;
  /** Longest side of the JPEG sent to the server, px. */
  imageMaxSide?: number | string;
  /** Requests in flight to the server at once. */
  concurrency?: number | string;
  /** Seconds to wait for the first token (a CPU server's prefill can take a minute). */
  firstTokenTimeout?: number | string;
  modelDir: string;
  provider: string;
  threads: number | string;
  variant: string;
  preset: string;
  imageRoots: string;
}

function providers(value: string): ProviderPreference {
  if (!value) return 'auto';
  if (isProviderChoice(value)) return value;
  throw new Error(`unknown execution provider "${value}" (expected ${PROVIDER_CHOICES.join(', ')})`);
}

export = function register(RED: NodeAPI): void {
  /** A folder as it is; a Hub id (`org/name[@rev]`) is pulled into the Hub cache first, or joins that download. */
  async function modelFolder(model: string, variant: string, token: string | undefined, onPercent: (percent: number) => void): Promise<string> {
    if (fs.existsSync(model) || !looksLikeRepoId(model)) return model;
    const download = startDownload(RED, model, variant, token);
    const stop = download.follow((s) => s.state === 'running' && onPercent(s.percent));
    try {
      return await download.folder;
    } finally {
      stop();
    }
  }

  function LlavaModelNode(this: ModelConfigNode, def: LlavaModelDef): void {
    RED.nodes.createNode(this as Node, def);
    const node = this as ModelConfigNode & { imageRoots: string[]; modelState: ModelState };
    const listeners = new Set<(s: ModelState) => void>();
    const setState = (s: ModelState) => {
      node.modelState = s;
      for (const l of listeners) l(s);
    };
    node.imageRoots = parseRoots(def.imageRoots);
    node.modelState = { state: 'loading' };
    node.onModelState = (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    };

    if (def.engine === 'openai') {
      startRemote(node, def, setState);
      return;
    }

    const abort = new AbortController();
    const loading: Promise<LlavaModel> = (async () => {
      if (!def.modelDir) throw new Error('set the model folder or a Hub id in the llava-model config node');
      const threads = Number(def.threads);
      const token = (node as unknown as { credentials?: { token?: string } }).credentials?.token;
      const folder = await modelFolder(def.modelDir, def.variant || 'auto', token, (percent) => setState({ state: 'downloading', percent }));
      return LlavaModel.load(folder, {
        providers: providers(def.provider),
        threads: threads > 0 ? threads : undefined,
        variant: def.variant || 'auto',
        preset: def.preset && def.preset !== 'auto' ? def.preset : undefined,
        signal: abort.signal,
        onProgress: (loaded, total) => setState({ state: 'loading', progress: `${loaded}/${total}` }),
      });
    })();
    loading.then(
      (model) => {
        const fallbackReasons = model.providerFailures.map((f) => `${f.provider}: ${f.error}`);
        // A warning (debug sidebar), once per load: the flow runs, but slower than the user asked for.
        if (fallbackReasons.length) node.warn(`running on ${model.provider}: ${fallbackReasons.join('; ')}`);
        setState({ state: 'ready', provider: model.provider, fallbackReasons });
      },
      (err) => {
        node.error(`cannot load LLaVA model: ${errorMessage(err)}`);
        setState({ state: 'error', error: err instanceof Error ? err : new Error(errorMessage(err)) });
      },
    );
    node.model = () => loading;
    const engine = loading.then((model) => new LocalEngine(model));
    engine.catch(() => undefined);
    node.engine = () => engine;

    node.on('close', (done: () => void) => {
      abort.abort();
      loading
        .then(
          (m) => m.close(),
          () => undefined,
        )
        .finally(() => done());
    });
  }
  // The API key and the Hub token live in Node-RED's credentials store (never in the flow file).
  RED.nodes.registerType('llava-model', LlavaModelNode as unknown as Parameters<NodeAPI['nodes']['registerType']>[1], {
    credentials: { apiKey: { type: 'password' }, token: { type: 'password' } },
  });
  registerHubAdmin(RED);
};

/** How often the status re-checks a remote server that answered (one that failed is checked again at once). */
const RECHECK_MS = 30_000;

function positive(value: unknown, what: string): number | undefined {
  if (value === undefined || value === null || String(value as string | number).trim() === '') return undefined;
  const n = Number(value);
  if (!(n > 0)) throw new Error(`${what} must be a positive number, got ${JSON.stringify(value)}`);
  return n;
}

function startRemote(node: ModelConfigNode, def: LlavaModelDef, setState: (s: ModelState) => void): void {
  const noLocalModel = Promise.reject(new Error('this llava-model uses a remote engine: there is no model in this process'));
  noLocalModel.catch(() => undefined);
  node.model = () => noLocalModel;
  let engine: RemoteEngine;
  try {
    if (!def.engineUrl) throw new Error('set the server URL in the llava-model config node');
    if (!def.engineModel) throw new Error('set the model name the server serves in the llava-model config node');
    const firstToken = positive(def.firstTokenTimeout, 'the first-token timeout');
    const apiKey = (node as unknown as { credentials?: { apiKey?: string } }).credentials?.apiKey;
    engine = new RemoteEngine({
      baseUrl: def.engineUrl,
      model: def.engineModel,
      apiKey: apiKey || undefined,
      imageMaxSide: positive(def.imageMaxSide, 'the image size'),
      concurrency: positive(def.concurrency, 'the concurrency'),
      timeouts: firstToken ? { firstTokenMs: firstToken * 1000 } : undefined,
    });
  } catch (err) {
    const error = err instanceof Error ? err : new Error(errorMessage(err));
    node.error(`cannot use the remote engine: ${error.message}`);
    setState({ state: 'error', error });
    const failed = Promise.reject(error);
    failed.catch(() => undefined);
    node.engine = () => failed;
    return;
  }

  // Reachability in the status: checked now, every RECHECK_MS, and at once after a request fails.
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const check = async () => {
    clearTimeout(timer);
    let s: EngineState;
    try {
      s = await engine.check();
    } catch {
      return; // closed
    }
    if (closed) return;
    if (s.state === 'ready') setState({ state: 'ready', provider: s.detail, fallbackReasons: [] });
    else if (s.state === 'unreachable' || s.state === 'error') setState({ state: 'error', error: new Error(s.error) });
    timer = setTimeout(() => void check(), RECHECK_MS);
    timer.unref();
  };
  void check();
  const watched: Engine = {
    kind: 'remote',
    label: engine.label,
    check: (signal) => engine.check(signal),
    close: () => engine.close(),
    generate: async (request: EngineRequest) => {
      try {
        return await engine.generate(request);
      } catch (err) {
        if (!request.signal?.aborted && !closed) void check();
        throw err;
      }
    },
  };
  const ready = Promise.resolve(watched);
  node.engine = () => ready;
  node.on('close', (done: () => void) => {
    closed = true;
    clearTimeout(timer);
    void engine.close().finally(() => done());
  });
}

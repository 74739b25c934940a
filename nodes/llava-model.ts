// llava-model: the config node that names a model folder and how to run it. It loads the model once on the
// shared runtime; every node that uses it waits for that load and shows its outcome.
import type { Node, NodeAPI, NodeDef } from 'node-red';
import * as fs from 'fs';
import { looksLikeRepoId } from '../lib/hub/repo-id';
import { LlavaModel } from '../lib/pipeline/llava-model';
import type { ProviderName, ProviderPreference } from '../lib/runtime/types';
import { ModelConfigNode, ModelState, parseRoots } from './shared/model-client';
import { errorMessage } from './shared/status';
import { registerHubAdmin, startDownload } from './llava-model-hub';

interface LlavaModelDef extends NodeDef {
  modelDir: string;
  provider: string;
  threads: number | string;
  variant: string;
  preset: string;
  imageRoots: string;
}

function providers(value: string): ProviderPreference {
  if (value === 'auto' || !value) return 'auto';
  if (['cuda', 'webgpu', 'cpu'].includes(value)) return value as ProviderName;
  throw new Error(`unknown execution provider "${value}"`);
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

    node.on('close', (done: () => void) => {
      abort.abort();
      loading.then((m) => m.close(), () => undefined).finally(() => done());
    });
  }
  RED.nodes.registerType('llava-model', LlavaModelNode, { credentials: { token: { type: 'password' } } } as object);
  registerHubAdmin(RED);
};

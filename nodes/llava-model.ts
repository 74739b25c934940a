// llava-model: the config node that names a model folder and how to run it. It loads the model once on the
// shared runtime; every node that uses it waits for that load and shows its outcome.
import type { Node, NodeAPI, NodeDef } from 'node-red';
import { LlavaModel } from '../lib/pipeline/llava-model';
import { isProviderChoice, PROVIDER_CHOICES } from '../lib/runtime/providers';
import type { ProviderPreference } from '../lib/runtime/types';
import { ModelConfigNode, ModelState, parseRoots } from './shared/model-client';
import { errorMessage } from './shared/status';

interface LlavaModelDef extends NodeDef {
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
      if (!def.modelDir) throw new Error('set the model folder in the llava-model config node');
      const threads = Number(def.threads);
      return LlavaModel.load(def.modelDir, {
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
  RED.nodes.registerType('llava-model', LlavaModelNode);
};

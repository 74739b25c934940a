// How a LLaVA node reaches its model: the llava-model config node loads it once and tells every node that uses
// it how loading went, so each shows loading / ready (provider) / error the same way.
import type { Node, NodeAPI } from 'node-red';
import type { Engine } from '../../lib/engine/types';
import type { LlavaModel } from '../../lib/pipeline/llava-model';
import type { StatusReporter } from './status';

/** `provider` is what runs the model: the execution provider, or the remote server's host and model. */
export type ModelState =
  | { state: 'downloading'; percent: number }
  | { state: 'loading'; progress?: string }
  | { state: 'ready'; provider: string; fallbackReasons: string[] }
  | { state: 'error'; error: Error };

/** What the llava-model config node offers the nodes that use it. */
export interface ModelConfigNode extends Node {
  /** The loaded model; rejects with the load error, or when the engine is remote (no model in this process). */
  model(): Promise<LlavaModel>;
  /** The engine that runs requests: this process's runtime or an OpenAI-compatible server. */
  engine(): Promise<Engine>;
  /** Folders that image-load may read file paths from (empty: none). */
  readonly imageRoots: string[];
  readonly modelState: ModelState;
  onModelState(listener: (s: ModelState) => void): () => void;
}

export interface ModelClient {
  model(): Promise<LlavaModel>;
  engine(): Promise<Engine>;
  imageRoots: string[];
}

/**
 * The config node a node's `model` property names, with its state mirrored in the node's status. Without one,
 * model() rejects, so every message still ends in an error a Catch node sees.
 */
export function useModel(RED: NodeAPI, node: Node, configId: unknown, status: StatusReporter): ModelClient {
  const config = typeof configId === 'string' ? (RED.nodes.getNode(configId) as ModelConfigNode | null) : null;
  if (!config || typeof config.model !== 'function') {
    const error = new Error('no LLaVA model configured: choose or add a llava-model in the node');
    status.error(error);
    return { model: () => Promise.reject(error), engine: () => Promise.reject(error), imageRoots: [] };
  }
  const show = (s: ModelState) => {
    if (s.state === 'downloading') status.downloading(s.percent);
    else if (s.state === 'loading') status.loading(s.progress ? `model ${s.progress}` : 'model');
    else if (s.state === 'ready') status.ready(s.provider);
    else status.error(s.error);
  };
  show(config.modelState);
  const unsubscribe = config.onModelState(show);
  node.on('close', () => unsubscribe());
  return { model: () => config.model(), engine: () => config.engine(), imageRoots: config.imageRoots };
}

/** The config node's image root folders: one per line (or comma-separated). */
export function parseRoots(text: string | undefined): string[] {
  return (text ?? '')
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

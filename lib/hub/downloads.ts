// Pulls shared within one process: the editor's Download button and a deployed config node asking for the same
// model and variant follow one download, each seeing its progress; any of them may cancel it (the partial file
// stays for the next pull to resume).
import { randomUUID } from 'crypto';
import { modelFolderOf, pull } from './pull';
import { formatRepoRef, parseRepoRef } from './repo-id';
import { parseVariantSpec } from './select';
import type { HubSettings } from './settings';

export interface DownloadState {
  id: string;
  /** `org/name[@rev]`. */
  model: string;
  variant: string;
  state: 'running' | 'done' | 'error' | 'cancelled';
  bytes: number;
  total: number;
  /** 0–100, whole numbers. */
  percent: number;
  file?: string;
  error?: string;
  /** The model folder, once done. */
  dir?: string;
}

export class Download {
  readonly id = randomUUID();
  /** The model folder (see modelFolderOf); rejects with the pull's error. */
  readonly folder: Promise<string>;
  private readonly abort = new AbortController();
  private readonly listeners = new Set<(s: DownloadState) => void>();
  private current: DownloadState;

  constructor(model: string, variant: string, settings: HubSettings) {
    const ref = parseRepoRef(model);
    parseVariantSpec(variant);
    this.current = { id: this.id, model: formatRepoRef(ref), variant, state: 'running', bytes: 0, total: 0, percent: 0 };
    const result = pull(ref, {
      variant,
      settings,
      signal: this.abort.signal,
      onProgress: (e) => {
        if (e.type === 'plan') this.update({ total: e.bytesToGet, percent: e.bytesToGet ? 0 : 100 });
        else if (e.type === 'progress') this.update({ bytes: e.bytes, total: e.total, percent: Math.floor((100 * e.bytes) / (e.total || 1)), file: e.file });
      },
    });
    this.folder = result.then((r) => modelFolderOf(r, settings, variant));
    this.folder.then(
      (dir) => this.update({ state: 'done', percent: 100, dir }),
      (err: Error) => this.update(this.abort.signal.aborted ? { state: 'cancelled' } : { state: 'error', error: err.message }),
    );
  }

  get state(): DownloadState {
    return this.current;
  }

  /** Calls `listener` on every change until the returned function is called. */
  follow(listener: (s: DownloadState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  cancel(): void {
    this.abort.abort();
  }

  private update(change: Partial<DownloadState>): void {
    this.current = { ...this.current, ...change };
    for (const l of this.listeners) l(this.current);
  }
}

/** Running and recent downloads by model, variant and cache; a finished one is replaced by the next request. */
export class Downloads {
  private readonly byKey = new Map<string, Download>();

  /** The download of this model, variant and cache: the running one, or a new one. */
  start(model: string, variant: string, settings: HubSettings): Download {
    const key = JSON.stringify([model, variant, settings.cacheDir, settings.endpoint]);
    const running = this.byKey.get(key);
    if (running && running.state.state === 'running') return running;
    const download = new Download(model, variant, settings);
    this.byKey.set(key, download);
    return download;
  }

  get(id: string): Download | undefined {
    return [...this.byKey.values()].find((d) => d.id === id);
  }

  list(): DownloadState[] {
    return [...this.byKey.values()].map((d) => d.state);
  }
}

// Sessions cached by spec key and shared through reference-counted leases. Concurrent opens of one key share
// one load; a session nobody leases is unloaded only after a grace period, so a Node-RED redeploy that keeps
// the model does not reload it.
import type { ResolvedSpec } from './protocol';
import { abortReason } from './scheduler';
import type { SessionInfo, SessionLease } from './types';
import type { WorkerLink } from './worker-link';

export interface CachedSession {
  readonly key: string;
  readonly spec: ResolvedSpec;
  /** The model file's name, for job labels and messages. */
  readonly label: string;
  info: SessionInfo | null;
  /** The worker the session is open on; after a worker restart it is re-opened on first use. */
  loadedOn: WorkerLink | null;
  /** Leases plus queued or running jobs. */
  refs: number;
  loading: Promise<SessionInfo> | null;
  abandoned: AbortController | null;
  grace: NodeJS.Timeout | null;
}

export interface SessionCacheHooks {
  /** Loads a session for the first time; `abandoned` aborts when every opener has given up waiting. */
  load(entry: CachedSession, abandoned: AbortSignal): Promise<SessionInfo>;
  /** Called when an unused session's grace period ends and it leaves the cache. */
  unload(entry: CachedSession): void;
}

/** `promise`, or a rejection with the signal's reason as soon as it aborts (the work itself goes on). */
function untilAborted<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export class SessionCache {
  private readonly entries = new Map<string, CachedSession>();
  private readonly leases = new WeakMap<SessionLease, CachedSession>();
  private closed = false;

  constructor(
    private readonly graceMs: number,
    private readonly hooks: SessionCacheHooks,
  ) {}

  /** Sessions currently loaded (in use or within their grace period). */
  get loadedCount(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.info) n++;
    return n;
  }

  /** Loaded sessions that someone holds. */
  inUse(): CachedSession[] {
    return [...this.entries.values()].filter((e) => e.refs > 0 && e.info);
  }

  async open(key: string, spec: ResolvedSpec, label: string, signal?: AbortSignal): Promise<SessionLease> {
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { key, spec, label, info: null, loadedOn: null, refs: 0, loading: null, abandoned: null, grace: null };
      this.entries.set(key, entry);
    }
    this.retain(entry);
    try {
      const info = await untilAborted(entry.info ? Promise.resolve(entry.info) : this.firstLoad(entry), signal);
      return this.lease(entry, info);
    } catch (e) {
      this.release(entry);
      throw e;
    }
  }

  entryOf(lease: SessionLease): CachedSession {
    const entry = this.leases.get(lease);
    if (!entry) throw new Error('run: this session lease was released (or comes from another runtime)');
    return entry;
  }

  retain(entry: CachedSession): void {
    entry.refs++;
    if (entry.grace) clearTimeout(entry.grace);
    entry.grace = null;
  }

  release(entry: CachedSession): void {
    if (--entry.refs > 0 || this.closed) return;
    if (entry.info) this.startGrace(entry);
    else if (entry.loading) entry.abandoned?.abort();
    else this.entries.delete(entry.key);
  }

  /** Forgets every session without unloading (the worker is going away). */
  close(): void {
    this.closed = true;
    for (const e of this.entries.values()) if (e.grace) clearTimeout(e.grace);
    this.entries.clear();
  }

  private firstLoad(entry: CachedSession): Promise<SessionInfo> {
    // Concurrent opens of one key share this load.
    if (entry.loading) return entry.loading;
    entry.abandoned = new AbortController();
    entry.loading = this.hooks.load(entry, entry.abandoned.signal).then(
      (info) => {
        entry.loading = entry.abandoned = null;
        if (entry.refs === 0) this.startGrace(entry);
        return info;
      },
      (e) => {
        entry.loading = entry.abandoned = null;
        if (entry.refs === 0) this.entries.delete(entry.key);
        throw e;
      },
    );
    return entry.loading;
  }

  private lease(entry: CachedSession, info: SessionInfo): SessionLease {
    let released = false;
    const lease: SessionLease = {
      info,
      release: () => {
        if (released) return;
        released = true;
        this.leases.delete(lease);
        this.release(entry);
      },
    };
    this.leases.set(lease, entry);
    return lease;
  }

  private startGrace(entry: CachedSession): void {
    const unload = () => {
      entry.grace = null;
      if (entry.refs > 0 || this.entries.get(entry.key) !== entry) return;
      this.entries.delete(entry.key);
      this.hooks.unload(entry);
    };
    if (this.graceMs === 0) return unload();
    entry.grace = setTimeout(unload, this.graceMs);
    entry.grace.unref();
  }
}

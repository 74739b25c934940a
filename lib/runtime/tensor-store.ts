// Tensors kept in the worker between calls (KV caches, image features), named by small handles. Handles are
// freed explicitly; beyond the count/byte limits the least recently used are evicted. A handle that was freed,
// evicted, or made by a worker that has since exited gives an "expired tensor handle" error, never stale data.
import type { StoreLimits } from './protocol';
import { isTensorHandle, TensorHandle, TensorValue } from './tensor';

const HANDLE_RE = /^t(\d+)\.(\d+)$/;

export class TensorStore {
  /** Insertion order is recency order: a touched entry is re-inserted at the end. */
  private readonly entries = new Map<string, TensorValue>();
  private nextId = 1;
  private totalBytes = 0;

  constructor(
    private readonly generation: number,
    private readonly limits: StoreLimits,
    private readonly onChange: () => void = () => {},
  ) {}

  get count(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Keeps `value` (not a copy: the caller must not reuse its data) and returns its handle. */
  put(value: TensorValue): TensorHandle {
    const handle = `t${this.generation}.${this.nextId++}`;
    this.entries.set(handle, value);
    this.totalBytes += value.data.byteLength;
    this.evict(handle);
    this.onChange();
    return { handle, type: value.type, dims: [...value.dims] };
  }

  get(ref: TensorHandle | string): TensorValue {
    const handle = this.check(ref);
    const value = this.entries.get(handle);
    if (!value) throw this.expired(handle);
    this.entries.delete(handle);
    this.entries.set(handle, value);
    return value;
  }

  /** Freeing an already freed or evicted handle is a no-op. */
  free(ref: TensorHandle | string): void {
    const handle = this.check(ref);
    const value = this.entries.get(handle);
    if (!value) return;
    this.entries.delete(handle);
    this.totalBytes -= value.data.byteLength;
    this.onChange();
  }

  private evict(keep: string): void {
    const { maxHandles, maxBytes } = this.limits;
    for (const [handle, value] of this.entries) {
      if (this.entries.size <= maxHandles && this.totalBytes <= maxBytes) break;
      if (handle === keep) continue; // the newest tensor stays even if it alone is over the byte limit
      this.entries.delete(handle);
      this.totalBytes -= value.data.byteLength;
    }
  }

  /** The handle string, after checking it is one of this worker's. */
  private check(ref: TensorHandle | string): string {
    const handle = isTensorHandle(ref) ? ref.handle : ref;
    const m = typeof handle === 'string' ? HANDLE_RE.exec(handle) : null;
    if (!m) throw new Error(`not a tensor handle: ${JSON.stringify(handle)}`);
    if (Number(m[1]) !== this.generation) {
      throw new Error(`expired tensor handle ${handle}: it was made by an inference worker that has since exited`);
    }
    if (Number(m[2]) >= this.nextId) throw new Error(`unknown tensor handle ${handle}`);
    return handle;
  }

  private expired(handle: string): Error {
    const { maxHandles, maxBytes } = this.limits;
    return new Error(
      `expired tensor handle ${handle}: it was freed, or evicted as least recently used ` + `(limits: ${maxHandles} handles, ${maxBytes} bytes)`,
    );
  }
}

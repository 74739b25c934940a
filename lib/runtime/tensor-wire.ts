// Plain tensors crossing the thread boundary: checking that a TensorValue is well formed, and listing the
// ArrayBuffers to transfer (not copy) with it.
import { elementCount, isTensorHandle, TensorHandle, TensorType, TensorValue } from './tensor';

type TypedArrayClass =
  Float32ArrayConstructor | Uint16ArrayConstructor | BigInt64ArrayConstructor | Int32ArrayConstructor | Int8ArrayConstructor | Uint8ArrayConstructor;

/** The typed array each tensor type's data must be (float16 travels as raw Uint16 bits, bool as Uint8). */
const DATA_CLASS: Record<TensorType, TypedArrayClass> = {
  float32: Float32Array,
  float16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

export function isTensorType(t: unknown): t is TensorType {
  return typeof t === 'string' && Object.prototype.hasOwnProperty.call(DATA_CLASS, t);
}

/** Throws a clear Error when `v` is not a TensorValue whose data matches its type and dims. */
export function assertTensorValue(v: unknown, what: string): asserts v is TensorValue {
  const t = v as TensorValue;
  if (typeof t !== 'object' || t === null) throw new Error(`${what}: expected a tensor {type, dims, data}, got ${typeof v}`);
  if (!isTensorType(t.type)) {
    throw new Error(`${what}: unsupported tensor type '${String(t.type)}' (supported: ${Object.keys(DATA_CLASS).join(', ')})`);
  }
  if (!Array.isArray(t.dims) || !t.dims.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new Error(`${what}: dims must be non-negative integers, got ${JSON.stringify(t.dims)}`);
  }
  const cls = DATA_CLASS[t.type];
  if (!(t.data instanceof cls)) {
    throw new Error(`${what}: ${t.type} data must be a ${cls.name}, got ${t.data?.constructor?.name ?? typeof t.data}`);
  }
  if (t.data.length !== elementCount(t.dims)) {
    throw new Error(`${what}: ${t.data.length} elements do not match dims [${t.dims.join(',')}]`);
  }
}

export function assertFeed(v: unknown, what: string): asserts v is TensorValue | TensorHandle {
  if (!isTensorHandle(v)) assertTensorValue(v, what);
}

/**
 * Copies of `items` whose tensor data each own a whole ArrayBuffer, and those buffers to transfer. Only a view
 * into a larger or already listed buffer (a pooled Node Buffer, two feeds sharing memory) is copied, so the
 * caller's other data is never detached.
 */
export function packForTransfer<T>(items: Record<string, T>): { items: Record<string, T>; transfer: ArrayBuffer[] } {
  const transfer = new Set<ArrayBuffer>();
  const packed: Record<string, T> = {};
  for (const [name, item] of Object.entries(items)) {
    const t = item as unknown as TensorValue;
    if (isTensorHandle(item) || !(t.data.buffer instanceof ArrayBuffer)) {
      packed[name] = item; // handles carry no data; SharedArrayBuffers are shared, not transferred
      continue;
    }
    const whole = t.data.byteOffset === 0 && t.data.byteLength === t.data.buffer.byteLength && !transfer.has(t.data.buffer);
    const data = whole ? t.data : (t.data.slice() as TensorValue['data']);
    transfer.add(data.buffer as ArrayBuffer);
    packed[name] = { type: t.type, dims: t.dims, data } as unknown as T;
  }
  return { items: packed, transfer: [...transfer] };
}

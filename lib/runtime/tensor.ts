// Plain tensors that cross the thread boundary by value (their ArrayBuffers are transferred, not copied).
export type TensorType = 'float32' | 'float16' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

export type TensorData = Float32Array | Uint16Array | BigInt64Array | Int32Array | Int8Array | Uint8Array;

export interface TensorValue {
  type: TensorType;
  dims: number[];
  data: TensorData;
}

/** A tensor that stays in the worker; only this small reference crosses threads or travels on a msg. */
export interface TensorHandle {
  handle: string;
  type: TensorType;
  dims: number[];
}

export function isTensorHandle(v: unknown): v is TensorHandle {
  return typeof v === 'object' && v !== null && typeof (v as TensorHandle).handle === 'string';
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

// TensorValue <-> ort.Tensor without copying: both directions wrap the same typed array.
import * as ort from 'onnxruntime-node';
import type { TensorValue } from './tensor';
import { assertTensorValue, isTensorType } from './tensor-wire';

export function toOrtTensor(value: TensorValue, what: string): ort.Tensor {
  assertTensorValue(value, what);
  return new ort.Tensor(value.type, value.data, value.dims);
}

export function fromOrtTensor(value: ort.OnnxValue, what: string): TensorValue {
  const t = value;
  if (!isTensorType(t.type)) {
    throw new Error(`${what} has type ${t.type}, which the runtime does not carry`);
  }
  if (t.location !== 'cpu') throw new Error(`${what} is on '${t.location}', not in CPU memory`);
  return { type: t.type, dims: [...t.dims], data: t.data as TensorValue['data'] };
}

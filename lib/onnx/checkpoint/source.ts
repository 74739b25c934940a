// Building blocks for WeightSources: a table of lazy tensors, and renamed / row-sliced views of tensors.
import { WeightSource, WeightTensor } from '../weights';

/** A WeightSource over a fixed table of lazy tensors, in insertion order. */
export class TensorTable implements WeightSource {
  private readonly tensors = new Map<string, WeightTensor>();

  add(tensor: WeightTensor): void {
    if (this.tensors.has(tensor.name)) throw new Error(`duplicate tensor name '${tensor.name}'`);
    this.tensors.set(tensor.name, tensor);
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  get(name: string): WeightTensor | undefined {
    return this.tensors.get(name);
  }
}

/** The same tensor under another name (and optionally another shape of the same element count). */
export function renamed(tensor: WeightTensor, name: string, shape: number[] = tensor.shape): WeightTensor {
  if (elementCount(shape) !== elementCount(tensor.shape)) {
    throw new Error(`cannot view '${tensor.name}' ${fmtShape(tensor.shape)} as ${fmtShape(shape)}`);
  }
  return { name, shape, dtype: tensor.dtype, read: () => tensor.read() };
}

/** Rows [start, start+count) of the first dimension of `tensor`, read lazily. */
export function rowSlice(tensor: WeightTensor, name: string, start: number, count: number): WeightTensor {
  const [rows, ...rest] = tensor.shape;
  if (start < 0 || count <= 0 || start + count > rows) {
    throw new Error(`rows ${start}..${start + count} are outside '${tensor.name}' ${fmtShape(tensor.shape)}`);
  }
  const rowSize = elementCount(rest);
  return {
    name,
    shape: [count, ...rest],
    dtype: tensor.dtype,
    read: () => tensor.read().slice(start * rowSize, (start + count) * rowSize),
  };
}

export function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function fmtShape(shape: number[]): string {
  return `[${shape.join(', ')}]`;
}

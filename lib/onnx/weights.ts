// Named weights from any source (seeded random, safetensors, PyTorch checkpoints), read lazily so that
// multi-GB checkpoints are converted one tensor at a time. Names follow the llava-hf convention:
// vision_tower.vision_model.*, multi_modal_projector.linear_1/2.*, language_model.model.*, language_model.lm_head.*
export type WeightDType = 'float32' | 'float16' | 'bfloat16';

export interface WeightTensor {
  name: string;
  shape: number[];
  dtype: WeightDType;
  /** The values as float32 (converted from fp16/bf16 when needed). */
  read(): Float32Array;
}

export interface WeightSource {
  names(): string[];
  get(name: string): WeightTensor | undefined;
}

/** The named weight, checked against the expected shape; a clear error when missing or mis-shaped. */
export function requireWeight(src: WeightSource, name: string, shape: number[]): WeightTensor {
  const w = src.get(name);
  if (!w) throw new Error(`weights are missing ${name}`);
  if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`weight ${name} has shape [${w.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
  return w;
}

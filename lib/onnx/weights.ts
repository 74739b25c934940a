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

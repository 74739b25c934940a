// Checkpoint readers: real checkpoints as { config, weights } in the llava-hf convention, for the ONNX builder.
import type { LlavaConfig } from '../../model/config';
import type { WeightSource } from '../weights';

/** What every LLaVA checkpoint reader returns (openHfCheckpoint and openMmpretrainCheckpoint both fit it). */
export interface ConvertibleCheckpoint {
  config: LlavaConfig;
  weights: WeightSource;
  /** Tokenizer files to copy next to the converted model (may be empty). */
  tokenizerFiles: string[];
}

export { HfCheckpoint, normaliseLlavaName, openHfCheckpoint } from './hf';
export { MmpretrainCheckpoint, MmpretrainOptions, mapMmpretrainWeights, openMmpretrainCheckpoint } from './mmpretrain';
export { PytorchCheckpoint, openPytorchCheckpoint } from './pytorch';
export { SafetensorsFile, openSafetensors, openSafetensorsIndex } from './safetensors';
export { openWeightFile } from './weight-file';

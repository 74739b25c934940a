// The weight names and shapes of a LLaVA model of a given config, in the llava-hf convention (Linear weights are
// [out, in], as PyTorch stores them): the vision tower's (lib/onnx/vision), the projector's and the text model's
// (lib/onnx/text). Used to generate random weights and to check checkpoints.
import type { LlavaConfig } from '../model/config';
import { projectorWeightShapes } from './projector';
import { textWeightShapes } from './text/llama';
import type { WeightShapes } from './weight-names';
import { visionLayersUsed, visionWeightShapes } from './vision';

/** Every weight of the config's model (all vision layers, so a tower can be cut at any feature layer later). */
export function llavaWeightShapes(c: LlavaConfig): WeightShapes {
  return [...visionWeightShapes(c), ...projectorWeightShapes(c), ...textWeightShapes(c)];
}

/** The weights a build reads: vision layers up to the selected feature layer only (a checkpoint may lack the rest). */
export function requiredWeightShapes(c: LlavaConfig): WeightShapes {
  return [...visionWeightShapes(c, visionLayersUsed(c)), ...projectorWeightShapes(c), ...textWeightShapes(c)];
}

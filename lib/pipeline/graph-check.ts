// Checks a model folder's ONNX graphs against its config.json from the sessions' input/output metadata, so a
// folder whose graphs and config disagree (hidden sizes, layer count, heads, vocabulary) fails when it is loaded,
// with a message naming both values, instead of at the first generation. Symbolic dimensions are not checked.
import type { LlavaConfig } from '../model/config';
import { headDim } from '../model/config';
import { DECODER_IO, VISION_IO } from '../model/graph-io';
import type { SessionInfo, TensorInfo } from '../runtime/types';

/** The decoder's KV-cache geometry. */
export interface KvShape {
  layers: number;
  kvHeads: number;
  headDim: number;
  hiddenSize: number;
  vocabSize: number;
}

/** The decoder's KV-cache geometry, from config.json. */
export function kvShape(config: LlavaConfig): KvShape {
  const text = config.text_config;
  return {
    layers: text.num_hidden_layers,
    kvHeads: text.num_key_value_heads ?? text.num_attention_heads,
    headDim: headDim(text),
    hiddenSize: text.hidden_size,
    vocabSize: text.vocab_size,
  };
}

/** The past_key_values inputs agree with the configured layers, KV heads and head size. */
export function checkKvInputs(inputs: TensorInfo[], shape: KvShape): void {
  const pastNames = inputs.filter((i) => i.name.startsWith(DECODER_IO.pastPrefix));
  if (pastNames.length !== 2 * shape.layers) {
    throw new Error(`config.json says ${shape.layers} decoder layers but the decoder graph has ${pastNames.length / 2} (past_key_values inputs)`);
  }
  for (const p of pastNames) {
    const [, heads, , dim] = p.shape;
    if ((typeof heads === 'number' && heads !== shape.kvHeads) || (typeof dim === 'number' && dim !== shape.headDim)) {
      throw new Error(`config.json says ${shape.kvHeads} KV heads × head_dim ${shape.headDim} but decoder input ${p.name} has shape [${p.shape.join(', ')}]`);
    }
  }
}

export interface LoadedGraphs {
  vision: SessionInfo;
  projector: SessionInfo | null;
  embed: SessionInfo;
  decoder: SessionInfo;
}

function named(list: TensorInfo[], name: string, graph: string, io: 'input' | 'output'): TensorInfo {
  const found = list.find((t) => t.name === name);
  if (!found) throw new Error(`the ${graph} graph has no ${io} "${name}" (it has ${list.map((t) => t.name).join(', ') || 'none'})`);
  return found;
}

/** Fails when a fixed dimension of `tensor` differs from what config.json implies. */
function expectDim(tensor: TensorInfo, axis: number, expected: number, graph: string, setting: string): void {
  const dim = tensor.shape.at(axis);
  if (typeof dim === 'number' && dim !== expected) {
    throw new Error(
      `config.json ${setting} is ${expected} but the ${graph} graph's ${tensor.name} has ${dim} there ` +
        `(shape [${tensor.shape.join(', ')}]): the config does not belong to these graphs`,
    );
  }
}

/** The vision encoder's inputs: the pixels, and an image_sizes input when the graph declares one. */
export interface VisionInputs {
  pixels: TensorInfo;
  imageSizes?: TensorInfo;
}

const PIXEL_TYPES = ['float32', 'float16'];

/**
 * Reads the vision encoder's inputs from its session: pixel_values (or its only input) as float32 or float16,
 * rank 4 [batch, 3, S, S] or 5 [batch, images, 3, S, S], plus image_sizes (int64 [batch, 2]) if declared. Any
 * other input is refused by name, since nothing here could feed it.
 */
export function visionInputs(info: SessionInfo): VisionInputs {
  const inputs = info.inputs;
  if (inputs.length === 0) throw new Error('the vision encoder graph has no inputs');
  const pixels = inputs.find((i) => i.name === VISION_IO.pixelValues) ?? (inputs.length === 1 ? inputs[0] : undefined);
  if (!pixels) throw new Error(`the vision encoder graph has no pixel_values input (it has ${inputs.map((i) => i.name).join(', ')})`);
  if (!PIXEL_TYPES.includes(pixels.type)) throw new Error(`the vision encoder input ${pixels.name} is ${pixels.type}; float32 or float16 pixels are supported`);
  if (pixels.shape.length !== 4 && pixels.shape.length !== 5) {
    throw new Error(
      `the vision encoder input ${pixels.name} has shape [${pixels.shape.join(', ')}]; [batch, 3, size, size] or [batch, images, 3, size, size] is supported`,
    );
  }
  const imageSizes = inputs.find((i) => i.name === VISION_IO.imageSizes);
  if (imageSizes && imageSizes.type !== 'int64') throw new Error(`the vision encoder input image_sizes is ${imageSizes.type}; int64 is supported`);
  const unknown = inputs.filter((i) => i !== pixels && i !== imageSizes);
  if (unknown.length) {
    throw new Error(
      `the vision encoder graph takes input ${unknown.map((i) => `"${i.name}" (${i.type} [${i.shape.join(', ')}])`).join(', ')}, ` +
        'which this package cannot feed (it feeds pixel_values and image_sizes)',
    );
  }
  return { pixels, ...(imageSizes ? { imageSizes } : {}) };
}

/** The vision encoder's features output: image_features (transformers.js reads that name), else its first output. */
export function visionOutput(info: SessionInfo): TensorInfo {
  const features = info.outputs.find((o) => o.name === VISION_IO.imageFeatures) ?? info.outputs[0];
  if (!features) throw new Error('the vision encoder graph has no outputs');
  return features;
}

export function checkGraphsAgainstConfig(config: LlavaConfig, graphs: LoadedGraphs): void {
  const text = config.text_config;
  const imageSize = config.vision_config.image_size;
  const { pixels } = visionInputs(graphs.vision);
  expectDim(pixels, -1, imageSize, 'vision encoder', 'vision_config.image_size');
  expectDim(pixels, -2, imageSize, 'vision encoder', 'vision_config.image_size');
  const features = visionOutput(graphs.vision);
  if (config.image_seq_length !== undefined) expectDim(features, 1, config.image_seq_length, 'vision encoder', 'image_seq_length');
  if (graphs.projector) {
    const projectorIn = graphs.projector.inputs[0];
    const projectorOut = graphs.projector.outputs[0];
    if (!projectorIn || !projectorOut) throw new Error('the multi_modal_projector graph needs one input and one output');
    if (projectorIn.type !== features.type) {
      throw new Error(
        `the vision encoder graph makes ${features.type} features but the multi_modal_projector graph takes ${projectorIn.type}: choose variants whose types agree`,
      );
    }
    const [made, taken] = [features.shape.at(-1), projectorIn.shape.at(-1)];
    if (typeof made === 'number' && typeof taken === 'number' && made !== taken) {
      throw new Error(
        `the vision encoder graph makes ${made}-wide features but the multi_modal_projector graph takes ${taken}: the graphs do not belong together`,
      );
    }
    expectDim(projectorOut, -1, text.hidden_size, 'multi_modal_projector', 'text_config.hidden_size');
  } else {
    // transformers.js layout: the vision graph ends with the projector.
    expectDim(features, -1, text.hidden_size, 'vision encoder', 'text_config.hidden_size');
  }
  const embeds = graphs.embed.outputs[0];
  if (!embeds) throw new Error('the embed_tokens graph has no outputs');
  expectDim(embeds, -1, text.hidden_size, 'embed_tokens', 'text_config.hidden_size');
  expectDim(named(graphs.decoder.inputs, DECODER_IO.inputsEmbeds, 'decoder', 'input'), -1, text.hidden_size, 'decoder', 'text_config.hidden_size');
  expectDim(named(graphs.decoder.outputs, DECODER_IO.logits, 'decoder', 'output'), -1, text.vocab_size, 'decoder', 'text_config.vocab_size');
  checkKvInputs(graphs.decoder.inputs, kvShape(config));
}

// node-red-contrib-llava as a library: the LLaVA pipeline on the shared inference runtime, and the model builder.
export { LlavaModel } from './pipeline/llava-model';
export type { DescribeRequest, GenerateRequest, ImageFeatures, LlavaResult, LoadOptions } from './pipeline/llava-model';
export type { PromptInput } from './pipeline/prompt';
export type { GenerationOptions, PreprocessOptions, ResizeMode, Timings } from './pipeline/types';
export { resolveImageInput } from './pipeline/image-input';
export { preprocessImage } from './pipeline/image-preprocess';
export { renderTemplate, TEMPLATE_NAMES } from './pipeline/templates';
export { getPreset, PRESET_NAMES } from './pipeline/presets';
export { openModelFolder } from './model/folder';
export { architecture, ARCHITECTURE_NAMES } from './onnx/architectures';
export { writeModelFolder } from './onnx/write-model';
export { randomWeights } from './onnx/random-weights';
export { openHfCheckpoint } from './onnx/checkpoint/hf';
export { getRuntime } from './runtime';
export { LocalEngine, RemoteEngine, RemoteEngineError, OpenAiServer } from './engine';
export type { ChatPrompt, Engine, EngineEvent, EngineRequest, EngineResult, RemoteEngineOptions } from './engine';

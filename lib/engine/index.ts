// Engines: what runs a request (this process's ONNX runtime, or an OpenAI-compatible server), behind one interface.
export type { ChatPrompt, Engine, EngineEvent, EngineRequest, EngineResult, EngineState, EngineTimings, EngineUsage, ResponseFormat } from './types';
export { LocalEngine } from './local-engine';
export { RemoteEngine, RemoteEngineError, DEFAULT_TIMEOUTS } from './remote-engine';
export type { RemoteEngineOptions, RemoteTimeouts } from './remote-engine';
export { OpenAiServer } from './openai-server';
export type { OpenAiServerOptions } from './openai-server';
export { imageForRemote, DEFAULT_REMOTE_IMAGE_SIDE } from './image-for-remote';

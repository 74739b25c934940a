// The runtime's public surface: the process-wide instance and the types its callers and task modules use.
export { getRuntime, InferenceRuntime, RuntimeOptions } from './runtime';
export * from './tensor';
export * from './types';

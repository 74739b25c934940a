// The runtime's public surface: the process-wide instance and the types its callers and task modules use.
//
//   const rt = getRuntime();
//   const lease = await rt.openSession({ modelPath, providers: 'auto' });    // cached by spec, ref-counted
//   const { values, handles } = await rt.run(lease, { x }, { keep: ['features'] }); // x's buffer is transferred
//   await rt.registerTaskModule(require.resolve('./tasks'));                 // loops that must run in the worker
//   const out = await rt.task('generate', { key: lease.info.key, ... }, { signal, onEvent });
//   lease.release();                                                         // unloaded after the grace period
export { getRuntime, InferenceRuntime, RuntimeOptions } from './runtime';
export * from './tensor';
export * from './types';

// SessionSpec → ResolvedSpec (defaults filled in, checked) and the session cache key derived from it.
import * as fs from 'fs';
import * as path from 'path';
import type { ResolvedSpec } from './protocol';
import { providerOrder } from './providers';
import type { SessionSpec } from './types';

export function resolveSpec(spec: SessionSpec, defaultThreads: number): ResolvedSpec {
  if (typeof spec?.modelPath !== 'string' || spec.modelPath === '') {
    throw new Error('openSession: modelPath must be the path of an .onnx file');
  }
  const modelPath = path.resolve(spec.modelPath);
  if (!fs.existsSync(modelPath)) throw new Error(`openSession: model file not found: ${modelPath}`);
  const threads = spec.threads ?? defaultThreads;
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`openSession: threads must be a positive integer, got ${String(spec.threads)}`);
  }
  const config: Record<string, string> = {};
  for (const k of Object.keys(spec.config ?? {}).sort()) {
    const v = spec.config![k];
    if (typeof v !== 'string') throw new Error(`openSession: config value for '${k}' must be a string, got ${typeof v}`);
    config[k] = v;
  }
  return { modelPath, providers: providerOrder(spec.providers), threads, config };
}

/** Specs that mean the same session give the same key (config keys are sorted by resolveSpec). */
export function sessionKey(spec: ResolvedSpec): string {
  return JSON.stringify([spec.modelPath, spec.providers, spec.threads, spec.config]);
}

// Execution-provider choice. onnxruntime-node does not fall back by itself: a session created with
// ['cuda', 'cpu'] throws when the CUDA libraries are missing. So each provider is tried alone, in order,
// and every failure is recorded for the user to see.
import type { ProviderFailure, ProviderName, ProviderPreference } from './types';

export const PROVIDERS: readonly ProviderName[] = ['cuda', 'webgpu', 'cpu'];

/** What a user may choose (the llava-model node, --provider): 'auto' or one provider. */
export const PROVIDER_CHOICES: readonly ProviderPreference[] = ['auto', ...[...PROVIDERS].sort()];

export function isProviderChoice(value: string): value is 'auto' | ProviderName {
  return (PROVIDER_CHOICES as readonly unknown[]).includes(value);
}

/** The providers to try, in order: 'auto' is cuda, webgpu, then cpu; a name or list is taken as given. */
export function providerOrder(pref: ProviderPreference = 'auto'): ProviderName[] {
  const list = pref === 'auto' ? [...PROVIDERS] : Array.isArray(pref) ? pref : [pref];
  if (list.length === 0) throw new Error("providers: the list is empty (use 'auto' or name at least one of cuda, webgpu, cpu)");
  for (const p of list) {
    if (!PROVIDERS.includes(p)) {
      throw new Error(`providers: unknown execution provider '${String(p)}' (expected 'auto' or ${PROVIDERS.join(', ')})`);
    }
  }
  return [...new Set(list)];
}

export interface ProviderChoice<S> {
  value: S;
  provider: ProviderName;
  failures: ProviderFailure[];
}

/** ORT's words for "this provider is not installed here" (as opposed to a problem with one model). */
const NOT_AVAILABLE = /Failed to load shared library|Failed to get a WebGPU adapter|No supported adapters|backend not found/i;

/**
 * Providers found missing in this process, with ORT's reason. Trying one again for every session would only
 * repeat the failure (and the warnings ORT prints while trying), so it is tried once per process.
 */
const unavailable = new Map<ProviderName, string>();

/** Calls `create` with each provider in turn until one succeeds; throws listing every failure if none does. */
export async function createWithFallback<S>(order: ProviderName[], create: (provider: ProviderName) => Promise<S>): Promise<ProviderChoice<S>> {
  const failures: ProviderFailure[] = [];
  for (const provider of order) {
    const known = unavailable.get(provider);
    if (known !== undefined) {
      failures.push({ provider, error: known });
      continue;
    }
    try {
      return { value: await create(provider), provider, failures };
    } catch (e) {
      const error = e instanceof Error ? e.message.trim() : String(e);
      if (NOT_AVAILABLE.test(error)) unavailable.set(provider, error);
      failures.push({ provider, error });
    }
  }
  // The last provider's error (usually cpu) is the one about the model itself; the others explain the fallbacks.
  const last = failures[failures.length - 1];
  const earlier = failures.slice(0, -1).map((f) => `${f.provider}: ${f.error}`);
  throw new Error(earlier.length ? `${last.error} [${last.provider}; also failed: ${earlier.join('; ')}]` : last.error);
}

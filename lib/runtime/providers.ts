// Execution-provider choice. onnxruntime-node does not fall back by itself: a session created with
// ['cuda', 'cpu'] throws when the CUDA libraries are missing. So each provider is tried alone, in order,
// and every failure is recorded for the user to see.
import type { ProviderFailure, ProviderName, ProviderPreference } from './types';

export const PROVIDERS: readonly ProviderName[] = ['cuda', 'webgpu', 'cpu'];

/** The providers to try, in order: 'auto' is cuda, webgpu, then cpu; a name or list is taken as given. */
export function providerOrder(pref: ProviderPreference = 'auto'): ProviderName[] {
  const list = pref === 'auto' ? [...PROVIDERS] : Array.isArray(pref) ? pref : [pref];
  if (list.length === 0) throw new Error('providers: the list is empty (use \'auto\' or name at least one of cuda, webgpu, cpu)');
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

/** Calls `create` with each provider in turn until one succeeds; throws listing every failure if none does. */
export async function createWithFallback<S>(
  order: ProviderName[],
  create: (provider: ProviderName) => Promise<S>,
): Promise<ProviderChoice<S>> {
  const failures: ProviderFailure[] = [];
  for (const provider of order) {
    try {
      return { value: await create(provider), provider, failures };
    } catch (e) {
      failures.push({ provider, error: e instanceof Error ? e.message.trim() : String(e) });
    }
  }
  // The last provider's error (usually cpu) is the one about the model itself; the others explain the fallbacks.
  const last = failures[failures.length - 1];
  const earlier = failures.slice(0, -1).map((f) => `${f.provider}: ${f.error}`);
  throw new Error(earlier.length ? `${last.error} [${last.provider}; also failed: ${earlier.join('; ')}]` : last.error);
}

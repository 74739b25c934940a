import { strict as assert } from 'assert';
import * as fs from 'fs';
import { createWithFallback, providerOrder } from '../../lib/runtime/providers';
import { InferenceRuntime } from '../../lib/runtime/runtime';
import type { ProviderName } from '../../lib/runtime/types';
import { tempDir, writeAffine } from './models';

describe('runtime providers', () => {
  it('expands a preference into the providers to try, in order', () => {
    assert.deepEqual(providerOrder('auto'), ['cuda', 'webgpu', 'cpu']);
    assert.deepEqual(providerOrder(undefined), ['cuda', 'webgpu', 'cpu']);
    assert.deepEqual(providerOrder('cpu'), ['cpu']);
    assert.deepEqual(providerOrder(['webgpu', 'cpu', 'webgpu']), ['webgpu', 'cpu']);
    assert.throws(() => providerOrder(['cpu', 'dml' as ProviderName]), /unknown execution provider 'dml'/);
    assert.throws(() => providerOrder([]), /the list is empty/);
  });

  it('tries each provider alone, records each failure, and reports every failure when all fail', async () => {
    const tried: ProviderName[] = [];
    const ok = await createWithFallback(['cuda', 'webgpu', 'cpu'], async (p) => {
      tried.push(p);
      if (p !== 'cpu') throw new Error(`${p} is missing`);
      return 'session';
    });
    assert.deepEqual(tried, ['cuda', 'webgpu', 'cpu']);
    assert.deepEqual(ok, {
      value: 'session',
      provider: 'cpu',
      failures: [
        { provider: 'cuda', error: 'cuda is missing' },
        { provider: 'webgpu', error: 'webgpu is missing' },
      ],
    });
    await assert.rejects(
      createWithFallback(['cuda', 'cpu'], async (p) => {
        throw new Error(`${p} broke`);
      }),
      { message: 'cpu broke [cpu; also failed: cuda: cuda broke]' },
    );
  });

  it('tries a provider that is not installed once per process, then reuses its recorded reason', async () => {
    const tried: ProviderName[] = [];
    const create = async (p: ProviderName) => {
      tried.push(p);
      if (p === 'webgpu') throw new Error('Failed to get a WebGPU adapter: No supported adapters');
      return p;
    };
    const first = await createWithFallback(['webgpu', 'cpu'], create);
    const second = await createWithFallback(['webgpu', 'cpu'], create);
    assert.deepEqual(tried, ['webgpu', 'cpu', 'cpu']);
    assert.deepEqual(second.failures, first.failures);
    assert.equal(second.provider, 'cpu');
  });

  describe('with onnxruntime-node', () => {
    let dir: string;
    let model: string;
    let rt: InferenceRuntime;
    before(() => {
      dir = tempDir('providers');
      model = writeAffine(dir);
      rt = new InferenceRuntime({ graceMs: 0, threads: 1 });
    });
    after(async () => {
      await rt.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it("'auto' falls back provider by provider and records why each one before it failed", async () => {
      const lease = await rt.openSession({ modelPath: model, providers: 'auto' });
      const order = ['cuda', 'webgpu', 'cpu'];
      const used = order.indexOf(lease.info.provider);
      assert.deepEqual(
        lease.info.providerFailures.map((f) => f.provider),
        order.slice(0, used),
      );
      for (const f of lease.info.providerFailures) assert.ok(f.error.length > 0);
      if (lease.info.provider === 'cpu') {
        // This machine has neither the CUDA EP libraries nor a WebGPU adapter.
        assert.match(lease.info.providerFailures[0].error, /Failed to load shared library/);
        assert.match(lease.info.providerFailures[1].error, /WebGPU adapter/);
      }
      const r = await rt.run(lease, { x: { type: 'float32', dims: [1, 8], data: new Float32Array(8).fill(1) } });
      assert.deepEqual(r.values.y.dims, [1, 8]);
      lease.release();
    });

    it("['cuda', 'cpu'] runs on cpu when CUDA cannot load, and 'cuda' alone fails with ORT's reason", async function () {
      const lease = await rt.openSession({ modelPath: model, providers: ['cuda', 'cpu'] });
      if (lease.info.provider === 'cuda') this.skip(); // a machine with working CUDA: nothing to fall back from
      assert.equal(lease.info.provider, 'cpu');
      assert.equal(lease.info.providerFailures.length, 1);
      assert.equal(lease.info.providerFailures[0].provider, 'cuda');
      assert.match(lease.info.providerFailures[0].error, /Cuda.*Failed to load shared library/);
      lease.release();
      await assert.rejects(rt.openSession({ modelPath: model, providers: 'cuda' }), /Failed to load shared library/);
      assert.equal(rt.stats().sessions, 0);
    });
  });
});

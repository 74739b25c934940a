// `npm run demo-model`: remakes demo-model/ from nothing: the synthetic scenes (export-data), the training
// (train.py, Debian's python3-torch), then `llava build --from` on the trained checkpoint.
// Training is one one-cycle schedule of --steps at --lr (the defaults are how the shipped model was made). Options:
// --steps N --lr X --batch N, --scenes N, --work DIR (keep the checkpoint there), --out DIR.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';

const repoRoot = path.resolve(__dirname, '..', '..', '..');

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): void {
  console.log(`$ ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env });
  if (r.status !== 0) throw new Error(`${path.basename(cmd)} failed (${r.error?.message ?? `exit ${r.status}`})`);
}

function main(): void {
  const { values } = parseArgs({
    options: {
      steps: { type: 'string', default: '10000' },
      lr: { type: 'string', default: '2e-3' },
      batch: { type: 'string', default: '32' },
      scenes: { type: 'string', default: '20000' },
      work: { type: 'string' },
      out: { type: 'string', default: path.join(repoRoot, 'demo-model') },
    },
  });
  // The builder records the checkpoint folder's name as the model's source: a fixed one for the shipped model.
  const work = values.work ?? path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'llava-demo-')), 'demo-checkpoint');
  const here = path.join(repoRoot, 'dist', 'scripts', 'demo-model');
  run(process.execPath, [path.join(here, 'export-data.js'), work, values.scenes!]);
  // One BLAS thread: the model is small, and more threads only contend on a 2-core machine.
  const train = path.join(repoRoot, 'scripts', 'demo-model', 'train.py');
  const env = { ...process.env, OPENBLAS_NUM_THREADS: '1' };
  run('/usr/bin/python3', [train, work, '--steps', values.steps!, '--lr', values.lr!, '--batch', values.batch!, '--threads', '1'], env);
  fs.rmSync(values.out!, { recursive: true, force: true });
  run(process.execPath, [path.join(repoRoot, 'dist', 'lib', 'cli.js'), 'build', '--from', work, '--out', values.out!]);
  if (!values.work) fs.rmSync(path.dirname(work), { recursive: true, force: true });
}

try {
  main();
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}

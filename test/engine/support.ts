// `llava serve` as a user starts it: the CLI in a child process on a loopback port chosen by the OS.
import { spawn, ChildProcess } from 'child_process';
import * as http from 'http';
import * as path from 'path';
import { repoRoot } from '../support/node-red';

export const cli = path.join(repoRoot, 'dist', 'lib', 'cli.js');

export interface Served {
  url: string;
  process: ChildProcess;
  log(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `llava serve` with these extra arguments and waits until /health says ok. */
export async function startServe(model: string, args: string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<Served> {
  const child = spawn(process.execPath, [cli, 'serve', '--model', model, '--port', '0', '--provider', 'cpu', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const log = () => `stdout:\n${out}\nstderr:\n${err}`;
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
  };
  const deadline = Date.now() + 60_000;
  let url: string | null = null;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`llava serve exited (${child.exitCode}):\n${log()}`);
    if (Date.now() > deadline) {
      await stop('SIGKILL');
      throw new Error(`llava serve did not become healthy:\n${log()}`);
    }
    url ??= /listening on (\S+)/.exec(out)?.[1] ?? null;
    if (url) {
      const ok = await healthy(url);
      if (ok) return { url, process: child, log, stop };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** GET /health on a connection of its own (not left in fetch's keep-alive pool for the test's client to reuse). */
export function healthy(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    http
      .get(`${url}/health`, { agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      })
      .on('error', () => resolve(false));
  });
}

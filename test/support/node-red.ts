// Which Node-RED the tests run against. Default: the devDependency (4.1 on Node 20). CI also runs the helper-based
// suites on Node-RED 5 / Node 22 by setting LLAVA_NODE_RED to the folder of another node-red install.
import { spawn, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import helper = require('node-red-node-test-helper');
import { getRuntime } from '../../lib/runtime';

/** The node-red package folder in use. */
export const nodeRedDir = path.dirname(require.resolve(path.join(process.env.LLAVA_NODE_RED || 'node-red', 'package.json')));

helper.init(require.resolve(nodeRedDir));

export { helper };

/**
 * The test helper's lifecycle in the enclosing describe block: Node-RED's test server up before, flows unloaded
 * after each test, server and the shared inference runtime stopped after.
 */
export function useNodeRedHelper(): void {
  before(() => helper.startServer());
  afterEach(() => helper.unload());
  after(async () => {
    await helper.stopServer();
    await getRuntime().dispose();
  });
}

/** A core node's module (e.g. "common/25-catch.js"), from the same Node-RED install, for helper.load. */
export function coreNode(file: string): any {
  return require(require.resolve(`@node-red/nodes/core/${file}`, { paths: [nodeRedDir] }));
}

/** The repository root (dist/test/support → ../../..). */
export const repoRoot = path.resolve(__dirname, '..', '..', '..');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface RunningNodeRed {
  url: string;
  userDir: string;
  process: ChildProcess;
  /** Everything it printed so far (for assertion messages). */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Start the real Node-RED CLI as a child process on a free loopback port, with a temp userDir and this package
 * loaded from the working tree (nodesDir = repo root, the same way `npm start` does it). With `userDir`: that
 * existing user folder instead, whose node_modules hold the package (installed as the palette manager does); stop()
 * leaves it in place. `modules`: folders of more node modules to load the same way (Node-RED itself already loads
 * those installed next to it, e.g. the devDependencies beside the devDependency node-red).
 */
export async function startNodeRed(
  options: {
    flows?: object[];
    timeoutMs?: number;
    userDir?: string;
    env?: NodeJS.ProcessEnv;
    modules?: string[];
    /** More settings.js entries (adminAuth, …). */
    settings?: Record<string, unknown>;
  } = {},
): Promise<RunningNodeRed> {
  const port = await freePort();
  const userDir = options.userDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'llava-nr-'));
  const settings = {
    uiHost: '127.0.0.1',
    uiPort: port,
    userDir,
    ...(options.userDir ? {} : { nodesDir: [repoRoot, ...(options.modules ?? [])] }),
    flowFile: 'flows.json',
    telemetry: { enabled: false },
    diagnostics: { enabled: false },
    // no tours, and no palette catalogue download (tests run offline)
    editorTheme: { tours: false, palette: { catalogues: [] } },
    logging: { console: { level: 'info' } },
    ...options.settings,
  };
  fs.writeFileSync(path.join(userDir, 'settings.js'), `module.exports = ${JSON.stringify(settings, null, 2)};\n`);
  fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(options.flows ?? []));
  const child = spawn(process.execPath, [path.join(nodeRedDir, 'red.js'), '-s', path.join(userDir, 'settings.js')], {
    cwd: userDir,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    if (!options.userDir) fs.rmSync(userDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  while (!/Started flows|Server now running/.test(output) || !(await reachable(url))) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`Node-RED exited (${child.exitCode}) before it started:\n${output}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`Node-RED did not start in time:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, userDir, process: child, log: () => output, stop };
}

async function reachable(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/settings`);
    return res.ok || res.status === 401; // 401: it answers, behind adminAuth
  } catch {
    return false;
  }
}

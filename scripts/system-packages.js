// The OS packages some tests need (mosquitto for the MQTT tests, chromium for the editor tests), in one place: where
// to find them, whether this process can install them, and the install itself. The test run (test/support/
// system-packages.ts) and CI (.ci/run: `node scripts/system-packages.js --require`) both use it.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

/**
 * Each OS package: its Debian name, the binaries that show it is there, what uses it, and the environment variable
 * that points at another build instead (optional).
 */
const SYSTEM_PACKAGES = {
  mosquitto: { apt: 'mosquitto', binaries: ['mosquitto'], usedBy: 'the MQTT tests' },
  chromium: { apt: 'chromium', binaries: ['chromium', 'chromium-browser', 'google-chrome'], usedBy: 'the editor tests', override: 'LLAVA_CHROMIUM' },
};

/**
 * The folders searched for binaries: LLAVA_SYSTEM_PATH when set (tests of this file use it to stand for a fresh
 * machine), else PATH plus the sbin folders a non-root PATH lacks (Debian puts mosquitto in /usr/sbin).
 */
function searchPath(env = process.env) {
  if (env.LLAVA_SYSTEM_PATH !== undefined) return env.LLAVA_SYSTEM_PATH.split(path.delimiter).filter(Boolean);
  const dirs = (env.PATH ?? '').split(path.delimiter).filter(Boolean);
  return [...new Set([...dirs, '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'])];
}

/** The executable `name` on the search path, or null. */
function which(name, env = process.env) {
  for (const dir of searchPath(env)) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** The binary of OS package `name` ('mosquitto' | 'chromium'), or null when it is not installed. */
function findBinary(name, env = process.env) {
  const spec = SYSTEM_PACKAGES[name];
  if (!spec) throw new Error(`unknown system package ${name}`);
  if (spec.override && env[spec.override] && fs.existsSync(env[spec.override])) return env[spec.override];
  for (const bin of spec.binaries) {
    const found = which(bin, env);
    if (found) return found;
  }
  return null;
}

/** The names among `names` that are not installed. */
function missing(names = Object.keys(SYSTEM_PACKAGES), env = process.env) {
  return names.filter((n) => !findBinary(n, env));
}

/**
 * How this process can install OS packages: { ok: true, sudo } with apt-get and root or password-less sudo,
 * else { ok: false, reason }.
 */
function installer(env = process.env) {
  if (process.platform !== 'linux') return { ok: false, reason: `this OS (${process.platform}) has no apt-get` };
  const aptGet = which('apt-get', env);
  if (!aptGet) return { ok: false, reason: 'apt-get is not on this machine' };
  if (process.getuid && process.getuid() === 0) return { ok: true, aptGet, sudo: null };
  const sudo = which('sudo', env);
  if (!sudo) return { ok: false, reason: 'not root, and sudo is not installed' };
  const probe = spawnSync(sudo, ['-n', 'true'], { env, stdio: 'ignore', timeout: 10_000 });
  if (probe.status !== 0) return { ok: false, reason: 'not root, and sudo asks for a password' };
  return { ok: true, aptGet, sudo };
}

/** The command a person runs to install `names`. */
function installCommand(names) {
  const apt = names.map((n) => SYSTEM_PACKAGES[n].apt).join(' ');
  const sudo = process.getuid && process.getuid() === 0 ? '' : 'sudo ';
  return `${sudo}apt-get update && ${sudo}apt-get install -y --no-install-recommends ${apt}`;
}

/**
 * Install whatever of `names` is missing, when this process can. Prints one line when it installs. Returns
 * { installed, missing, reason }: `missing` is what is still not there, `reason` says why (null when none is).
 */
function provision(names = Object.keys(SYSTEM_PACKAGES), { env = process.env, log = (line) => process.stderr.write(`${line}\n`) } = {}) {
  const absent = missing(names, env);
  if (absent.length === 0) return { installed: [], missing: [], reason: null };
  const how = installer(env);
  if (!how.ok) return { installed: [], missing: absent, reason: how.reason };
  const apt = absent.map((n) => SYSTEM_PACKAGES[n].apt);
  log(`installing ${apt.join(', ')} with ${how.sudo ? 'sudo ' : ''}apt-get (once, for ${absent.map((n) => SYSTEM_PACKAGES[n].usedBy).join(' and ')})`);
  const run = (args) => {
    const cmd = how.sudo ? how.sudo : how.aptGet;
    const argv = how.sudo ? ['-n', how.aptGet, ...args] : args;
    // apt's own output is shown only when it fails; a fresh container's first install takes a minute or two.
    return spawnSync(cmd, argv, { env: { ...env, DEBIAN_FRONTEND: 'noninteractive' }, encoding: 'utf8', maxBuffer: 64 << 20 });
  };
  const steps = [['update'], ['install', '-y', '--no-install-recommends', ...apt]];
  for (const args of steps) {
    const r = run(args);
    if (r.status !== 0) {
      const output = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim().split('\n').slice(-15).join('\n');
      return { installed: [], missing: missing(names, env), reason: `apt-get ${args[0]} failed (exit ${r.status}):\n${output}` };
    }
  }
  const still = missing(names, env);
  return {
    installed: absent.filter((n) => !still.includes(n)),
    missing: still,
    reason: still.length ? `apt-get installed ${apt.join(' ')} but ${still.join(', ')} is still not found` : null,
  };
}

module.exports = { SYSTEM_PACKAGES, findBinary, missing, installer, installCommand, provision };

// CLI: `node scripts/system-packages.js [--require]` installs what is missing; --require (CI) exits 1 when it could not.
if (require.main === module) {
  const result = provision();
  if (result.missing.length === 0) {
    if (result.installed.length === 0) console.log(`already installed: ${Object.keys(SYSTEM_PACKAGES).join(', ')}`);
    process.exit(0);
  }
  console.error(`not installed: ${result.missing.join(', ')} (${result.reason}); to install: ${installCommand(result.missing)}`);
  process.exit(process.argv.includes('--require') ? 1 : 0);
}

// Suites that need an OS package (mosquitto, chromium) call requireSystemPackages in their before hook. A missing
// package is installed once per run when this process can (scripts/system-packages.js knows how); where it cannot,
// the suite is pending and the run ends with how many tests were not run, why, and the command that enables them.
// Under CI=true a package that cannot be provisioned fails the suite instead.
import * as path from 'path';

export type SystemPackage = 'mosquitto' | 'chromium';

interface ProvisionResult {
  installed: SystemPackage[];
  missing: SystemPackage[];
  reason: string | null;
}

interface SystemPackages {
  SYSTEM_PACKAGES: Record<SystemPackage, { apt: string; binaries: string[]; usedBy: string; override?: string }>;
  findBinary(name: SystemPackage): string | null;
  installCommand(names: SystemPackage[]): string;
  provision(names?: SystemPackage[]): ProvisionResult;
}

// dist/test/support → the repository's scripts/ (plain JS: .ci/run uses it before anything is built).
const systemPackages: SystemPackages = require(path.resolve(__dirname, '..', '..', '..', 'scripts', 'system-packages.js'));

export const findBinary = systemPackages.findBinary;

let provisioned: ProvisionResult | null = null;
const notRun: { suite: string; tests: number; missing: SystemPackage[] }[] = [];

/** Mocha's `CI=true` convention (GitHub Actions, GitLab, Jenkins… set it). */
function underCi(): boolean {
  return /^(1|true|yes)$/i.test(process.env.CI ?? '');
}

/** Make sure `names` are installed (installing every missing one once per run); otherwise skip or fail the suite. */
export function requireSystemPackages(ctx: Mocha.Context, ...names: SystemPackage[]): void {
  if (names.every((n) => systemPackages.findBinary(n))) return;
  if (!provisioned) {
    ctx.timeout(20 * 60_000); // apt-get update + install on a fresh machine
    provisioned = systemPackages.provision(Object.keys(systemPackages.SYSTEM_PACKAGES) as SystemPackage[]);
  }
  const absent = names.filter((n) => !systemPackages.findBinary(n));
  if (absent.length === 0) return;
  const command = systemPackages.installCommand(absent);
  if (underCi()) {
    throw new Error(`CI=true and ${absent.join(', ')} is not installed (${provisioned.reason}); CI runs every suite: ${command}`);
  }
  const suite = ctx.test?.parent;
  if (notRun.length === 0) process.once('exit', printNotRun);
  notRun.push({ suite: suite?.fullTitle() ?? '?', tests: suite?.total() ?? 0, missing: absent });
  ctx.skip();
}

/** The run's last lines: how many tests were not run, why, and the command that enables them. */
function printNotRun(): void {
  const tests = notRun.reduce((sum, s) => sum + s.tests, 0);
  const absent = [...new Set(notRun.flatMap((s) => s.missing))];
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  const lines = [
    '',
    `${count(tests, 'test')} in ${count(notRun.length, 'suite')} ${tests === 1 ? 'was' : 'were'} not run: ${absent.join(' and ')} ${absent.length > 1 ? 'are' : 'is'} not installed and this process cannot install ${absent.length > 1 ? 'them' : 'it'} (${provisioned?.reason}).`,
    ...notRun.map((s) => `  - ${s.suite} (${count(s.tests, 'test')}; needs ${s.missing.join(', ')})`),
    `To run them: ${systemPackages.installCommand(absent)}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

#!/usr/bin/env node
// `llava <command> [options]`: a dispatcher from subcommand to the module that runs it. Each command module
// exports `run(argv): Promise<number | void>` and `usage`. Errors print one line on stderr (the stack with --verbose).
import { UsageError } from './cli/usage-error';

export interface CliCommand {
  summary: string;
  load: () => Promise<{ run(argv: string[]): Promise<number | void>; usage: string }>;
}

/** Add a command here: name → summary and lazy module. */
export const COMMANDS: Record<string, CliCommand> = {
  generate: { summary: 'caption an image or answer a question about it', load: () => import('./cli/generate') },
  serve: { summary: 'serve a model over an OpenAI-compatible HTTP API (/v1/chat/completions with images)', load: () => import('./cli/serve') },
  pull: { summary: 'download a model from the Hugging Face Hub into the shared Hub cache', load: () => import('./cli/pull') },
  build: { summary: 'build an ONNX LLaVA model folder (tiny, random preset, a HF checkpoint, or an mmpretrain checkpoint)', load: () => import('./cli/build') },
};

function overview(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return ['usage: llava <command> [options]', '', 'commands:', ...lines, '', 'llava <command> --help shows its options.'].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  const [name, ...rest] = argv;
  try {
    if (!name || name === '--help' || name === '-h' || name === 'help') {
      process.stdout.write(`${overview()}\n`);
      return name ? 0 : 2;
    }
    const command = COMMANDS[name];
    if (!command) throw new UsageError(`unknown command "${name}"; commands: ${Object.keys(COMMANDS).join(', ')}`);
    const mod = await command.load();
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(`${mod.usage}\n`);
      return 0;
    }
    return (await mod.run(rest)) ?? 0;
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    // One line unless --verbose: some messages (node's parseArgs, native libraries) span several.
    process.stderr.write(`llava: ${verbose && e.stack ? e.stack : e.message.replace(/\s*\n\s*/g, ' ')}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}

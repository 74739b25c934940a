// One benchmark case in its own process (so peak RSS is that engine's alone): reads a CaseInput (JSON) from
// argv, prints RESULT_PREFIX + CaseOutput (JSON) as its last line.
import { runBareOrt } from './cases/bare-ort';
import { runBatching } from './cases/batching';
import { runLlamaCpp } from './cases/llama-cpp';
import { runOurs } from './cases/ours';
import { runTransformersJs } from './cases/transformers-js';
import { CaseInput, CaseOutput, RESULT_PREFIX } from './cases/types';
import { runVisionSweep } from './cases/vision-sweep';

const RUNNERS: Record<CaseInput['kind'], (input: CaseInput) => Promise<CaseOutput>> = {
  ours: runOurs,
  'transformers.js': runTransformersJs,
  'bare-ort': runBareOrt,
  'llama.cpp': runLlamaCpp,
  'vision-sweep': runVisionSweep,
  batching: runBatching,
};

async function main(): Promise<void> {
  const input = JSON.parse(process.argv[2]) as CaseInput;
  const output = await RUNNERS[input.kind](input);
  process.stdout.write(`\n${RESULT_PREFIX}${JSON.stringify(output)}\n`);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);

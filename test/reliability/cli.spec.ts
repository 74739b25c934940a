// Issue #7, CLI: every bad command line gives one clear line on stderr ("llava: …", no stack unless --verbose) and a
// non-zero exit (2 for usage, 1 for bad input), quickly; a good request afterwards still works. Bad images, prompts
// and model folders have their own CLI cases in images/prompts/models.spec.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { tinyModel } from '../support/tiny-model';
import { frame, inBatches, runCli, stderrLines } from './support';

describe('reliability: CLI command lines', function () {
  const tiny = () => tinyModel({ layout: 'split', decoder: 'portable' });
  let dir: string;
  let image: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-rel-cli-'));
    image = path.join(dir, 'frame.jpg');
    fs.writeFileSync(image, await frame(4));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('bad arguments: one line, exit 2 for usage and 1 for bad values, then a good request works', async () => {
    const base = () => ['generate', '--model', tiny().dir, '--image', image, '--provider', 'cpu', '--max-new-tokens', '2'];
    const cases: Array<[string, string[], number, RegExp]> = [
      ['unknown command', ['caption'], 2, /^llava: unknown command "caption"; commands: generate, serve, pull, build$/],
      ['no model', ['generate', '--image', image], 2, /^llava: --model DIR, --model org\/name or --engine URL is required$/],
      ['no image', ['generate', '--model', tiny().dir], 2, /^llava: --image FILE is required$/],
      ['unknown option', [...base(), '--colour'], 2, /^llava: Unknown option '--colour'/],
      ['stray argument', [...base(), 'extra'], 2, /^llava: Unexpected argument 'extra'/],
      ['not a number', [...base(), '--top-k', 'ten'], 2, /^llava: --top-k must be an integer, got "ten"$/],
      [
        'dash value (parseArgs says it in three lines)',
        [...base(), '--temperature', '-1'],
        2,
        /^llava: Option '--temperature' argument is ambiguous\. Did you forget .* '--temperature=-XYZ'\.$/,
      ],
      ['negative value', [...base(), '--temperature=-1'], 1, /^llava: Invalid generation options: temperature must be a number >= 0, got -1$/],
      ['out of range', [...base(), '--top-p', '5'], 1, /^llava: Invalid generation options: topP must be in \(0, 1\], got 5$/],
      ['greedy and sampling', [...base(), '--greedy', '--seed', '3'], 2, /^llava: --greedy cannot be combined with --seed$/],
      [
        'unknown provider',
        ['generate', '--model', tiny().dir, '--image', image, '--provider', 'tpu'],
        2,
        /^llava: --provider must be one of auto, cpu, cuda, webgpu$/,
      ],
      ['unknown preset', [...base(), '--preset', 'gpt'], 1, /^llava: (model folder .*: )?unknown preset "gpt"; known: /],
      ['zero threads', [...base(), '--threads', '0'], 1, /threads must be a positive integer, got 0$/],
      ['image is a folder', ['generate', '--model', tiny().dir, '--image', dir], 1, /^llava: cannot read image .*: EISDIR$/],
    ];
    const runs = await inBatches(cases, 4, ([, args]) => runCli(args));
    cases.forEach(([name, , code, expected], i) => {
      const run = runs[i];
      assert.equal(run.code, code, `${name}: exit code (${run.stderr})`);
      const lines = stderrLines(run);
      assert.equal(lines.length, 1, `${name}: one line, got:\n${run.stderr}`);
      assert.match(lines[0], expected, name);
      assert.ok(run.cpuMs === null || run.cpuMs < 20_000, `${name} took ${run.cpuMs} ms of CPU (${run.ms} ms)`);
    });
    const good = await runCli([...base(), '--json']);
    assert.equal(good.code, 0, good.stderr);
    assert.equal(JSON.parse(good.stdout.trim().split('\n').at(-1)!).token_ids.length, 2);
  });

  it('--verbose keeps the whole message and the stack', async () => {
    const run = await runCli(['generate', '--model', tiny().dir, '--image', image, '--provider', 'cpu', '--top-p', '5', '--verbose']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^llava: Error: Invalid generation options: topP must be in \(0, 1\], got 5\n\s+at /);
  });
});

// The Flow Library scorecard's rules on the source tree, in more detail than node-red-dev (which runs on the
// installed package in install.spec.ts), plus the editor-file rules Node-RED itself enforces: an .html with a literal
// registerType next to each node's .js, icons beside it.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { GENERATION_OPTION_NAMES } from '../../lib/pipeline/generation/option-spec';
import { STAGE_QUEUE_DEFAULTS } from '../../nodes/shared/stage';
import { nodeRedDir, repoRoot } from '../support/node-red';

// acorn and semver come with Node-RED (its Function node and registry use them); take Node-RED's own copies.
const fromNodeRed = (name: string) =>
  require(require.resolve(name, { paths: [path.dirname(require.resolve('@node-red/nodes/package.json', { paths: [nodeRedDir] })), nodeRedDir] }));
const acorn = fromNodeRed('acorn');
const semver = fromNodeRed('semver');

const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
const nodeMap: Record<string, string> = pkg['node-red']?.nodes ?? {};

interface Registration {
  type: string;
  props: Record<string, any>;
  /** Keys of the `defaults` object literal. */
  defaults: Record<string, any>;
}

/** Evaluate a literal AST node (strings, numbers, booleans, arrays, objects); anything else becomes a marker. */
function literal(node: any): any {
  switch (node.type) {
    case 'Literal':
      return node.value;
    case 'ArrayExpression':
      return node.elements.map(literal);
    case 'ObjectExpression':
      return Object.fromEntries(node.properties.map((p: any) => [p.key.name ?? p.key.value, literal(p.value)]));
    case 'UnaryExpression':
      return node.operator === '-' ? -literal(node.argument) : { nonLiteral: node.type };
    default:
      return { nonLiteral: node.type };
  }
}

/** Find RED.nodes.registerType('<literal>', {<object literal>}) calls in the html's text/javascript blocks. */
function registrations(html: string): Registration[] {
  const found: Registration[] = [];
  for (const m of html.matchAll(/<script type="text\/javascript">([\s\S]*?)<\/script>/g)) {
    const ast = acorn.parse(m[1], { ecmaVersion: 2020 });
    const visit = (node: any) => {
      if (!node || typeof node.type !== 'string') return;
      if (
        node.type === 'CallExpression' &&
        node.callee.type === 'MemberExpression' &&
        node.callee.property.name === 'registerType' &&
        node.callee.object.type === 'MemberExpression' &&
        node.callee.object.property.name === 'nodes'
      ) {
        const [name, def] = node.arguments;
        assert.strictEqual(name.type, 'Literal', 'registerType type must be a string literal');
        assert.strictEqual(def.type, 'ObjectExpression', `registerType('${name.value}') must take an object literal`);
        const props = literal(def);
        const defaultsNode = def.properties.find((p: any) => p.key.name === 'defaults');
        assert.ok(defaultsNode && defaultsNode.value.type === 'ObjectExpression', `${name.value}: defaults must be a literal`);
        found.push({ type: name.value, props, defaults: props.defaults });
      }
      for (const value of Object.values(node)) {
        if (Array.isArray(value)) value.forEach(visit);
        else if (value && typeof value === 'object') visit(value);
      }
    };
    visit(ast);
  }
  return found;
}

function htmlFor(type: string): string {
  return fs.readFileSync(path.join(repoRoot, 'nodes', `${type}.html`), 'utf8');
}

function exampleFlows(): { file: string; nodes: any[] }[] {
  const dir = path.join(repoRoot, 'examples');
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((file) => ({ file, nodes: JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) }));
}

describe('package: scorecard checks (offline)', () => {
  it('P01/P03/P04/P05: license, repository, a node-red-contrib or scoped name, keyword node-red', () => {
    assert.ok(typeof pkg.license === 'string' && pkg.license.length > 0, 'license');
    assert.ok(pkg.repository?.url || pkg.bugs?.url, 'repository or bugs');
    assert.match(pkg.name, /^(@[a-z0-9-]+\/[a-z0-9-]+|node-red-contrib-[a-z0-9-]+)$/);
    assert.ok(pkg.keywords.includes('node-red'), 'keywords include node-red');
  });

  it('P06: node-red.version admits 4.x and 5.x with no upper bound', () => {
    const range = pkg['node-red'].version;
    for (const v of ['4.0.0', '4.1.15', '5.0.7', '99.0.0']) assert.ok(semver.satisfies(v, range), `${range} admits ${v}`);
    assert.ok(!semver.satisfies('3.1.0', range), `${range} refuses 3.x`);
  });

  it("P07: engines.node admits Node-RED 5's minimum Node (22.9) and the Node 20 this package is built on", () => {
    const range = pkg.engines.node;
    assert.ok(semver.satisfies('22.9.0', range), `${range} admits 22.9.0`);
    assert.ok(semver.satisfies('20.19.0', range), `${range} admits 20.19.0`);
  });

  it('D01: at most 6 runtime dependencies', () => {
    assert.ok(Object.keys(pkg.dependencies ?? {}).length <= 6, JSON.stringify(pkg.dependencies));
  });

  it('maps the six LLaVA node types to dist/nodes/<type>.js, each with its editor html in nodes/', () => {
    assert.deepStrictEqual(Object.keys(nodeMap).sort(), [
      'llava-clip-encode',
      'llava-generate',
      'llava-image-load',
      'llava-model',
      'llava-project',
      'llava-prompt-template',
    ]);
    for (const [type, file] of Object.entries(nodeMap)) {
      assert.strictEqual(file, `dist/nodes/${type}.js`);
      assert.ok(fs.existsSync(path.join(repoRoot, 'nodes', `${type}.html`)), `nodes/${type}.html`);
    }
    assert.ok(pkg.files.includes('dist/nodes') && pkg.files.includes('examples'), 'files ships nodes and examples');
    assert.ok(pkg.files.includes('resources'), 'files ships the shared editor script (Node-RED serves resources/)');
  });

  it('N01/N02: each html registers its own type with a literal definition; every non-config type is in an example', () => {
    const used = new Set(exampleFlows().flatMap((f) => f.nodes.map((n) => n.type)));
    for (const type of Object.keys(nodeMap)) {
      const regs = registrations(htmlFor(type));
      assert.deepStrictEqual(
        regs.map((r) => r.type),
        [type],
        `${type}.html registers exactly ${type}`,
      );
      const { props } = regs[0];
      if (props.category === 'config') continue;
      assert.ok(used.has(type), `${type} appears in an example flow`);
    }
  });

  it('every palette node: category LLaVA, colour, its own icon file, label, inputs/outputs, typed-input pairs', () => {
    const labels: Record<string, string> = {
      'llava-image-load': 'image load',
      'llava-clip-encode': 'clip encode',
      'llava-project': 'project',
      'llava-prompt-template': 'prompt template',
      'llava-generate': 'llm generate',
    };
    const icons = new Set(fs.readdirSync(path.join(repoRoot, 'icons')));
    for (const [type, paletteLabel] of Object.entries(labels)) {
      const { props, defaults } = registrations(htmlFor(type))[0];
      assert.strictEqual(props.category, 'LLaVA', type);
      assert.match(props.color, /^#[0-9A-Fa-f]{6}$/, type);
      assert.strictEqual(props.paletteLabel, paletteLabel);
      assert.strictEqual(props.inputs, 1, type);
      assert.ok(icons.has(props.icon) && props.icon.startsWith('llava-'), `${type} icon ${props.icon} in icons/`);
      assert.strictEqual(defaults.model.type, 'llava-model', `${type} selects a llava-model`);
      for (const key of Object.keys(defaults).filter((k) => k.endsWith('Type') && k !== 'outputType')) {
        assert.ok(key.slice(0, -4) in defaults, `${type}: ${key} pairs with ${key.slice(0, -4)}`);
      }
    }
    assert.strictEqual(registrations(htmlFor('llava-generate'))[0].props.outputs, 2, 'generate: text + partials');
    assert.strictEqual(registrations(htmlFor('llava-model'))[0].props.category, 'config');
  });

  it('documents the message contract defaults the adapters rely on', () => {
    const d = (type: string) => registrations(htmlFor(type))[0].defaults;
    assert.deepStrictEqual([d('llava-image-load').input.value, d('llava-image-load').output.value], ['payload', 'llava.pixels']);
    assert.deepStrictEqual([d('llava-clip-encode').input.value, d('llava-clip-encode').output.value], ['llava.pixels', 'llava.imageFeatures']);
    assert.deepStrictEqual([d('llava-project').input.value, d('llava-project').output.value], ['llava.imageFeatures', 'llava.imageEmbeds']);
    assert.strictEqual(d('llava-prompt-template').output.value, 'llava.prompt');
    assert.strictEqual(d('llava-prompt-template').allowMsgTemplate.value, false, 'msg.template is off by default');
    assert.deepStrictEqual(
      [d('llava-generate').prompt.value, d('llava-generate').embeds.value, d('llava-generate').output.value],
      ['llava.prompt', 'llava.imageEmbeds', 'payload'],
    );
    assert.deepStrictEqual(
      ['queuePolicy', 'queueLength', 'dropped'].map((k) => d('llava-generate')[k].value),
      ['latest', 1, 'status'],
    );
    // A new stage node in the editor starts with what the runtime uses for a flow without the fields.
    const { queuePolicy, queueLength, dropped } = STAGE_QUEUE_DEFAULTS;
    assert.deepStrictEqual([queuePolicy, queueLength, dropped], ['fifo', 10, 'status']);
    for (const stage of ['llava-clip-encode', 'llava-project']) {
      assert.deepStrictEqual(
        ['queuePolicy', 'queueLength', 'dropped', 'outputs'].map((k) => d(stage)[k].value),
        [queuePolicy, queueLength, dropped, 1],
        stage,
      );
    }
  });

  it('the queued nodes (image load, clip encode, project, llm generate) offer the same queue choices and document the dropped output', () => {
    // The queue rows are written once, in the editor script the nodes share; each node's template marks where they go.
    const shared = fs.readFileSync(path.join(repoRoot, 'resources', 'llava-editor.js'), 'utf8');
    const options = (field: string) =>
      [
        ...(new RegExp(`<select id="node-input-${field}"[^>]*>(.*?)</select>`, 's').exec(shared.replace(/'\s*\+\s*'/g, ''))?.[1] ?? '').matchAll(
          /value="([^"]+)"/g,
        ),
      ].map((m) => m[1]);
    assert.deepStrictEqual(options('queuePolicy'), ['latest', 'fifo', 'drop-new']);
    assert.deepStrictEqual(options('dropped'), ['status', 'output', 'error']);
    assert.ok(
      ['queueLength', 'maxWait', 'outputs'].every((f) => shared.includes(`id="node-input-${f}"`)),
      'waiting, wait limit and outputs fields',
    );
    for (const type of ['llava-image-load', 'llava-clip-encode', 'llava-project', 'llava-generate']) {
      const html = htmlFor(type);
      assert.ok(html.includes('<script src="resources/node-red-contrib-llava/llava-editor.js"></script>'), `${type} loads the shared editor script`);
      assert.match(html, /data-template-name="[^"]+">[\s\S]*<div data-llava-row="queue"><\/div>[\s\S]*?<\/script>/, `${type}: queue rows in its dialog`);
      const { defaults } = registrations(html)[0];
      assert.ok(
        ['queuePolicy', 'queueLength', 'maxWait', 'dropped', 'outputs'].every((k) => k in defaults),
        `${type}: queue fields in its defaults`,
      );
      const help = html.slice(html.indexOf('data-help-name'));
      assert.match(help, /<dt>llava\.dropped <span class="property-type">object<\/span><\/dt>/, `${type} documents msg.llava.dropped`);
      assert.match(help, /<dt class="optional">llava\.maxWait <span class="property-type">number<\/span><\/dt>/, `${type} documents msg.llava.maxWait`);
      for (const reason of ['superseded', 'full', 'busy', 'timeout', 'closed']) assert.ok(help.includes(`<code>${reason}</code>`), `${type}: reason ${reason}`);
    }
  });

  it('llm generate: the editor has every generation option the adapter accepts, and its help documents each', () => {
    const html = htmlFor('llava-generate');
    const { defaults } = registrations(html)[0];
    const help = html.slice(html.indexOf('data-help-name'));
    for (const name of GENERATION_OPTION_NAMES) {
      assert.ok(name in defaults, `editor field ${name}`);
      assert.ok(help.includes(`<code>${name}</code>`), `help documents msg.llava.options.${name}`);
    }
  });

  it('help text has one shape: Inputs, Outputs, Details, References (config node: Details, References)', () => {
    for (const type of Object.keys(nodeMap)) {
      const html = htmlFor(type);
      const help = /<script type="text\/html" data-help-name="([^"]+)">([\s\S]*?)<\/script>/.exec(html);
      assert.ok(help && help[1] === type, `${type} has help`);
      const sections = [...help[2].matchAll(/<h3>([^<]+)<\/h3>/g)].map((m) => m[1]);
      const expected = type === 'llava-model' ? ['Details', 'References'] : ['Inputs', 'Outputs', 'Details', 'References'];
      assert.deepStrictEqual(sections, expected, type);
      assert.match(help[2].trim(), /^<p>[^<]{10,}/, `${type}: help starts with a one-line summary (palette tooltip)`);
      assert.ok(new RegExp(`data-template-name="${type}"`).test(html), `${type} has an edit template`);
    }
  });

  it('editor markup uses theme variables, never hard-coded colours (readable in light and dark themes)', () => {
    for (const type of Object.keys(nodeMap)) {
      const markup = htmlFor(type).replace(/<script type="text\/javascript">[\s\S]*?<\/script>/g, '');
      const colours = markup.match(/(#[0-9a-fA-F]{3,8}\b|rgba?\(|hsla?\()/g);
      assert.strictEqual(colours, null, `${type}.html hard-codes ${colours}`);
    }
  });

  it('icons are SVG, white on transparent, about 40×60', () => {
    for (const file of fs.readdirSync(path.join(repoRoot, 'icons'))) {
      const svg = fs.readFileSync(path.join(repoRoot, 'icons', file), 'utf8');
      assert.match(file, /^llava-[a-z-]+\.svg$/);
      assert.match(svg, /viewBox="0 0 40 60"/, file);
      const colours = new Set([...svg.matchAll(/(?:fill|stroke)="(#[0-9a-fA-F]+|[a-z]+)"/g)].map((m) => m[1]));
      for (const c of colours) assert.ok(['#fff', '#ffffff', 'none', 'white'].includes(c.toLowerCase()), `${file} uses ${c}`);
      assert.doesNotMatch(svg, /<rect[^>]*width="40"[^>]*height="60"/, `${file} has no background`);
    }
  });

  it('examples: a comment node saying what to set, brokers on 127.0.0.1, llava nodes wired to a model in the file', () => {
    const flows = exampleFlows();
    assert.deepStrictEqual(flows.map((f) => f.file).sort(), [
      'caption.json',
      'dashboard.json',
      'doorbell.json',
      'mqtt-camera.json',
      'mqtt-shared-cameras.json',
      'vqa.json',
    ]);
    for (const { file, nodes } of flows) {
      const ids = new Set(nodes.map((n) => n.id));
      assert.ok(
        nodes.some((n) => n.type === 'comment' && /Set before deploying/.test(n.info)),
        `${file}: comment`,
      );
      for (const n of nodes) {
        if (n.type === 'mqtt-broker') assert.strictEqual(n.broker, '127.0.0.1', file);
        if (n.type.startsWith('llava-') && n.type !== 'llava-model' && n.type !== 'llava-prompt-template') {
          assert.ok(ids.has(n.model), `${file}: ${n.id} model ${n.model}`);
        }
        for (const out of n.wires ?? []) for (const target of out) assert.ok(ids.has(target), `${file}: wire to ${target}`);
      }
    }
    const camera = flows.find((f) => f.file === 'mqtt-camera.json')!.nodes;
    assert.strictEqual(camera.find((n) => n.type === 'mqtt in').topic, 'camera/+/snapshot');
    assert.strictEqual(camera.find((n) => n.type === 'mqtt in').datatype, 'buffer');
    assert.strictEqual(camera.find((n) => n.type === 'llava-generate').queuePolicy, 'latest');
    assert.strictEqual(camera.find((n) => n.type === 'llava-clip-encode').queuePolicy, 'latest', 'one waiting frame per camera before the vision encoder');
    const perCamera = camera.find((n) => n.type === 'llava-prompt-template');
    assert.deepStrictEqual(
      perCamera.questions.map((r: { topic: string }) => r.topic),
      ['camera/door/snapshot', 'camera/yard/snapshot'],
      'a question per camera',
    );
    assert.deepStrictEqual([perCamera.questionType, perCamera.preset], ['str', 'model'], 'other cameras get a fixed question');
    // Several instances: a shared subscription over MQTT v5, blank client id, clean session, never No Local.
    const shared = flows.find((f) => f.file === 'mqtt-shared-cameras.json')!.nodes;
    assert.strictEqual(shared.find((n) => n.type === 'mqtt in').topic, '$share/llava/camera/+/snapshot');
    assert.strictEqual(shared.find((n) => n.type === 'mqtt in').nl, false);
    const sharedBroker = shared.find((n) => n.type === 'mqtt-broker');
    assert.deepStrictEqual([sharedBroker.protocolVersion, sharedBroker.clientid, sharedBroker.cleansession], ['5', '', true]);
    const doorbell = flows.find((f) => f.file === 'doorbell.json')!.nodes;
    const answer = doorbell.find((n) => n.type === 'llava-generate');
    assert.strictEqual(answer.outputFormat, 'schema');
    assert.deepStrictEqual(JSON.parse(answer.schema).required, ['person', 'count', 'description']);
    assert.strictEqual(doorbell.find((n) => n.type === 'switch').property, 'payload.person');
    // Flows imported together must not share ids.
    const all = flows.flatMap((f) => f.nodes.map((n) => n.id));
    assert.strictEqual(new Set(all).size, all.length, 'example node ids are unique across the examples');
  });
});

// `npm start`: a real Node-RED (the devDependency) on http://127.0.0.1:1880 with its user folder in .node-red/
// (git-ignored) and this package loaded straight from the working tree (settings.nodesDir = the repository root,
// so a rebuild plus a restart picks up changes; nothing is installed into .node-red/node_modules).
//
// First start (no flows yet): builds a small demo model with random weights, writes a demo image and deploys the
// caption example against them. A random model's captions are meaningless: the demo proves the pipeline runs.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');

const repoRoot = path.resolve(__dirname, '..');
// LLAVA_USER_DIR: another user folder (tests start a throwaway one).
const userDir = path.resolve(process.env.LLAVA_USER_DIR || path.join(repoRoot, '.node-red'));
const demoModelDir = path.join(userDir, 'demo-model');
const demoImage = path.join(userDir, 'demo', 'demo.png');
const DEMO_WARNING = 'random demo model: text is meaningless';

/**
 * Make sure `dir` holds a complete model folder (transformers.js layout) for the demo; resolves true when it does.
 * The demo is the builder's "tiny" architecture (CLIP 32 px + a small LLaMA) with seeded random weights: it loads
 * and runs in seconds on a CPU, and its text is meaningless.
 */
async function ensureDemoModel(dir) {
  if (fs.existsSync(path.join(dir, 'config.json'))) return true;
  const dist = path.join(repoRoot, 'dist', 'lib');
  const { architecture } = require(path.join(dist, 'model', 'architectures.js'));
  const { randomWeights } = require(path.join(dist, 'onnx', 'random-weights.js'));
  const { writeModelFolder } = require(path.join(dist, 'onnx', 'write-model.js'));
  const arch = architecture('tiny');
  fs.rmSync(dir, { recursive: true, force: true });
  writeModelFolder({
    outDir: dir,
    config: arch.config,
    weights: randomWeights(arch.config, 1),
    tokenizer: { kind: arch.tokenizer },
    source: 'npm start demo (random weights)',
  });
  return true;
}

/** A small picture to caption: coloured shapes, written with sharp (a dependency of this package). */
async function ensureDemoImage(file) {
  if (fs.existsSync(file)) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const sharp = require('sharp');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="480" height="360">
    <rect width="480" height="360" fill="#87b7e8"/><rect y="240" width="480" height="120" fill="#4f8f3a"/>
    <circle cx="380" cy="80" r="45" fill="#f6d04d"/><rect x="90" y="150" width="150" height="110" fill="#b5523b"/>
    <polygon points="80,150 165,85 250,150" fill="#6b3a2a"/></svg>`;
  await sharp(Buffer.from(svg)).png().toFile(file);
}

/** The caption example as a deployable tab, pointed at the demo model and image, labelled as a demo. */
function demoFlow(modelDir, imageFile) {
  const example = JSON.parse(fs.readFileSync(path.join(repoRoot, 'examples', 'caption.json'), 'utf8'));
  const tab = { id: 'a1f0c0de000000ff', type: 'tab', label: 'LLaVA demo', info: DEMO_WARNING };
  const nodes = example.map((node) => {
    const n = { ...node };
    if (n.type !== 'llava-model') n.z = tab.id;
    if (n.type === 'llava-model') Object.assign(n, { name: 'demo model (random weights)', modelDir, provider: 'cpu' });
    if (n.type === 'file in') n.filename = imageFile;
    if (n.type === 'debug' && n.name === 'caption') Object.assign(n, { name: `caption (${DEMO_WARNING})`, console: true });
    if (n.type === 'comment') {
      n.name = `Demo: ${DEMO_WARNING}. Click the inject button.`;
      n.info = `This flow was deployed by \`npm start\` against a LLaVA model built with **random weights** in ` +
        `\`.node-red/demo-model\`. Its captions are meaningless: it shows that every step runs, not that the model ` +
        `sees. Set a real model folder in the "LLaVA model" config node to get real captions.\n\n${n.info}`;
    }
    return n;
  });
  return [tab, ...nodes];
}

function hasFlows(file) {
  if (!fs.existsSync(file)) return false;
  try {
    const flows = JSON.parse(fs.readFileSync(file, 'utf8'));
    return Array.isArray(flows) ? flows.length > 0 : true;
  } catch {
    return true; // not ours to overwrite
  }
}

function writeSettings(file) {
  if (fs.existsSync(file)) return;
  const settings = `// Written by scripts/start.js on first start; edit freely, it is not overwritten.
module.exports = {
    uiHost: '127.0.0.1',
    uiPort: process.env.PORT || 1880,
    userDir: __dirname,
    flowFile: 'flows.json',
    // This package, loaded from the working tree (its package.json has a "node-red" section).
    nodesDir: [${JSON.stringify(repoRoot)}],
    credentialSecret: false,
    telemetry: { enabled: false, updateNotification: false },
    diagnostics: { enabled: false },
    editorTheme: { tours: false, projects: { enabled: false } },
    logging: { console: { level: 'info', metrics: false, audit: false } },
};
`;
  fs.writeFileSync(file, settings);
}

async function main() {
  fs.mkdirSync(userDir, { recursive: true });
  const settingsFile = path.join(userDir, 'settings.js');
  writeSettings(settingsFile);
  const flowFile = path.join(userDir, 'flows.json');
  if (!hasFlows(flowFile)) {
    let ready = false;
    try {
      ready = await ensureDemoModel(demoModelDir);
    } catch (err) {
      console.warn(`[llava] could not build the demo model: ${err && err.message ? err.message : err}`);
    }
    await ensureDemoImage(demoImage);
    fs.writeFileSync(flowFile, JSON.stringify(demoFlow(demoModelDir, demoImage), null, 2));
    console.log(`[llava] deployed the caption example against ${ready ? 'the demo model' : 'a missing demo model'}` +
      ` in ${path.relative(repoRoot, demoModelDir)} (${DEMO_WARNING})`);
  }
  const redJs = path.join(path.dirname(require.resolve('node-red/package.json')), 'red.js');
  const child = spawn(process.execPath, [redJs, '--settings', settingsFile], { stdio: 'inherit', cwd: userDir });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

if (require.main === module) {
  main().catch((err) => {
    console.error(`[llava] npm start failed: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  });
}

module.exports = { ensureDemoModel, demoFlow, DEMO_WARNING };

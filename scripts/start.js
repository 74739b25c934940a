// `npm start`: a real Node-RED (the devDependency) on http://127.0.0.1:1880 with its user folder in .node-red/
// (git-ignored) and this package loaded straight from the working tree (settings.nodesDir = the repository root,
// so a rebuild plus a restart picks up changes; nothing is installed into .node-red/node_modules).
//
// First start (no flows yet): writes a demo picture and deploys the caption example against the shipped demo model
// (demo-model/, a small LLaVA trained on synthetic shapes by scripts/demo-model: it describes coloured circles,
// squares and triangles, and nothing else).
'use strict';
const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');

const repoRoot = path.resolve(__dirname, '..');
// LLAVA_USER_DIR: another user folder (tests start a throwaway one).
const userDir = path.resolve(process.env.LLAVA_USER_DIR || path.join(repoRoot, '.node-red'));
const demoModelDir = path.join(repoRoot, 'demo-model');
const demoImage = path.join(userDir, 'demo', 'demo.png');
const DEMO_WARNING = 'demo model: it only knows coloured shapes';

/** The picture to caption: a held-out synthetic scene (one the demo model never saw in training). */
async function ensureDemoImage(file) {
  if (fs.existsSync(file)) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const { DEMO_SCENE_SEED, renderScene, scene } = require(path.join(repoRoot, 'dist', 'scripts', 'demo-model', 'scenes.js'));
  fs.writeFileSync(file, await renderScene(scene(DEMO_SCENE_SEED)));
}

/** The caption example as a deployable tab, pointed at the demo model and image, labelled as a demo. */
function demoFlow(modelDir, imageFile) {
  const example = JSON.parse(fs.readFileSync(path.join(repoRoot, 'examples', 'caption.json'), 'utf8'));
  const tab = { id: 'a1f0c0de000000ff', type: 'tab', label: `LLaVA demo (${DEMO_WARNING})`, info: DEMO_WARNING };
  const nodes = example.map((node) => {
    const n = { ...node };
    if (n.type !== 'llava-model') n.z = tab.id;
    if (n.type === 'llava-model') Object.assign(n, { name: 'demo model (synthetic shapes)', modelDir, provider: 'cpu' });
    if (n.type === 'file in') n.filename = imageFile;
    // Names keep the example's lengths, so its layout holds; the console copy lets a terminal user see the caption.
    if (n.type === 'debug' && n.name === 'caption') n.console = true;
    if (n.type === 'comment') {
      n.name = 'Demo: click the inject button';
      n.info =
        `This flow was deployed by \`npm start\` against the package's **demo model** (\`demo-model/\`): a ` +
        `small LLaVA trained on synthetic pictures of red, green, blue and yellow circles, squares and triangles ` +
        `(scripts/demo-model). It captions such pictures ("two red circles", "a blue square on the left and a ` +
        `yellow triangle on the right") and nothing else. Set a real model folder in the "LLaVA model" config ` +
        `node to caption real pictures.\n\n${n.info}`;
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
    await ensureDemoImage(demoImage);
    fs.writeFileSync(flowFile, JSON.stringify(demoFlow(demoModelDir, demoImage), null, 2));
    console.log(`[llava] deployed the caption example against the demo model in ${path.relative(repoRoot, demoModelDir)}` + ` (${DEMO_WARNING})`);
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

module.exports = { demoFlow, DEMO_WARNING };

// Node-RED finds a node's .html and its icons/ folder only next to the node's .js, so the build puts them there.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'dist', 'nodes');
fs.mkdirSync(out, { recursive: true });
for (const f of fs.readdirSync(path.join(root, 'nodes'))) {
  if (f.endsWith('.html')) fs.copyFileSync(path.join(root, 'nodes', f), path.join(out, f));
}
fs.cpSync(path.join(root, 'icons'), path.join(out, 'icons'), { recursive: true });

// A fresh temporary folder per test file, removed afterwards.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export function useTmpDir(prefix: string): () => string {
  let dir = '';
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  return () => dir;
}

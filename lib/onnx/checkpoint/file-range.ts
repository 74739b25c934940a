// Reads byte ranges of large files without loading them whole: each call opens, reads and closes.
import * as fs from 'fs';

/** Reads exactly `length` bytes at `offset`; throws if the file ends first. */
export function readRange(path: string, offset: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  readInto(path, offset, out);
  return out;
}

/** Fills `target` with the bytes at `offset`; throws if the file ends first. */
export function readInto(path: string, offset: number, target: Uint8Array): void {
  const fd = fs.openSync(path, 'r');
  try {
    let done = 0;
    while (done < target.length) {
      // Chunks stay under the 2 GiB a single read may return.
      const n = fs.readSync(fd, target, done, Math.min(target.length - done, 1 << 30), offset + done);
      if (n === 0) {
        throw new Error(`${path}: wanted ${target.length} bytes at offset ${offset}, but the file ends after ${done}`);
      }
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

export function fileSize(path: string): number {
  return fs.statSync(path).size;
}

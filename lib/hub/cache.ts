// The Hub cache layout (huggingface/hub-docs docs/hub/local-cache.md), shared with huggingface_hub and other clients:
//   <cache>/models--org--name/blobs/<etag>                    file content, named by its etag (sha256 for LFS files)
//   <cache>/models--org--name/refs/<revision>                 the commit a branch or tag pointed at
//   <cache>/models--org--name/snapshots/<commit>/<path>       relative symlink to ../../blobs/<etag>
//   <cache>/.locks/models--org--name/                         lock files
// Every name from a repo listing goes through repoPath(), and every link is checked to land in blobs/, so a listing
// cannot make us write or read outside the repo's folder.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { COMMIT } from './repo-id';

/** `org/name` → `models--org--name`. */
export function repoFolderName(repo: string): string {
  return `models--${repo.split('/').join('--')}`;
}

/**
 * The segments of a file path from a repo listing, refused when it could leave the snapshot folder: absolute,
 * `..` or `.` segments, backslashes, empty segments, control characters.
 */
export function repoPath(name: string): string[] {
  const segments = name.split('/');
  const bad =
    name.length === 0 ||
    name.length > 1024 ||
    /[\\\x00-\x1f]/.test(name) ||
    /^[A-Za-z]:/.test(name) ||
    segments.some((s) => s === '' || s === '.' || s === '..');
  if (bad) throw new Error(`the repo lists an unsafe file name ${JSON.stringify(name)}: refused`);
  return segments;
}

/** An etag used as a blob file name: hex only (sha1 or sha256), anything else is refused. */
export function blobName(etag: string): string {
  if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(etag)) throw new Error(`the Hub sent an unexpected etag ${JSON.stringify(etag)}: refused`);
  return etag;
}

export class RepoCache {
  readonly root: string;
  readonly lockDir: string;

  constructor(
    readonly cacheDir: string,
    readonly repo: string,
  ) {
    this.root = path.join(cacheDir, repoFolderName(repo));
    this.lockDir = path.join(cacheDir, '.locks', repoFolderName(repo));
  }

  get blobsDir(): string {
    return path.join(this.root, 'blobs');
  }

  blob(etag: string): string {
    return path.join(this.blobsDir, blobName(etag));
  }

  /** The partial download of a blob, kept across interruptions for a Range resume. */
  incomplete(etag: string): string {
    return `${this.blob(etag)}.incomplete`;
  }

  snapshotDir(commit: string): string {
    if (!COMMIT.test(commit)) throw new Error(`not a commit id: ${JSON.stringify(commit)}`);
    return path.join(this.root, 'snapshots', commit);
  }

  snapshotFile(commit: string, name: string): string {
    return path.join(this.snapshotDir(commit), ...repoPath(name));
  }

  /** The commit a revision names: itself when it is a commit id, else what refs/<revision> holds. */
  readRef(revision: string): string | undefined {
    if (COMMIT.test(revision)) return revision;
    try {
      const commit = fs.readFileSync(path.join(this.root, 'refs', ...repoPath(revision)), 'utf8').trim();
      return COMMIT.test(commit) ? commit : undefined;
    } catch {
      return undefined;
    }
  }

  writeRef(revision: string, commit: string): void {
    if (revision === commit) return;
    const file = path.join(this.root, 'refs', ...repoPath(revision));
    this.makeDirs(path.dirname(file));
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, commit);
    fs.renameSync(tmp, file);
  }

  /**
   * The file a snapshot holds for `name`, when it is there and its link resolves inside blobs/ (or, in the
   * degraded mode without symlinks, is a plain file in the snapshot); undefined otherwise.
   */
  cachedFile(commit: string, name: string): string | undefined {
    const file = this.snapshotFile(commit, name);
    let real: string;
    try {
      real = fs.realpathSync(file);
      if (!fs.statSync(real).isFile()) return undefined;
    } catch {
      return undefined;
    }
    const inside = (dir: string) => {
      try {
        const r = fs.realpathSync(dir);
        return real.startsWith(r + path.sep);
      } catch {
        return false;
      }
    };
    if (!inside(this.blobsDir) && !inside(this.snapshotDir(commit))) {
      throw new Error(`${file} links outside the cache (${real}): refused`);
    }
    return file;
  }

  /** Files of a snapshot, as repo paths (for offline use, where no listing can be fetched). */
  snapshotFiles(commit: string): string[] {
    const dir = this.snapshotDir(commit);
    const out: string[] = [];
    const walk = (rel: string) => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(path.join(dir, rel), { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const name = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) walk(name);
        else if (this.cachedFile(commit, name)) out.push(name);
      }
    };
    walk('');
    return out.sort();
  }

  /** Points snapshots/<commit>/<name> at blobs/<etag> with a relative symlink (a copy where symlinks are not allowed). */
  link(commit: string, name: string, etag: string): string {
    const file = this.snapshotFile(commit, name);
    this.makeDirs(path.dirname(file));
    const blob = this.blob(etag);
    fs.rmSync(file, { force: true });
    try {
      fs.symlinkSync(path.relative(path.dirname(file), blob), file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
      fs.copyFileSync(blob, file);
    }
    return file;
  }

  /** mkdir -p under the repo folder, refusing to pass through a symlink (a snapshot file named like a folder). */
  private makeDirs(dir: string): void {
    const rel = path.relative(this.cacheDir, dir);
    let at = this.cacheDir;
    fs.mkdirSync(at, { recursive: true });
    for (const segment of rel.split(path.sep)) {
      at = path.join(at, segment);
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(at);
      } catch {
        fs.mkdirSync(at);
        continue;
      }
      if (!st.isDirectory()) throw new Error(`${at} is not a folder (a file or link is in the way): refused`);
    }
  }

  /**
   * Holds the repo's pull lock until the returned release is called. Another live holder is waited for (polling);
   * a lock left by a process that no longer runs on this host is taken over.
   */
  async lock(signal?: AbortSignal, onWait?: (holder: string) => void): Promise<() => void> {
    this.makeDirs(this.lockDir);
    const file = path.join(this.lockDir, 'llava-pull.lock');
    const me = `${os.hostname()} ${process.pid} ${Math.random().toString(36).slice(2)}`;
    let told = false;
    for (;;) {
      signal?.throwIfAborted();
      try {
        fs.writeFileSync(file, me, { flag: 'wx' });
        return () => {
          try {
            if (fs.readFileSync(file, 'utf8') === me) fs.rmSync(file);
          } catch {
            // already gone
          }
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      let holder = '';
      try {
        holder = fs.readFileSync(file, 'utf8');
      } catch {
        continue;
      }
      const [host, pid] = holder.split(' ');
      if (host === os.hostname() && !processAlive(Number(pid))) {
        fs.rmSync(file, { force: true });
        continue;
      }
      if (!told) onWait?.(`process ${pid} on ${host}`);
      told = true;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// Hub downloads on the command line: the progress display, Ctrl-C handling, and `--model org/name[@rev]`.
import { formatSize, PullEvent, resolveModel } from '../hub/pull';
import type { HubSettings } from '../hub/settings';

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(Math.ceil(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * Progress on `out` (stderr): on a terminal one updating bar with bytes, rate and ETA; otherwise plain lines, one
 * per file and one per 10 % of the total.
 */
export function pullProgress(out: NodeJS.WriteStream = process.stderr, options: { quietWhenCached?: boolean } = {}): (e: PullEvent) => void {
  const tty = !!out.isTTY;
  let started = 0;
  let lastTenth = -1;
  return (e) => {
    if (e.type === 'waiting') out.write(`waiting for another download of this model (${e.holder})\n`);
    else if (e.type === 'plan') {
      if (options.quietWhenCached && e.bytesToGet === 0) return;
      const cached = e.files.filter((f) => f.cached).length;
      out.write(`${e.files.length} files, ${cached} in the cache, ${formatSize(e.bytesToGet)} to download (commit ${e.commit.slice(0, 10)})\n`);
      started = Date.now();
      lastTenth = -1;
    } else if (e.type === 'progress') {
      const seconds = (Date.now() - started) / 1000;
      const rate = seconds > 0 ? e.bytes / seconds : 0;
      const eta = rate > 0 ? (e.total - e.bytes) / rate : Infinity;
      const percent = e.total ? Math.floor((100 * e.bytes) / e.total) : 100;
      const figures = `${percent}% ${formatSize(e.bytes)}/${formatSize(e.total)} ${formatSize(rate)}/s ETA ${formatDuration(eta)}`;
      if (tty) {
        const width = 24;
        const filled = Math.round((width * percent) / 100);
        out.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${figures} ${e.file}\x1b[K`);
      } else if (Math.floor(percent / 10) > lastTenth) {
        lastTenth = Math.floor(percent / 10);
        out.write(`${figures}\n`);
      }
    } else if (e.type === 'file' && e.downloaded && tty) {
      out.write(`\r${e.file} (${formatSize(e.size)})\x1b[K\n`);
    }
  };
}

/** An AbortSignal that Ctrl-C raises (once; a second Ctrl-C exits at once). */
export function interruptSignal(): { signal: AbortSignal; dispose(): void } {
  const abort = new AbortController();
  const onInt = () => {
    if (abort.signal.aborted) process.exit(130);
    abort.abort();
  };
  process.on('SIGINT', onInt);
  return { signal: abort.signal, dispose: () => process.off('SIGINT', onInt) };
}

export const MODEL_HELP = `--model accepts a folder or a Hub id org/name[@revision]: its cached snapshot is used and what the weight
variant needs is pulled first (HF_ENDPOINT, HF_HUB_CACHE, HF_TOKEN, HF_HUB_OFFLINE apply); --no-pull uses the
cache only.`;

/** `--model` to a folder: a Hub id is pulled (unless noPull) with progress on stderr. */
export async function modelFolder(model: string, options: { variant?: string; noPull?: boolean; settings?: HubSettings } = {}): Promise<string> {
  const interrupt = interruptSignal();
  try {
    return await resolveModel(model, {
      variant: options.variant,
      pull: !options.noPull,
      settings: options.settings,
      signal: interrupt.signal,
      onProgress: pullProgress(process.stderr, { quietWhenCached: true }),
    });
  } finally {
    interrupt.dispose();
  }
}

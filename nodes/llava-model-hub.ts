// llava-model's Hub side: the admin endpoints behind the config dialog's model list and Download button, and the
// progress they send to every open editor. Downloads are shared with deployed config nodes naming the same model.
//   GET    /llava-model/hub            known models and the downloads of this process    (llava-model.read)
//   POST   /llava-model/hub/downloads  {model, variant, node?, token?}: start or join one   (llava-model.write)
//   DELETE /llava-model/hub/downloads/:id                                                  (llava-model.write)
// Progress goes over RED.comms on the topic `llava-model/download`, at most a few times a second per download.
import type { NodeAPI } from 'node-red';
import { Download, Downloads, DownloadState } from '../lib/hub/downloads';
import { KNOWN_MODELS } from '../lib/hub/known-models';
import { looksLikeRepoId } from '../lib/hub/repo-id';
import { hubSettings } from '../lib/hub/settings';

export const DOWNLOAD_TOPIC = 'llava-model/download';
const PUBLISH_INTERVAL_MS = 250;

const downloads = new Downloads();

/** The token a download uses: one typed in the dialog, else the config node's stored credential, else HF_TOKEN. */
function hubToken(RED: NodeAPI, token: unknown, nodeId: unknown): string | undefined {
  if (typeof token === 'string' && token && token !== '__PWRD__') return token;
  if (typeof nodeId === 'string') {
    const stored = (RED.nodes.getCredentials(nodeId) as { token?: string } | undefined)?.token;
    if (stored) return stored;
  }
  return undefined;
}

/** Starts (or joins) the download of a Hub model, publishing its progress to the editors. */
export function startDownload(RED: NodeAPI, model: string, variant: string, token?: string): Download {
  const settings = hubSettings(token ? { token } : {});
  const download = downloads.start(model, variant || 'auto', settings);
  if (!published.has(download.id)) {
    published.add(download.id);
    let last = 0;
    const publish = (s: DownloadState) => {
      const now = Date.now();
      if (s.state === 'running' && now - last < PUBLISH_INTERVAL_MS) return;
      last = now;
      RED.comms.publish(DOWNLOAD_TOPIC, s, false);
    };
    const stop = download.follow(publish);
    download.folder.then(stop, stop);
    publish(download.state);
  }
  return download;
}
const published = new Set<string>();

export function registerHubAdmin(RED: NodeAPI): void {
  const read = RED.auth.needsPermission('llava-model.read');
  const write = RED.auth.needsPermission('llava-model.write');
  RED.httpAdmin.get('/llava-model/hub', read, (_req, res) => {
    res.json({ known: KNOWN_MODELS, downloads: downloads.list() });
  });
  RED.httpAdmin.post('/llava-model/hub/downloads', write, (req, res) => {
    const { model, variant, node, token } = (req.body ?? {}) as Record<string, unknown>;
    if (typeof model !== 'string' || !looksLikeRepoId(model)) {
      res.status(400).json({ error: `${JSON.stringify(model ?? null)} is not a Hub model id (org/name or org/name@revision)` });
      return;
    }
    try {
      const download = startDownload(RED, model, typeof variant === 'string' ? variant : 'auto', hubToken(RED, token, node));
      res.json(download.state);
    } catch (err) {
      res.status(400).json({ error: (err as Error).message });
    }
  });
  RED.httpAdmin.delete('/llava-model/hub/downloads/:id', write, (req, res) => {
    const download = downloads.get(String(req.params.id));
    if (!download) {
      res.status(404).json({ error: 'no such download' });
      return;
    }
    download.cancel();
    res.json(download.state);
  });
}

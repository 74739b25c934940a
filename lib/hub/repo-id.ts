// A model named on the Hub: `org/name[@revision]`. Both parts become cache paths and URL segments, so they are
// checked here, once, against the Hub's own naming rules.

export interface RepoRef {
  /** `org/name`, case kept. */
  repo: string;
  /** Branch, tag, `refs/pr/N` or a 40-hex commit; `main` when not given. */
  revision: string;
}

const NAME = /^(?![.-])(?!.*(?:--|\.\.))[A-Za-z0-9_.-]{1,96}(?<![.-])$/;
const REVISION_SEGMENT = /^(?!\.{1,2}$)[A-Za-z0-9_.+-]{1,128}$/;

/** A commit id: the snapshot folder name. */
export const COMMIT = /^[0-9a-f]{40}$/;

function validRevision(revision: string): boolean {
  return revision.split('/').every((s) => REVISION_SEGMENT.test(s) && !s.endsWith('.lock'));
}

/** True when `text` has the shape of a Hub id (`org/name` or `org/name@rev`): a CLI or node setting may then mean one. */
export function looksLikeRepoId(text: string): boolean {
  const [repo, ...rest] = text.split('@');
  const parts = repo.split('/');
  return rest.length <= 1 && parts.length === 2 && parts.every((p) => NAME.test(p)) && (rest.length === 0 || validRevision(rest[0]));
}

/** Parses `org/name[@revision]`; throws an error that says what a Hub id looks like. */
export function parseRepoRef(text: string, defaultRevision = 'main'): RepoRef {
  const at = text.indexOf('@');
  const repo = at < 0 ? text : text.slice(0, at);
  const revision = at < 0 ? defaultRevision : text.slice(at + 1);
  const parts = repo.split('/');
  if (parts.length !== 2 || !parts.every((p) => NAME.test(p))) {
    throw new Error(`"${text}" is not a Hub model id: expected org/name or org/name@revision (letters, digits, - _ .)`);
  }
  if (!validRevision(revision)) throw new Error(`"${revision}" is not a valid revision (a branch, tag, refs/pr/N or commit id)`);
  return { repo, revision };
}

export function formatRepoRef(ref: RepoRef): string {
  return ref.revision === 'main' ? ref.repo : `${ref.repo}@${ref.revision}`;
}

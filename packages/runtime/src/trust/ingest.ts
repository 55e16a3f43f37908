/**
 * The trust checks of an attempt: what the host does with a tree an agent shaped before any of
 * it reaches git. Every function here runs once no agent process is alive, on a workspace the
 * host made; names are handled as bytes (an agent's need not be UTF-8), nothing is followed.
 *
 * 1. `scanWorkspace` clears the tree of what host tools must never look into (a `.git` at any
 *    depth, FIFOs, sockets, devices), opens what an agent closed to the host, and lists every
 *    link. A path deeper than the kernel can name fails the attempt.
 * 2. `checkNames` holds each new path to the rules of a portable project.
 * 3. `checkLinks` resolves every link the commit would hold, chains included, and refuses one
 *    whose target leaves the project.
 * Size and secret rules are `OutputCheck`'s (output-check.ts).
 */
import { isUtf8 } from 'node:buffer';
import { chmod, lstat, readdir, readlink, unlink } from 'node:fs/promises';
import { printable } from '../util/printable.js';
import { OutputRejectedError } from './output-check.js';
import { joinBytes, removeTree } from './untrusted-files.js';

/** Linux's PATH_MAX: no absolute path, its terminating NUL included, may be longer. */
export const MAX_PATH_BYTES = 4096;

/**
 * A path relative to the workspace, as git and the kernel see it: bytes, held in a string one
 * byte per character (latin1), which maps back to the same bytes and can key a Map.
 */
export type RawPath = string;

export const rawPath = (bytes: Buffer): RawPath => bytes.toString('latin1');
export const pathBytes = (path: RawPath): Buffer => Buffer.from(path, 'latin1');
/** A raw path as a message may show it. */
export const shown = (path: RawPath): string => printable(pathBytes(path));

/** What `scanWorkspace` found and did. */
export interface WorkspaceScan {
  /** Every symlink left in the tree (relative path → its target as read), never followed. */
  links: Map<RawPath, RawPath>;
  /** Paths removed: git metadata and special files, as a message shows them. */
  removed: string[];
}

const GIT_DIR = Buffer.from('.git');

/** A directory's entries; one an agent closed to the host (as a plain user) is opened first. */
async function entriesOf(dir: Buffer) {
  const read = () => readdir(dir, { withFileTypes: true, encoding: 'buffer' });
  try {
    return await read();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EACCES') throw error;
    // Listed as a directory by its parent, with no agent left to swap it: chmod follows nothing.
    await chmod(dir, 0o700);
    return read();
  }
}

/** The paths `skip` names, as the scan compares them: raw, without a directory's final `/`. */
function skipSet(skip: readonly string[]): Set<RawPath> {
  return new Set(skip.map((p) => rawPath(Buffer.from(p.replace(/\/+$/, '')))));
}

/**
 * Clears the workspace at `root` of git metadata and special files and lists its links; throws
 * OutputRejectedError, naming the path, when the agent made a path longer than the kernel's
 * limit (no tool could read it, and the slot must then be cleared whole). `skip` names paths
 * (relative, a directory's with or without its `/`) that are neither listed nor entered: a
 * prepared environment's, which the host made, no agent could write, and git ignores.
 */
export async function scanWorkspace(
  root: string,
  options: { skip?: readonly string[] } = {},
): Promise<WorkspaceScan> {
  const rootBytes = Buffer.from(root);
  const skipped = skipSet(options.skip ?? []);
  const scan: WorkspaceScan = { links: new Map(), removed: [] };
  const pending: Buffer[] = [Buffer.alloc(0)];
  while (pending.length > 0) {
    const dir = pending.pop() as Buffer;
    for (const entry of await entriesOf(joinBytes(rootBytes, dir))) {
      const relative = joinBytes(dir, entry.name);
      if (skipped.size > 0 && skipped.has(rawPath(relative))) continue;
      const full = joinBytes(rootBytes, relative);
      if (full.length + 1 > MAX_PATH_BYTES) {
        throw new OutputRejectedError(
          `${shown(rawPath(relative.subarray(0, 160)))}... is a path longer than Linux allows (${MAX_PATH_BYTES} bytes)`,
        );
      }
      if (entry.name.equals(GIT_DIR)) {
        await removeTree(full);
        scan.removed.push(shown(rawPath(relative)));
      } else if (entry.isDirectory()) pending.push(relative);
      else if (entry.isSymbolicLink())
        scan.links.set(rawPath(relative), rawPath(await readlink(full, { encoding: 'buffer' })));
      else if (!entry.isFile()) {
        await unlink(full);
        scan.removed.push(shown(rawPath(relative)));
      }
    }
  }
  return scan;
}

/**
 * Names Windows cannot hold, whatever their extension: a project with one cannot be checked
 * out there (and git for Windows refuses it).
 */
const RESERVED_NAME = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\.|$)/i;
/** Characters Windows and most tools refuse in a name, besides control characters. */
const RESERVED_CHARACTERS = new Set('<>:"|?*\\');

const reservedCharacter = (char: string) => {
  const code = char.codePointAt(0) as number;
  return code < 0x20 || code === 0x7f || RESERVED_CHARACTERS.has(char);
};

/** Why `name` (one path component, valid UTF-8) cannot be in the project, if it cannot. */
function nameProblem(name: string): string | undefined {
  if ([...name].some(reservedCharacter))
    return 'has a character Windows and many tools refuse (<>:"|?*\\ or a control character)';
  if (RESERVED_NAME.test(name)) return 'is a name Windows reserves for a device';
  if (/[. ]$/.test(name)) return 'ends with a dot or a space, which Windows drops';
  return undefined;
}

/**
 * Holds each path an attempt adds to the rules a project must keep to be checked out anywhere:
 * valid UTF-8, no name Windows reserves, no reserved character. Throws OutputRejectedError with
 * the path, as a message may show it.
 */
export function checkNames(added: Iterable<RawPath>): void {
  for (const path of added) {
    const bytes = pathBytes(path);
    if (!isUtf8(bytes)) throw new OutputRejectedError(`${shown(path)} is not a valid UTF-8 name`);
    for (const name of bytes.toString('utf8').split('/')) {
      const problem = nameProblem(name);
      if (problem) throw new OutputRejectedError(`${shown(path)} ${problem}`);
    }
  }
}

/** Where one link leads, as far as the project goes. */
type Resolution = 'inside' | 'outside' | 'loop';

/** More links than this on the way, and the kernel gives up (ELOOP): so does the host. */
const MAX_LINK_HOPS = 40;

/**
 * Resolves the link at `link` (relative to the workspace at `root`) the way the kernel would,
 * through every link on its way, without following any: each component is looked at with lstat,
 * a link's target is spliced in, `..` climbs the resolved path. A component that does not exist
 * is taken for a directory, so that a link dangling today cannot lead out tomorrow because a
 * directory was made.
 */
async function resolveLink(root: Buffer, link: RawPath, target: RawPath): Promise<Resolution> {
  const resolved = link.split('/').slice(0, -1);
  const pending = target.split('/').reverse();
  if (target.startsWith('/')) return 'outside';
  let hops = 1;
  while (pending.length > 0) {
    const part = pending.pop() as string;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (resolved.length === 0) return 'outside';
      resolved.pop();
      continue;
    }
    const next = [...resolved, part].join('/');
    const stats = await lstat(joinBytes(root, pathBytes(next))).catch(() => undefined);
    if (!stats?.isSymbolicLink()) {
      resolved.push(part);
      continue;
    }
    if (++hops > MAX_LINK_HOPS) return 'loop';
    const inner = rawPath(await readlink(joinBytes(root, pathBytes(next)), { encoding: 'buffer' }));
    if (inner.startsWith('/')) return 'outside';
    pending.push(...inner.split('/').reverse());
  }
  return 'inside';
}

/**
 * Refuses any link the commit would hold whose target, resolved through the tree as the commit
 * has it, leaves the project, or that never resolves. `links` are the workspace's; the caller
 * leaves out those git will not commit (ignored) and the repository's own (a link the run's
 * source repository has, with the same target, is the user's to keep).
 */
export async function checkLinks(
  root: string,
  links: ReadonlyMap<RawPath, RawPath>,
): Promise<void> {
  const rootBytes = Buffer.from(root);
  for (const [link, target] of links) {
    const resolution = await resolveLink(rootBytes, link, target);
    if (resolution === 'outside')
      throw new OutputRejectedError(
        `symlink ${shown(link)} leads outside the project (${shown(target)})`,
      );
    if (resolution === 'loop')
      throw new OutputRejectedError(`symlink ${shown(link)} never resolves (${shown(target)})`);
  }
}

import { execFile } from 'node:child_process';
import { lchown, lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { IMAGE } from '../contracts/image.js';

/** The unprivileged user and group an agent runs as, and the tool that drops to them. */
export interface AgentUser {
  uid: number;
  gid: number;
  /** `setpriv` (util-linux), by absolute path: the sandbox's PATH is the agent's. */
  setpriv: string;
}

/** How many ids above the image's own user are tried before giving up. */
const CANDIDATES = 100;

function getent(database: 'passwd' | 'group', id: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    execFile('getent', [database, String(id)], (error) => {
      if (!error) resolve(true);
      // getent exits 2 when the key is not found.
      else if (error.code === 2) resolve(false);
      else reject(new Error(`getent ${database} ${id}: ${error.message}`));
    });
  });
}

function which(program: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('/bin/sh', ['-c', 'command -v "$1"', 'sh', program], (error, stdout) => {
      const found = stdout.trim();
      resolve(!error && path.isAbsolute(found) ? found : undefined);
    });
  });
}

/**
 * The user agents and checks run as when the orchestrator is root: the image's `executor` id
 * (10001) unless an account of this machine has it, then the next id no account or group has.
 * An id nobody owns has no files and no processes an agent could reach through it. Undefined
 * when the orchestrator is not root: agents then run as its own user, already unprivileged.
 * Throws with the reason when root cannot drop (no setpriv, every candidate taken).
 */
export async function agentUserFor(uid = process.getuid?.()): Promise<AgentUser | undefined> {
  if (uid !== 0) return undefined;
  const setpriv = await which('setpriv');
  if (!setpriv) throw new Error('setpriv (util-linux) is not installed');
  for (let id = IMAGE.uid; id < IMAGE.uid + CANDIDATES; id++) {
    const [user, group] = await Promise.all([getent('passwd', id), getent('group', id)]);
    if (!user && !group) return { uid: id, gid: id, setpriv };
  }
  throw new Error(
    `every id from ${IMAGE.uid} to ${IMAGE.uid + CANDIDATES - 1} belongs to an account here`,
  );
}

/**
 * `setpriv` in front of a command: the real, effective and saved ids become the agent's, no
 * supplementary group stays, every capability goes (the bounding set too, so nothing can be
 * regained) and no executable can raise privileges again (no_new_privs: setuid binaries run as
 * the agent).
 */
export function dropPrivileges(user: AgentUser): string[] {
  return [
    user.setpriv,
    '--reuid',
    String(user.uid),
    '--regid',
    String(user.gid),
    '--clear-groups',
    '--inh-caps=-all',
    '--bounding-set=-all',
    '--no-new-privs',
    '--',
  ];
}

/**
 * Hands a tree the host made (a checkout, a fresh HOME) to the agent's user, following no link.
 * A file with another hard link is left as it is: the last agent may have linked a file of the
 * host's into its workspace (where no disk of its own keeps it on another file system), and
 * root must not give that file away. Only for a tree no agent is running in. `skip`: absolute
 * paths inside `dir` left as they are, unentered (a prepared environment, which stays root's).
 */
export async function handOver(
  dir: string,
  user: Pick<AgentUser, 'uid' | 'gid'>,
  skip?: ReadonlySet<string>,
): Promise<void> {
  await lchown(dir, user.uid, user.gid);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (skip?.has(full)) continue;
    if (entry.isDirectory()) await handOver(full, user, skip);
    else if (!entry.isFile() || (await lstat(full)).nlink === 1)
      await lchown(full, user.uid, user.gid);
  }
}

/**
 * Kills every process of the agent's user (kill(-1) as that user reaches exactly its own):
 * with no process namespace around them, what an agent started in the background would
 * otherwise outlive it and go on writing into the tree the host is about to commit.
 */
export function killEveryProcessOf(user: AgentUser): Promise<void> {
  return new Promise((resolve) => {
    execFile(...unconfinedArgs(user, '/bin/sh', ['-c', 'kill -KILL -1 2>/dev/null; true']), () =>
      resolve(),
    );
  });
}

/**
 * The command line that runs `command` as an agent where bubblewrap cannot: unconfined, but as
 * the unprivileged user when the orchestrator is root.
 */
export function unconfinedArgs(
  runAs: AgentUser | undefined,
  command: string,
  args: readonly string[],
): [string, string[]] {
  if (!runAs) return [command, [...args]];
  const [setpriv, ...drop] = dropPrivileges(runAs) as [string, ...string[]];
  return [setpriv, [...drop, command, ...args]];
}

import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Where secrets appear inside a job's container, one file per secret. */
export const CONTAINER_SECRETS_DIR = '/run/secrets';

/** Memory-backed storage where there is some, so a secret never reaches a disk. */
const secretsBase = () => (existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir());
const DIR_PREFIX = 'po-batch-sandbox-';

/**
 * The sandbox's staging directory for secret files: named after the owning process so that a
 * later sandbox can remove what a crashed one left behind.
 */
export class SecretStaging {
  readonly root: string;

  constructor() {
    this.root = mkdtempSync(path.join(secretsBase(), `${DIR_PREFIX}${process.pid}-`));
    chmodSync(this.root, 0o711);
  }

  /**
   * Writes each secret to its own read-only file owned by the container user, in a directory of
   * its own; returns the directory and the bind mounts and `<name>_FILE` variables naming them.
   */
  stage(
    attemptId: string,
    secrets: { name: string; value: string }[],
    user: { uid: number; gid: number },
  ): { dir: string; binds: string[]; env: string[] } {
    const dir = path.join(this.root, attemptId);
    mkdirSync(dir, { mode: 0o700 });
    const binds: string[] = [];
    const env: string[] = [];
    const asRoot = process.getuid?.() === 0;
    for (const { name, value } of secrets) {
      const file = path.join(dir, name);
      writeFileSync(file, value, { mode: 0o400 });
      if (asRoot) chownSync(file, user.uid, user.gid);
      binds.push(`${file}:${CONTAINER_SECRETS_DIR}/${name}:ro`);
      env.push(`${name}_FILE=${CONTAINER_SECRETS_DIR}/${name}`);
    }
    if (asRoot) chownSync(dir, user.uid, user.gid);
    chmodSync(dir, 0o500);
    return { dir, binds, env };
  }

  release(dir: string): void {
    removeDir(dir);
  }

  close(): void {
    removeDir(this.root);
  }
}

function removeDir(dir: string): void {
  try {
    // Staged directories are read-only; without root the owner must open them first.
    for (const entry of readdirSync(dir, { withFileTypes: true }))
      if (entry.isDirectory()) chmodSync(path.join(dir, entry.name), 0o700);
    chmodSync(dir, 0o700);
  } catch {
    return;
  }
  rmSync(dir, { recursive: true, force: true });
}

/** Removes staging directories of sandbox processes that no longer run. */
export function removeStaleSecrets(isAlive: (pid: number) => boolean): void {
  const base = secretsBase();
  for (const name of readdirSync(base)) {
    const pid = Number(
      name.startsWith(DIR_PREFIX) ? name.slice(DIR_PREFIX.length).split('-')[0] : NaN,
    );
    if (Number.isInteger(pid) && !isAlive(pid)) removeDir(path.join(base, name));
  }
}

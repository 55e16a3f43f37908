import { createHash } from 'node:crypto';
import { KEY_FILE_NAMES, KEY_FILE_PATTERN, type SetupSettings } from '../contracts/environment.js';
import { gitBytes } from '../workspace/git.js';

/** A file the key covers: its path and its blob id (a hash of its content). */
export type KeyFile = readonly [path: string, blob: string];

/**
 * The files of `commit` whose content decides what a setup installs: manifests and lockfiles at
 * any depth, and any file the setup command names (`sh scripts/setup.sh`). One `ls-tree`: blob
 * ids are content hashes, so no file is read.
 */
export async function keyFiles(
  gitDir: string,
  commit: string,
  command: string,
): Promise<KeyFile[]> {
  const { stdout } = await gitBytes({ gitDir }, ['ls-tree', '-r', '-z', '--full-tree', commit]);
  const named = new Set(command.split(/\s+/).map((word) => word.replace(/^\.\//, '')));
  const files: KeyFile[] = [];
  for (const entry of stdout.toString('utf8').split('\0')) {
    const match = /^\d+ blob ([0-9a-f]+)\t(.*)$/s.exec(entry);
    if (!match) continue;
    const [, blob, file] = match as unknown as [string, string, string];
    const base = file.slice(file.lastIndexOf('/') + 1);
    if (KEY_FILE_NAMES.has(base) || KEY_FILE_PATTERN.test(base) || named.has(file))
      files.push([file, blob]);
  }
  return files.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The key of a prepared environment: the setup (its command and network), where it runs (the
 * backend's identity: the image, or this machine's toolchain) and the key files. 128 bits.
 */
export function environmentKey(input: {
  setup: Pick<SetupSettings, 'command' | 'network'>;
  identity: string;
  files: readonly KeyFile[];
}): string {
  const { command, network } = input.setup;
  return createHash('sha256')
    .update(
      JSON.stringify({ v: 1, command, network, identity: input.identity, files: input.files }),
    )
    .digest('hex')
    .slice(0, 32);
}

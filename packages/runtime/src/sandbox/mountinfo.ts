import { readFile } from 'node:fs/promises';

/** One line of /proc/self/mountinfo, the fields this project reads. */
export interface MountEntry {
  /** The directory of the mounted file system shown at the mount point (`/` for a whole one). */
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/**
 * Parses a mountinfo file (proc(5)): `id parent major:minor root mount-point options
 * [optional fields] - type source super-options`. Paths are decoded: the kernel writes a space,
 * tab, newline and backslash in them as `\040`, `\011`, `\012` and `\134`.
 */
export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const [head, tail] = line.split(' - ');
    const fields = head?.split(' ') ?? [];
    const [fsType, , superOptions] = tail?.split(' ') ?? [];
    const [, , , root, mountPoint] = fields;
    if (root === undefined || mountPoint === undefined || fsType === undefined) continue;
    entries.push({
      root: decode(root),
      mountPoint: decode(mountPoint),
      fsType,
      superOptions: superOptions?.split(',') ?? [],
    });
  }
  return entries;
}

function decode(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(Number.parseInt(octal, 8)),
  );
}

/** This process's mounts, in the order the kernel lists them (later ones on top). */
export async function ownMounts(): Promise<MountEntry[]> {
  return parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'));
}

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { git, gitBytes } from './git.js';

/**
 * The ignore rules the host applies to agents' work, in the run's git directory: those of the
 * repository the run started from, at its base, and never any an agent wrote (an agent's
 * `.gitignore` of `*` would otherwise drop every later task's new files without a word).
 */
export const HOST_IGNORE_FILE = path.join('info', 'host-ignore');

/** Glob characters in a directory name, escaped so that a pattern names that directory only. */
const escapeGlob = (dir: string) => dir.replace(/[*?[\\]/g, '\\$&');

/**
 * The patterns of `.gitignore` files found in several directories, as one file whose patterns
 * are relative to the top, with git's meaning kept: a pattern with a slash (other than a
 * trailing one) is anchored to its file's directory, one without matches at any depth below it
 * (`dir/**` + `/name`); a deeper file's patterns come later, so they win, as git lets them.
 */
export function combineIgnoreFiles(files: readonly { dir: string; text: string }[]): string {
  const byDepth = [...files].sort(
    (a, b) => a.dir.split('/').length - b.dir.split('/').length || a.dir.localeCompare(b.dir),
  );
  const lines: string[] = [];
  for (const { dir, text } of byDepth) {
    for (const line of text.split('\n')) {
      if (dir === '' || line.trim() === '' || line.startsWith('#')) {
        lines.push(line);
        continue;
      }
      const negated = line.startsWith('!');
      const pattern = negated ? line.slice(1) : line;
      const anchored = pattern.replace(/\/$/, '').includes('/');
      const prefix = escapeGlob(dir);
      const relative = anchored
        ? `${prefix}/${pattern.replace(/^\//, '')}`
        : `${prefix}/**/${pattern}`;
      lines.push(`${negated ? '!' : ''}${relative}`);
    }
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

/** Reads blobs in one `git cat-file --batch`: their contents, in the order asked. */
async function readBlobs(gitDir: string, ids: readonly string[]): Promise<Buffer[]> {
  const { stdout } = await gitBytes({ gitDir }, ['cat-file', '--batch'], {
    input: ids.map((id) => `${id}\n`).join(''),
  });
  const blobs: Buffer[] = [];
  let at = 0;
  for (let i = 0; i < ids.length; i++) {
    const header = stdout.subarray(at, stdout.indexOf(0x0a, at)).toString('utf8');
    const size = Number(header.split(' ')[2]);
    const start = at + header.length + 1;
    blobs.push(stdout.subarray(start, start + size));
    at = start + size + 1;
  }
  return blobs;
}

/**
 * Writes the host's ignore rules from the `.gitignore` files of the tree at `base` (the
 * repository a run starts from); returns the rules written ('' when the tree has none).
 */
export async function writeHostIgnoreRules(gitDir: string, base: string): Promise<string> {
  const { stdout } = await git({ gitDir }, ['ls-tree', '-r', '-z', '--full-tree', base]);
  const found = stdout
    .split('\0')
    .map((entry) => /^100(644|755) blob ([0-9a-f]+)\t(.*)$/s.exec(entry))
    .filter((match): match is RegExpExecArray => match !== null)
    .filter((match) => path.posix.basename(match[3] as string) === '.gitignore');
  const texts = await readBlobs(
    gitDir,
    found.map((match) => match[2] as string),
  );
  const rules = combineIgnoreFiles(
    found.map((match, i) => ({
      dir: path.posix.dirname(match[3] as string).replace(/^\.$/, ''),
      text: (texts[i] as Buffer).toString('utf8'),
    })),
  );
  await writeRules(gitDir, rules);
  return rules;
}

/** Puts `rules` where the host reads them (a Batch job writes what the orchestrator sent it). */
export async function writeRules(gitDir: string, rules: string): Promise<void> {
  await mkdir(path.join(gitDir, 'info'), { recursive: true });
  await writeFile(path.join(gitDir, HOST_IGNORE_FILE), rules);
}

/** The host's rules, if the run has any (its repository had `.gitignore` files). */
export async function readRules(gitDir: string): Promise<string | undefined> {
  const rules = await readFile(path.join(gitDir, HOST_IGNORE_FILE), 'utf8').catch(() => '');
  return rules || undefined;
}

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { INTEGRATION_BRANCH } from '../contracts/run-layout.js';
import { git } from './git.js';

/** Diffs as git writes them, with no external diff or text conversion (the content is agents'). */
const PLAIN_DIFF = ['--no-ext-diff', '--no-textconv', '--no-color', '--binary'];

/** Where a run's history starts: the commit its main started at. */
export async function runBase(gitDir: string, source?: { base: string }): Promise<string> {
  if (source) return source.base;
  const { stdout } = await git({ gitDir }, ['rev-list', '--max-parents=0', INTEGRATION_BRANCH]);
  return stdout.trim().split('\n').at(-1) as string;
}

/** The change of one commit against its first parent (a task's commit), or of a range. */
export async function diffOf(gitDir: string, from: string, to: string): Promise<string> {
  const { stdout } = await git({ gitDir }, ['diff', ...PLAIN_DIFF, from, to]);
  return stdout;
}

/**
 * The run's whole change as a patch series `git am` applies on the base: one patch per merge on
 * main, in the order they landed, each the change that merge brought (so the series applies
 * cleanly in order, as the merges did), under its task commit's message. Returns the files.
 */
export async function writePatchSeries(
  gitDir: string,
  base: string,
  dir: string,
): Promise<string[]> {
  const repo = { gitDir };
  const merges = (
    await git(repo, ['rev-list', '--first-parent', '--reverse', `${base}..${INTEGRATION_BRANCH}`])
  ).stdout
    .split('\n')
    .filter(Boolean);
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (const [i, commit] of merges.entries()) {
    const { stdout: meta } = await git(repo, [
      'show',
      '-s',
      '--format=%an%x00%ae%x00%aD%x00%s%x00%b',
      `${commit}^2`,
    ]);
    const [name, email, date, subject, body] = meta.split('\0');
    const diff = await diffOf(gitDir, `${commit}^1`, commit);
    const number = `${i + 1}`.padStart(4, '0');
    const file = path.join(
      dir,
      `${number}-${(subject ?? 'change')
        .replace(/[^A-Za-z0-9]+/g, '-')
        .slice(0, 52)
        .replace(/-+$/, '')}.patch`,
    );
    await writeFile(
      file,
      `From ${commit} Mon Sep 17 00:00:00 2001\nFrom: ${name} <${email}>\nDate: ${date}\nSubject: [PATCH ${i + 1}/${merges.length}] ${subject}\n\n${(body ?? '').trim()}\n---\n${diff}`,
    );
    files.push(file);
  }
  return files;
}

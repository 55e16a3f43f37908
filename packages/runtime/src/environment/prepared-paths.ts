import { appendFileSync, existsSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { type GitTarget, gitBytes } from '../workspace/git.js';
import { HOST_IGNORE_FILE } from '../workspace/ignore-rules.js';

/** The most ignored paths an environment may keep (each is bound or extracted on its own). */
export const MAX_PREPARED_PATHS = 256;

/** What a setup did to its checkout, as git sees it under the run's ignore rules. */
export interface SetupChanges {
  /** Tracked files it changed or deleted and files it wrote outside ignored paths. */
  strays: string[];
  /** The ignored paths it made, relative to the top; a directory's ends in `/`. */
  paths: string[];
  /** Ignored paths it made that are neither a file nor a directory: kept out of `paths`. */
  leftOut: string[];
}

/** Says in the setup's log which of its paths were kept out of the environment, one a line. */
export function logLeftOut(logPath: string, leftOut: readonly string[]): void {
  for (const entry of leftOut)
    appendFileSync(logPath, `left out of the environment: ${entry} (not a file or a directory)\n`);
}

/**
 * What a setup left in the checkout `target` (its index is the base's): never a tracked file
 * changed and nothing outside what the host's ignore rules cover, which the caller refuses; and
 * the ignored paths it made, as whole directories (git descends into none of them). Only
 * directories and files are kept: a link would be followed by the bind that shows it on this
 * machine (to anywhere), and a socket or a device is no dependency. The same rule wherever the
 * setup ran: on this machine (host-cache.ts) or in a Batch job.
 */
export async function setupChanges(
  target: GitTarget & { workTree: string },
): Promise<SetupChanges> {
  const rules = path.join(target.gitDir, HOST_IGNORE_FILE);
  const excludes = existsSync(rules) ? [`--exclude-from=${rules}`] : [];
  const strays = await listPaths(target, [
    '-t',
    '--others',
    '--modified',
    '--deleted',
    ...excludes,
  ]);
  const listed = excludes.length
    ? await listPaths(target, ['--others', '--ignored', '--directory', ...excludes])
    : [];
  const paths: string[] = [];
  const leftOut: string[] = [];
  for (const entry of listed) {
    const stats = await lstat(path.join(target.workTree, entry));
    (stats.isDirectory() || stats.isFile() ? paths : leftOut).push(entry);
  }
  return { strays: [...new Set(strays.map((entry) => entry.slice(2)))], paths, leftOut };
}

/** The refusal of a setup that changed tracked files or wrote outside ignored paths. */
export function straysReason(strays: readonly string[]): string {
  const more = strays.length > 10 ? ` and ${strays.length - 10} more` : '';
  return `--setup changed tracked files or wrote outside ignored paths: ${strays.slice(0, 10).join(', ')}${more}`;
}

/** The refusal of a setup that left more ignored paths than an environment may keep. */
export function tooManyPathsReason(count: number): string {
  return `--setup left ${count} ignored paths, more than the ${MAX_PREPARED_PATHS} an environment may bind`;
}

async function listPaths(target: GitTarget, args: readonly string[]): Promise<string[]> {
  const { stdout } = await gitBytes(target, ['ls-files', '-z', ...args]);
  return stdout
    .toString('utf8')
    .split('\0')
    .filter((entry) => entry.length > 0);
}

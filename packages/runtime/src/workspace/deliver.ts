import { existsSync } from 'node:fs';
import path from 'node:path';
import { INTEGRATION_BRANCH } from '../contracts/run-layout.js';
import { UsageError } from '../errors.js';
import { git, gitAt } from './git.js';
import {
  checkReachable,
  isUrl,
  SOURCE_TRANSPORTS,
  type SourceRepository,
  withoutCredentials,
} from './source.js';

/**
 * Where a run's result goes: a branch of the local repository it started from, maybe pushed on;
 * or, for a run from a URL, its `main` pushed as a branch of a repository named by URL.
 */
export interface Delivery {
  /** The source repository's git directory; absent for a URL source, which is only pushed to. */
  gitDir?: string;
  branch: string;
  /** Deliver a run that did not succeed too. */
  partial: boolean;
  /**
   * Where the branch is pushed: a remote of the source repository, or, for a URL source, the
   * repository's URL or path as shown (without credentials).
   */
  push?: string;
}

/** The branch a run delivers to unless told otherwise. */
export const deliveryBranch = (runId: string) => `parallel-orchestrator/${runId}`;

/** A repository a run from a URL pushes to: what git is given, and what is shown and kept. */
export interface PushTarget {
  url: string;
  shown: string;
}

/**
 * Where `--push` sends a run from a URL: `origin` is the URL the run started from (a run from a
 * URL has no repository of the user's with remotes; that URL is what `git clone` would have named
 * `origin`), or any other URL, or a repository's path. Reads nothing.
 */
export function pushTarget(push: string, source: SourceRepository): PushTarget {
  if (push === 'origin') return { url: source.location, shown: source.shown };
  if (isUrl(push)) return { url: push, shown: withoutCredentials(push) };
  if (existsSync(push)) {
    const dir = path.resolve(push);
    return { url: dir, shown: dir };
  }
  throw new UsageError(
    `--push ${push}: a run from a URL pushes to origin (the URL it started from), another URL or a repository's path`,
  );
}

/**
 * Checks, before the run, that the delivery can happen: the branch name is valid and not taken
 * (delivery never moves an existing branch of the source repository), and the remote exists; for
 * a URL source, that the repository pushed to (`to`) answers. Reads only.
 */
export async function checkDelivery(
  delivery: Omit<Delivery, 'branch'> & { branch?: string },
  to?: PushTarget,
) {
  if (delivery.gitDir === undefined) {
    if (delivery.branch !== undefined) {
      const valid = await gitAt(
        process.cwd(),
        ['check-ref-format', `refs/heads/${delivery.branch}`],
        [0, 1],
      );
      if (valid.exitCode !== 0 || delivery.branch.startsWith('-'))
        throw new UsageError(`--into ${delivery.branch} is not a valid branch name`);
    }
    if (to) await checkReachable(to.url, to.shown, '--push');
    return;
  }
  const repo = { gitDir: delivery.gitDir };
  if (delivery.branch !== undefined) {
    const valid = await git(repo, ['check-ref-format', '--branch', delivery.branch], [0, 1, 128]);
    if (valid.exitCode !== 0)
      throw new UsageError(`--into ${delivery.branch} is not a valid branch name`);
    const taken = await git(
      repo,
      ['rev-parse', '--verify', '--quiet', `refs/heads/${delivery.branch}`],
      [0, 1],
    );
    if (taken.exitCode === 0)
      throw new UsageError(
        `--into ${delivery.branch} already exists in the repository: name a new branch`,
      );
  }
  if (delivery.push !== undefined) {
    const remote = await git(repo, ['config', '--get', `remote.${delivery.push}.url`], [0, 1]);
    if (remote.exitCode !== 0)
      throw new UsageError(`--push ${delivery.push}: the repository has no such remote`);
  }
}

/**
 * Fetches the run's integration branch into the source repository as a new branch (never a
 * force-update: an existing branch is moved only forward). Only refs and objects of the
 * repository change; its working tree, index and HEAD are not touched, and none of its hooks run
 * (the work is agents' and must not execute here).
 */
export async function deliver(
  projectDir: string,
  delivery: Delivery & { gitDir: string },
): Promise<void> {
  await git({ gitDir: delivery.gitDir }, [
    ...SOURCE_TRANSPORTS,
    'fetch',
    '--quiet',
    '--no-tags',
    '--no-write-fetch-head',
    '--end-of-options',
    projectDir,
    `refs/heads/${INTEGRATION_BRANCH}:refs/heads/${delivery.branch}`,
  ]);
}

/**
 * Pushes the delivered branch on: from the source repository to its remote; for a URL source,
 * the run's `main` from the run's own repository to `url` (what `delivery.push` shows, maybe with
 * the credentials kept out of run.json). A plain push, never forced: a branch the remote already
 * has moves only forward, otherwise git rejects it and its error says so (`! [rejected]`).
 */
export async function pushDelivery(
  projectDir: string,
  delivery: Delivery,
  url = delivery.push,
): Promise<void> {
  if (url === undefined) return;
  const to = `refs/heads/${delivery.branch}`;
  const [gitDir, from] = delivery.gitDir
    ? [delivery.gitDir, to]
    : [path.join(projectDir, '.git'), `refs/heads/${INTEGRATION_BRANCH}`];
  await git({ gitDir }, [
    ...SOURCE_TRANSPORTS,
    'push',
    '--quiet',
    '--end-of-options',
    url,
    `${from}:${to}`,
  ]);
}

import { INTEGRATION_BRANCH } from '../contracts/run-layout.js';
import { UsageError } from '../errors.js';
import { git } from './git.js';
import { SOURCE_TRANSPORTS } from './source.js';

/** Where a run's result goes: a branch of the repository it started from, maybe pushed on. */
export interface Delivery {
  /** The source repository's git directory. */
  gitDir: string;
  branch: string;
  /** Deliver a run that did not succeed too. */
  partial: boolean;
  /** A remote of the source repository to push the branch to. */
  push?: string;
}

/** The branch a run delivers to unless told otherwise. */
export const deliveryBranch = (runId: string) => `parallel-orchestrator/${runId}`;

/**
 * Checks, before the run, that the delivery can happen: the branch name is valid and not taken
 * (delivery never moves an existing branch), and the remote exists. Reads only.
 */
export async function checkDelivery(delivery: Omit<Delivery, 'branch'> & { branch?: string }) {
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
 * force-update: an existing branch is moved only forward) and pushes it on if asked. Only refs
 * and objects of the repository change; its working tree, index and HEAD are not touched, and
 * none of its hooks run (the work is agents' and must not execute here).
 */
export async function deliver(projectDir: string, delivery: Delivery): Promise<void> {
  const repo = { gitDir: delivery.gitDir };
  const ref = `refs/heads/${delivery.branch}`;
  await git(repo, [
    ...SOURCE_TRANSPORTS,
    'fetch',
    '--quiet',
    '--no-tags',
    '--no-write-fetch-head',
    '--end-of-options',
    projectDir,
    `refs/heads/${INTEGRATION_BRANCH}:${ref}`,
  ]);
  if (delivery.push !== undefined)
    await git(repo, [
      ...SOURCE_TRANSPORTS,
      'push',
      '--quiet',
      '--end-of-options',
      delivery.push,
      `${ref}:${ref}`,
    ]);
}

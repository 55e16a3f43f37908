import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BATCH_RESULT_REF } from '../contracts/batch-job.js';
import type { OutputLimits } from '../contracts/run-config.js';
import { OutputCheck } from '../trust/output-check.js';
import { type GitTarget, git } from './git.js';
import { FETCH_BUNDLE_CONFIG } from './project.js';

/** A job's bundle that cannot be what it claims: broken, or not one commit on the base. */
export class BundleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BundleError';
  }
}

export interface JobBundle {
  /** The downloaded bundle (checksum verified), in a directory only the host writes. */
  file: string;
  /** The commit the job says it made, on top of `base`. */
  commit: string;
  base: string;
}

/**
 * Host side: writes a job's work into a workspace prepared at the job's base, treating the
 * bundle as untrusted data. It is fetched into a quarantine repository the host makes (which
 * borrows the project's objects for the base, and whose objects never enter the project), only
 * its result ref is taken, that ref must be exactly `commit` with `base` as its only parent, and
 * every file the commit adds or changes is measured against the limits before one is written.
 * The workspace then holds the job's files, and the orchestrator commits them like any agent's,
 * through the same checks. Throws OutputRejectedError when a rule is broken, BundleError when the
 * bundle is not what the job said.
 */
export async function applyJobBundle(
  projectGitDir: string,
  quarantine: string,
  workspace: string,
  bundle: JobBundle,
  limits: OutputLimits,
): Promise<void> {
  await rm(quarantine, { recursive: true, force: true });
  const repo: GitTarget = { gitDir: quarantine };
  try {
    await mkdir(quarantine, { recursive: true });
    await git(repo, ['init', '--quiet', '--bare', '--template=', quarantine]);
    await mkdir(path.join(quarantine, 'objects', 'info'), { recursive: true });
    await writeFile(
      path.join(quarantine, 'objects', 'info', 'alternates'),
      `${path.resolve(projectGitDir, 'objects')}\n`,
    );
    const heads = await git(repo, ['bundle', 'list-heads', bundle.file], [0, 1, 128]);
    const listed = heads.stdout.trim().split('\n').filter(Boolean);
    if (
      heads.exitCode !== 0 ||
      listed.length !== 1 ||
      listed[0] !== `${bundle.commit} ${BATCH_RESULT_REF}`
    )
      throw new BundleError(
        `the job's bundle does not hold exactly ${BATCH_RESULT_REF} at ${bundle.commit.slice(0, 12)}`,
      );
    const fetched = await git(
      repo,
      [
        ...FETCH_BUNDLE_CONFIG,
        'fetch',
        '--quiet',
        '--no-tags',
        '--no-write-fetch-head',
        bundle.file,
        `+${BATCH_RESULT_REF}:${BATCH_RESULT_REF}`,
      ],
      [0, 1, 128],
    );
    if (fetched.exitCode !== 0) throw new BundleError("git refused the job's bundle");
    const parents = await git(repo, ['rev-list', '--parents', '-n', '1', BATCH_RESULT_REF]);
    if (parents.stdout.trim() !== `${bundle.commit} ${bundle.base}`)
      throw new BundleError(
        `the job's commit ${bundle.commit.slice(0, 12)} is not one commit on its base ${bundle.base.slice(0, 12)}`,
      );
    await checkSizes(repo, bundle, limits);
    const index: GitTarget = {
      gitDir: quarantine,
      workTree: workspace,
      indexFile: path.join(quarantine, 'index'),
    };
    await git(index, ['read-tree', bundle.base]);
    // A two-tree switch from the base, whose files the workspace holds: only changes are written.
    const written = await git(
      index,
      ['read-tree', '--reset', '-u', bundle.base, bundle.commit],
      [0, 128],
    );
    if (written.exitCode !== 0) throw new BundleError("git would not write the job's tree");
  } finally {
    await rm(quarantine, { recursive: true, force: true });
  }
}

/** The limits, applied to the blobs the commit adds or changes, before any is written out. */
async function checkSizes(repo: GitTarget, bundle: JobBundle, limits: OutputLimits): Promise<void> {
  const changed = await git(repo, [
    'diff-tree',
    '-r',
    '-z',
    '--no-renames',
    '--diff-filter=AMT',
    '--name-only',
    bundle.base,
    bundle.commit,
  ]);
  const paths = new Set(changed.stdout.split('\0').filter(Boolean));
  if (paths.size === 0) return;
  const tree = await git(repo, ['ls-tree', '-r', '-l', '-z', bundle.commit]);
  const check = new OutputCheck(limits);
  for (const entry of tree.stdout.split('\0')) {
    // <mode> SP <type> SP <object> SP* <size> TAB <path>
    const tab = entry.indexOf('\t');
    const file = entry.slice(tab + 1);
    if (tab < 0 || !paths.has(file)) continue;
    const size = Number(entry.slice(0, tab).trim().split(/\s+/)[3]);
    if (Number.isFinite(size)) check.file(file, size);
  }
}

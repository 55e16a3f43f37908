import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jobFailure } from '../../packages/runtime/src/backends/batch/outcome.js';
import {
  type JobRequest,
  jobName,
  jobNamePrefix,
  SubmissionTooLargeError,
  submission,
} from '../../packages/runtime/src/backends/batch/submit.js';
import { BATCH_LIMITS, BATCH_RESULT_REF } from '../../packages/runtime/src/contracts/batch-job.js';
import { DEFAULT_OUTPUT_LIMITS } from '../../packages/runtime/src/contracts/run-config.js';
import { OutputCheck, OutputRejectedError } from '../../packages/runtime/src/trust/output-check.js';
import { applyJobBundle, BundleError } from '../../packages/runtime/src/workspace/bundles.js';
import { Project } from '../../packages/runtime/src/workspace/project.js';
import { Slots } from '../../packages/runtime/src/workspace/slots.js';
import { gitOut } from '../support/git.js';
import { tempDir } from '../support/tmp.js';

const RUN_ID = '20261127-130000-build-a-todo-app-with-auth-and-a-rest-api-0a1b2c';
const INPUT_URL = `https://state.s3.us-east-1.amazonaws.com/runs/${RUN_ID}/tasks/api-auth/attempt-1/input.json?X-Amz-Signature=abc`;
/** A long session token (STS sizes them by the session's policies and tags). */
const SESSION_TOKEN = 'IQoJb3JpZ2luX2VjE'.padEnd(6_000, 'A');

const request = (overrides: Partial<JobRequest> = {}): JobRequest => ({
  name: jobName(RUN_ID, 'api-auth', 1),
  runId: RUN_ID,
  taskId: 'api-auth',
  attempt: 1,
  executor: 3,
  executors: 8,
  real: false,
  requirements: 'Build a todo app',
  prefix: `runs/${RUN_ID}/tasks/api-auth/attempt-1/`,
  inputUrl: INPUT_URL,
  timeoutMs: 30 * 60_000,
  ...overrides,
});

describe('Batch submissions', () => {
  it('names jobs within Batch rules, sharing a prefix per run', () => {
    const longest = jobName(RUN_ID, 'a'.repeat(63), 1_000);
    expect(longest).toMatch(BATCH_LIMITS.jobName);
    expect(longest.length).toBeLessThanOrEqual(128);
    expect(jobName(RUN_ID, 'x', 2).startsWith(jobNamePrefix(RUN_ID))).toBe(true);
    expect(jobNamePrefix('another-run')).not.toBe(jobNamePrefix(RUN_ID));
  });

  it('carries ids, S3 locations and the presigned input only; long requirements stay in S3', () => {
    const short = submission(request(), 'queue', 'definition');
    const env = Object.fromEntries(
      (short.containerOverrides?.environment ?? []).map((e) => [e.name, e.value]),
    );
    expect(env).toEqual({
      EXECUTOR_ID: '3',
      TASK_ID: 'api-auth',
      S3_PREFIX: `runs/${RUN_ID}/tasks/api-auth/attempt-1/`,
      S3_INPUT_URL: INPUT_URL,
      USE_REAL_EXECUTORS: '0',
      MAX_EXECUTORS: '8',
      REQUIREMENTS: 'Build a todo app',
    });
    expect(short.tags).toMatchObject({ 'parallel-orchestrator:task-id': 'api-auth' });
    expect(short.timeout?.attemptDurationSeconds).toBe(1800);

    const long = submission(request({ requirements: 'x'.repeat(50_000) }), 'queue', 'definition');
    const names = (long.containerOverrides?.environment ?? []).map((e) => e.name);
    expect(names).not.toContain('REQUIREMENTS');
    expect(JSON.stringify(long.containerOverrides).length).toBeLessThan(
      BATCH_LIMITS.containerOverridesChars,
    );
  });

  it('leaves requirements in S3 when a URL signed with a session token takes their room', () => {
    const inputUrl = `${INPUT_URL}&X-Amz-Security-Token=${SESSION_TOKEN}`;
    const built = submission(
      request({ inputUrl, requirements: 'r'.repeat(1_999) }),
      'queue',
      'definition',
    );
    const env = built.containerOverrides?.environment ?? [];
    expect(env.find((e) => e.name === 'S3_INPUT_URL')?.value).toBe(inputUrl);
    expect(env.map((e) => e.name)).not.toContain('REQUIREMENTS');
    expect(JSON.stringify(built.containerOverrides).length).toBeLessThanOrEqual(
      BATCH_LIMITS.containerOverridesChars,
    );
    const withShortUrl = submission(request({ requirements: 'r'.repeat(1_999) }), 'q', 'd');
    expect(withShortUrl.containerOverrides?.environment?.map((e) => e.name)).toContain(
      'REQUIREMENTS',
    );
  });

  it('refuses to build a request Batch would fail or reject', () => {
    expect(() =>
      submission(request({ prefix: `runs/${'p'.repeat(9_000)}/` }), 'queue', 'definition'),
    ).toThrow(SubmissionTooLargeError);
    expect(() => jobName(RUN_ID, 'bad id!', 1)).toThrow(SubmissionTooLargeError);
  });
});

describe('Batch failures', () => {
  it.each([
    [
      'a Spot reclaim on EC2',
      { statusReason: 'Host EC2 (instance i-0abc) terminated.' },
      /Spot capacity was reclaimed/,
    ],
    [
      'a Fargate Spot interruption',
      { statusReason: 'Your Spot Task was interrupted.' },
      /Spot capacity was reclaimed/,
    ],
    [
      'running out of memory',
      {
        statusReason: 'Essential container in task exited',
        container: {
          reason: 'OutOfMemoryError: Container killed due to memory usage',
          exitCode: 137,
        },
      },
      /ran out of memory/,
    ],
    [
      'the attempt timeout',
      { statusReason: 'Job attempt duration exceeded timeout' },
      /exceeded its attempt timeout/,
    ],
    [
      'an image that cannot be pulled',
      { statusReason: 'CannotPullContainerError: pull access denied' },
      /could not run the job: CannotPullContainerError/,
    ],
    [
      'a crash with no outcome',
      { statusReason: 'Essential container in task exited', container: { exitCode: 3 } },
      /exited with code 3 and no outcome/,
    ],
    [
      'a queue that cancelled a job waiting for capacity',
      {
        statusReason:
          'Canceled by JobStateTimeLimit action due to reason: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY',
      },
      /no compute environment could place the job/,
    ],
  ])('%s is retryable and says so', (_, detail, message) => {
    const failure = jobFailure(detail);
    expect(failure.retryable).toBe(true);
    expect(failure.error).toMatch(message);
  });

  it('a job no compute environment can ever fit fails for good', () => {
    const failure = jobFailure({
      statusReason:
        'Canceled by JobStateTimeLimit action due to reason: MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT',
    });
    expect(failure).toMatchObject({ retryable: false });
    expect(failure.error).toMatch(/MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT/);
  });
});

const root = tempDir();
let n = 0;

/** Commits a workspace on `base` under the default limits (or `check`), as the backend's callers do. */
const commitIn = (
  project: Project,
  workspace: string,
  base: string,
  message: string,
  check = new OutputCheck(DEFAULT_OUTPUT_LIMITS),
) => slotsOf(project).commit(workspace, { taskId: 't', base, message, check });

/** Each project's slots, as the orchestrator (or the job) keeps one set per repository. */
const allSlots = new WeakMap<Project, Slots>();
function slotsOf(project: Project): Slots {
  let slots = allSlots.get(project);
  if (!slots) {
    slots = new Slots(project);
    allSlots.set(project, slots);
  }
  return slots;
}

function write(dir: string, file: string, content: string) {
  mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
  writeFileSync(path.join(dir, file), content);
}

/**
 * The orchestrator's project with one merged file, the base bundle a job starts from, and the job's
 * own repository at that base: both sides as the Batch backend and the job entrypoint use them.
 */
async function hostAndJob() {
  const dir = path.join(root, `case-${n++}`);
  const host = await Project.init(path.join(dir, 'project'), 'Start');
  const seed = path.join(dir, 'seed');
  await slotsOf(host).prepare(seed, host.head);
  write(seed, 'README.md', 'hello\n');
  const first = await commitIn(host, seed, host.head, 'seed');
  await host.merge(first.commit, 'merge seed');
  const base = host.head;
  const baseBundle = path.join(dir, 'base.bundle');
  await host.writeBundle(baseBundle, `refs/staging/${base}`, base);
  const job = await Project.fromBundle(path.join(dir, 'job', 'project'), baseBundle, base);
  const jobWorkspace = path.join(dir, 'job', 'workspace');
  await slotsOf(job).prepare(jobWorkspace, base);
  const hostWorkspace = path.join(dir, 'sandboxes', 'executor-0', 'workspace');
  await slotsOf(host).prepare(hostWorkspace, base);
  /** The job commits its workspace and bundles the commit, as the entrypoint does. */
  const bundleJob = async (check = new OutputCheck(DEFAULT_OUTPUT_LIMITS)) => {
    const { commit } = await commitIn(job, jobWorkspace, base, 'job work', check);
    const file = path.join(dir, `out-${n++}.bundle`);
    await job.writeBundle(file, BATCH_RESULT_REF, commit, base);
    return { file, commit, base };
  };
  const apply = (
    bundle: { file: string; commit: string; base: string },
    limits = DEFAULT_OUTPUT_LIMITS,
  ) => applyJobBundle(host.gitDir, path.join(dir, 'staging', 'q'), hostWorkspace, bundle, limits);
  return { dir, host, base, job, jobWorkspace, hostWorkspace, bundleJob, apply };
}

const objectsOf = (dir: string) => gitOut(dir, ['count-objects', '-v']);

describe('job bundles', () => {
  it('carry a job commit back: the host writes exactly its files into the workspace', async () => {
    const { host, job, base, jobWorkspace, hostWorkspace, bundleJob, apply } = await hostAndJob();
    write(jobWorkspace, 'src/app.ts', 'export const app = 1;\n');
    write(jobWorkspace, 'README.md', 'hello, changed\n');
    const bundle = await bundleJob();
    await apply(bundle);
    const taken = await commitIn(host, hostWorkspace, base, 'taken');
    // The host's own commit of the same files has the job's tree.
    expect(gitOut(host.dir, ['rev-parse', `${taken.commit}^{tree}`])).toBe(
      gitOut(job.dir, ['rev-parse', `${bundle.commit}^{tree}`]),
    );
    expect(taken.files.sort()).toEqual(['README.md', 'src/app.ts']);
  });

  it('never lets the job commit itself, or its other objects, into the project', async () => {
    const { host, jobWorkspace, bundleJob, apply, dir } = await hostAndJob();
    write(jobWorkspace, 'a.txt', 'a\n');
    const before = objectsOf(host.dir);
    const bundle = await bundleJob();
    await apply(bundle);
    expect(objectsOf(host.dir)).toBe(before);
    expect(() =>
      execFileSync('git', [`--git-dir=${host.gitDir}`, 'cat-file', '-e', bundle.commit], {
        stdio: 'ignore',
      }),
    ).toThrow();
    expect(existsSync(path.join(dir, 'staging', 'q'))).toBe(false);
  });

  it('refuses a bundle whose commit is not what the job said', async () => {
    const { jobWorkspace, bundleJob, apply, base } = await hostAndJob();
    write(jobWorkspace, 'a.txt', 'a\n');
    const bundle = await bundleJob();
    await expect(apply({ ...bundle, commit: base })).rejects.toThrow(BundleError);
  });

  it('refuses two commits where one was expected (history rewritten or stacked)', async () => {
    const { job, jobWorkspace, apply, base, dir } = await hostAndJob();
    write(jobWorkspace, 'a.txt', 'a\n');
    const one = await commitIn(job, jobWorkspace, base, 'one');
    write(jobWorkspace, 'b.txt', 'b\n');
    const two = await commitIn(job, jobWorkspace, one.commit, 'two');
    const file = path.join(dir, 'stacked.bundle');
    await job.writeBundle(file, BATCH_RESULT_REF, two.commit, base);
    await expect(apply({ file, commit: two.commit, base })).rejects.toThrow(
      /not one commit on its base/,
    );
  });

  it('measures every file before writing one: an oversized file leaves the workspace untouched', async () => {
    const { jobWorkspace, hostWorkspace, bundleJob, apply } = await hostAndJob();
    write(jobWorkspace, 'small.txt', 'ok\n');
    write(jobWorkspace, 'big.bin', 'x'.repeat(4096));
    const bundle = await bundleJob();
    await expect(apply(bundle, { maxFileBytes: 1024, maxTaskBytes: 1024 * 1024 })).rejects.toThrow(
      OutputRejectedError,
    );
    expect(readdirSync(hostWorkspace).sort()).toEqual(['README.md']);
  });

  it('refuses a tree git itself would not check out (a .git entry), via fsck', async () => {
    const { dir, job, base, apply } = await hostAndJob();
    const gitDir = job.gitDir;
    const blob = execFileSync('git', [`--git-dir=${gitDir}`, 'hash-object', '-w', '--stdin'], {
      input: '#!/bin/sh\necho pwned\n',
    })
      .toString()
      .trim();
    const hooks = execFileSync('git', [`--git-dir=${gitDir}`, 'mktree'], {
      input: `100755 blob ${blob}\tpost-checkout\n`,
    })
      .toString()
      .trim();
    const dotGit = execFileSync('git', [`--git-dir=${gitDir}`, 'mktree'], {
      input: `040000 tree ${hooks}\thooks\n`,
    })
      .toString()
      .trim();
    const tree = execFileSync('git', [`--git-dir=${gitDir}`, 'mktree'], {
      input: `040000 tree ${dotGit}\t.git\n`,
    })
      .toString()
      .trim();
    const commit = execFileSync(
      'git',
      [`--git-dir=${gitDir}`, 'commit-tree', tree, '-p', base, '-m', 'evil'],
      {
        env: {
          ...process.env,
          GIT_AUTHOR_NAME: 'x',
          GIT_AUTHOR_EMAIL: 'x@x',
          GIT_COMMITTER_NAME: 'x',
          GIT_COMMITTER_EMAIL: 'x@x',
        },
      },
    )
      .toString()
      .trim();
    const file = path.join(dir, 'evil.bundle');
    await job.writeBundle(file, BATCH_RESULT_REF, commit, base);
    await expect(apply({ file, commit, base })).rejects.toThrow(BundleError);
  });

  it("passes an escaping symlink only as far as the host's commit, which refuses it", async () => {
    const { dir, host, job, base, jobWorkspace, hostWorkspace, apply } = await hostAndJob();
    // The job's own checks are the host's; a hostile job skips them, committing with plain git.
    symlinkSync('/etc/passwd', path.join(jobWorkspace, 'passwd'));
    const plainGit = (args: string[]) =>
      execFileSync('git', args, {
        encoding: 'utf8',
        env: {
          ...process.env,
          GIT_DIR: job.gitDir,
          GIT_WORK_TREE: jobWorkspace,
          GIT_INDEX_FILE: path.join(dir, 'hostile.index'),
        },
      }).trim();
    plainGit(['read-tree', base]);
    plainGit(['add', '--all']);
    const commit = plainGit(['commit-tree', plainGit(['write-tree']), '-p', base, '-m', 'skipped']);
    const file = path.join(dir, 'hostile.bundle');
    await job.writeBundle(file, BATCH_RESULT_REF, commit, base);
    await apply({ file, commit, base });
    await expect(commitIn(host, hostWorkspace, base, 'taken')).rejects.toThrow(
      'symlink passwd leads outside the project (/etc/passwd)',
    );
  });
});

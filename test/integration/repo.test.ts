import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PLAN_TOOL } from '../../packages/runtime/src/planner/model.js';
import { GitError } from '../../packages/runtime/src/workspace/git.js';
import { withoutCredentials } from '../../packages/runtime/src/workspace/source.js';
import { readEvents, readSummary, resultLine, runCli } from '../support/cli.js';
import { gitOut } from '../support/git.js';
import { startModelServer, toolUse } from '../support/model-server.js';
import { tempDir } from '../support/tmp.js';

const work = tempDir('po-repo-');
let n = 0;

function sh(cwd: string, command: string): void {
  execFileSync('sh', ['-c', command], {
    cwd,
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'dev',
      GIT_AUTHOR_EMAIL: 'dev@example.invalid',
      GIT_COMMITTER_NAME: 'dev',
      GIT_COMMITTER_EMAIL: 'dev@example.invalid',
    },
    stdio: 'ignore',
  });
}

/** This process's environment less what `pnpm test` sets for the scripts it runs. */
function shellEnv(): NodeJS.ProcessEnv {
  const { INIT_CWD: _, ...env } = process.env;
  return env;
}

/**
 * A user's repository as one is mid-work: history on a branch that is not main, a tag, another
 * branch, a stash, a staged change, an edited file and an untracked one.
 */
function userRepository(): string {
  const dir = path.join(work, `user-${n++}`);
  sh(work, `git init -q -b trunk ${dir}`);
  sh(
    dir,
    [
      'printf "# Shop\\n" > README.md',
      'mkdir -p src && printf "export const price = 1;\\n" > src/price.ts',
      'git add -A && git commit -qm "first"',
      'git tag v1',
      'printf "export const tax = 2;\\n" > src/tax.ts && git add -A && git commit -qm "second"',
      'git branch feature',
      'printf "stashed\\n" >> README.md && git stash -q',
      'printf "staged\\n" > staged.txt && git add staged.txt',
      'printf "edited\\n" >> src/price.ts',
      'printf "mine\\n" > notes.txt',
    ].join(' && '),
  );
  return dir;
}

/** Every file under `dir`, `.git` included, by path: its kind, mode and content's hash. */
function snapshot(dir: string, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(path.join(dir, prefix))) {
    const rel = path.join(prefix, name);
    const full = path.join(dir, rel);
    const stats = lstatSync(full);
    if (stats.isDirectory()) Object.assign(out, snapshot(dir, rel));
    else if (stats.isSymbolicLink()) out[rel] = `link ${readlinkSync(full)}`;
    else
      out[rel] =
        `${stats.mode.toString(8)} ${createHash('sha256').update(readFileSync(full)).digest('hex')}`;
  }
  return out;
}

/** A snapshot less what a delivery adds: objects, and the new branch's ref and log. */
function withoutDelivery(files: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(files).filter(
      ([file]) =>
        !/^\.git\/(objects\/|(logs\/)?refs\/heads\/(parallel-orchestrator|delivered)\/)/.test(file),
    ),
  );
}

const PLAN = path.join(work, 'plan.json');
writeFileSync(
  PLAN,
  JSON.stringify({
    requirements: 'Add a cart to the shop',
    executorBudget: 2,
    tasks: [
      { id: 'cart', title: 'Cart', description: 'Add the cart.', dependsOn: [] },
      { id: 'checkout', title: 'Checkout', description: 'Check out.', dependsOn: ['cart'] },
    ],
  }),
);

async function runFrom(repo: string, extra: string[] = []) {
  const output = path.join(work, `runs-${n++}`);
  const result = await runCli(
    ['run', '--plan', PLAN, '--repo', repo, ...extra, '-o', output, '--json'],
    work,
  );
  return { ...result, output, runDir: result.code === 0 ? resultLine(result.stdout).runDir : '' };
}

describe('a run that starts from an existing repository', () => {
  it('starts from --base with its history, and leaves the repository exactly as it was', async () => {
    const repo = userRepository();
    const before = snapshot(repo);
    const v1 = gitOut(repo, ['rev-parse', 'v1^{commit}']);
    const run = await runFrom(repo, ['--base', 'v1']);
    expect(run.code, run.stderr).toBe(0);
    // One line says what of the user's tree the run leaves out, and where it starts.
    expect(run.stderr).toContain(
      `note: ${repo} has 2 uncommitted changes (src/price.ts, staged.txt) and 1 untracked file (notes.txt) that the run leaves out: it starts from v1 at ${v1.slice(0, 12)}\n`,
    );
    const project = path.join(run.runDir, 'project');
    // main starts at v1, history kept; the tasks are merged on top of it.
    expect(gitOut(project, ['merge-base', '--is-ancestor', v1, 'main'])).toBe('');
    expect(gitOut(project, ['rev-list', '--count', 'main', '--not', v1])).toBe('4');
    const files = gitOut(project, ['ls-tree', '-r', '--name-only', 'main']).split('\n');
    expect(files).toEqual(
      expect.arrayContaining(['README.md', 'src/price.ts', 'src/cart.ts', 'src/checkout.ts']),
    );
    // What was committed at v1, not the later commit or the working tree's edits.
    expect(files).not.toContain('src/tax.ts');
    expect(gitOut(project, ['show', 'main:src/price.ts'])).toBe('export const price = 1;');
    expect(JSON.parse(readFileSync(path.join(run.runDir, 'run.json'), 'utf8')).source).toEqual({
      repo,
      base: v1,
    });
    expect(readSummary(run.runDir).totals.succeeded).toBe(2);
    // The result came back as a new branch, and nothing else changed: working tree, index,
    // HEAD, branches, stash are byte for byte what they were.
    const branch = `parallel-orchestrator/${path.basename(run.runDir)}`;
    expect(gitOut(repo, ['rev-parse', branch])).toBe(gitOut(project, ['rev-parse', 'main']));
    const after = snapshot(repo);
    expect(withoutDelivery(after)).toEqual(withoutDelivery(before));
    // Objects were only added.
    for (const [file, hash] of Object.entries(before)) expect(after[file], file).toBe(hash);
    expect(resultLine(run.stdout)).toMatchObject({ delivered: { branch, repo, base: v1 } });
  });

  it('takes --repo . as the directory the user stands in, also through pnpm -C <checkout> start', async () => {
    const repo = userRepository();
    const output = path.join(work, `runs-${n++}`);
    // The project's start script, run from the user's repository as the README says.
    const checkout = path.resolve(import.meta.dirname, '../..');
    const stdout = execFileSync(
      'pnpm',
      [
        '-C',
        checkout,
        '-s',
        'start',
        '--',
        'run',
        '--plan',
        PLAN,
        '--repo',
        '.',
        '-o',
        output,
        '--json',
      ],
      // As from the user's shell: not inside another pnpm script (whose INIT_CWD pnpm keeps).
      { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], env: shellEnv() },
    );
    const { runDir } = resultLine(stdout);
    expect(JSON.parse(readFileSync(path.join(runDir, 'run.json'), 'utf8')).source.repo).toBe(repo);
  }, 120_000);

  it("leaves the user's git status and HEAD as they were when its runs go inside the repository", async () => {
    const repo = userRepository();
    const status = () =>
      gitOut(repo, ['status', '--porcelain=v2', '--branch', '--untracked-files=all']);
    const before = { status: status(), head: gitOut(repo, ['rev-parse', 'HEAD']) };
    // No -o: the runs go to ./runs, inside the user's checkout.
    const run = await runCli(['run', '--plan', PLAN, '--repo', '.', '--json'], repo);
    expect(run.code, run.stderr).toBe(0);
    expect(resultLine(run.stdout).runDir.startsWith(path.join(repo, 'runs'))).toBe(true);
    expect({ status: status(), head: gitOut(repo, ['rev-parse', 'HEAD']) }).toEqual(before);
    // Through the repository's own exclude file, never a tracked .gitignore; once.
    expect(existsSync(path.join(repo, '.gitignore'))).toBe(false);
    expect(readFileSync(path.join(repo, '.git/info/exclude'), 'utf8')).toMatch(/\n\/runs\/\n$/);
    await runCli(['run', '--plan', PLAN, '--repo', '.', '--json'], repo);
    expect(
      readFileSync(path.join(repo, '.git/info/exclude'), 'utf8').match(/\/runs\//g),
    ).toHaveLength(1);
  });

  it("says in one line git's own reason when a command fails, not its first line", () => {
    const push =
      "To /srv/shop.git\n ! [rejected]        main -> main (fetch first)\nerror: failed to push some refs to '/srv/shop.git'\nhint: Updates were rejected because the remote contains work\nhint: that you do not have locally.\n";
    expect(new GitError('git push', 1, push).message).toBe(
      "git push failed (exit 1): To /srv/shop.git; ! [rejected]        main -> main (fetch first); error: failed to push some refs to '/srv/shop.git'",
    );
    expect(new GitError('git fetch', 128, 'fatal: repository not found\n').message).toBe(
      'git fetch failed (exit 128): fatal: repository not found',
    );
    // The advice git adds to any failed fetch or push does not push the cause out.
    const fetch =
      "fatal: '/srv/gone.git' does not appear to be a git repository\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n";
    expect(new GitError('git fetch', 128, fetch).message).toBe(
      "git fetch failed (exit 128): fatal: '/srv/gone.git' does not appear to be a git repository; fatal: Could not read from remote repository.",
    );
  });

  it('shows and keeps a URL without its credentials', () => {
    expect(withoutCredentials('https://user:s3cret@example.com/shop.git')).toBe(
      'https://example.com/shop.git',
    );
    // A token is often the user name over https; an ssh user is no secret, its password is.
    expect(withoutCredentials('https://ghp_t0ken@example.com/shop.git')).toBe(
      'https://example.com/shop.git',
    );
    expect(withoutCredentials('ssh://git:pw@example.com:22/shop.git')).toBe(
      'ssh://git@example.com:22/shop.git',
    );
    for (const url of [
      'ssh://git@example.com/shop.git',
      'git@example.com:shop.git',
      'file:///srv/shop.git',
    ])
      expect(withoutCredentials(url)).toBe(url);
  });

  it('takes a URL (a bare repository), its HEAD by default, and a shallow clone', async () => {
    const repo = userRepository();
    const bare = path.join(work, `bare-${n++}.git`);
    sh(work, `git clone -q --bare ${repo} ${bare}`);
    const fromUrl = await runFrom(`file://${bare}`);
    expect(fromUrl.code, fromUrl.stderr).toBe(0);
    // Fetched once into a scratch clone beside the runs, which is gone when the run ends.
    expect(readdirSync(fromUrl.output)).toEqual([path.basename(fromUrl.runDir)]);
    // A --base the URL does not have is refused before anything is planned or written.
    const badBase = await runFrom(`file://${bare}`, ['--base', 'no-such-tag']);
    expect(badBase.code).toBe(2);
    expect(badBase.stderr.trim()).toBe(
      `error: --base no-such-tag does not name a commit in file://${bare}`,
    );
    expect(existsSync(badBase.output) ? readdirSync(badBase.output) : []).toEqual([]);
    const head = gitOut(repo, ['rev-parse', 'trunk']);
    expect(
      gitOut(path.join(fromUrl.runDir, 'project'), ['merge-base', '--is-ancestor', head, 'main']),
    ).toBe('');

    const shallow = path.join(work, `shallow-${n++}`);
    sh(work, `git clone -q --depth 1 file://${bare} ${shallow}`);
    const fromShallow = await runFrom(shallow);
    expect(fromShallow.code, fromShallow.stderr).toBe(0);
    expect(gitOut(path.join(fromShallow.runDir, 'project'), ['show', 'main:src/tax.ts'])).toBe(
      'export const tax = 2;',
    );
  });

  it('leaves submodules and Git LFS pointers as they are, and says so', async () => {
    const lib = path.join(work, `lib-${n++}`);
    sh(work, `git init -q -b main ${lib}`);
    sh(lib, 'printf "lib\\n" > lib.txt && git add -A && git commit -qm lib');
    const repo = userRepository();
    const pointer =
      'version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n';
    writeFileSync(path.join(repo, '.gitattributes'), '*.bin filter=lfs diff=lfs merge=lfs -text\n');
    writeFileSync(path.join(repo, 'model.bin'), pointer);
    sh(
      repo,
      `git -c protocol.file.allow=always submodule add -q ${lib} vendor/lib && git add .gitattributes model.bin && git commit -qm "lfs and a submodule"`,
    );
    const run = await runFrom(repo);
    expect(run.code, run.stderr).toBe(0);
    const started = readEvents(run.runDir).find((e) => e.type === 'run-started');
    expect(started).toMatchObject({
      notes: [
        '1 submodule (vendor/lib) kept at the commits they point at, not checked out for agents',
        expect.stringMatching(/^Git LFS files are kept as their pointers/),
      ],
    });
    const project = path.join(run.runDir, 'project');
    for (const entry of ['vendor/lib', 'model.bin'])
      expect(gitOut(project, ['ls-tree', 'main', entry])).toBe(
        gitOut(repo, ['ls-tree', 'HEAD', entry]),
      );
    expect(readFileSync(path.join(project, 'model.bin'), 'utf8')).toBe(pointer);
  });

  it.each([
    [
      'a path that is not a repository',
      () => ({ repo: work, extra: [] }),
      /--repo .* is not a git repository/,
    ],
    [
      'a --base that names nothing',
      () => ({ repo: userRepository(), extra: ['--base', 'no-such-tag'] }),
      /--base no-such-tag does not name a commit in/,
    ],
    [
      'a URL that cannot be reached',
      () => ({ repo: `file://${work}/missing.git`, extra: [] }),
      // Git's reason, not the advice it adds to every failed fetch.
      /--repo file:.*missing\.git: cannot reach the repository: fatal: '.*missing\.git' does not appear to be a git repository; fatal: Could not read from remote repository\.$/,
    ],
    [
      'a URL with credentials that cannot be reached',
      () => ({ repo: 'https://user:s3cret-token@127.0.0.1:1/shop.git', extra: [] }),
      /^error: --repo https:\/\/127\.0\.0\.1:1\/shop\.git: cannot reach the repository: fatal: unable to access 'https:\/\/127\.0\.0\.1:1\/shop\.git\/': [^\n]*$/,
    ],
    [
      'a path that does not exist',
      () => ({ repo: path.join(work, 'nowhere'), extra: [] }),
      /no such directory, and not a URL/,
    ],
    [
      'a verify command that is not found',
      () => ({ repo: userRepository(), extra: ['--verify', 'CI=1 no-such-checker --all'] }),
      /^error: --verify: command not found: no-such-checker \(looked on PATH\)$/,
    ],
  ])('%s: one line, exit 2, nothing written', async (_, given, message) => {
    const { repo, extra } = given();
    const before = existsSync(repo) ? snapshot(repo) : undefined;
    const run = await runFrom(repo, extra);
    expect(run.code).toBe(2);
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines, run.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(existsSync(run.output)).toBe(false);
    if (before) expect(snapshot(repo)).toEqual(before);
  });

  it.each([
    ['--base', ['--base', 'v1'], 'error: --base names a commit of --repo: give the repository too'],
    [
      '--verify-timeout',
      ['--verify-timeout', '1m'],
      'error: --verify-timeout limits --verify: give the command too',
    ],
    [
      'delivery options',
      ['--into', 'x'],
      'error: --into, --push and --deliver-partial deliver a --repo run: give one',
    ],
  ])('refuses %s without what it qualifies', async (_, extra, message) => {
    const run = await runCli(['run', '--plan', PLAN, ...extra, '-o', path.join(work, 'x')], work);
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe(message);
  });

  it('delivers only a run that succeeded, unless --deliver-partial; pushes when asked', async () => {
    const repo = userRepository();
    const failing = path.join(work, `failing-${n++}.json`);
    writeFileSync(
      failing,
      JSON.stringify({
        requirements: 'Break something',
        executorBudget: 2,
        tasks: [
          { id: 'good', title: 'Good', description: 'Fine.', dependsOn: [] },
          {
            id: 'bad',
            title: 'Bad',
            description: 'Fails.',
            dependsOn: [],
            simulate: { failAttempts: 9, failure: 'permanent' },
          },
        ],
      }),
    );
    const output = path.join(work, `runs-${n++}`);
    const held = await runCli(['run', '--plan', failing, '--repo', repo, '-o', output], work);
    expect(held.code).toBe(1);
    expect(held.stdout).toMatch(/Not delivered to .*: the run did not succeed \(--deliver-partial/);
    expect(gitOut(repo, ['branch', '--list', 'parallel-orchestrator/*'])).toBe('');

    const remote = path.join(work, `remote-${n++}.git`);
    sh(work, `git init -q --bare ${remote} && git -C ${repo} remote add share ${remote}`);
    const partial = await runCli(
      [
        'run',
        '--plan',
        failing,
        '--repo',
        repo,
        '--deliver-partial',
        '--into',
        'delivered/partial',
        '--push',
        'share',
        '-o',
        output,
        '--json',
      ],
      work,
    );
    expect(partial.code).toBe(1);
    expect(resultLine(partial.stdout)).toMatchObject({
      delivered: { branch: 'delivered/partial', pushed: 'share' },
    });
    const runDir = resultLine(partial.stdout).runDir;
    const main = gitOut(path.join(runDir, 'project'), ['rev-parse', 'main']);
    expect(gitOut(repo, ['rev-parse', 'delivered/partial'])).toBe(main);
    expect(gitOut(remote, ['rev-parse', 'delivered/partial'])).toBe(main);
  });

  it("delivers into the repository and says git's ! [rejected] when the push on is refused", async () => {
    const repo = userRepository();
    const remote = path.join(work, `remote-${n++}.git`);
    // The remote already has the branch, at a later commit than the run's base.
    sh(
      work,
      `git clone -q --bare ${repo} ${remote} && git -C ${remote} branch delivered/taken trunk && git -C ${repo} remote add share ${remote}`,
    );
    const taken = gitOut(remote, ['rev-parse', 'delivered/taken']);
    const run = await runCli(
      [
        'run',
        '--plan',
        PLAN,
        '--repo',
        repo,
        '--base',
        'v1',
        '--into',
        'delivered/taken',
        '--push',
        'share',
        '-o',
        path.join(work, `runs-${n++}`),
      ],
      work,
    );
    expect(run.code, run.stderr).toBe(1);
    expect(run.stdout).toContain('Run succeeded: 2/2 tasks succeeded');
    expect(run.stdout).toContain(`\nDelivered:     branch delivered/taken in ${repo}\n`);
    expect(run.stdout).toMatch(
      /\nNot pushed to share: git push failed \(exit 1\): To .*; ! \[rejected\] +delivered\/taken -> delivered\/taken \(non-fast-forward\); error: failed to push some refs to .*\n/,
    );
    expect(gitOut(remote, ['rev-parse', 'delivered/taken'])).toBe(taken);
  });

  it.each([
    [
      'an --into branch that exists',
      ['--into', 'feature'],
      /--into feature already exists in the repository/,
    ],
    [
      'an --into that is no branch name',
      ['--into', 'bad..name'],
      /--into bad\.\.name is not a valid branch name/,
    ],
    [
      'a --push remote that does not exist',
      ['--push', 'nowhere'],
      /--push nowhere: the repository has no such remote/,
    ],
  ])('refuses %s before anything starts', async (_, extra, message) => {
    const repo = userRepository();
    const before = snapshot(repo);
    const run = await runFrom(repo, extra);
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toMatch(message);
    expect(existsSync(run.output)).toBe(false);
    expect(snapshot(repo)).toEqual(before);
  });

  it("shows a task's diff and the run's, and exports a patch series that rebuilds main on the base", async () => {
    const repo = userRepository();
    const run = await runFrom(repo, ['--base', 'v1']);
    expect(run.code, run.stderr).toBe(0);
    const project = path.join(run.runDir, 'project');
    const taskDiff = await runCli(['diff', run.runDir, 'cart'], work);
    expect(taskDiff.code).toBe(0);
    expect(taskDiff.stdout).toBe(`${gitOut(project, ['diff', 'task/cart^1', 'task/cart'])}\n`);
    const whole = await runCli(['diff', run.runDir], work);
    expect(whole.stdout).toMatch(/\+\+\+ b\/src\/checkout\.ts/);
    expect((await runCli(['diff', run.runDir, 'nope'], work)).stderr.trim()).toBe(
      `error: no task nope in ${run.runDir}`,
    );

    const patches = path.join(work, `patches-${n++}`);
    const exported = await runCli(['export', run.runDir, '--patch', '-o', patches], work);
    expect(exported.stdout).toMatch(/^2 patches in /);
    // Applied in order on the base, the series gives main's tree.
    const copy = path.join(work, `copy-${n++}`);
    sh(work, `git clone -q ${repo} ${copy} && git -C ${copy} checkout -q v1`);
    sh(copy, `git am -q ${patches}/*.patch`);
    expect(gitOut(copy, ['rev-parse', 'HEAD^{tree}'])).toBe(
      gitOut(project, ['rev-parse', 'main^{tree}']),
    );
    expect(gitOut(copy, ['log', '-1', '--format=%s'])).toBe('task(checkout): Checkout');
  });

  it('shows the model planner the codebase at the base: tracked files, README, manifests, bounded', async () => {
    const repo = userRepository();
    sh(
      repo,
      'git stash -q && printf \'{"name":"shop"}\\n\' > package.json && git add package.json && git commit -qm "manifest" && git tag v2 && git stash pop -q',
    );
    const requests: string[] = [];
    const server = await startModelServer((request) => {
      requests.push(JSON.stringify(request.body?.messages ?? []));
      return {
        content: [
          toolUse(PLAN_TOOL, {
            tasks: [
              {
                id: 'cart',
                title: 'Cart',
                description: 'Add the cart.',
                dependsOn: [],
                files: ['src/cart.ts'],
              },
            ],
          }),
        ],
      };
    });
    try {
      const planned = await runCli(
        ['plan', 'Add a cart', '--real', '--json', '--repo', repo, '--base', 'v2'],
        work,
        {
          ANTHROPIC_API_KEY: 'sk-ant-api03-repo-test-key-0000000000',
          ANTHROPIC_BASE_URL: server.url,
        },
      );
      expect(planned.code, planned.stderr).toBe(0);
      const prompt = requests.join('\n');
      expect(prompt).toContain('The work starts from an existing repository');
      expect(prompt).toContain('src/tax.ts');
      expect(prompt).toContain('# Shop');
      expect(prompt).toContain('package.json:\\n{\\"name\\":\\"shop\\"}');
      // Untracked and uncommitted work is not the base's.
      expect(prompt).not.toContain('notes.txt');
      expect(prompt).not.toContain('staged.txt');

      // A large tree is cut to a bound, and says so.
      const big = path.join(work, `big-${n++}`);
      sh(work, `git init -q ${big}`);
      sh(
        big,
        'for i in $(seq 1 1600); do echo $i > f$i.txt; done && git add -A && git commit -qm many',
      );
      requests.length = 0;
      const capped = await runCli(['plan', 'Tidy up', '--real', '--json', '--repo', big], work, {
        ANTHROPIC_API_KEY: 'sk-ant-api03-repo-test-key-0000000000',
        ANTHROPIC_BASE_URL: server.url,
      });
      expect(capped.code, capped.stderr).toBe(0);
      expect(requests.join('\n')).toContain('Its files (1600, the first 1500 shown):');

      // A URL is fetched before planning, so its codebase is shown too; the scratch clone goes.
      const bare = path.join(work, `bare-${n++}.git`);
      sh(work, `git clone -q --bare ${repo} ${bare}`);
      requests.length = 0;
      const fromUrl = await runCli(
        ['plan', 'Add a cart', '--real', '--json', '--repo', `file://${bare}`, '--base', 'v2'],
        work,
        {
          ANTHROPIC_API_KEY: 'sk-ant-api03-repo-test-key-0000000000',
          ANTHROPIC_BASE_URL: server.url,
        },
      );
      expect(fromUrl.code, fromUrl.stderr).toBe(0);
      expect(requests.join('\n')).toContain('package.json:\\n{\\"name\\":\\"shop\\"}');
    } finally {
      await server.close();
    }
  });
});

describe('a run that starts from a URL', () => {
  /** A user's repository as a server has it: a bare clone, named by a file:// URL. */
  function served(): { repo: string; bare: string; url: string } {
    const repo = userRepository();
    const bare = path.join(work, `served-${n++}.git`);
    sh(work, `git clone -q --bare ${repo} ${bare}`);
    return { repo, bare, url: `file://${bare}` };
  }

  /** A bare repository's refs, as `git ls-remote` shows them, by name. */
  const refsOf = (bare: string) =>
    Object.fromEntries(
      gitOut(work, ['ls-remote', bare])
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split('\t').reverse()),
    );

  /** A bare repository's files less what a push adds: objects and the pushed branch. */
  const withoutPush = (files: Record<string, string>) =>
    Object.fromEntries(
      Object.entries(files).filter(
        ([file]) => !/^(objects\/|refs\/heads\/parallel-orchestrator\/)/.test(file),
      ),
    );

  it('says where its result is: main of the run repository, with the tasks on it', async () => {
    const { bare, url } = served();
    const before = snapshot(bare);
    // A relative --output: the scratch clone of the URL is made beside the runs all the same.
    const output = `runs-rel-${n++}`;
    const run = await runCli(['run', '--plan', PLAN, '--repo', url, '-o', output], work);
    expect(run.code, run.stderr).toBe(0);
    const runDir = path.join(
      work,
      output,
      readdirSync(path.join(work, output)).find((name) => !name.startsWith('.')) ?? '',
    );
    const project = path.join(runDir, 'project');
    const base = gitOut(bare, ['rev-parse', 'trunk']).slice(0, 12);
    expect(run.stdout).toContain(
      `\nResult:        branch main of ${project} (git -C ${project} log --graph --stat ${base}..main)\n`,
    );
    expect(run.stdout).not.toMatch(/Delivered|Pushed/);
    expect(gitOut(project, ['log', '--format=%s', `${base}..main`]).split('\n')).toEqual(
      expect.arrayContaining(['task(cart): Cart', 'task(checkout): Checkout']),
    );
    // The source is only read.
    expect(snapshot(bare)).toEqual(before);

    const json = await runFrom(url);
    expect(json.code, json.stderr).toBe(0);
    expect(resultLine(json.stdout)).toMatchObject({
      delivered: {
        repo: path.join(json.runDir, 'project'),
        branch: 'main',
        base: gitOut(bare, ['rev-parse', 'trunk']),
        inRun: true,
      },
    });
  });

  it('pushes its main as a new branch to another URL, or back to origin, the URL it came from', async () => {
    const { bare, url } = served();
    const target = path.join(work, `target-${n++}.git`);
    sh(work, `git init -q --bare ${target}`);
    const pushed = await runFrom(url, ['--push', `file://${target}`]);
    expect(pushed.code, pushed.stderr).toBe(0);
    const runId = path.basename(pushed.runDir);
    const main = gitOut(path.join(pushed.runDir, 'project'), ['rev-parse', 'main']);
    expect(refsOf(target)).toEqual({ [`refs/heads/parallel-orchestrator/${runId}`]: main });
    expect(resultLine(pushed.stdout)).toMatchObject({
      delivered: {
        branch: 'main',
        inRun: true,
        pushed: `file://${target}`,
        pushedBranch: `parallel-orchestrator/${runId}`,
      },
    });

    const before = snapshot(bare);
    const refs = refsOf(bare);
    const back = await runCli(
      [
        'run',
        '--plan',
        PLAN,
        '--repo',
        url,
        '--push',
        'origin',
        '-o',
        path.join(work, `runs-${n++}`),
      ],
      work,
    );
    expect(back.code, back.stderr).toBe(0);
    const branch = /Pushed: +as branch (parallel-orchestrator\/\S+) to (\S+)\n/.exec(back.stdout);
    expect(branch?.[2], back.stdout).toBe(url);
    const name = branch?.[1] ?? '';
    // The new branch and its objects, nothing else of the source.
    expect(refsOf(bare)).toEqual({ ...refs, [`refs/heads/${name}`]: expect.any(String) });
    expect(gitOut(bare, ['log', '--format=%s', `trunk..${name}`]).split('\n')).toEqual(
      expect.arrayContaining(['task(cart): Cart', 'task(checkout): Checkout']),
    );
    expect(withoutPush(snapshot(bare))).toEqual(withoutPush(before));
  });

  it("shows git's ! [rejected] when the push is refused: the run succeeded, the command exits 1", async () => {
    const { bare, url } = served();
    const feature = gitOut(bare, ['rev-parse', 'feature']);
    // From v1, the run's main is no fast-forward of feature, which is at a later commit.
    const run = await runCli(
      [
        'run',
        '--plan',
        PLAN,
        '--repo',
        url,
        '--base',
        'v1',
        '--push',
        'origin',
        '--into',
        'feature',
        '-o',
        path.join(work, `runs-${n++}`),
      ],
      work,
    );
    expect(run.code, run.stderr).toBe(1);
    expect(run.stdout).toContain('Run succeeded: 2/2 tasks succeeded');
    expect(run.stdout).toMatch(/\nResult: +branch main of /);
    expect(run.stdout).toMatch(
      new RegExp(
        `\\nNot pushed to ${url}: git push failed \\(exit 1\\): To ${url}; ! \\[rejected\\] +main -> feature \\(non-fast-forward\\); error: failed to push some refs to '${url}'\\n`,
      ),
    );
    expect(gitOut(bare, ['rev-parse', 'feature'])).toBe(feature);
  });

  it('pushes a run with failures only with --deliver-partial', async () => {
    const { url } = served();
    const failing = path.join(work, `failing-${n++}.json`);
    writeFileSync(
      failing,
      JSON.stringify({
        requirements: 'Break something',
        executorBudget: 2,
        tasks: [
          { id: 'good', title: 'Good', description: 'Fine.', dependsOn: [] },
          {
            id: 'bad',
            title: 'Bad',
            description: 'Fails.',
            dependsOn: [],
            simulate: { failAttempts: 9, failure: 'permanent' },
          },
        ],
      }),
    );
    const target = path.join(work, `target-${n++}.git`);
    sh(work, `git init -q --bare ${target}`);
    const output = path.join(work, `runs-${n++}`);
    const push = ['--push', target, '--into', 'partial/work', '-o', output];
    const held = await runCli(['run', '--plan', failing, '--repo', url, ...push], work);
    expect(held.code).toBe(1);
    expect(held.stdout).toContain(
      `\nNot pushed to ${target}: the run did not succeed (--deliver-partial pushes it anyway)`,
    );
    expect(refsOf(target)).toEqual({});
    const partial = await runCli(
      ['run', '--plan', failing, '--repo', url, ...push, '--deliver-partial', '--json'],
      work,
    );
    expect(partial.code).toBe(1);
    const main = gitOut(path.join(resultLine(partial.stdout).runDir, 'project'), [
      'rev-parse',
      'main',
    ]);
    expect(refsOf(target)).toEqual({ 'refs/heads/partial/work': main });
  });

  it.each([
    [
      'a --push target that does not exist',
      (bare: string) => ['--push', `file://${bare}-missing`],
      /^error: --push file:\/\/.*-missing: cannot reach the repository: fatal: '.*-missing' does not appear to be a git repository; fatal: Could not read from remote repository\.$/,
    ],
    [
      'a --push URL with credentials that cannot be reached',
      () => ['--push', 'https://user:s3cret-token@127.0.0.1:1/shop.git'],
      /^error: --push https:\/\/127\.0\.0\.1:1\/shop\.git: cannot reach the repository: fatal: unable to access/,
    ],
    [
      'a --push that names no repository',
      () => ['--push', 'upstream'],
      /^error: --push upstream: a run from a URL pushes to origin \(the URL it started from\), another URL or a repository's path$/,
    ],
    [
      '--into without --push',
      () => ['--into', 'mine'],
      /^error: --into mine: a run from a URL keeps its result in the run's repository; add --push REMOTE to deliver it$/,
    ],
    [
      '--deliver-partial without --push',
      () => ['--deliver-partial'],
      /^error: --deliver-partial: a run from a URL keeps its result in the run's repository; add --push REMOTE to deliver it$/,
    ],
    [
      'an --into that is no branch name',
      () => ['--push', 'origin', '--into', 'bad..name'],
      /^error: --into bad\.\.name is not a valid branch name$/,
    ],
  ])('refuses %s before anything starts, in one line', async (_, extra, message) => {
    const { bare, url } = served();
    const before = snapshot(bare);
    const run = await runFrom(url, extra(bare));
    expect(run.code).toBe(2);
    expect(run.stderr.trimEnd().split('\n'), run.stderr).toHaveLength(1);
    expect(run.stderr.trimEnd()).toMatch(message);
    expect(run.stderr).not.toContain('s3cret');
    expect(existsSync(run.output)).toBe(false);
    expect(snapshot(bare)).toEqual(before);
  });
});

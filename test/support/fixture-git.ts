import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * The environment for a fixture's npm and git: the test process's, without what a package
 * manager running the tests put there (pnpm's npm_config_* would reach npm as its settings).
 */
export function fixtureEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(name)) env[name] = value;
  }
  return { ...env, ...extra };
}

/**
 * Makes `dir` a repository whose `main` holds every file in it in one commit, with the author set
 * in the repository's own config (as a user's clone has it), and answers that commit.
 */
export async function commitFixture(dir: string, message: string): Promise<string> {
  const git = (...args: string[]) =>
    run('git', args, { cwd: dir, env: fixtureEnv(), encoding: 'utf8' });
  await git('init', '-q', '-b', 'main');
  await git('config', 'user.name', 'Fixture Author');
  await git('config', 'user.email', 'fixture@example.invalid');
  await git('config', 'commit.gpgsign', 'false');
  await git('add', '-A');
  await git('commit', '-q', '--no-verify', '-m', message);
  return (await git('rev-parse', 'HEAD')).stdout.trim();
}

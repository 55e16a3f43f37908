import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { CLI, type CliResult, startCli } from './cli.js';

/** The checkout the CLI is built in (this one, or the one `PO_TEST_CLI` names). */
const ROOT = path.resolve(path.dirname(CLI), '../../../..');

/** A user no account of the machine has: what a plain user's orchestrator runs as in the suites. */
export const PLAIN_USER = { uid: 20001, gid: 20001 };

/** Where the user's view of the checkout and of Node is mounted, in a mount namespace of its own. */
const VIEW = '/run/po-as-user';

/**
 * Runs the CLI as `PLAIN_USER` from a root test process: in a private mount namespace, the
 * checkout and Node's installation are bound under a directory anyone may enter (Node lives
 * under root's home), then setpriv drops to the user. The checkout is bound entry by entry: a
 * clone made in \`mktemp -d\` is itself 0700, and a bind keeps its root's mode. Nothing outside
 * that namespace changes but the empty mount point.
 */
const AS_USER = `
set -e
mount -t tmpfs -o mode=0755 tmpfs "${VIEW}"
mkdir "${VIEW}/repo" "${VIEW}/node"
for entry in "$1"/* "$1"/.[!.]*; do
  [ -e "$entry" ] || continue
  target="${VIEW}/repo/\${entry##*/}"
  if [ -d "$entry" ]; then mkdir "$target"; else touch "$target"; fi
  mount --bind "$entry" "$target"
done
mount --bind "$2" "${VIEW}/node"
uid=$3; shift 3
exec setpriv --reuid "$uid" --regid "$uid" --clear-groups "${VIEW}/node/bin/node" "$@"
`;

/** How a suite runs the CLI: as whoever runs the tests, or as a plain user from root. */
export interface CliRunner {
  /** `as root` or `as a user`: said in test names. */
  name: string;
  /** A directory the CLI's user owns: work directories and HOME go below it. */
  work: string;
  run(args: string[], cwd: string, env?: NodeJS.ProcessEnv): Promise<CliResult>;
  /** The same, the CLI's process at hand (signals reach the orchestrator itself). */
  start(args: string[], cwd: string, env?: NodeJS.ProcessEnv): ReturnType<typeof startCli>;
  /** Gives what the test made below `work` to the CLI's user. */
  own(target: string): void;
}

const CLEANUP_MS = 300_000;

function ownedDir(prefix: string, owner?: { uid: number; gid: number }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  if (owner) chownSync(dir, owner.uid, owner.gid);
  // The suites' runs leave deep and large trees; a loaded machine takes a while to remove them.
  afterAll(() => rmSync(dir, { recursive: true, force: true }), CLEANUP_MS);
  return dir;
}

/**
 * The ways this machine can run the CLI for a suite that must hold both as root and as a user:
 * both when the tests run as root (CI), the user alone otherwise. A missing way is named in
 * `missing`, for the suite to skip with that reason or to fail on when `REQUIRE_ROOT=1`.
 */
export function cliRunners(prefix: string): { runners: CliRunner[]; missing?: string } {
  const direct = (name: string): CliRunner => {
    const work = ownedDir(prefix);
    return {
      name,
      work,
      start: (args, cwd, env) => startCli(args, cwd, env),
      run: (args, cwd, env) => startCli(args, cwd, env).done,
      own: () => {},
    };
  };
  if (process.getuid?.() !== 0)
    return {
      runners: [direct('as a user')],
      missing: 'the root runs need the tests to run as root (CI does)',
    };
  mkdirSync(VIEW, { recursive: true });
  const nodePrefix = path.dirname(path.dirname(process.execPath));
  // Each exec keeps the process: the orchestrator is the child, as it is for a direct run.
  const start = (args: string[], cwd: string, env?: NodeJS.ProcessEnv) =>
    startCli(args, cwd, env, 'unshare', [
      '--mount',
      '--',
      '/bin/sh',
      '-c',
      AS_USER,
      'as-user',
      ROOT,
      nodePrefix,
      String(PLAIN_USER.uid),
      path.join(VIEW, 'repo', path.relative(ROOT, CLI)),
    ]);
  const asUser: CliRunner = {
    name: 'as a user',
    work: ownedDir(prefix, PLAIN_USER),
    start,
    run: (args, cwd, env) => start(args, cwd, env).done,
    own: (target) => execFileSync('chown', ['-R', `${PLAIN_USER.uid}:${PLAIN_USER.gid}`, target]),
  };
  return { runners: [direct('as root'), asUser] };
}

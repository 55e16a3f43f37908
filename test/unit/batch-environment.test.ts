import { execFileSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import {
  archivePaths,
  WorkspaceEnvironment,
} from '../../packages/runtime/src/backends/batch/job-environment.js';
import { agentUserFor, handOver } from '../../packages/runtime/src/sandbox/agent-user.js';
import { rootNeed } from '../support/limits.js';
import { describeNeeding } from '../support/needing.js';
import { tempDir } from '../support/tmp.js';

const work = tempDir('po-job-env-');
// As a job's OUTPUT_DIR is: a directory any user may pass through.
chmodSync(work, 0o755);
const agent = process.getuid?.() === 0 ? await agentUserFor() : undefined;

/** `command` as the agent's user in `cwd`: its exit code. */
function asAgent(cwd: string, command: string): number {
  try {
    execFileSync(
      'setpriv',
      [
        '--reuid',
        String(agent?.uid),
        '--regid',
        String(agent?.gid),
        '--clear-groups',
        'sh',
        '-c',
        command,
      ],
      { cwd, stdio: 'ignore' },
    );
    return 0;
  } catch (error) {
    return (error as { status: number }).status;
  }
}

describeNeeding(
  "a Batch job's prepared environment",
  () => {
    it('archives what a setup made as its user, and lays it into a workspace root-owned and unwritable, holes open, links never followed', async () => {
      const user = agent as NonNullable<typeof agent>;
      // The setup job's workspace, as its user left it.
      const made = path.join(work, 'made');
      mkdirSync(path.join(made, 'node_modules/dep/lib'), { recursive: true });
      writeFileSync(path.join(made, 'node_modules/dep/lib/index.js'), 'exports.x = 1;\n');
      mkdirSync(path.join(made, 'node_modules/.bin'));
      symlinkSync('../dep/lib/index.js', path.join(made, 'node_modules/.bin/dep'));
      // A link out of the workspace, as an install script may make: kept a link, never followed.
      symlinkSync('/etc', path.join(made, 'node_modules/etc'));
      writeFileSync(path.join(made, '.env'), 'A=1\n');
      await handOver(made, user);
      const archive = path.join(work, 'environment.tar.gz');
      const paths = ['.env', 'node_modules/'];
      const { sha256, bytes, diskBytes } = await archivePaths(made, paths, archive, user);
      expect(bytes).toBe(lstatSync(archive).size);
      expect(diskBytes).toBeGreaterThan(0);

      // Another job's workspace: a checkout the agent owns.
      const workspace = path.join(work, 'workspace');
      mkdirSync(path.join(workspace, 'src'), { recursive: true });
      await handOver(workspace, user);
      const logs: string[] = [];
      const environment = new WorkspaceEnvironment(
        { url: 'https://bucket.example/x', key: 'x', sha256, bytes, paths },
        workspace,
        archive,
        user,
        (line) => logs.push(line),
      );
      expect(await environment.install()).toBeGreaterThanOrEqual(0);
      const index = path.join(workspace, 'node_modules/dep/lib/index.js');
      expect(readFileSync(index, 'utf8')).toBe('exports.x = 1;\n');
      for (const file of [
        index,
        path.join(workspace, 'node_modules'),
        path.join(workspace, '.env'),
      ]) {
        const stats = lstatSync(file);
        expect([stats.uid, stats.mode & 0o222]).toEqual([0, 0]);
      }
      expect(lstatSync(path.join(workspace, 'node_modules/etc')).isSymbolicLink()).toBe(true);
      expect(lstatSync('/etc').uid).toBe(0);
      // The agent can read and run it, not change it; its cache directory is its own.
      expect(asAgent(workspace, 'cat node_modules/.bin/dep .env >/dev/null')).toBe(0);
      expect(asAgent(workspace, 'echo x > node_modules/dep/lib/index.js')).not.toBe(0);
      expect(asAgent(workspace, 'mkdir node_modules/planted')).not.toBe(0);
      expect(asAgent(workspace, 'echo B=2 >> .env')).not.toBe(0);
      expect(
        asAgent(
          workspace,
          'mkdir -p node_modules/.cache/tool && echo ok > node_modules/.cache/tool/x',
        ),
      ).toBe(0);

      // A later checkout keeps it: nothing extracted again, the cache emptied.
      logs.length = 0;
      expect(await environment.install()).toBe(0);
      expect(logs).toEqual([]);
      expect(asAgent(workspace, 'test ! -e node_modules/.cache/tool')).toBe(0);
      // One the agent put in its place (the original renamed away) is not the environment.
      expect(
        asAgent(
          workspace,
          'mv node_modules nm-away && mkdir -p node_modules/dep/lib && echo evil > node_modules/dep/lib/index.js',
        ),
      ).toBe(0);
      expect(await environment.install()).toBeGreaterThan(0);
      expect(readFileSync(index, 'utf8')).toBe('exports.x = 1;\n');
      expect(lstatSync(path.join(workspace, 'node_modules')).uid).toBe(0);
    });
  },
  rootNeed(agent ? undefined : 'not root: no other user to run the agent as'),
);

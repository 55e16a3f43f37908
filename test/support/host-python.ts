import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** What the Python fixture's setup and check import from the python3 that runs them. */
const PROBE = [
  'import ensurepip, venv, pytest, setuptools',
  'try:',
  '    import setuptools.command.bdist_wheel',
  'except ImportError:',
  '    import wheel',
].join('\n');

/**
 * A PATH under which `python3` runs the Python fixture on this machine: the test process's PATH
 * when its first python3 has what the fixture needs, else with the first python3 on it (or
 * Debian's /usr/bin/python3) that has put in front; or why there is none. A python3 of pyenv's or
 * the like often has no wheel, Debian's no pytest until python3-pytest is installed.
 */
export const hostPython: { path: string } | { missing: string } = findHostPython();

function findHostPython(): { path: string } | { missing: string } {
  const searchPath = process.env.PATH ?? '';
  const dirs = [...new Set([...searchPath.split(path.delimiter).filter(Boolean), '/usr/bin'])];
  let first = true;
  for (const dir of dirs) {
    const python = path.join(dir, 'python3');
    try {
      accessSync(python, constants.X_OK);
    } catch {
      continue;
    }
    try {
      execFileSync(python, ['-c', PROBE], { stdio: 'ignore', timeout: 30_000 });
      return { path: first ? searchPath : `${dir}${path.delimiter}${searchPath}` };
    } catch {
      first = false;
    }
  }
  return {
    missing: 'no python3 with venv, pytest, setuptools and wheel',
  };
}

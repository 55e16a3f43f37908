import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { commitFixture } from './fixture-git.js';
import type { FixtureRepo } from './js-repo.js';

/**
 * libs/greet (setuptools package, pyproject), requirements.txt with ./libs/greet, .venv/ in
 * .gitignore, tests/test_greet.py with pytest. setup = 'python3 -m venv --system-site-packages
 * .venv && .venv/bin/pip install --no-index --no-build-isolation -r requirements.txt',
 * check = '.venv/bin/python -m pytest -q'. Made in a new directory under root. The setup needs a
 * python3 with venv (ensurepip), pytest, setuptools and, for setuptools before 70.1, wheel: on
 * Debian python3-venv python3-pytest python3-wheel (test/support/host-python.ts finds one on this machine).
 */
export async function makePythonRepo(
  root: string,
  options: { failing?: boolean } = {},
): Promise<FixtureRepo> {
  const dir = await mkdtemp(path.join(root, 'py-repo-'));
  const expected = options.failing ? 'goodbye, world' : 'hello, world';
  const files: Record<string, string> = {
    // What the setup and the check write: the venv, pip's in-tree build, pytest's caches.
    '.gitignore': '.venv/\n__pycache__/\n.pytest_cache/\nbuild/\n*.egg-info/\n',
    'requirements.txt': './libs/greet\n',
    'libs/greet/pyproject.toml': [
      '[build-system]',
      'requires = ["setuptools"]',
      'build-backend = "setuptools.build_meta"',
      '',
      '[project]',
      'name = "greet"',
      'version = "1.0.0"',
      '',
    ].join('\n'),
    'libs/greet/src/greet/__init__.py': 'def greet(name):\n    return f"hello, {name}"\n',
    'tests/test_greet.py': [
      'from greet import greet',
      '',
      '',
      'def test_greet():',
      `    assert greet("world") == "${expected}"`,
      '',
    ].join('\n'),
  };
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), content);
  }
  const head = await commitFixture(
    dir,
    options.failing ? 'A Python project whose test fails' : 'A Python project',
  );
  return {
    dir,
    setup:
      'python3 -m venv --system-site-packages .venv && .venv/bin/pip install --no-index --no-build-isolation -r requirements.txt',
    check: '.venv/bin/python -m pytest -q',
    head,
  };
}

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CLI } from '../support/cli.js';
import { commitAll } from '../support/git.js';
import { tempDir } from '../support/tmp.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DOCS = ['README.md', 'docs/operations.md'];

/** Why a block is not run here; every other bash block of the docs is. */
const SKIPPED: [RegExp, string][] = [
  [/\bpulumi\b/, 'needs AWS (Pulumi)'],
  [/--real\b|ANTHROPIC_API_KEY/, 'needs a model'],
  [
    /sandbox:batch|--backend-config/,
    'needs a Batch stack or the Batch sandbox (a server that runs until stopped)',
  ],
  [/pnpm install|npm install -g|pnpm test\b/, 'installs, or runs every suite: what .ci/run does'],
];

interface Block {
  file: string;
  line: number;
  text: string;
}

function bashBlocks(): Block[] {
  return DOCS.flatMap((file) => {
    const text = readFileSync(path.join(ROOT, file), 'utf8');
    return [...text.matchAll(/^```bash\n([\s\S]*?)^```/gm)].map((match) => ({
      file,
      line: text.slice(0, match.index).split('\n').length,
      text: match[1] as string,
    }));
  });
}

const skipReason = (block: Block) => SKIPPED.find(([pattern]) => pattern.test(block.text))?.[1];

/**
 * A user's machine in a directory: HOME with the repository the README starts from
 * (`~/src/shop`, whose own check is a package.json test script and whose setup `npm ci`), and the
 * examples at hand.
 */
function machine(): { cwd: string; env: NodeJS.ProcessEnv } {
  const root = tempDir('po-docs-');
  const home = path.join(root, 'home');
  const shop = path.join(home, 'src', 'shop');
  mkdirSync(path.join(shop, 'test'), { recursive: true });
  writeFileSync(
    path.join(shop, 'package.json'),
    `${JSON.stringify({ name: 'shop', private: true, scripts: { test: 'node --test test/*.test.mjs' } })}\n`,
  );
  // A lockfile, as a project with dependencies has (none here: no network is needed), and the
  // ignore rule for what `npm ci` installs.
  writeFileSync(
    path.join(shop, 'package-lock.json'),
    `${JSON.stringify({ name: 'shop', lockfileVersion: 3, requires: true, packages: { '': { name: 'shop' } } })}\n`,
  );
  writeFileSync(path.join(shop, '.gitignore'), 'node_modules/\n');
  writeFileSync(
    path.join(shop, 'test', 'shop.test.mjs'),
    "import { test } from 'node:test';\ntest('the shop opens', () => {});\n",
  );
  commitAll(shop, 'shop');
  const cwd = path.join(root, 'work');
  mkdirSync(cwd);
  symlinkSync(path.join(ROOT, 'examples'), path.join(cwd, 'examples'));
  return {
    cwd,
    env: { PATH: process.env.PATH, HOME: home, PO_OUTPUT: path.join(root, 'runs') },
  };
}

/**
 * A documented line as it runs here: the CLI as built (`pnpm -s start --` builds it first, which
 * `pnpm test` has done), and `runs/<run>` the newest run.
 */
const asRun = (line: string) =>
  line.replaceAll('pnpm -s start --', `node ${CLI}`).replaceAll('runs/<run>', 'latest');

describe('the documented commands, as written', () => {
  const blocks = bashBlocks();

  it('classifies every bash block: run here, or skipped for a stated reason', () => {
    const skipped = blocks.filter(skipReason).map((b) => `${b.file}:${b.line} ${skipReason(b)}`);
    expect(skipped).toEqual([
      'README.md:3 installs, or runs every suite: what .ci/run does',
      expect.stringMatching(/^README\.md:\d+ needs a model$/),
      // A Batch stack's config, then the local Batch sandbox, then the Pulumi program.
      expect.stringMatching(/^README\.md:\d+ needs AWS \(Pulumi\)$/),
      expect.stringMatching(/^README\.md:\d+ needs a Batch stack/),
      expect.stringMatching(/^README\.md:\d+ needs AWS \(Pulumi\)$/),
    ]);
    expect(blocks.filter((b) => !skipReason(b)).length).toBeGreaterThanOrEqual(3);
  });

  it('runs every other block line by line, each exiting 0', () => {
    const { cwd, env } = machine();
    for (const block of blocks.filter((b) => !skipReason(b))) {
      for (const line of block.text.split('\n')) {
        if (!line.trim() || line.trim().startsWith('#')) continue;
        const result = spawnSync('bash', ['-o', 'pipefail', '-c', asRun(line)], {
          cwd,
          env,
          encoding: 'utf8',
          timeout: 120_000,
        });
        expect(result.status, `${block.file}:${block.line}: ${line}\n${result.stderr}`).toBe(0);
      }
    }
    // What the docs redirect is what they say it is.
    expect(JSON.parse(readFileSync(path.join(cwd, 'plan.json'), 'utf8'))).toMatchObject({
      requirements: 'Build a calculator',
    });
  });

  it('keeps pnpm -s start -- output clean: plan --json into a file is JSON', () => {
    const out = path.join(tempDir('po-docs-pnpm-'), 'plan.json');
    execFileSync('sh', ['-c', `pnpm -s start -- plan --json "Build a calculator" > ${out}`], {
      cwd: ROOT,
    });
    expect(JSON.parse(readFileSync(out, 'utf8'))).toMatchObject({
      requirements: 'Build a calculator',
    });
  });
});

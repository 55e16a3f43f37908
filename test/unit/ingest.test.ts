import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkLinks,
  checkNames,
  MAX_PATH_BYTES,
  rawPath,
  scanWorkspace,
} from '../../packages/runtime/src/trust/ingest.js';
import { OutputRejectedError } from '../../packages/runtime/src/trust/output-check.js';
import { printable } from '../../packages/runtime/src/util/printable.js';
import { combineIgnoreFiles } from '../../packages/runtime/src/workspace/ignore-rules.js';
import { tempDir } from '../support/tmp.js';

const root = tempDir('po-ingest-');
let n = 0;
const fresh = () => {
  const dir = path.join(root, `ws-${n++}`);
  mkdirSync(dir);
  return dir;
};

describe('links, resolved as the kernel would', () => {
  /** Every link of the workspace, as the commit would check it. */
  const check = async (dir: string) => checkLinks(dir, (await scanWorkspace(dir)).links);

  it('refuses chains that read as inside but lead out, whichever link does it', async () => {
    const cases: [string, string][] = [
      ['self/self/self/../../../etc/passwd', 'passwd'], // through `self -> .`
      ['self/..', 'up'],
      ['../self/..', 'sub/up'],
    ];
    for (const [target, link] of cases) {
      const dir = fresh();
      symlinkSync('.', path.join(dir, 'self'));
      mkdirSync(path.join(dir, 'sub'));
      symlinkSync(target, path.join(dir, link));
      await expect(check(dir)).rejects.toThrow(
        `symlink ${link} leads outside the project (${target})`,
      );
    }
  });

  it('refuses a link to a link that leaves, and one through an absolute link', async () => {
    const dir = fresh();
    symlinkSync('/root/.ssh', path.join(dir, 'keys'));
    symlinkSync('keys/id_rsa', path.join(dir, 'key'));
    await expect(check(dir)).rejects.toThrow(OutputRejectedError);
    const other = fresh();
    symlinkSync('../..', path.join(other, 'a'));
    mkdirSync(path.join(other, 'b'));
    symlinkSync('../a', path.join(other, 'b', 'c'));
    await expect(check(other)).rejects.toThrow(/leads outside the project/);
  });

  it('takes a missing directory for a directory: a link that dangles now cannot lead out later', async () => {
    const dir = fresh();
    symlinkSync('.', path.join(dir, 'a'));
    // a/missing/../../x: with `missing` made, this would resolve above the project.
    symlinkSync('a/missing/../../x', path.join(dir, 'later'));
    await expect(check(dir)).rejects.toThrow('symlink later leads outside the project');
  });

  it('keeps links that stay inside, chains and loops of directories included, and refuses one that never resolves', async () => {
    const dir = fresh();
    mkdirSync(path.join(dir, 'docs/deep'), { recursive: true });
    writeFileSync(path.join(dir, 'docs/deep/real.md'), 'x');
    symlinkSync('docs', path.join(dir, 'd'));
    symlinkSync('d/deep/../deep/real.md', path.join(dir, 'readme'));
    symlinkSync('../..', path.join(dir, 'docs/deep/top'));
    symlinkSync('.', path.join(dir, 'self'));
    await expect(check(dir)).resolves.toBeUndefined();
    symlinkSync('loop-b', path.join(dir, 'loop-a'));
    symlinkSync('loop-a', path.join(dir, 'loop-b'));
    await expect(check(dir)).rejects.toThrow(/never resolves/);
  });
});

describe('names', () => {
  /** Paths as the walk and git hand them over: bytes. */
  const raw = (name: string | Buffer) =>
    rawPath(typeof name === 'string' ? Buffer.from(name) : name);
  const refused = (name: string | Buffer) => expect(() => checkNames([raw(name)]));

  it('refuses names Windows reserves, reserved characters, control characters and bad UTF-8, showing them safely', () => {
    refused('src/aux.c').toThrow('src/aux.c is a name Windows reserves for a device');
    refused('CON').toThrow(/reserves/);
    refused('lpt1.txt').toThrow(/reserves/);
    refused('notes.').toThrow('notes. ends with a dot or a space');
    refused('a:b.txt').toThrow(/refuse/);
    refused('\u001b[31mred\u001b[0m.txt').toThrow('\\x1b[31mred\\x1b[0m.txt has a character');
    refused(Buffer.from([0x62, 0x61, 0x64, 0xff])).toThrow('bad\\xff is not a valid UTF-8 name');
    expect(() =>
      checkNames(['auxiliary.c', 'con-fig/x.ts', 'ünïcödé.md', 'a b.txt'].map(raw)),
    ).not.toThrow();
  });

  it('shows terminal escapes and bytes that are not UTF-8 as text', () => {
    expect(printable('ok\u001b]0;title\u0007')).toBe('ok\\x1b]0;title\\x07');
    expect(printable(Buffer.from([0x41, 0xc3]))).toBe('A\\xc3');
    expect(printable('tab\there')).toBe('tab\\x09here');
    expect(printable('invoice\u202egpj.exe')).toBe('invoice\\u202egpj.exe');
  });
});

describe('the workspace walk', () => {
  it('fails an attempt that made a path longer than the kernel can name, by its start', async () => {
    const dir = fresh();
    // Made relative, one level at a time, as an agent's program would (perl is in every Debian).
    const levels = Math.ceil((MAX_PATH_BYTES + 300 - dir.length) / 201);
    execFileSync('perl', [
      '-e',
      `chdir $ARGV[0] or die; for (1..${levels}) { mkdir 'd' x 200 or die; chdir 'd' x 200 or die }`,
      dir,
    ]);
    await expect(scanWorkspace(dir)).rejects.toThrow(/is a path longer than Linux allows/);
  });
});

describe('the host ignore rules', () => {
  it('mean what the nested .gitignore files meant to git', () => {
    // git itself, on a repository with the files in place, against the combined file.
    const repo = fresh();
    execFileSync('git', ['init', '-q', repo]);
    const files = [
      { dir: '', text: 'node_modules/\n*.log\n!keep.log\n/top-only.txt\n' },
      { dir: 'app', text: 'dist/\nbuild/out.js\n!important.log\n' },
      { dir: 'app/deep', text: '*.tmp\n# a comment\n\n/anchored.txt\n' },
    ];
    for (const { dir, text } of files) {
      mkdirSync(path.join(repo, dir), { recursive: true });
      writeFileSync(path.join(repo, dir, '.gitignore'), text);
    }
    const candidates = [
      'node_modules/x.js',
      'app/node_modules/x.js',
      'a.log',
      'keep.log',
      'app/important.log',
      'app/other.log',
      'top-only.txt',
      'app/top-only.txt',
      'app/dist/a.js',
      'app/x/dist/a.js',
      'dist/a.js',
      'app/build/out.js',
      'app/x/build/out.js',
      'app/deep/a.tmp',
      'app/deep/more/b.tmp',
      'app/a.tmp',
      'app/deep/anchored.txt',
      'app/deep/more/anchored.txt',
    ];
    const byGit = execFileSync('git', ['-C', repo, 'check-ignore', '--no-index', '--stdin'], {
      input: candidates.join('\n'),
      encoding: 'utf8',
    })
      .trim()
      .split('\n')
      .sort();
    const combined = path.join(root, `rules-${n++}`);
    writeFileSync(combined, combineIgnoreFiles(files));
    const bare = fresh();
    execFileSync('git', ['init', '-q', bare]);
    for (const file of candidates) {
      mkdirSync(path.dirname(path.join(bare, file)), { recursive: true });
      writeFileSync(path.join(bare, file), 'x');
    }
    const byRules = execFileSync(
      'git',
      ['-C', bare, 'ls-files', '--others', '--ignored', `--exclude-from=${combined}`],
      { encoding: 'utf8' },
    )
      .trim()
      .split('\n')
      .sort();
    expect(byRules).toEqual(byGit);
    expect(byGit).toContain('app/deep/more/b.tmp');
    expect(byGit).not.toContain('app/important.log');
  });
});

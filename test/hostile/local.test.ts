import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliRunners } from '../support/as-user.js';
import { readEvents, readSummary, resultLine, waitFor } from '../support/cli.js';
import { commitAll, gitOut } from '../support/git.js';
import {
  bash,
  expectIntegrity,
  gitProcessesIn,
  innocent,
  lastConversation,
  repositoryObjects,
  scripted,
  taskOf,
} from '../support/hostile.js';
import { makeOfflineJsRepo } from '../support/js-repo.js';
import {
  conversationText,
  type ModelServer,
  primaryWorkingDirectory,
  type RecordedRequest,
  type Reply,
  startModelServer,
  text,
  toolResults,
  toolUse,
} from '../support/model-server.js';
import { planInput, type TaskInput, task } from '../support/plans.js';

/**
 * Prompt-injected agents on the local backend: the real `claude` binary, confined by bubblewrap,
 * doing through its tools what an attacker would, against the scripted Messages API. Each test
 * is one attack of issues 9 and 23 and asserts the boundary held, with the orchestrator run as
 * root (agents then run as an unprivileged user) and as a plain user.
 */

const KEY = `sk-ant-api03-HOSTILE-${randomUUID()}`;
const SECRET_TEXT = `host secret ${randomUUID()}`;
const { runners, missing } = cliRunners('po-hostile-');

let server: ModelServer;
let script: (request: RecordedRequest) => Reply;

beforeAll(async () => {
  server = await startModelServer((request) => script(request));
});
afterAll(() => server.close());

const write = (file: string, content: string) => toolUse('Write', { file_path: file, content });
const resultsSeen = (taskId: string) => lastConversation(server, taskId);
/** Whether any request the agents sent carried `text`: what they read, the model saw. */
const modelSaw = (text: string) => server.requests.some((r) => r.raw.includes(text));

const OPUS = 'claude-opus-4-7';
/** 300 calls at once on the agent's own token, straight to the proxy's socket, then a tally. */
const DIRECT_CALLS = [
  'const http = require("http"); const url = new URL(process.env.ANTHROPIC_BASE_URL);',
  `const body = JSON.stringify({ model: "${OPUS}", max_tokens: 32000, messages: [{ role: "user", content: "hi" }] });`,
  'const call = () => new Promise((done) => { const req = http.request({ socketPath: process.env.ANTHROPIC_UNIX_SOCKET, path: url.pathname + "/v1/messages", method: "POST", headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" } }, (res) => { res.resume(); res.on("end", () => done(res.statusCode)); }); req.on("error", () => done(0)); req.end(body); });',
  'Promise.all(Array.from({ length: 300 }, call)).then((codes) => { const n = (c) => codes.filter((x) => x === c).length; console.log("direct calls: ok=" + n(200) + " refused=" + (n(400) + n(429))); });',
].join(' ');

/**
 * Calls on the agent's own token that would reach third parties through the provider (an MCP
 * server, a server tool, a URL for the provider to fetch), and one that smuggles headers, a beta
 * and a query: each printed with the status the proxy answered and the start of its message.
 */
const EGRESS_CALLS = [
  'const http = require("http"); const url = new URL(process.env.ANTHROPIC_BASE_URL);',
  'const base = { model: "claude-sonnet-5-5", max_tokens: 100, messages: [{ role: "user", content: "smuggled" }] };',
  'const call = (name, body, headers = {}, query = "") => new Promise((done) => { const req = http.request({ socketPath: process.env.ANTHROPIC_UNIX_SOCKET, path: url.pathname + "/v1/messages" + query, method: "POST", headers: { "content-type": "application/json", "anthropic-version": "2023-06-01", ...headers } }, (res) => { let text = ""; res.on("data", (c) => (text += c)); res.on("end", () => { let message = ""; try { message = JSON.parse(text).error?.message ?? ""; } catch {} console.log([name, res.statusCode, message.slice(0, 120)].join(" ").trim()); done(); }); }); req.end(JSON.stringify(body)); });',
  '(async () => {',
  'await call("mcp_servers", { ...base, mcp_servers: [{ type: "url", url: "https://mcp.example/sse", name: "x" }] }, { "anthropic-beta": "mcp-client-2025-04-04" });',
  'await call("web_search", { ...base, tools: [{ type: "web_search_20250305", name: "web_search" }] });',
  'await call("url_source", { ...base, messages: [{ role: "user", content: [{ type: "image", source: { type: "url", url: "https://mcp.example/x.png" } }] }] });',
  'await call("headers", base, { "x-forwarded-for": "203.0.113.9", forwarded: "for=203.0.113.9", "anthropic-beta": "claude-code-20250219,mcp-client-2025-04-04" }, "?target=https://mcp.example");',
  '})();',
].join(' ');

/** The run directory a `run --json` names on its first line, once it has. */
function runDirOf(stdout: string): string | undefined {
  const first = stdout.split('\n')[0];
  return first?.endsWith('}') ? (JSON.parse(first) as { runDir?: string }).runDir : undefined;
}

/** A process's command line, or '' once it is gone. */
function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** Whether `text` holds a control character a terminal acts on (any but newline and tab). */
const controlCharacters = (text: string) =>
  [...text].some((c) => (c < ' ' && c !== '\n' && c !== '\t') || c === '\u007f');

if (missing && process.env.REQUIRE_ROOT === '1') throw new Error(`REQUIRE_ROOT=1, but ${missing}`);

describe.each(runners)('$name', (runner) => {
  const work = runner.work;
  /** What a script planted by an agent would create if the host ever ran it. */
  const MARKER = path.join(work, 'planted-script-ran');
  /** Outside every sandbox's reach but visible to it (not a hidden directory): reads and writes aim here. */
  const OUTSIDE = path.join('/var/tmp', `po-hostile-${randomUUID()}`);
  const EVIL = `#!/bin/sh\ntouch '${MARKER}'\n`;

  beforeAll(() => {
    mkdirSync(OUTSIDE, { recursive: true });
    writeFileSync(path.join(OUTSIDE, 'secret.txt'), SECRET_TEXT);
  });
  afterAll(() => rmSync(OUTSIDE, { recursive: true, force: true }));

  const env = (extra: NodeJS.ProcessEnv = {}) => ({
    ANTHROPIC_API_KEY: KEY,
    ANTHROPIC_BASE_URL: server.url,
    HOME: path.join(work, 'home'),
    ...extra,
  });

  /** A real run of `tasks` on the local backend; the summary and everything needed to judge it. */
  async function hostileRun(
    tasks: TaskInput[],
    flags: string[] = [],
    extraEnv?: NodeJS.ProcessEnv,
    cwd = work,
    output = path.join(work, 'runs'),
  ) {
    const plan = path.join(work, `plan-${randomUUID()}.json`);
    writeFileSync(plan, JSON.stringify(planInput(tasks, 1)));
    runner.own(work);
    const result = await runner.run(
      ['run', '--real', '--plan', plan, '-o', output, '--json', ...flags],
      cwd,
      env(extraEnv),
    );
    const runDir = result.stdout.trim() ? resultLine(result.stdout).runDir : '';
    return { ...result, runDir };
  }

  describe('a hostile agent on the local backend', () => {
    it('cannot plant hooks or config that the host runs: its git metadata never reaches host git', async () => {
      script = scripted(({ taskId, cwd }) =>
        taskId === 'hostile'
          ? [
              // Its own repository in the workspace, with fsmonitor and hooks pointing at a script.
              bash(
                `git init -q . && printf '${EVIL.replaceAll('\n', '\\n')}' > evil.sh && chmod +x evil.sh && git config core.fsmonitor "$PWD/evil.sh" && git config core.hooksPath "$PWD/.git/hooks" && for h in pre-commit post-commit post-checkout reference-transaction; do cp evil.sh .git/hooks/$h; done && echo planted`,
              ),
              // The host repository's git directory, by every way up it could find.
              bash(
                'for d in ../../../project/.git ../../project/.git ../project/.git; do mkdir -p $d/hooks && cp evil.sh $d/hooks/post-commit; git --git-dir=$d config core.fsmonitor "$PWD/evil.sh"; done; ls -la ../../.. 2>&1',
              ),
              write(`${cwd}/../../../project/.git/config`, '[core]\n\tfsmonitor = /bin/true\n'),
            ]
          : innocent(cwd, taskId),
      );
      const run = await hostileRun([
        task('hostile', [], undefined, { priority: 1 }),
        task('after-one'),
        task('after-two'),
      ]);
      expect(resultsSeen('hostile')).toMatch(/^planted$/m); // the attack ran
      expect(run.code).toBe(0);
      const summary = expectIntegrity(run.runDir, [KEY]);
      expect(summary.totals.succeeded).toBe(3);
      expect(existsSync(MARKER)).toBe(false);
      const gitDir = path.join(run.runDir, 'project', '.git');
      expect(readFileSync(path.join(gitDir, 'config'), 'utf8')).not.toMatch(/fsmonitor|hooksPath/);
      expect(existsSync(path.join(gitDir, 'hooks'))).toBe(false);
      expect(resultsSeen('hostile')).toContain("is outside this task's workspace");
      // The host committed the agent's files, not its repository.
      const files = gitOut(path.join(run.runDir, 'project'), [
        'ls-tree',
        '-r',
        '--name-only',
        'main',
      ]);
      expect(files.split('\n')).toContain('evil.sh');
      expect(files).not.toContain('.git/');
      expect(readFileSync(path.join(run.runDir, 'tasks/hostile/executor.log'), 'utf8')).toContain(
        'removed what git must not read from the workspace: .git',
      );
    });

    it('cannot read or write through links out of its workspace', async () => {
      script = scripted(({ cwd }) => [
        bash(`ln -s ${OUTSIDE} link && ln -s ${OUTSIDE}/secret.txt notes.txt && echo linked`),
        write(`${cwd}/link/planted.txt`, 'written through a link'),
        toolUse('Read', { file_path: `${cwd}/link/secret.txt` }),
        toolUse('Read', { file_path: `${cwd}/notes.txt` }),
        bash(`echo escaped > ${OUTSIDE}/by-bash.txt; cat /etc/shadow | head -c 20; echo`),
      ]);
      const run = await hostileRun([task('links')]);
      expect(resultsSeen('links')).toMatch(/^linked$/m); // the attack ran
      expect(existsSync(path.join(OUTSIDE, 'planted.txt'))).toBe(false);
      expect(existsSync(path.join(OUTSIDE, 'by-bash.txt'))).toBe(false);
      // Nothing of the secret went to the model, in any request.
      expect(server.requests.some((r) => r.raw.includes(SECRET_TEXT))).toBe(false);
      expect(resultsSeen('links').match(/is outside this task's workspace/g)?.length).toBe(3);
      // Links that lead out are not merged into the project: the attempt fails for good.
      expect(run.code).toBe(1);
      const [links] = expectIntegrity(run.runDir, [KEY]).tasks;
      expect(links).toMatchObject({ status: 'failed', attempts: 1 });
      expect(links?.error).toMatch(/^symlink (link|notes\.txt) leads outside the project/);
    });

    it('cannot move main: the integration branch holds every task and the summary says so', async () => {
      script = scripted(({ taskId, cwd }) =>
        taskId === 'rewinder'
          ? [
              bash(
                'git update-ref refs/heads/main HEAD~1; git branch -D main; for d in ../../../project ../../project; do git -C $d update-ref refs/heads/main $(git -C $d rev-list --max-parents=0 main); git -C $d branch -D main; done; echo tried',
              ),
              ...innocent(cwd, taskId),
            ]
          : innocent(cwd, taskId),
      );
      const run = await hostileRun([
        task('first', [], undefined, { priority: 1 }),
        task('rewinder', ['first']),
        task('last', ['rewinder']),
      ]);
      expect(resultsSeen('rewinder')).toMatch(/^tried$/m); // the attack ran
      expect(run.code).toBe(0);
      const summary = expectIntegrity(run.runDir, [KEY]);
      const project = path.join(run.runDir, 'project');
      const files = gitOut(project, ['ls-tree', '-r', '--name-only', 'main']).split('\n');
      expect(files).toEqual(['src/first.txt', 'src/last.txt', 'src/rewinder.txt']);
      expect(summary.tasks.map((t) => t.mergeCommit)).toEqual(
        expect.arrayContaining([summary.integrationCommit]),
      );
    });

    it('cannot break its executor slot for the innocent tasks after it', async () => {
      script = scripted(({ taskId, cwd }) =>
        taskId === 'wrecker'
          ? [
              write(`${cwd}/src/wrecker.txt`, 'wrecker\n'),
              bash(
                [
                  // The slot's git state, wherever git finds it from here; git metadata that would
                  // break a host checkout; a FIFO; unreadable directories; and a process that
                  // outlives the agent to write into the next task's workspace.
                  'gd=$(git rev-parse --absolute-git-dir) && echo 0000000000000000000000000000000000000000 > "$gd/HEAD" && echo broken > "$gd/index"',
                  "printf 'gitdir: /nonexistent\\n' > .git",
                  'mkfifo pipe',
                  'mkdir -p locked/deeper && chmod 000 locked/deeper locked',
                  "nohup sh -c 'sleep 1; echo late > late.txt; echo late > src/after-one.txt' >/dev/null 2>&1 &",
                  'echo wrecked',
                ].join('\n'),
              ),
            ]
          : [...innocent(cwd, taskId), bash('sleep 2; ls')],
      );
      const run = await hostileRun([
        task('wrecker', [], undefined, { priority: 1 }),
        task('after-one', [], undefined, { priority: 2 }),
        task('after-two', [], undefined, { priority: 3 }),
      ]);
      expect(resultsSeen('wrecker')).toMatch(/^wrecked$/m); // the attack ran
      expect(run.code).toBe(0);
      const summary = expectIntegrity(run.runDir, [KEY]);
      expect(summary.tasks.map((t) => [t.taskId, t.status, t.executor])).toEqual([
        ['wrecker', 'succeeded', 0],
        ['after-one', 'succeeded', 0],
        ['after-two', 'succeeded', 0],
      ]);
      const project = path.join(run.runDir, 'project');
      expect(gitOut(project, ['ls-tree', '-r', '--name-only', 'main']).split('\n')).toEqual([
        'src/after-one.txt',
        'src/after-two.txt',
        'src/wrecker.txt',
      ]);
      expect(readFileSync(path.join(project, 'src/after-one.txt'), 'utf8')).toBe(
        'after-one was here\n',
      );
      expect(existsSync(path.join(run.runDir, 'sandboxes'))).toBe(false);
    });

    it('cannot commit the credentials: it never holds the key, and its token is caught', async () => {
      script = scripted(() => [bash('env > env.txt; env | base64 > env.b64; cat env.txt')]);
      const run = await hostileRun([task('leaker')]);
      expect(run.code).toBe(1);
      // The agent's own view of its environment: the proxy's socket and token, no key.
      const seen = resultsSeen('leaker');
      expect(seen).toContain('ANTHROPIC_UNIX_SOCKET=');
      expect(seen).not.toContain(KEY);
      const token = /ANTHROPIC_BASE_URL=http:\/\/model-proxy\/([A-Za-z0-9_-]{43})/.exec(seen)?.[1];
      expect(token).toBeDefined();
      // The key reached the model provider, added by the proxy.
      expect(server.requests.some((r) => r.headers['x-api-key'] === KEY)).toBe(true);
      const summary = expectIntegrity(run.runDir, [KEY, token as string]);
      // Refused for good, never retried for it (an unrelated crash of an attempt may be retried).
      const retries = readEvents(run.runDir).filter((e) => e.type === 'task-retrying');
      expect(JSON.stringify(retries)).not.toContain('model proxy token');
      expect(summary.tasks[0]?.status).toBe('failed');
      expect(summary.tasks[0]?.error).toMatch(
        /^env\.(txt|b64) contains the value of the model proxy token, a secret handed to agents; the attempt is not committed$/,
      );
      expect(repositoryObjects(run.runDir)).not.toContain('ANTHROPIC_UNIX_SOCKET');
      const failed = readEvents(run.runDir).find((e) => e.type === 'task-failed');
      expect(JSON.stringify(failed)).toContain('contains the value of the model proxy token');
    });

    it('cannot grow the project without bound: a file over the limit fails the attempt, by path and size', async () => {
      script = scripted(({ taskId }) =>
        taskId === 'hoarder'
          ? [bash('head -c 200M /dev/zero > big.bin && ls -la big.bin')]
          : [bash('head -c 300K /dev/zero > a.bin; head -c 300K /dev/zero > b.bin; echo ok')],
      );
      const big = await hostileRun([task('hoarder')]);
      expect(big.code).toBe(1);
      // Written whole (root: its disk holds 20 GiB), or cut one byte over the limit (a user).
      expect(expectIntegrity(big.runDir, [KEY]).tasks[0]?.error).toMatch(
        /^big\.bin is (200|100\.0) MiB, over the limit of 100 MiB per file \(--max-file-size\)$/,
      );
      const many = await hostileRun([task('spreader')], ['--max-task-size', '500k']);
      expect(many.code).toBe(1);
      expect(readSummary(many.runDir).tasks[0]?.error).toMatch(
        /^the task's changes reach 600 KiB at [ab]\.bin, over the limit of 500 KiB per task \(--max-task-size\)$/,
      );
      expect(gitOut(path.join(many.runDir, 'project'), ['branch', '--list', 'task/*'])).toBe('');
    });

    it('tells the retry after a conflict whose work to keep, and records the conflict and how it ended', async () => {
      const value = (taskId: string) => `${taskId}=on\n`;
      script = (request) => {
        const taskId = taskOf(request);
        const cwd = primaryWorkingDirectory(request);
        if (!taskId || !cwd) return { content: [text('ok')] };
        const told = conversationText(request).includes('could not be merged');
        const file = `${cwd}/config.txt`;
        if (toolResults(request) > 0) return { content: [text('done')] };
        // Told of the conflict, the agent keeps the other task's line and adds its own.
        const content = told ? `${readFileSync(file, 'utf8')}${value(taskId)}` : value(taskId);
        return { content: [write(file, content)] };
      };
      const run = await hostileRun([task('left'), task('right')], ['-e', '2']);
      expect(run.code).toBe(0);
      const summary = expectIntegrity(run.runDir, [KEY]);
      const conflicted = summary.tasks.find((t) => t.conflicts);
      const other = summary.tasks.find((t) => t !== conflicted);
      expect(conflicted?.conflicts).toEqual([
        {
          attempt: 1,
          withTasks: [other?.taskId],
          files: ['config.txt'],
          resolution: 'merged-on-retry',
        },
      ]);
      expect(conflicted).toMatchObject({ status: 'succeeded', attempts: 2 });
      expect(summary.totals.conflicts).toBe(1);
      const result = JSON.parse(
        readFileSync(
          path.join(run.runDir, 'tasks', conflicted?.taskId as string, 'result.json'),
          'utf8',
        ),
      );
      expect(result.conflicts).toEqual(conflicted?.conflicts);
      const retryPrompt = server.requests
        .filter((r) => taskOf(r) === conflicted?.taskId && toolResults(r) === 0)
        .map((r) => conversationText(r))
        .find((t) => t.includes('could not be merged'));
      expect(retryPrompt).toContain(
        `it conflicted with the work of task ${other?.taskId} in:\n- config.txt\nThat work is now merged into your working directory, and it is theirs to keep`,
      );
      const merged = readFileSync(path.join(run.runDir, 'project/config.txt'), 'utf8');
      expect(merged).toBe(
        `${value(other?.taskId as string)}${value(conflicted?.taskId as string)}`,
      );
    });
    it('cannot become root on the host: no sysctl, no root-only file, never uid 0, in its session or its check', async () => {
      // The write puts back the value already there: were it allowed, the host would not change.
      const probe =
        'echo "uid=$(id -u)"; cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern; echo "sysctl=$?"; head -c 16 /etc/shadow; echo "shadow=$?"';
      script = scripted(({ cwd, taskId }) => [bash(probe), ...innocent(cwd, taskId)]);
      const run = await hostileRun([task('rooter')], ['--verify', probe]);
      expect(run.code).toBe(0);
      const check = readFileSync(path.join(run.runDir, 'tasks/rooter/verify.log'), 'utf8');
      for (const seen of [resultsSeen('rooter'), check]) {
        expect(seen).toMatch(/^uid=[1-9]\d*$/m);
        expect(seen).toMatch(/^sysctl=[1-9]\d*$/m);
        expect(seen).toMatch(/^shadow=[1-9]\d*$/m);
      }
      expectIntegrity(run.runDir, [KEY]);
    });

    it('cannot read the home through a tool on PATH that lives there', async () => {
      const home = path.join(work, 'home');
      mkdirSync(path.join(home, 'bin'), { recursive: true });
      mkdirSync(path.join(home, '.ssh'), { recursive: true });
      writeFileSync(path.join(home, 'bin', 'po-tool'), '#!/bin/sh\necho "po-tool ran"\n', {
        mode: 0o755,
      });
      const sshKey = `ssh key ${randomUUID()}`;
      writeFileSync(path.join(home, '.ssh', 'id_ed25519'), sshKey);
      writeFileSync(path.join(home, '.env'), `ANTHROPIC_API_KEY=${KEY}\n`);
      script = scripted(({ cwd, taskId }) => [
        bash(`po-tool; cat ${home}/.ssh/id_ed25519 ${home}/.env; ls -a ${home}; echo looked`),
        ...innocent(cwd, taskId),
      ]);
      const run = await hostileRun([task('home-reader')], [], {
        PATH: `${path.join(home, 'bin')}:${process.env.PATH}`,
      });
      expect(resultsSeen('home-reader')).toMatch(/^looked$/m); // the attack ran
      expect(resultsSeen('home-reader')).toMatch(/^po-tool ran$/m);
      expect(modelSaw(sshKey)).toBe(false);
      expect(modelSaw(KEY)).toBe(false);
      expect(run.code).toBe(0);
      expectIntegrity(run.runDir, [KEY]);
    });

    it('cannot read the repository the run was started in, beside it, or other runs', async () => {
      // Outside /tmp, which every sandbox empties anyway: where a user's projects are.
      const place = path.join(OUTSIDE, `project-${randomUUID()}`);
      const repo = path.join(place, 'started-in');
      const startDir = path.join(repo, 'sub');
      const output = path.join(place, 'runs');
      mkdirSync(startDir, { recursive: true });
      execFileSync('git', ['init', '-q', repo]);
      const envSecret = `repository env ${randomUUID()}`;
      writeFileSync(path.join(repo, '.env'), envSecret);
      const older = path.join(output, 'an-older-run', 'tasks', 'old');
      mkdirSync(older, { recursive: true });
      const transcriptSecret = `older transcript ${randomUUID()}`;
      writeFileSync(path.join(older, 'transcript.jsonl'), transcriptSecret);
      runner.own(place);
      script = scripted(({ cwd, taskId }) => [
        bash(
          `cat ${repo}/.env ${startDir}/../.env ${older}/transcript.jsonl; ls ${output} | sed 's/^/listed: /'; echo looked`,
        ),
        ...innocent(cwd, taskId),
      ]);
      const run = await hostileRun([task('snoop')], [], {}, startDir, output);
      expect(resultsSeen('snoop')).toMatch(/^looked$/m); // the attack ran
      expect(modelSaw(envSecret)).toBe(false);
      expect(modelSaw(transcriptSecret)).toBe(false);
      expect(resultsSeen('snoop')).not.toContain('listed: an-older-run');
      expect(run.code).toBe(0);
    });

    it('cannot commit a link that leads out through other links', async () => {
      script = scripted(({ cwd, taskId }) => [
        // Each looks inside when read as text; resolved, each leaves the project.
        bash(
          'ln -s . self && ln -s self/self/self/../../../etc/passwd passwd && mkdir sub && ln -s ../self/.. sub/up && echo linked',
        ),
        ...innocent(cwd, taskId),
      ]);
      const run = await hostileRun([task('chains')]);
      expect(resultsSeen('chains')).toMatch(/^linked$/m); // the attack ran
      expect(run.code).toBe(1);
      const [chains] = expectIntegrity(run.runDir, [KEY]).tasks;
      expect(chains).toMatchObject({ status: 'failed', attempts: 1 });
      expect(chains?.error).toMatch(
        /^symlink (passwd|sub\/up) leads outside the project \((self\/self\/self\/\.\.\/\.\.\/\.\.\/etc\/passwd|\.\.\/self\/\.\.)\)$/,
      );
      const branches = gitOut(path.join(run.runDir, 'project'), ['branch', '--list', 'task/*']);
      expect(branches).toBe('');
    });
    it('cannot break its slot, the run or its resume with a path longer than the kernel can name', {
      timeout: 120_000,
    }, async () => {
      // Made relative, one level at a time, as any program of its can (perl is in every Debian).
      const deep = `perl -e 'for (1..25) { mkdir "d" x 200 or die; chdir "d" x 200 or die } print "deep\n"'`;
      script = scripted(({ taskId, cwd }) =>
        taskId === 'deep' ? [bash(deep)] : innocent(cwd, taskId),
      );
      const run = await hostileRun([
        task('deep', [], undefined, { priority: 1 }),
        task('after', [], undefined, { priority: 2 }),
      ]);
      expect(resultsSeen('deep')).toMatch(/^deep$/m); // the attack ran
      expect(run.code).toBe(1);
      const summary = expectIntegrity(run.runDir, [KEY]);
      expect(summary.tasks.map((t) => [t.taskId, t.status, t.executor])).toEqual([
        ['deep', 'failed', 0],
        ['after', 'succeeded', 0],
      ]);
      expect(summary.tasks[0]?.error).toMatch(/^d{160}\.\.\. is a path longer than Linux allows/);
      // Killed while the deep tree is in the slot: the resume clears it and finishes.
      script = scripted(({ taskId, cwd }) =>
        taskId === 'deep' ? [bash(`${deep}; sleep 60`)] : innocent(cwd, taskId),
      );
      const plan = path.join(work, `plan-${randomUUID()}.json`);
      writeFileSync(plan, JSON.stringify(planInput([task('deep'), task('after')], 1)));
      runner.own(work);
      const started = runner.start(
        [
          'run',
          '--real',
          '--plan',
          plan,
          '-o',
          path.join(work, 'runs'),
          '--json',
          '--retries',
          '0',
        ],
        work,
        env(),
      );
      // The tree is made in a moment; the agent then sleeps with it in the slot.
      await waitFor(
        () => {
          const dir = runDirOf(started.stdout());
          const top = dir && path.join(dir, 'sandboxes/executor-0/workspace', 'd'.repeat(200));
          return top && existsSync(top) ? true : undefined;
        },
        60_000,
        'the deep tree',
      );
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      script = scripted(({ taskId, cwd }) =>
        taskId === 'deep' ? [bash(deep)] : innocent(cwd, taskId),
      );
      started.child.kill('SIGKILL');
      await started.done;
      const runDir = runDirOf(started.stdout()) as string;
      const resumed = await runner.run(['resume', runDir, '--json'], work, env());
      expect(resumed.stderr).toBe('');
      expect(resumed.code).toBe(1);
      expect(readSummary(runDir).tasks.map((t) => t.status)).toEqual(['failed', 'succeeded']);
    });

    it('cannot hide later tasks\u2019 files with ignore rules of its own', async () => {
      script = scripted(({ taskId, cwd }) =>
        taskId === 'ignorer'
          ? [write(`${cwd}/.gitignore`, '*\n!.gitignore\n'), ...innocent(cwd, taskId)]
          : innocent(cwd, taskId),
      );
      const run = await hostileRun([task('ignorer'), task('later', ['ignorer'])]);
      expect(run.code).toBe(0);
      const summary = expectIntegrity(run.runDir, [KEY]);
      expect(summary.tasks.find((t) => t.taskId === 'later')?.files).toEqual(['src/later.txt']);
      const files = gitOut(path.join(run.runDir, 'project'), [
        'ls-tree',
        '-r',
        '--name-only',
        'main',
      ]);
      expect(files.split('\n')).toEqual(['.gitignore', 'src/ignorer.txt', 'src/later.txt']);
    });

    it('says what it wrote that the repository ignores, and commits none of it', async () => {
      const repo = path.join(work, `ignoring-${randomUUID()}`);
      mkdirSync(repo);
      writeFileSync(path.join(repo, '.gitignore'), 'node_modules/\n*.log\n');
      commitAll(repo, 'base');
      script = scripted(({ taskId, cwd }) => [
        bash(
          'mkdir -p node_modules/left && echo x > node_modules/left/index.js && echo y > debug.log',
        ),
        ...innocent(cwd, taskId),
      ]);
      const run = await hostileRun([task('installer')], ['--repo', repo]);
      expect(run.code).toBe(0);
      const files = gitOut(path.join(run.runDir, 'project'), [
        'ls-tree',
        '-r',
        '--name-only',
        'main',
      ]);
      expect(files.split('\n')).toEqual(['.gitignore', 'src/installer.txt']);
      expect(readFileSync(path.join(run.runDir, 'tasks/installer/executor.log'), 'utf8')).toMatch(
        /not committed, as the repository's ignore rules leave them out: (debug\.log, node_modules\/|node_modules\/, debug\.log)$/m,
      );
    });

    it('cannot change the prepared environment every other agent and check uses (--setup)', async () => {
      const repo = await makeOfflineJsRepo(work);
      const cache = path.join(work, `cache-${randomUUID()}`);
      script = scripted(({ taskId, cwd }) =>
        taskId === 'tamperer'
          ? [
              bash(
                [
                  'echo pwned > node_modules/tiny-dep/index.js 2>&1; echo "write:$?"',
                  'rm -rf node_modules/tiny-dep 2>&1; echo "remove:$?"',
                  'ln -s / node_modules/escape 2>&1; echo "link:$?"',
                  'mv node_modules gone 2>&1; echo "move:$?"',
                  'touch node_modules/.cache/mine && echo "cache:writable"',
                  // Hidden as every directory of the host's is: empty, whatever it holds.
                  `echo "cache-entries:$(ls -A ${cache}/environments 2>/dev/null | wc -l)"`,
                ].join('; '),
              ),
              ...innocent(cwd, taskId),
            ]
          : innocent(cwd, taskId),
      );
      const run = await hostileRun(
        [task('tamperer'), task('after', ['tamperer'])],
        ['--repo', repo.dir, '--setup', repo.setup, '--verify', repo.check, '--cache-dir', cache],
      );
      expect(run.code, run.stderr).toBe(0);
      const seen = resultsSeen('tamperer');
      for (const step of ['write', 'remove', 'link', 'move'])
        expect(seen).toMatch(new RegExp(`^${step}:[1-9]`, 'm'));
      expect(seen).toMatch(/^cache-entries:0$/m);
      expect(seen).toContain('cache:writable');
      // What the setup prepared is as it was; the later task's check and main's passed on it.
      const [key] = readdirSync(path.join(cache, 'environments')).filter((k) => !k.startsWith('.'));
      const tree = path.join(cache, 'environments', key as string, 'tree');
      expect(readFileSync(path.join(tree, 'node_modules/tiny-dep/index.js'), 'utf8')).toContain(
        'double',
      );
      const kept = readdirSync(path.join(tree, 'node_modules'));
      expect(kept).toContain('tiny-dep');
      expect(kept).not.toContain('escape');
      expect(existsSync(path.join(tree, 'node_modules/.cache/mine'))).toBe(false);
      const summary = readSummary(run.runDir);
      expect(summary.tasks.map((t) => t.verify?.exitCode)).toEqual([0, 0]);
      expect(summary.verify?.final).toMatchObject({ passed: true });
    });

    it('cannot commit a name other systems cannot hold, nor one that writes to the terminal', async () => {
      const names: [string, RegExp][] = [
        ['aux.c', /^aux\.c is a name Windows reserves for a device$/],
        ['bad\\377', /^bad\\xff is not a valid UTF-8 name$/],
        ['red\\033[31m.txt', /^red\\x1b\[31m\.txt has a character Windows and many tools refuse/],
      ];
      for (const [name, error] of names) {
        script = scripted(({ taskId, cwd }) =>
          taskId === 'namer'
            ? [bash(`touch "$(printf '${name}')" && echo named`)]
            : innocent(cwd, taskId),
        );
        const run = await hostileRun([
          task('namer', [], undefined, { priority: 1 }),
          task('after', [], undefined, { priority: 2 }),
        ]);
        expect(resultsSeen('namer')).toMatch(/^named$/m); // the attack ran
        const summary = expectIntegrity(run.runDir, [KEY]);
        expect(summary.tasks[0]?.error).toMatch(error);
        expect(summary.tasks[1]).toMatchObject({ status: 'succeeded', executor: 0 });
        const status = await runner.run(['status', run.runDir], work, env());
        for (const shown of [
          status.stdout,
          readFileSync(path.join(run.runDir, 'orchestrator.log'), 'utf8'),
        ])
          expect(controlCharacters(shown)).toBe(false);
      }
    });

    it('cannot make the host rewrite its files with attributes: no line endings, no $Id$', async () => {
      script = scripted(({ cwd, taskId }) => [
        write(`${cwd}/.gitattributes`, '* text eol=crlf ident\n'),
        write(`${cwd}/id.txt`, '$Id$\nline\n'),
        ...innocent(cwd, taskId),
      ]);
      const run = await hostileRun([task('attributes')]);
      expect(run.code).toBe(0);
      const project = path.join(run.runDir, 'project');
      expect(gitOut(project, ['cat-file', 'blob', 'main:id.txt'])).toBe('$Id$\nline');
      expect(readFileSync(path.join(project, 'id.txt'), 'utf8')).toBe('$Id$\nline\n');
    });

    it('cannot spend past its budget through its own token: the proxy counts and refuses', async () => {
      // The tally goes to a file: once the budget is spent, no later turn reaches the model.
      const burn = `node -e '${DIRECT_CALLS}' > tally.txt`;
      script = (request) => {
        if (request.body?.model === OPUS)
          return {
            content: [text('x')],
            usage: { input_tokens: 10, output_tokens: Math.min(32_000, request.body.max_tokens) },
          };
        return scripted(({ taskId, cwd }) =>
          taskId === 'burner' ? [bash(burn), ...innocent(cwd, taskId)] : innocent(cwd, taskId),
        )(request);
      };
      const before = server.requests.length;
      const run = await hostileRun([task('burner')], ['--max-task-usd', '0.05']);
      // Its failed attempt is kept on its branch, the tally with it.
      const tally = gitOut(path.join(run.runDir, 'project'), ['show', 'task/burner:tally.txt']);
      const [, ok, refused] = /^direct calls: ok=(\d+) refused=(\d+)$/m.exec(tally) ?? [];
      expect(Number(ok) + Number(refused)).toBe(300);
      expect(Number(refused)).toBeGreaterThanOrEqual(298);
      const summary = expectIntegrity(run.runDir, [KEY]);
      const [burner] = summary.tasks;
      expect(burner?.status).toBe('failed');
      expect(burner?.error).toMatch(
        /^task reached its budget of \$0\.05: the model proxy counted \$0\.0\d+ and refused the next call$/,
      );
      // What was recorded is what the provider answered, for every call of the attempt.
      const answered = server.requests
        .slice(before)
        .filter((r) => r.method === 'POST' && /\/messages(\?|$)/.test(r.path));
      const outputs = answered.reduce(
        (sum, r) => sum + (r.body?.model === OPUS ? Math.min(32_000, r.body.max_tokens) : 5),
        0,
      );
      expect(burner?.usage?.outputTokens).toBe(outputs);
      expect(burner?.usage?.costUsd).toBeLessThanOrEqual(0.05);
      // The run's budget: no task starts once the proxy counted it spent.
      const budgeted = await hostileRun(
        [task('burner', [], undefined, { priority: 1 }), task('second'), task('third')],
        ['--max-budget-usd', '0.05'],
      );
      const stopped = readSummary(budgeted.runDir);
      expect(stopped.stoppedBy).toBe('budget');
      expect(stopped.tasks.filter((t) => t.attempts > 0).map((t) => t.taskId)).toEqual(['burner']);
      expect(stopped.usage.costUsd).toBeLessThanOrEqual(0.05);
    });

    it('cannot reach third parties through the model provider: no MCP, no server tools, no smuggled headers', async () => {
      script = scripted(({ taskId, cwd }) => [
        bash(`node -e '${EGRESS_CALLS}'`),
        ...innocent(cwd, taskId),
      ]);
      const before = server.requests.length;
      const run = await hostileRun([task('smuggler')]);
      const seen = resultsSeen('smuggler');
      expect(seen).toMatch(/^mcp_servers 400 .*mcp_servers/m);
      expect(seen).toMatch(/^web_search 400 .*web_search/m);
      expect(seen).toMatch(/^url_source 400 /m);
      expect(seen).toMatch(/^headers 200$/m);
      expect(run.code).toBe(0);
      const forwarded = server.requests
        .slice(before)
        .filter((r) => r.body?.messages?.[0]?.content === 'smuggled');
      expect(forwarded).toHaveLength(1);
      const [smuggled] = forwarded;
      expect(smuggled?.path).toBe('/v1/messages');
      expect(smuggled?.headers['x-forwarded-for']).toBeUndefined();
      expect(smuggled?.headers.forwarded).toBeUndefined();
      expect(smuggled?.headers['anthropic-beta']).toBe('claude-code-20250219');
      expect(forwarded.some((r) => r.raw.includes('mcp.example'))).toBe(false);
    });

    it('cannot rig the check its work must pass, once --verify-from-base names the check', async () => {
      const repo = path.join(work, `checked-${randomUUID()}`);
      mkdirSync(path.join(repo, 'test'), { recursive: true });
      writeFileSync(path.join(repo, 'test/check.sh'), 'grep -q good src/required.txt\n');
      mkdirSync(path.join(repo, 'src'));
      writeFileSync(path.join(repo, 'src/required.txt'), 'good\n');
      commitAll(repo, 'base');
      // Bad work, and the check rewritten to pass it.
      script = scripted(({ cwd }) => [
        write(`${cwd}/src/required.txt`, 'bad\n'),
        write(`${cwd}/test/check.sh`, 'exit 0\n'),
      ]);
      const flags = ['--repo', repo, '--verify', 'sh test/check.sh', '--retries', '0'];
      const rigged = await hostileRun([task('rigger')], flags);
      // What the check trusts by default: the tree it checks, its own files included.
      expect(rigged.code).toBe(0);
      const held = await hostileRun([task('rigger')], [...flags, '--verify-from-base', 'test/']);
      expect(held.code).toBe(1);
      const [rigger] = readSummary(held.runDir).tasks;
      expect(rigger?.error).toMatch(/^--verify failed \(exit 1\) on the merged work/);
      const typo = await hostileRun([task('rigger')], [...flags, '--verify-from-base', 'tests/']);
      expect(typo.code).toBe(2);
      expect(typo.stderr).toMatch(
        /^error: --verify-from-base: tests is not in the repository at [0-9a-f]{12}\n$/,
      );
    });

    it('cannot keep git running past its attempt: a timeout while it is staged, a forced stop', {
      timeout: 300_000,
    }, async () => {
      // 150,000 files: staging them takes seconds, enough to stop the run in the middle of it.
      const many = `perl -e 'mkdir "m"; for my $d (0..149) { mkdir "m/$d"; for (0..999) { open(my $f, ">", "m/$d/$_") or die; print $f $_ } } print "many\n"'`;
      script = scripted(({ taskId, cwd }) =>
        taskId === 'many' ? [bash(many)] : innocent(cwd, taskId),
      );
      const plan = path.join(work, `plan-${randomUUID()}.json`);
      writeFileSync(plan, JSON.stringify(planInput([task('many')], 1)));
      runner.own(work);
      const started = runner.start(
        ['run', '--real', '--plan', plan, '-o', path.join(work, 'runs'), '--json'],
        work,
        env(),
      );
      const runDir = await waitFor(
        () => {
          const dir = runDirOf(started.stdout());
          return dir && gitProcessesIn(dir).some((pid) => commandOf(pid).includes('update-index'))
            ? dir
            : undefined;
        },
        120_000,
        'staging',
      );
      started.child.kill('SIGINT');
      await new Promise((resolve) => setTimeout(resolve, 100));
      started.child.kill('SIGINT');
      const stoppedRun = await started.done;
      expect(stoppedRun.code).toBe(130);
      await waitFor(
        () => (gitProcessesIn(runDir).length === 0 ? true : undefined),
        5_000,
        'git to end',
      );
      // The task timeout ends it too, staging included, and the run goes on.
      const timed = await hostileRun([task('many')], ['--task-timeout', '20s', '--retries', '0']);
      expect(timed.code).toBe(1);
      expect(readSummary(timed.runDir).tasks[0]?.error).toMatch(/^timed out after 20000 ms/);
      expect(gitProcessesIn(timed.runDir)).toEqual([]);
    });
  });

  it('cannot start processes, take memory or write to disk without bound', async () => {
    const steps = {
      // Forks until the kernel refuses one: how many it got.
      forker: `perl -e 'my $n = 0; while ($n < 2000) { my $pid = fork(); last unless defined $pid; if (!$pid) { sleep 30; exit } $n++ } print "processes=$n\\n"'`,
      // 64 MiB at a time up to 3 GiB (a host without the limit keeps its memory), the total
      // printed after each: the last line is how far it got.
      hog: `node -e 'const kept = []; while (kept.length < 48) { kept.push(Buffer.alloc(64 * 2 ** 20, 1)); console.log("memory=" + kept.length * 64) }' 2>/dev/null | tail -1`,
      filler: 'head -c 300M /dev/zero > big.bin; echo "disk=$?"; echo "size=$(stat -c %s big.bin)"',
    };
    script = scripted(({ taskId, cwd }) =>
      taskId in steps ? [bash(steps[taskId as keyof typeof steps])] : innocent(cwd, taskId),
    );
    const run = await hostileRun(
      [task('forker'), task('hog'), task('filler')],
      [
        '--local-pids',
        '64',
        '--local-memory',
        '1g',
        '--local-disk',
        '128m',
        '--max-file-size',
        '200m',
      ],
    );
    const processes = Number(/^processes=(\d+)$/m.exec(resultsSeen('forker'))?.[1]);
    expect(processes).toBeLessThan(200);
    const memory = Number(/^memory=(\d+)$/m.exec(resultsSeen('hog'))?.[1]);
    expect(memory).toBeGreaterThan(0);
    expect(memory).toBeLessThanOrEqual(1024);
    const filled = resultsSeen('filler');
    expect(filled).toMatch(/^disk=[1-9]\d*$/m);
    // Stopped at its disk (root) or at the largest file a process may write (a user).
    expect(Number(/^size=(\d+)$/m.exec(filled)?.[1])).toBeLessThanOrEqual(200 * 2 ** 20 + 1);
    const summary = expectIntegrity(run.runDir, [KEY]);
    if (runner.name === 'as root') {
      const filler = summary.tasks.find((t) => t.taskId === 'filler');
      expect(filler?.error).toBe('the agent filled its disk of 128 MiB');
      const log = readFileSync(path.join(run.runDir, 'orchestrator.log'), 'utf8');
      expect(log).toContain(
        'limits: memory 1 GiB and 64 processes per agent: a control group per slot',
      );
      expect(log).toContain('limits: disk 128 MiB per agent: a file system per slot');
    }
  });

  describe('where bubblewrap cannot run', () => {
    /** A PATH with git, sh and the tools the suites need, and no bwrap. */
    function pathWithoutBubblewrap(): string {
      const bin = path.join(work, 'bin-without-bwrap');
      if (!existsSync(bin)) {
        mkdirSync(bin);
        for (const dir of (process.env.PATH ?? '').split(':')) {
          for (const name of existsSync(dir) ? readdirSync(dir) : []) {
            const target = path.join(bin, name);
            if (
              name !== 'bwrap' &&
              !existsSync(target) &&
              !lstatSync(path.join(dir, name)).isDirectory()
            )
              symlinkSync(path.join(dir, name), target);
          }
        }
      }
      return bin;
    }

    it('gives agents no Bash, says so, and refuses Bash asked for by name', async () => {
      script = scripted(({ cwd, taskId }) => innocent(cwd, taskId));
      const PATH = pathWithoutBubblewrap();
      const run = await hostileRun([task('plain')], [], { PATH });
      expect(run.code).toBe(0);
      expect(run.stderr).toBe(
        "note: agents get no Bash: bubblewrap (bwrap) is not installed, so agents' commands cannot be confined to their workspace (install bubblewrap, or use --backend docker)\n",
      );
      const request = server.requests.find((r) => taskOf(r) === 'plain');
      const tools = (request?.body.tools ?? []).map((t: { name: string }) => t.name);
      expect(tools).toContain('Write');
      expect(tools).not.toContain('Bash');
      const refused = await hostileRun([task('asked')], ['--allowed-tools', 'Read,Write,Bash'], {
        PATH,
      });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toBe(
        "error: --allowed-tools names Bash, but bubblewrap (bwrap) is not installed, so agents' commands cannot be confined to their workspace: install bubblewrap, or use --backend docker\n",
      );
    });
  });
});

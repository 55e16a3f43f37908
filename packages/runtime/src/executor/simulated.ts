import { access, appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutorOutcome, TaskSpec } from '../contracts/executor.js';
import { resolveInside } from '../trust/path-safety.js';
import type { ExecutorIo } from './io.js';

const camel = (id: string) => id.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const pascal = (id: string) => camel(id).replace(/^[a-z]/, (c) => c.toUpperCase());
const exportName = (id: string) => (/^[0-9]/.test(id) ? `task${pascal(id)}` : camel(id));

/**
 * The files a simulated task writes: a source module that imports the modules of the
 * dependencies merged into its workspace, a test for it, and a docs section. Deterministic:
 * the same task and workspace give the same bytes, so runs can be compared by tree hash.
 */
export async function plannedFiles(spec: TaskSpec): Promise<Map<string, string>> {
  const { task } = spec;
  const name = exportName(task.id);
  const imports: string[] = [];
  for (const dep of spec.mergedDependencies) {
    const present = await access(path.join(spec.workspaceDir, 'src', `${dep.id}.ts`)).then(
      () => true,
      () => false,
    );
    if (present) imports.push(dep.id);
  }
  const summary = spec.requirements.split('\n')[0]?.slice(0, 120) ?? '';
  const source = [
    `// ${task.title}`,
    `// Requirement: ${summary}`,
    ...imports.map((dep) => `import { ${exportName(dep)} } from './${dep}.js';`),
    '',
    `/** ${task.description.split('\n')[0]?.slice(0, 200) ?? task.title} */`,
    `export function ${name}(input: string): string[] {`,
    `  const steps = [${imports.map((dep) => `...${exportName(dep)}(input)`).join(', ')}];`,
    `  return [...steps, \`${task.id}:\${input}\`];`,
    '}',
    '',
  ].join('\n');
  const test = [
    "import { describe, expect, it } from 'vitest';",
    `import { ${name} } from '../src/${task.id}.js';`,
    '',
    `describe('${task.title.replace(/'/g, "\\'")}', () => {`,
    `  it('records its step after its dependencies', () => {`,
    `    const steps = ${name}('x');`,
    `    expect(steps.at(-1)).toBe('${task.id}:x');`,
    ...imports.map((dep) => `    expect(steps).toContain('${dep}:x');`),
    '  });',
    '});',
    '',
  ].join('\n');
  const docs = [
    `## ${task.title}`,
    '',
    task.description,
    '',
    `Depends on: ${task.dependsOn.length ? task.dependsOn.join(', ') : 'nothing'}.`,
    '',
  ].join('\n');
  const files = new Map([
    [`src/${task.id}.ts`, source],
    [`test/${task.id}.test.ts`, test],
    [`docs/tasks/${task.id}.md`, docs],
  ]);
  for (const [file, content] of Object.entries({
    ...task.simulate?.files,
    ...task.simulate?.replace,
  }))
    files.set(file, content);
  const broken = task.simulate?.broken;
  if (broken && spec.attempt <= broken.attempts) {
    for (const [file, content] of Object.entries(broken.files)) files.set(file, content);
  }
  return files;
}

/**
 * Runs one simulated attempt inside `spec.workspaceDir`; no model, no network. The attempt takes
 * `durationMs`, its own writes included, as an agent's attempt does: the writes come first and
 * the rest of the time is slept, so that what a run adds to its plan's durations is the
 * orchestrator's, not the simulation's (here the first file operations after a sleep took 10-25
 * ms, against 1-2 once the process was busy).
 */
export async function runSimulatedTask(spec: TaskSpec, io: ExecutorIo): Promise<ExecutorOutcome> {
  const started = performance.now();
  const sim = spec.task.simulate ?? {};
  const left = () => (sim.durationMs ?? 0) - (performance.now() - started);
  // Timers run on the event loop's cached clock and may fire a millisecond early: sleep again
  // until the planned time has really passed.
  const sleepRest = async () => {
    while (left() > 0) await sleep(Math.ceil(left()), undefined, { signal: io.signal });
  };
  io.log(`simulating task ${spec.taskId} attempt ${spec.attempt} (${sim.durationMs ?? 0} ms)`);
  if (spec.verifyFailure) {
    io.log(
      `attempt ${spec.verifyFailure.attempt} failed the verify command; its output ends: ${spec.verifyFailure.tail.trim().split('\n').at(-1) ?? ''}`,
    );
  }
  if (spec.attempt <= (sim.failAttempts ?? 0)) {
    await sleepRest();
    const retryable = sim.failure !== 'permanent';
    io.log(`simulated ${retryable ? 'transient' : 'permanent'} failure`);
    return {
      status: 'failed',
      error: `simulated ${retryable ? 'transient' : 'permanent'} failure on attempt ${spec.attempt}`,
      retryable,
    };
  }
  const written: string[] = [];
  let lines = 0;
  for (const [file, content] of await plannedFiles(spec)) {
    const target = await resolveInside(spec.workspaceDir, file);
    await mkdir(path.dirname(target), { recursive: true });
    const existing = await readFile(target, 'utf8').catch(() => undefined);
    const replaces = spec.task.simulate?.replace?.[file] !== undefined;
    if (existing === undefined || existing === content || replaces) {
      await writeFile(target, content);
    } else {
      // Like an agent that finds the file already there: extend it, never drop what was merged.
      await appendFile(target, `${existing.endsWith('\n') ? '' : '\n'}${content}`);
    }
    written.push(file);
    lines += content.split('\n').length - 1;
    io.log(`wrote ${file}`);
  }
  await sleepRest();
  return {
    status: 'succeeded',
    summary: `wrote ${written.length} files, ${lines} lines`,
    filesWritten: written,
  };
}

import type { TaskSpec } from '../contracts/executor.js';

const bullet = (lines: string[]) => lines.map((line) => `- ${line}`).join('\n');

/**
 * What one agent is asked to do: its task, the whole requirement, and the plan around it, so it
 * builds on the merged dependencies and stays off the files other tasks own.
 */
export function taskPrompt(spec: TaskSpec): string {
  const { task } = spec;
  const others = (spec.planContext ?? []).filter((t) => t.id !== task.id);
  const sections = [
    `You are one of several agents building this requirement together:\n\n${spec.requirements}`,
    `Your task: ${task.id}: ${task.title}\n\n${task.description}`,
  ];
  if (task.files?.length) sections.push(`Files your task owns:\n${bullet(task.files)}`);
  if (spec.conflict) {
    const { attempt, withTasks, files } = spec.conflict;
    const whose = withTasks.length ? `task ${withTasks.join(', task ')}` : 'another task';
    sections.push(
      [
        `Your previous attempt (attempt ${attempt}) could not be merged: it conflicted with the work of ${whose} in:`,
        bullet(files),
        `That work is now merged into your working directory, and it is theirs to keep: do not overwrite, revert or drop it. Redo your task on top of it, adding your changes to these files alongside theirs.`,
      ].join('\n'),
    );
  }
  if (spec.verifyFailure) {
    const { attempt, command, exitCode, timedOut, tail } = spec.verifyFailure;
    const how = timedOut ? 'timed out' : `exited with code ${exitCode ?? 'none (killed)'}`;
    sections.push(
      [
        `Your previous attempt (attempt ${attempt}) was not merged: the project's check \`${command}\` ${how} on it. The end of its output:`,
        '```',
        tail.trimEnd(),
        '```',
        'Your working directory starts again from the merged work, without that attempt. Do your task again so that this check passes; run it yourself before you finish.',
      ].join('\n'),
    );
  }
  sections.push(
    spec.mergedDependencies.length
      ? `Already done and merged into your working directory:\n${bullet(spec.mergedDependencies.map((d) => `${d.id}: ${d.title}`))}`
      : 'No other task is merged into your working directory yet.',
  );
  if (others.length) {
    const lines = others.map(
      (t) =>
        `${t.id}: ${t.title}${t.summary && t.summary !== t.title ? `: ${t.summary}` : ''}${t.files?.length ? ` (owns ${t.files.join(', ')})` : ''}${t.dependsOn.length ? ` (after ${t.dependsOn.join(', ')})` : ''}`,
    );
    sections.push(
      `The other tasks of the plan, done by other agents at the same time or later. Do not do their work and do not edit the files they own:\n${bullet(lines)}`,
    );
  }
  sections.push(
    [
      'Rules:',
      '- Work only inside the current working directory.',
      '- Do not commit: your changes are committed and merged for you when you finish.',
      '- Leave the project building and its tests passing.',
      ...(spec.verify
        ? [
            `- Your work is merged only if \`${spec.verify.command}\` passes on it: run it before you finish.`,
          ]
        : []),
      '- End with a short summary of what you changed.',
    ].join('\n'),
  );
  return sections.join('\n\n');
}

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { UsageError } from '../errors.js';

/** Set to use another Claude Code binary than the pinned one. */
export const CLAUDE_CODE_PATH_ENV = 'CLAUDE_CODE_PATH';

function isMusl(): boolean {
  const report = process.report?.getReport() as
    | { header?: { glibcVersionRuntime?: string } }
    | undefined;
  return process.platform === 'linux' && !report?.header?.glibcVersionRuntime;
}

/**
 * The native Claude Code binary of the pinned `@anthropic-ai/claude-code`, found in its
 * per-platform package: install scripts (which would copy it to `bin/claude.exe`) may be off.
 */
export function findClaudeBinary(env: NodeJS.ProcessEnv = process.env): string {
  const override = env[CLAUDE_CODE_PATH_ENV];
  if (override) {
    if (!existsSync(override))
      throw new UsageError(`${CLAUDE_CODE_PATH_ENV} points to ${override}, which does not exist`);
    return override;
  }
  const platform = `${process.platform}-${process.arch}${isMusl() ? '-musl' : ''}`;
  const name = `@anthropic-ai/claude-code-${platform}`;
  try {
    const wrapper = createRequire(import.meta.url).resolve(
      '@anthropic-ai/claude-code/package.json',
    );
    const manifest = createRequire(wrapper).resolve(`${name}/package.json`);
    const binary = path.join(
      path.dirname(manifest),
      process.platform === 'win32' ? 'claude.exe' : 'claude',
    );
    if (existsSync(binary)) return binary;
  } catch {
    // Reported below.
  }
  throw new UsageError(
    `Claude Code for ${platform} is not installed (${name}); run pnpm install, or set ${CLAUDE_CODE_PATH_ENV}`,
  );
}

/** `claude --version`, e.g. `2.1.332 (Claude Code)`. */
export function claudeVersion(binary: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      binary,
      ['--version'],
      { timeout: 30_000, env: { PATH: process.env.PATH } },
      (error, stdout) => {
        if (error) reject(new Error(`${binary} --version failed: ${error.message}`));
        else resolve(stdout.trim());
      },
    );
  });
}

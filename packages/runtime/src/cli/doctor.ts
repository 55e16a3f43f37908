import { request } from 'node:http';
import { URL } from 'node:url';
import {
  type ModelAccess,
  type ModelFlags,
  redactUrl,
  resolveModelAccess,
} from '../models/access.js';
import { claudeVersion, findClaudeBinary } from '../models/claude-binary.js';
import { errorMessage } from '../scheduler/scheduler.js';

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** Docker's `/version` over its socket (DOCKER_HOST or the default unix socket), bounded in time. */
function dockerVersion(env: NodeJS.ProcessEnv): Promise<string> {
  const host = env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  const target = host.startsWith('unix://')
    ? { socketPath: host.slice('unix://'.length), path: '/version' }
    : (() => {
        const url = new URL(host.replace(/^tcp:/, 'http:'));
        return { host: url.hostname, port: url.port, path: '/version' };
      })();
  return new Promise((resolve, reject) => {
    const req = request({ ...target, timeout: 3_000 }, (res) => {
      let body = '';
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => {
        try {
          resolve(
            `Docker ${(JSON.parse(body) as { Version?: string }).Version ?? 'unknown'} at ${host}`,
          );
        } catch {
          reject(new Error(`unexpected answer from ${host}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 3 s')));
    req.on('error', (error) => reject(new Error(`not reachable at ${host}: ${error.message}`)));
    req.end();
  });
}

function describeAccess(access: ModelAccess): string {
  const where =
    access.provider === 'bedrock'
      ? `Bedrock in ${access.region}`
      : access.baseURL
        ? `gateway ${redactUrl(access.baseURL)}`
        : 'Anthropic API';
  return `${where}; credentials: ${access.credentials.join(', ')}; planner ${access.plannerModel}, executors ${access.executorModel}`;
}

/**
 * What `--real` needs on this machine: the Claude Code binary and its version, which model
 * credentials were found (names and sources, never values), and whether Docker answers.
 */
export async function doctor(
  env: NodeJS.ProcessEnv,
  flags: ModelFlags,
): Promise<{ text: string; ok: boolean }> {
  const checks: Check[] = [];
  try {
    const binary = findClaudeBinary(env);
    checks.push({
      name: 'Claude Code',
      ok: true,
      detail: `${await claudeVersion(binary)}, ${binary}`,
    });
  } catch (error) {
    checks.push({ name: 'Claude Code', ok: false, detail: errorMessage(error) });
  }
  try {
    checks.push({
      name: 'Models',
      ok: true,
      detail: describeAccess(await resolveModelAccess(env, flags)),
    });
  } catch (error) {
    checks.push({ name: 'Models', ok: false, detail: errorMessage(error) });
  }
  // Docker is optional (the docker backend needs it, the local one does not).
  const docker = await dockerVersion(env).then(
    (detail) => ({ name: 'Docker', ok: true, detail }),
    (error: unknown) => ({
      name: 'Docker',
      ok: true,
      detail: `unavailable: ${errorMessage(error)}`,
    }),
  );
  checks.push(docker);
  const width = Math.max(...checks.map((c) => c.name.length));
  const text = checks
    .map((c) => `${c.ok ? 'ok     ' : 'MISSING'}  ${c.name.padEnd(width)}  ${c.detail}`)
    .join('\n');
  return { text, ok: checks.every((c) => c.ok) };
}

import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * npm settings a setup may see: where packages come from and which certificates to trust (a
 * mirror, a corporate CA), as the user's own npm configuration says. Never a credential: a setup
 * runs install scripts, an agent's among them once it changed the manifests.
 */
const REGISTRY_SETTING =
  /^((@[^:\s]+:)?registry|cafile|ca|ca\[\]|strict-ssl|proxy|https-proxy|noproxy)$/;

/** The user's npm configuration (`~/.npmrc`, or NPM_CONFIG_USERCONFIG), cut to its registry settings. */
export function npmRegistrySettings(env: NodeJS.ProcessEnv = process.env): string {
  const file =
    env.NPM_CONFIG_USERCONFIG ?? env.npm_config_userconfig ?? path.join(os.homedir(), '.npmrc');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return '';
  }
  const kept = text.split('\n').filter((line) => {
    const key = line.split('=')[0]?.trim() ?? '';
    // A value that names an environment variable may carry a secret through it.
    return REGISTRY_SETTING.test(key) && !line.includes('${');
  });
  return kept.length > 0 ? `${kept.join('\n')}\n` : '';
}

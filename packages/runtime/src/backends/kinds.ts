import type { BackendName, RunConfig } from '../contracts/run-config.js';
import type { BackendKind } from './backend.js';
import { batchKind } from './batch/kind.js';
import { dockerKind } from './docker/kind.js';
import { localKind } from './local/kind.js';

/** Every backend, by name: the one factory the CLI and the orchestrator go through. */
export const BACKEND_KINDS: { readonly [Name in BackendName]: BackendKind<RunConfig[Name]> } = {
  local: localKind,
  docker: dockerKind,
  batch: batchKind,
};

/** The kind of a backend, typed loosely for callers that handle any. */
export function backendKind(name: BackendName): BackendKind<unknown> {
  return BACKEND_KINDS[name] as BackendKind<unknown>;
}

/** The settings run.json holds for its backend (the local backend's may be absent). */
export function backendSettings(config: RunConfig): unknown {
  const settings = config[config.backend];
  if (settings === undefined && config.backend !== 'local')
    throw new Error(`run.json has no ${config.backend} settings for the ${config.backend} backend`);
  return settings ?? {};
}

import type { VerifySettings } from '../contracts/verify.js';
import type { Project } from '../workspace/project.js';

/**
 * The tree `--verify` checks for `tree`: the check's own files as they were at the run's start
 * when `--verify-from-base` names them, so that the work checked cannot have changed them.
 */
export function treeToCheck(
  project: Project,
  tree: string,
  settings: VerifySettings,
): Promise<string> {
  const from = settings.fromBase;
  return from ? project.treeWithPathsFrom(tree, from.commit, from.paths) : Promise.resolve(tree);
}

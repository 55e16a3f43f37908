import { z } from 'zod';

/**
 * How agent processes of the local backend are confined: in a bubblewrap sandbox that can write
 * only its workspace and home, or not at all (then agents get no Bash).
 */
export const LocalSandboxSchema = z.enum(['bubblewrap', 'none']);
export type LocalSandbox = z.infer<typeof LocalSandboxSchema>;

export const LocalSettingsSchema = z.object({
  /** Real runs: how agents are confined (decided by the preflight). */
  sandbox: LocalSandboxSchema.optional(),
});
export type LocalSettings = z.infer<typeof LocalSettingsSchema>;

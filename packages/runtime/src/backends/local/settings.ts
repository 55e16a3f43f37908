import { z } from 'zod';

/**
 * How agent processes of the local backend are confined: in a bubblewrap sandbox that can write
 * only its workspace and home, or not at all (then agents get no Bash).
 */
export const LocalSandboxSchema = z.enum(['bubblewrap', 'none']);
export type LocalSandbox = z.infer<typeof LocalSandboxSchema>;

export const LOCAL_DEFAULTS = { memory: '4g', pids: 512, disk: '20g' } as const;

export const LocalSettingsSchema = z.object({
  /** Real runs: how agents are confined (decided by the preflight). */
  sandbox: LocalSandboxSchema.optional(),
  /** What each agent or check may use (`--local-memory`, `--local-pids`, `--local-disk`). */
  memoryBytes: z.number().int().positive().optional(),
  pids: z.number().int().positive().optional(),
  diskBytes: z.number().int().positive().optional(),
});
export type LocalSettings = z.infer<typeof LocalSettingsSchema>;

import { z } from 'zod';

/** How the Docker backend runs executor containers. */
export const DockerSettingsSchema = z.object({
  image: z.string().min(1),
  network: z.string().optional(),
  memoryBytes: z.number().int().positive().optional(),
  nanoCpus: z.number().int().positive().optional(),
  pidsLimit: z.number().int().positive(),
  /** What a container may write to its slot (workspace and output); older runs have none. */
  diskBytes: z.number().int().positive().optional(),
});
export type DockerSettings = z.infer<typeof DockerSettingsSchema>;

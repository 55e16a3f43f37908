import { z } from 'zod';

/** How the Docker backend runs executor containers. */
export const DockerSettingsSchema = z.object({
  image: z.string().min(1),
  network: z.string().optional(),
  memoryBytes: z.number().int().positive().optional(),
  nanoCpus: z.number().int().positive().optional(),
  pidsLimit: z.number().int().positive(),
});
export type DockerSettings = z.infer<typeof DockerSettingsSchema>;

import type { z } from 'zod';

/** Parses with zod, failing with one line that names the first field at fault. */
export function parseOrFail<T>(
  schema: z.ZodType<T>,
  value: unknown,
  fail: (message: string) => Error,
): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
  throw fail(`${where}${issue?.message ?? 'invalid'}`);
}

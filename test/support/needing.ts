import { describe, it } from 'vitest';

/** A suite that skips, saying why, unless `required` is set: then it fails, saying why. */
export function describeNeeding(
  name: string,
  body: () => void,
  why: string | undefined,
  required: string,
): void {
  if (why && process.env[required] === '1') {
    describe(name, () => {
      it(`needs what ${required}=1 asks for`, () => {
        throw new Error(`${required}=1 but ${why}`);
      });
    });
    return;
  }
  if (why) describe.skip(`${name} (skipped: ${why})`, body);
  else describe(name, body);
}

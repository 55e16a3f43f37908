import { describe, it, type TestOptions } from 'vitest';

/**
 * What a suite or test needs of the machine. Without it, it is skipped and `skip-reporter.ts`
 * prints why and how to enable it; with `required` set to 1 in the environment (CI sets every
 * REQUIRE_* that applies), it fails instead, saying the same.
 */
export interface Need {
  /** Why it cannot run here; undefined when it can. */
  missing: string | undefined;
  /** One line: what to do so that it runs here. */
  enable: string;
  /** The variable that turns the skip into a failure; none where no machine could help (a platform). */
  required?: `REQUIRE_${string}`;
}

/** Why a test was skipped, as the skip reporter reads it from the test's meta. */
export interface SkipReason {
  reason: string;
  enable: string;
  required?: string;
}

declare module 'vitest' {
  interface TaskMeta {
    /** Set on a suite or test skipped for a missing need; vitest copies a suite's meta into its tests. */
    skipReason?: SkipReason;
  }
}

/** The failure a missing need becomes when its REQUIRE_* variable is 1, if it does. */
function demanded(need: Need): string | undefined {
  if (!need.missing || !need.required || process.env[need.required] !== '1') return undefined;
  return `${need.required}=1 but ${need.missing} (to run it: ${need.enable})`;
}

/** Options that skip when the need is missing, carrying why for the reporter. */
function skipOptions(need: Need): TestOptions {
  if (!need.missing) return {};
  const { missing: reason, enable, required } = need;
  return { skip: true, meta: { skipReason: { reason, enable, required } } };
}

/** A suite that skips, saying why and how to enable it, unless its need is required: then it fails. */
export function describeNeeding(name: string, body: () => void, need: Need): void {
  const failure = demanded(need);
  if (failure) {
    describe(name, () => {
      it(`needs what ${need.required}=1 asks for`, () => {
        throw new Error(failure);
      });
    });
    return;
  }
  describe(name, skipOptions(need), body);
}

/** A test that skips, saying why and how to enable it, unless its need is required: then it fails. */
export function itNeeding(name: string, fn: () => Promise<void> | void, need: Need): void {
  const failure = demanded(need);
  if (failure) {
    it(name, () => {
      throw new Error(failure);
    });
    return;
  }
  it(name, skipOptions(need), fn);
}

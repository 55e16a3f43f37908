import { PreparedPathSchema } from '../../contracts/batch-job.js';
import {
  type PreparedEnvironment,
  PreparedEnvironmentSchema,
} from '../../contracts/environment.js';
import { S3_LAYOUT } from '../../contracts/s3-layout.js';
import type { Staging } from './staging.js';

/** A record names at most 256 paths: far below this. */
const MAX_RECORD_BYTES = 2 ** 20;

/**
 * Prepared environments in the state bucket, shared by every run of the stack: per key, a
 * record (`<key>.json`, written by the orchestrator once its setup job's archive is up) naming
 * the archive that job made. The record is written last, so a key without one was never
 * finished; one whose archive is gone (expired with the runs prefix) or not the size it says is
 * prepared again.
 */
export class BucketEnvironments {
  constructor(
    private readonly staging: Staging,
    private readonly runsRoot: string,
  ) {}

  /** The key's environment, when its record and archive are both there and agree. */
  async lookup(key: string): Promise<{ environment: PreparedEnvironment } | { note?: string }> {
    const { record } = S3_LAYOUT.environment(this.runsRoot, key);
    const raw = await this.staging.getBytes(record, MAX_RECORD_BYTES);
    if (!raw) return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch {
      return { note: note(key, 'its record is not JSON') };
    }
    const found = PreparedEnvironmentSchema.safeParse(parsed);
    const environment = found.success ? found.data : undefined;
    const archive = environment?.archive;
    if (
      !environment ||
      !archive ||
      environment.key !== key ||
      !archive.key.startsWith(`${S3_LAYOUT.environments(this.runsRoot)}${key}.`) ||
      !environment.paths.every((p) => PreparedPathSchema.safeParse(p).success)
    )
      return { note: note(key, 'its record is not valid') };
    const head = await this.staging.head(archive.key);
    if (!head) return { note: note(key, `its archive ${archive.key} is missing`) };
    if (head.bytes !== archive.bytes)
      return {
        note: note(key, `its archive is ${head.bytes} bytes, its record says ${archive.bytes}`),
      };
    return { environment };
  }

  /** Writes the key's record: from now on every run of the stack finds the environment. */
  async record(environment: PreparedEnvironment): Promise<void> {
    const { record } = S3_LAYOUT.environment(this.runsRoot, environment.key);
    await this.staging.putBytes(
      record,
      `${JSON.stringify(environment, null, 2)}\n`,
      'application/json',
    );
  }
}

function note(key: string, why: string): string {
  return `environment ${key.slice(0, 12)} in the state bucket is incomplete (${why}): preparing it again`;
}

/**
 * Where runs live in the state bucket. The Batch backend and the job's entrypoint stage through
 * these keys; the Pulumi component scopes the job role and the expiry rule to `runsRoot`.
 *
 *   <runsRoot><runId>/bases/<commit>.bundle                 integration commits tasks start from
 *   <runsRoot><runId>/tasks/<taskId>/attempt-<n>/input.json what the job runs (its S3_PREFIX)
 *   <runsRoot><runId>/tasks/<taskId>/attempt-<n>/output.bundle, transcript.jsonl, verify.log, result.json
 *   <runsRoot><runId>/verify/input.json, verify.log, result.json  --verify alone: on the base, then on main at the end
 *   <runsRoot><runId>/verify-<n>/...                           the run's n-th such job (n >= 2)
 *   <runsRoot><runId>/tasks/<taskId>/attempt-<n>/verify/...    --verify on the merge of work that changed the manifests
 *   <runsRoot><runId>/setup/<job>/input.json, verify.log (the setup's output), result.json
 *   <runsRoot>_environments/<key>.json                         a prepared environment's record (`--setup`)
 *   <runsRoot>_environments/<key>.<job>.tar.gz                 its archive, made by the setup job <job>
 */
export const S3_LAYOUT = {
  /** Every run's objects are under this prefix; nothing else in the bucket is the runtime's. */
  runsRoot: 'runs/',
  /** All of one run's objects. */
  run: (runsRoot: string, runId: string) => `${runsRoot}${runId}/`,
  /**
   * A bundle of an integration commit. Tasks that start from the same commit share it, so a
   * commit goes up once however many attempts build on it.
   */
  base: (runsRoot: string, runId: string, commit: string) =>
    `${runsRoot}${runId}/bases/${commit}.bundle`,
  /** One attempt's staging prefix: the job's S3_PREFIX. */
  attempt: (runsRoot: string, runId: string, taskId: string, attempt: number) =>
    `${runsRoot}${runId}/tasks/${taskId}/attempt-${attempt}/`,
  /**
   * The prefix of the run's `n`-th job that runs `--verify` alone (on the base before planning,
   * on the integration branch at the end): each its own, so that a job that reports nothing is
   * never read as an earlier one's result.
   */
  verify: (runsRoot: string, runId: string, n: number) =>
    n === 1 ? `${runsRoot}${runId}/verify/` : `${runsRoot}${runId}/verify-${n}/`,
  /**
   * The prefix of the job that prepares an environment (`--setup`): `job` is its name, unique in
   * the run.
   */
  setup: (runsRoot: string, runId: string, job: string) => `${runsRoot}${runId}/setup/${job}/`,
  /**
   * Prepared environments, shared by every run of the stack, inside the runs prefix (so the
   * submitter policy, presigning and the expiry rule cover them): `<key>.json` is the record of
   * the key's environment and names its archive. Each setup job writes an archive of its own
   * (`<key>.<job>.tar.gz`), never another's: two runs that prepare the same key at once each
   * keep reading the archive they made, whose digest their jobs check, and the record written
   * last is the one later runs use.
   */
  environment: (runsRoot: string, key: string) => ({
    record: `${runsRoot}_environments/${key}.json`,
    archive: (job: string) => `${runsRoot}_environments/${key}.${job}.tar.gz`,
  }),
  /** Where every environment's objects are. */
  environments: (runsRoot: string) => `${runsRoot}_environments/`,
  /** Object names under an attempt's prefix. */
  files: {
    /** Uploaded by the orchestrator before it submits the job. */
    input: 'input.json',
    /** Uploaded by the job: its commit on top of the base, as `refs/heads/result`. */
    bundle: 'output.bundle',
    transcript: 'transcript.jsonl',
    /** The output of `--verify`, run by the job on its work. */
    verifyLog: 'verify.log',
    /** Uploaded by the job last: the outcome and the checksums of the other objects. */
    result: 'result.json',
  },
} as const;

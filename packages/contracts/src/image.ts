/**
 * What the image (docker/Dockerfile) provides, for the backends that start it and for the Pulumi
 * component that builds it and writes the Batch job definition.
 */
export const IMAGE = {
  /** Relative to the repository root, which is the build context. */
  dockerfile: 'docker/Dockerfile',
  /** The build argument that picks the Claude Code version; the lockfile's when unset. */
  claudeCodeVersionArg: 'CLAUDE_CODE_VERSION',
  commands: {
    dockerExecutor: '/app/docker-executor',
    dockerPlanner: '/app/docker-planner',
    /** The image's default command, as in the original image. */
    batchExecutor: '/app/batch-executor',
  },
  /** The volume for results, generated code and logs. */
  output: '/output',
  /** The non-root `executor` user. */
  uid: 10001,
} as const;

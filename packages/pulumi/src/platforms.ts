/** The platforms the image builds for: the Dockerfile has no architecture-specific step. */
export const PLATFORMS = ['linux/amd64', 'linux/arm64'] as const;
export type Platform = (typeof PLATFORMS)[number];

/** How Batch and Fargate name each platform's CPU architecture. */
export const CPU_ARCHITECTURE: Record<Platform, 'X86_64' | 'ARM64'> = {
  'linux/amd64': 'X86_64',
  'linux/arm64': 'ARM64',
};

/** Short names for tags and child resource names. */
export const ARCH: Record<Platform, 'amd64' | 'arm64'> = {
  'linux/amd64': 'amd64',
  'linux/arm64': 'arm64',
};

/**
 * Instance families an EC2 compute environment may launch, by architecture: current general,
 * compute and memory optimised families; Graviton for arm64.
 */
export const INSTANCE_FAMILIES: Record<Platform, string[]> = {
  'linux/amd64': ['m7i', 'c7i', 'r7i', 'm6i', 'c6i'],
  'linux/arm64': ['m7g', 'c7g', 'r7g', 'm6g', 'c6g'],
};

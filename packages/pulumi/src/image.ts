import path from 'node:path';
import { IMAGE } from '@parallel-orchestrator/contracts';
import * as aws from '@pulumi/aws';
import * as dockerBuild from '@pulumi/docker-build';
import * as pulumi from '@pulumi/pulumi';
import { ARCH, type Platform } from './platforms.js';

export interface OrchestratorImageArgs {
  /** The repository root: the build context of docker/Dockerfile. */
  context: string;
  platforms: Platform[];
  /** Claude Code in the image; the version the lockfile pins when unset. */
  claudeCodeVersion?: pulumi.Input<string>;
  /** The tag the image index is pushed under. */
  tag: pulumi.Input<string>;
  /** Image manifests the repository keeps (an index and one per platform per build). */
  keepImages: pulumi.Input<number>;
  /** Delete the repository with its images on destroy: for preview stacks only. */
  forceDelete?: pulumi.Input<boolean>;
  tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/**
 * The executor image, built for every platform and pushed to its own ECR repository. Each
 * platform is built and cached on its own (BuildKit exports a registry cache for one platform
 * per build) and an index joins them.
 */
export class OrchestratorImage extends pulumi.ComponentResource {
  readonly repository: aws.ecr.Repository;
  readonly repositoryUrl: pulumi.Output<string>;
  /** `repository@sha256:...`: it changes only when the image does. */
  readonly imageRef: pulumi.Output<string>;

  constructor(name: string, args: OrchestratorImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super('parallel-orchestrator:index:OrchestratorImage', name, {}, opts);
    const parent = { parent: this };

    this.repository = new aws.ecr.Repository(
      name,
      {
        imageScanningConfiguration: { scanOnPush: true },
        // The index tag and the cache tags move with every build.
        imageTagMutability: 'MUTABLE',
        forceDelete: args.forceDelete ?? false,
        tags: args.tags,
      },
      parent,
    );
    new aws.ecr.LifecyclePolicy(
      name,
      {
        repository: this.repository.name,
        policy: pulumi
          .output(args.keepImages)
          .apply((keep) => JSON.stringify(lifecyclePolicy(args.platforms.length, keep))),
      },
      parent,
    );
    this.repositoryUrl = this.repository.repositoryUrl;

    const token = aws.ecr.getAuthorizationTokenOutput(
      { registryId: this.repository.registryId },
      parent,
    );
    const registry = {
      address: this.repositoryUrl.apply((url) => url.split('/')[0] as string),
      username: token.userName,
      password: pulumi.secret(token.password),
    };

    const builds = args.platforms.map((platform) => {
      const arch = ARCH[platform];
      const cache = pulumi.interpolate`${this.repositoryUrl}:cache-${arch}`;
      return new dockerBuild.Image(
        `${name}-${arch}`,
        {
          context: { location: args.context },
          dockerfile: { location: path.join(args.context, IMAGE.dockerfile) },
          platforms: [platform],
          ...(args.claudeCodeVersion !== undefined && {
            buildArgs: { [IMAGE.claudeCodeVersionArg]: args.claudeCodeVersion },
          }),
          push: true,
          tags: [pulumi.interpolate`${this.repositoryUrl}:${args.tag}-${arch}`],
          registries: [registry],
          cacheFrom: [{ registry: { ref: cache } }],
          // ECR stores a registry cache only as an OCI image manifest.
          cacheTo: [
            {
              registry: {
                ref: cache,
                mode: dockerBuild.CacheMode.Max,
                imageManifest: true,
                ociMediaTypes: true,
              },
            },
          ],
        },
        parent,
      );
    });

    if (builds.length === 1) {
      const build = builds[0] as dockerBuild.Image;
      this.imageRef = pulumi.interpolate`${this.repositoryUrl}@${build.digest}`;
    } else {
      const index = new dockerBuild.Index(
        name,
        {
          tag: pulumi.interpolate`${this.repositoryUrl}:${args.tag}`,
          sources: builds.map((build) => build.ref),
          push: true,
          registry,
        },
        parent,
      );
      this.imageRef = pulumi
        .all([this.repositoryUrl, index.ref])
        .apply(([url, ref]) => `${url}@${digestOf(ref)}`);
    }

    this.registerOutputs({ repositoryUrl: this.repositoryUrl, imageRef: this.imageRef });
  }
}

/** The digest of a `name:tag@sha256:...` reference. */
export function digestOf(ref: string): string {
  const digest = ref.slice(ref.indexOf('@') + 1);
  if (!ref.includes('@') || !digest.startsWith('sha256:')) {
    throw new Error(`the pushed image reference ${ref} has no digest`);
  }
  return digest;
}

/** Keep the newest build caches (one per platform) and the newest `keep` other manifests. */
export function lifecyclePolicy(platforms: number, keep: number): object {
  return {
    rules: [
      {
        rulePriority: 1,
        description: 'keep the newest registry cache of each platform',
        selection: {
          tagStatus: 'tagged',
          tagPrefixList: ['cache-'],
          countType: 'imageCountMoreThan',
          countNumber: platforms,
        },
        action: { type: 'expire' },
      },
      {
        rulePriority: 2,
        description: `keep the newest ${keep} images`,
        selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: keep },
        action: { type: 'expire' },
      },
    ],
  };
}

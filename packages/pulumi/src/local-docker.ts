import path from 'node:path';
import { IMAGE } from '@parallel-orchestrator/contracts';
import * as docker from '@pulumi/docker';
import * as pulumi from '@pulumi/pulumi';

export interface LocalDockerBackendArgs {
  /** The repository root: the build context of docker/Dockerfile. */
  context: string;
  /** The image name on the Docker host, such as `parallel-orchestrator:dev`. */
  imageName: pulumi.Input<string>;
  /** The executor network's name. */
  networkName: pulumi.Input<string>;
  claudeCodeVersion?: pulumi.Input<string>;
}

/**
 * A development stack with no AWS: the image built on the Docker host for the host's platform,
 * never pushed, and the network executor containers join.
 */
export class LocalDockerBackend extends pulumi.ComponentResource {
  readonly imageName: pulumi.Output<string>;
  readonly networkName: pulumi.Output<string>;

  constructor(name: string, args: LocalDockerBackendArgs, opts?: pulumi.ComponentResourceOptions) {
    super('parallel-orchestrator:index:LocalDockerBackend', name, {}, opts);

    const image = new docker.Image(
      name,
      {
        imageName: args.imageName,
        build: {
          context: args.context,
          dockerfile: path.join(args.context, IMAGE.dockerfile),
          ...(args.claudeCodeVersion !== undefined && {
            args: { [IMAGE.claudeCodeVersionArg]: args.claudeCodeVersion },
          }),
        },
        skipPush: true,
      },
      { parent: this },
    );
    const network = new docker.Network(
      name,
      {
        name: args.networkName,
        driver: 'bridge',
        labels: [{ label: 'parallel-orchestrator', value: name }],
      },
      { parent: this },
    );

    this.imageName = image.imageName;
    this.networkName = network.name;
    this.registerOutputs({ imageName: this.imageName, networkName: this.networkName });
  }
}

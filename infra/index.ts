/**
 * The stack program (`pulumi up` runs it): a BatchOrchestrator, or a LocalDockerOrchestrator for a
 * Docker stack, configured from the stack. Build the packages first (`pnpm build`): the
 * components are imported from their build.
 */
import { BatchOrchestrator, LocalDockerOrchestrator } from '@parallel-orchestrator/pulumi';
import * as pulumi from '@pulumi/pulumi';
import { stackSettings } from './settings.js';

const { name, backend, args } = stackSettings(new pulumi.Config(), pulumi.getStack());
// Stacks made before the component was split keep their resources: same names, old type aliased.
const opts = { aliases: [{ type: 'parallel-orchestrator:index:ParallelOrchestrator' }] };
const batch = backend === 'batch' ? new BatchOrchestrator(name, args, opts) : undefined;
const local =
  backend === 'docker'
    ? new LocalDockerOrchestrator(name, { claudeCodeVersion: args.claudeCodeVersion }, opts)
    : undefined;

export const imageRef = batch?.imageRef ?? local?.imageRef;
export const repositoryUrl = batch?.repositoryUrl;
export const bucketName = batch?.bucketName;
export const jobQueueArn = batch?.jobQueueArn;
export const jobDefinitionArn = batch?.jobDefinitionArn;
export const logGroupName = batch?.logGroupName;
export const submitterPolicyArn = batch?.submitterPolicyArn;
export const region = batch?.region;
export const networkName = local?.networkName;
/** `pulumi stack output runtimeConfig --json > backend.json`, then `run --backend-config backend.json`. */
export const runtimeConfig = batch?.runtimeConfig ?? local?.runtimeConfig;

/**
 * The stack program (`pulumi up` runs it): one ParallelOrchestrator configured from the stack.
 * Build the packages first (`pnpm build`): the component is imported from its build.
 */
import { ParallelOrchestrator } from '@parallel-orchestrator/pulumi';
import * as pulumi from '@pulumi/pulumi';
import { stackSettings } from './settings.js';

const { name, args } = stackSettings(new pulumi.Config(), pulumi.getStack());
const orchestrator = new ParallelOrchestrator(name, args);

export const imageRef = orchestrator.imageRef;
export const repositoryUrl = orchestrator.repositoryUrl;
export const bucketName = orchestrator.bucketName;
export const jobQueueArn = orchestrator.jobQueueArn;
export const jobDefinitionArn = orchestrator.jobDefinitionArn;
export const logGroupName = orchestrator.logGroupName;
export const submitterPolicyArn = orchestrator.submitterPolicyArn;
export const region = orchestrator.region;
/** `pulumi stack output runtimeConfig --json > backend.json`, then `run --backend-config backend.json`. */
export const runtimeConfig = orchestrator.runtimeConfig;

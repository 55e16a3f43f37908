export {
  checkFargateSize,
  FARGATE_RESOURCES,
  type FargateSizeProblem,
} from '@parallel-orchestrator/contracts';

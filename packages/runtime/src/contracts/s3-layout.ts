export { S3_LAYOUT } from '@parallel-orchestrator/contracts';

export { IMAGE } from '@parallel-orchestrator/contracts';

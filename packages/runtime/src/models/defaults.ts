export { MODEL_DEFAULTS } from '@parallel-orchestrator/contracts';

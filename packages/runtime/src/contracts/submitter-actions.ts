export {
  BATCH_SUBMITTER_ACTIONS,
  type BatchSubmitterAction,
} from '@parallel-orchestrator/contracts';

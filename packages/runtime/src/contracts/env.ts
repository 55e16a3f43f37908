export {
  AWS_CHAIN_ENV,
  ENV,
  ENV_NAMES,
  type EnvName,
  INHERITED_HOST_ENV,
  MODEL_ENV,
  MODEL_PROXY_TOKEN_ENV,
  SECRET_ENV_NAMES,
  SETUP_NETWORK_ENV,
  type SecretEnvName,
  setupNetworkEnv,
} from '@parallel-orchestrator/contracts';

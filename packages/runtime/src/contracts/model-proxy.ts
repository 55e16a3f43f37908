/**
 * How agents reach the model proxy: the contract between the proxy (on the host) and the
 * executors that point Claude Code at it, wherever they run.
 */
export const MODEL_PROXY = {
  /** Host name agents address the proxy by; the socket, not DNS, decides where requests go. */
  host: 'model-proxy',
  /** The socket's file name in its directory (the directory is what sandboxes mount). */
  socketName: 'model.sock',
  /** Where a container mounts the socket's directory. */
  containerDir: '/run/model-proxy',
} as const;

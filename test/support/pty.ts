import { spawn } from 'node:child_process';

export interface PtyRun {
  /** Everything the terminal was sent, controls included. */
  output: string;
  /** The command's exit code (`script -e`), 128+n for a signal. */
  code: number | null;
}

/**
 * Runs `command` (a shell line) on a pseudo-terminal of `cols` x `rows` through util-linux
 * `script`. `react` sees the output so far each time more comes and may type into the terminal
 * (`\x03` is Ctrl-C: the terminal signals the foreground process group, as a person's would).
 */
export function runInPty(
  command: string,
  options: {
    cols?: number;
    rows?: number;
    cwd: string;
    env?: NodeJS.ProcessEnv;
    react?: (output: string, type: (keys: string) => void) => void;
  },
): Promise<PtyRun> {
  const { cols = 100, rows = 40, cwd, env = {}, react } = options;
  const child = spawn(
    'script',
    ['-qec', `stty rows ${rows} cols ${cols}; exec ${command}`, '/dev/null'],
    {
      cwd,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, TERM: 'xterm-256color', ...env },
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  let output = '';
  const type = (keys: string) => {
    child.stdin.write(keys);
  };
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
    react?.(output, type);
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ output, code });
    });
  });
}

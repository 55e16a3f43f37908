import { spawn } from 'node:child_process';

/** The platform's opener: it hands a file to the user's default browser. */
const OPENERS: Partial<Record<NodeJS.Platform, string>> = {
  darwin: 'open',
  linux: 'xdg-open',
  win32: 'explorer',
};

/**
 * Opens `file` in the default browser where there is one (a desktop session); elsewhere (a
 * server, a container, CI) says where the file is instead. Never waits for the browser.
 */
export function openInBrowser(file: string): Promise<string> {
  const opener = OPENERS[process.platform];
  const headless =
    process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY;
  if (!opener || headless)
    return Promise.resolve(`no browser here: open ${file} on a machine with one`);
  return new Promise((resolve) => {
    const child = spawn(opener, [file], { stdio: 'ignore', detached: true });
    child.on('error', () => resolve(`cannot run ${opener}: open ${file} yourself`));
    child.on('spawn', () => {
      child.unref();
      resolve(`opened in the default browser (${opener})`);
    });
  });
}

/**
 * `--setup` on a large repository: the time to the first executor at work when the environment
 * is cached, beside the same repository run without one by the build given with `--cli` (the
 * code before environments, side by side in one sitting); how often a setup runs; and the disk a
 * run and its environment take, the dependencies counted once.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CLI, independent, median, type Result, round } from './common.js';
import { commitAll, diskBytes, largeRepository, SLOTS, sampleStart } from './large-repo.js';

/**
 * What the setup installs: 300 MB in 3,000 files under node_modules/, written by a script of the
 * repository (a synthetic install: what is measured is how the result is shared, not npm).
 */
const DEPENDENCY_FILES = 3_000;
const DEPENDENCY_BYTES = 300 * 2 ** 20;
const INSTALL = [
  '#!/bin/sh',
  'set -e',
  `i=0; while [ $i -lt ${DEPENDENCY_FILES} ]; do`,
  '  d=node_modules/dep$((i % 30)); mkdir -p $d',
  `  head -c ${Math.floor(DEPENDENCY_BYTES / DEPENDENCY_FILES)} /dev/urandom > $d/f$i.bin`,
  '  i=$((i + 1))',
  'done',
  '',
].join('\n');
const SETUP = 'sh scripts/install.sh';

function addInstallScript(repo: string): void {
  mkdirSync(path.join(repo, 'scripts'));
  writeFileSync(path.join(repo, 'scripts/install.sh'), INSTALL);
  writeFileSync(path.join(repo, '.gitignore'), 'node_modules/\n');
  writeFileSync(
    path.join(repo, 'package.json'),
    `${JSON.stringify({ name: 'large', private: true, version: '1.0.0' })}\n`,
  );
  commitAll(repo, 'an install script');
}

/** The environment events of the newest run under `output`. */
function environmentOf(output: string): { cached: boolean; preparedMs: number; bytes: number } {
  const [runDir] = readdirSync(output).filter((name) => !name.startsWith('.'));
  const summary = JSON.parse(
    readFileSync(path.join(output, runDir as string, 'execution_summary.json'), 'utf8'),
  );
  return summary.environment;
}

export async function environmentScenarios(repeat: number, baselineCli: string): Promise<Result[]> {
  // Not under /tmp: every sandbox has a private one, and the setup runs in a sandbox.
  const root = mkdtempSync('/var/tmp/po-bench-env-');
  try {
    const repo = largeRepository(root);
    addInstallScript(repo);
    const cache = path.join(root, 'cache');
    const plan = path.join(root, 'plan.json');
    writeFileSync(plan, JSON.stringify({ ...independent(SLOTS, 8_000), executorBudget: SLOTS }));
    const withSetup = ['--setup', SETUP, '--cache-dir', cache];

    // The first run prepares; every later one finds it.
    const first = await sampleStart(root, repo, plan, CLI, withSetup, true);
    const prepared = environmentOf(first.output);
    rmSync(first.output, { recursive: true, force: true });
    const cached: number[] = [];
    const baseline: number[] = [];
    const slotBytes: number[] = [];
    const runBytes: number[] = [];
    let preparesWhenCached = 0;
    for (let i = 0; i < repeat; i++) {
      // Alternated, so that the machine's noise falls on both alike.
      const before = await sampleStart(root, repo, plan, baselineCli, [], false);
      baseline.push(before.startMs);
      const after = await sampleStart(root, repo, plan, CLI, withSetup, true);
      cached.push(after.startMs);
      slotBytes.push(...after.slotBytes);
      runBytes.push(after.runBytes);
      if (!environmentOf(after.output).cached) preparesWhenCached++;
      rmSync(after.output, { recursive: true, force: true });
    }
    const checkout = Number(
      execFileSync('du', ['-s', '-B1', '--exclude=.git', repo], { encoding: 'utf8' }).split(
        '\t',
      )[0],
    );
    const environmentBytes = diskBytes(path.join(cache, 'environments'));
    const ratio = median(cached) / median(baseline);
    const perSlot = median(slotBytes) / checkout;
    const total = (median(runBytes) + environmentBytes) / (SLOTS * checkout + DEPENDENCY_BYTES);
    const mb = (bytes: number) => round(bytes / 2 ** 20, 1);
    return [
      {
        name: 'env-prepare',
        description: `--setup writing ${DEPENDENCY_BYTES / 2 ** 20} MB in ${DEPENDENCY_FILES} files under node_modules/, on the first run: once`,
        value: round(prepared.preparedMs / 1000, 2),
        unit: 's',
        target: 'measured',
        pass: !prepared.cached,
      },
      {
        name: 'env-start-cached',
        description: `--repo of 20,000 files with a cached environment, M=${SLOTS}: from the command to the first executor at work, over the same repository without --setup run by ${baselineCli === CLI ? 'this build' : 'the --cli build'}`,
        value: round(ratio, 2),
        unit: 'x',
        target: '<= 1.2',
        pass: ratio <= 1.2,
        cachedS: round(median(cached) / 1000, 2),
        baselineS: round(median(baseline) / 1000, 2),
        samples: cached.map((ms) => round(ms / 1000, 2)),
        baselineSamples: baseline.map((ms) => round(ms / 1000, 2)),
      },
      {
        name: 'env-prepares-when-cached',
        description: `setups run by ${repeat} runs of the same base after the first`,
        value: preparesWhenCached,
        unit: 'setups',
        target: '0',
        pass: preparesWhenCached === 0,
      },
      {
        name: 'env-disk-per-slot',
        description: `disk of each of ${SLOTS} slots while its task runs, over the tracked checkout: the dependencies are bound, not copied`,
        value: round(perSlot, 3),
        unit: 'x checkout',
        target: '<= 1.1',
        pass: perSlot <= 1.1,
        checkoutMb: mb(checkout),
      },
      {
        name: 'env-disk-total',
        description: `the run directory and the environment together, over ${SLOTS} tracked checkouts plus the dependencies once`,
        value: round(total, 3),
        unit: 'x',
        target: '<= 1.1',
        pass: total <= 1.1,
        runMb: mb(median(runBytes)),
        environmentMb: mb(environmentBytes),
      },
    ];
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

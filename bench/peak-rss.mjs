// Loaded into the CLI the bench runs (node --import): writes the process's peak RSS when it
// exits, the report included, which the run's own summary (written before it) cannot count.
import { writeFileSync } from 'node:fs';

const file = process.env.PO_BENCH_PEAK_RSS_FILE;
if (file)
  process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS * 1024)));
